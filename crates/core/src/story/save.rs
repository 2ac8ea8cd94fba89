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
    /// The story's structure when saved ([`content_hash`]: node ids and kinds, variables and
    /// their types). For information: a save loads into any version of its story whose nodes
    /// and variables still fit it ([`SaveGame::check_story`]), so text edits never void it.
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
    /// The state could not be written as a save (nothing was written).
    #[error("the save could not be written: {0}")]
    Serialize(String),
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
    /// The state does not fit the story.
    #[error("the save does not fit story `{story}`: {reason}")]
    Invalid {
        /// The story.
        story: String,
        /// What does not fit.
        reason: String,
    },
}

/// A stable hash of a story's structure, as 16 hex digits of SHA-256: its node ids and kinds,
/// its variables and their types, its cast keys. Text, conditions, effects, comments and
/// whitespace do not change it.
pub fn content_hash(bundle: &StoryBundle) -> String {
    let mut h = Sha256::new();
    for n in &bundle.story.nodes {
        h.update(n.id().as_bytes());
        h.update([0]);
        h.update(n.kind_name().as_bytes());
        h.update([0]);
    }
    for (name, value) in &bundle.story.variables {
        h.update(name.as_bytes());
        h.update(format!("{:?}", value.var_type()).as_bytes());
        h.update([0]);
    }
    for key in bundle.cast.keys() {
        h.update(key.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl SaveGame {
    /// The save's RON text.
    pub fn to_ron(&self) -> Result<String, SaveError> {
        ron::ser::to_string_pretty(self, ron::ser::PrettyConfig::default())
            .map_err(|e| SaveError::Serialize(e.to_string()))
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

    /// Writes the save atomically. The text is read back before it is written, so a save that
    /// cannot be written whole (or would not load) never replaces the one on disk.
    pub fn write(&self, path: &Path) -> Result<(), SaveError> {
        let text = self.to_ron()?;
        Self::from_ron(path, &text)?;
        write_atomic(path, text.as_bytes())
    }

    /// Reads a save.
    pub fn read(path: &Path) -> Result<Self, SaveError> {
        let text = std::fs::read_to_string(path).map_err(|source| SaveError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_ron(path, &text)
    }

    /// Checks the save fits this version of its story: the same story id, its current node
    /// still exists, and every saved variable the story still declares has the declared type.
    /// Text edits, new nodes and new variables are fine (see [`SaveGame::migrate`]).
    pub fn check_story(&self, bundle: &StoryBundle) -> Result<(), SaveError> {
        if self.story_id != bundle.story.id {
            return Err(SaveError::WrongStory {
                expected: bundle.story.id.clone(),
                found: self.story_id.clone(),
            });
        }
        let invalid = |reason: String| SaveError::Invalid {
            story: bundle.story.id.clone(),
            reason,
        };
        if bundle.story.node(&self.state.node).is_none() {
            return Err(invalid(format!(
                "its current node `{}` is no longer in the story (renamed or removed?)",
                self.state.node
            )));
        }
        for (name, value) in &self.state.variables {
            if let Some(declared) = bundle.story.variables.get(name)
                && declared.var_type() != value.var_type()
            {
                return Err(invalid(format!(
                    "variable `{name}` is saved as {} but the story declares it {}",
                    value.var_type(),
                    declared.var_type()
                )));
            }
        }
        Ok(())
    }

    /// Brings a save that fits ([`check_story`](Self::check_story)) up to the story's current
    /// version: variables declared since get their initial values, variables no longer
    /// declared and visit counts of removed nodes are dropped.
    pub fn migrate(&mut self, bundle: &StoryBundle) {
        let story = &bundle.story;
        let vars = &mut self.state.variables;
        vars.retain(|name, _| story.variables.contains_key(name));
        for (name, initial) in &story.variables {
            vars.entry(name.clone()).or_insert_with(|| initial.clone());
        }
        self.state.visits.retain(|id, _| story.node(id).is_some());
        self.story_hash = content_hash(bundle);
    }
}

/// Writes `bytes` to `path` through a temporary file in the same folder: write, fsync, rename,
/// then fsync the folder. Readers see the old file or the new one, never a mix; a write that
/// fails (a full disk) leaves the old file as it was and removes its temporary file. Temporary
/// files that a killed process left for the same `path` are removed after a write succeeds.
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
    } else {
        remove_stale_temporaries(&dir, &name);
    }
    result.map_err(io)
}

/// Removes `.NAME.PID.tmp` files of `dir` that no running process is writing: on Linux, those
/// whose process is gone; elsewhere, those untouched for ten minutes.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(pid) = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix))
            .and_then(|f| f.strip_suffix(".tmp"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let stale = if cfg!(target_os = "linux") {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 600)
        };
        if stale {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}
