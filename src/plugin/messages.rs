//! What game code sends to the plugin (buffered [`Message`]s).

use std::path::PathBuf;

use bevy::prelude::*;

/// Start or resume talking to an NPC: the running story continues if its current node
/// involves this NPC; otherwise the NPC greets the player in free chat.
#[derive(Message, Debug, Clone)]
pub struct TalkTo {
    /// The NPC.
    pub npc: Entity,
}

/// The player typed something to an NPC: routed onto the story's edges when the story waits for
/// free text, else answered in free chat.
#[derive(Message, Debug, Clone)]
pub struct PlayerSaid {
    /// The NPC.
    pub npc: Entity,
    /// What was typed (cleaned before it reaches a prompt).
    pub text: String,
}

/// The player picked option `index` of the last [`ChoicesPresented`](super::ChoicesPresented).
#[derive(Message, Debug, Clone)]
pub struct ChoicePicked {
    /// The NPC the choices were presented on.
    pub npc: Entity,
    /// Index into the presented options.
    pub index: usize,
}

/// Stop the NPC's current line (the partial line ends with `LineFinished { cancelled: true }`).
#[derive(Message, Debug, Clone)]
pub struct CancelDialogue {
    /// The NPC.
    pub npc: Entity,
}

/// Save a running story to a file (atomic), answered by [`StorySaved`].
#[derive(Message, Debug, Clone)]
pub struct SaveStory {
    /// The save file.
    pub path: PathBuf,
    /// The story's entity; `None`: the plugin's own story (its `story` field), or the only
    /// story running.
    pub story: Option<Entity>,
}

/// Load a save into a running story, answered by [`StorySaved`].
#[derive(Message, Debug, Clone)]
pub struct LoadStory {
    /// The save file.
    pub path: PathBuf,
    /// The story's entity; `None`: the plugin's own story (its `story` field), or the only
    /// story running.
    pub story: Option<Entity>,
}

impl SaveStory {
    /// Saves the plugin's own story to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            story: None,
        }
    }
}

impl LoadStory {
    /// Loads `path` into the plugin's own story.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            story: None,
        }
    }
}

/// The outcome of a [`SaveStory`] or [`LoadStory`].
#[derive(Message, Debug, Clone)]
pub struct StorySaved {
    /// The file.
    pub path: PathBuf,
    /// Whether it was a load.
    pub loaded: bool,
    /// `Err` with the reason when it failed (the story keeps its state).
    pub result: Result<(), String>,
}
