//! What the plugin tells game code, as [`EntityEvent`]s on the NPC. Observe them with
//! `commands.entity(npc).observe(|line: On<LineChunk>| ...)` or globally with `app.add_observer`.
//!
//! A dialogue view **must** handle [`ChoicesPresented`] and [`InputRequested`] (the story waits
//! for an answer). Everything else is optional: the text also accumulates in
//! [`SpeechBuffer`](super::SpeechBuffer).

use bevy::prelude::*;

use crate::engine::generate::GenerationStats;

/// A line was accepted: queued for the model (or, for an authored line, about to be spoken).
/// [`LineStarted`] follows when its first words exist, and [`LineFinished`] ends every queued
/// line (with `cancelled` when it was cut short, even before its first word). Optional to
/// handle (a "thinking…" indicator uses it).
#[derive(EntityEvent, Debug, Clone)]
pub struct LineQueued {
    /// The NPC that will speak.
    pub entity: Entity,
    /// Its persona id, or none for narration.
    pub speaker: Option<String>,
    /// A model writes it (false: authored or fallback).
    pub generated: bool,
}

/// A line's first words exist: the model's first token of a generated line (authored and
/// fallback lines start at once). Optional to handle.
#[derive(EntityEvent, Debug, Clone)]
pub struct LineStarted {
    /// The speaking NPC.
    pub entity: Entity,
    /// Its persona id, or none for narration.
    pub speaker: Option<String>,
    /// A model writes it (false: authored or fallback).
    pub generated: bool,
}

/// A chunk of the line (whole characters). Optional to handle (a typewriter view uses it).
#[derive(EntityEvent, Debug, Clone)]
pub struct LineChunk {
    /// The speaking NPC.
    pub entity: Entity,
    /// The new text.
    pub text: String,
}

/// A line ended. Optional to handle.
#[derive(EntityEvent, Debug, Clone)]
pub struct LineFinished {
    /// The speaking NPC.
    pub entity: Entity,
    /// The whole line.
    pub text: String,
    /// A model wrote it.
    pub generated: bool,
    /// The line was cut short by a cancel.
    pub cancelled: bool,
    /// Timings when a model wrote it.
    pub stats: Option<GenerationStats>,
}

/// Authored options to offer. **A view must handle it**: answer with
/// [`ChoicePicked`](super::ChoicePicked).
#[derive(EntityEvent, Debug, Clone)]
pub struct ChoicesPresented {
    /// The NPC being answered (the speaker of the node; the partner for narration).
    pub entity: Entity,
    /// The node's speaker (persona id), or none for narration.
    pub speaker: Option<String>,
    /// The NPC the player is talking with.
    pub partner: Entity,
    /// A line shown with the options.
    pub text: Option<String>,
    /// The options, in order (index them in `ChoicePicked`).
    pub options: Vec<String>,
}

/// The story waits for free text. **A view must handle it**: answer with
/// [`PlayerSaid`](super::PlayerSaid).
#[derive(EntityEvent, Debug, Clone)]
pub struct InputRequested {
    /// The NPC spoken to (the node's speaker).
    pub entity: Entity,
    /// The node's speaker (persona id).
    pub speaker: Option<String>,
    /// The NPC the player is talking with.
    pub partner: Entity,
    /// A prompt for the player.
    pub prompt: Option<String>,
}

/// The story entered a node, Branch nodes included, in order. Optional (journals, quest logs,
/// debug panes).
#[derive(EntityEvent, Debug, Clone)]
pub struct StoryNodeEntered {
    /// The node's speaker (the partner for narration, Branch and Ending nodes).
    pub entity: Entity,
    /// The node's speaker (persona id), or none.
    pub speaker: Option<String>,
    /// The NPC the player is talking with.
    pub partner: Entity,
    /// The node id.
    pub node: String,
}

/// An emotion or action tag in a line: `*smiles*` or `[angry]`. Optional (animation, audio).
#[derive(EntityEvent, Debug, Clone)]
pub struct DialogueTag {
    /// The speaking NPC.
    pub entity: Entity,
    /// The tag without its marks (`smiles`).
    pub tag: String,
}

/// The story reached an ending. Optional.
#[derive(EntityEvent, Debug, Clone)]
pub struct StoryEnded {
    /// The NPC in the conversation.
    pub entity: Entity,
    /// The NPC the player was talking with (the same as `entity`).
    pub partner: Entity,
    /// The ending's title.
    pub title: String,
    /// Its closing line.
    pub text: Option<String>,
}

/// Choices or a free-text prompt shown for this NPC are no longer valid (a save was loaded,
/// the story changed): a view clears them. The story asks again when it gets there.
#[derive(EntityEvent, Debug, Clone)]
pub struct ChoicesWithdrawn {
    /// The NPC the choices (or the input prompt) were shown for.
    pub entity: Entity,
}

/// Something failed; the game goes on (a fallback line was used when `fallback_used`).
/// Optional, but worth logging.
#[derive(EntityEvent, Debug, Clone)]
pub struct DialogueError {
    /// The NPC concerned.
    pub entity: Entity,
    /// What happened.
    pub message: String,
    /// The authored fallback line was spoken instead.
    pub fallback_used: bool,
}

/// Tags in a line: `*action*` and `[emotion]` spans.
pub fn tags_in(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (open, close) in [('*', '*'), ('[', ']')] {
        let mut rest = text;
        while let Some(i) = rest.find(open) {
            let after = &rest[i + open.len_utf8()..];
            let Some(j) = after.find(close) else { break };
            let tag = after[..j].trim();
            if !tag.is_empty() && tag.len() <= 32 {
                out.push(tag.to_owned());
            }
            rest = &after[j + close.len_utf8()..];
        }
    }
    out
}

/// The NPC took an action its persona declares and the line allowed, with arguments already
/// checked against the declaration: read them typed with
/// [`Action::arg`](crate::story::acts::Action::arg) (`action.arg::<i64>("count")`). Sent when
/// the line ends (after [`LineFinished`]); a story line's `on_action` edge is taken by then.
#[derive(EntityEvent, Debug, Clone)]
pub struct NpcAction {
    /// The acting NPC.
    pub entity: Entity,
    /// What it did.
    pub action: crate::story::acts::Action,
}
