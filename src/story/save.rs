//! Versioned saves, written atomically: a crash mid-save leaves the previous save intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::load::StoryBundle;
use super::state::StoryState;

/// The save format this version writes and reads.
pub const SAVE_FORMAT: u32 = 1;

/// A saved game.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaveGame {
    /// Save format version ([`SAVE_FORMAT`]).
    pub format: u32,
    /// The story's id.
    pub story_id: String,
    /// Hash of the story and its cast's contents ([`content_hash`]).
    pub story_hash: String,
    /// The state.
    pub state: StoryState,
}

/// Why a save could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a save.
    #[error("{}: not a save file: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// ron's message with its position.
        message: String,
    },
    /// Written by another save format.
    #[error("save format {found} is not supported (this version reads format {SAVE_FORMAT})")]
    Format {
        /// The file's format.
        found: u32,
    },
    /// The save belongs to another story.
    #[error("this save is for story `{found}`, not `{expected}`")]
    WrongStory {
        /// The story loaded.
        expected: String,
        /// The save's story.
        found: String,
    },
    /// The story changed since the save was made.
    #[error(
        "this save was made with another version of story `{story}` (content hash {found}, now {expected}); \
         its nodes and variables may no longer match"
    )]
    StoryChanged {
        /// The story.
        story: String,
        /// The current hash.
        expected: String,
        /// The save's hash.
        found: String,
    },
    /// The state does not fit the story.
    #[error("the save does not fit story `{story}`: {reason}")]
    Invalid {
        /// The story.
        story: String,
        /// What does not fit.
        reason: String,
    },
}

/// A stable hash of a story's and its cast's parsed contents (whitespace and comments do not
/// change it), as 16 hex digits of SHA-256.
pub fn content_hash(bundle: &StoryBundle) -> String {
    let mut h = Sha256::new();
    h.update(ron::to_string(&bundle.story).unwrap_or_default());
    for (key, member) in &bundle.cast {
        h.update(key.as_bytes());
        h.update(ron::to_string(&member.persona).unwrap_or_default());
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SaveGame {
    /// The save's RON text.
    pub fn to_ron(&self) -> String {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default()).unwrap_or_default()
    }

    /// Parses a save's RON text.
    pub fn from_ron(path: &Path, text: &str) -> Result<Self, SaveError> {
        let save: Self = ron::from_str(text).map_err(|e| SaveError::Parse {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        if save.format != SAVE_FORMAT {
            return Err(SaveError::Format { found: save.format });
        }
        Ok(save)
    }

    /// Writes the save atomically.
    pub fn write(&self, path: &Path) -> Result<(), SaveError> {
        write_atomic(path, self.to_ron().as_bytes())
    }

    /// Reads a save.
    pub fn read(path: &Path) -> Result<Self, SaveError> {
        let text = std::fs::read_to_string(path).map_err(|source| SaveError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_ron(path, &text)
    }

    /// Checks the save belongs to this exact story version.
    pub fn check_story(&self, bundle: &StoryBundle) -> Result<(), SaveError> {
        if self.story_id != bundle.story.id {
            return Err(SaveError::WrongStory {
                expected: bundle.story.id.clone(),
                found: self.story_id.clone(),
            });
        }
        let now = content_hash(bundle);
        if self.story_hash != now {
            return Err(SaveError::StoryChanged {
                story: bundle.story.id.clone(),
                expected: now,
                found: self.story_hash.clone(),
            });
        }
        Ok(())
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder: write, fsync, rename,
/// then fsync the folder. Readers see the old file or the new one, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SaveError> {
    let io = |source| SaveError::Io {
        path: path.to_owned(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "save".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}
