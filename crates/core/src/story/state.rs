//! The mutable side of a story: where the player is, variables, visits, NPC memories, feelings.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::engine::chat::ChatMessage;

use super::model::VarValue;

/// Most turns an NPC remembers (older ones are forgotten; prompts use fewer still).
pub const MEMORY_TURNS: usize = 48;

/// What one NPC remembers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NpcMemory {
    /// Recent turns with the player, oldest first (`User` = the player, `Assistant` = the NPC).
    pub turns: Vec<ChatMessage>,
    /// Facts learned through `Remember` effects, in order.
    pub facts: Vec<String>,
}

impl NpcMemory {
    /// Appends a turn, forgetting the oldest beyond [`MEMORY_TURNS`].
    pub fn push(&mut self, message: ChatMessage) {
        self.turns.push(message);
        keep_last(&mut self.turns, MEMORY_TURNS);
    }
}

/// Forgets all but the last `n` items of `items` (oldest first): the one trim every memory of
/// turns uses (story memories, free chat, NPC ↔ NPC exchanges).
pub fn keep_last<T>(items: &mut Vec<T>, n: usize) {
    let extra = items.len().saturating_sub(n);
    items.drain(..extra);
}

/// Everything a save holds about a story in progress.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoryState {
    /// The current node.
    pub node: String,
    /// Variable values.
    pub variables: BTreeMap<String, VarValue>,
    /// Times each node was entered.
    pub visits: BTreeMap<String, u32>,
    /// Memories by cast key.
    pub memories: BTreeMap<String, NpcMemory>,
    /// Relationship values: NPC cast key → (`"player"` or cast key) → value.
    pub relationships: BTreeMap<String, BTreeMap<String, i64>>,
    /// Set once an ending is reached.
    pub ended: Option<String>,
    /// Once-only options already picked, by line id (`node.to.<next>`, see
    /// [`option_ids`](super::option_ids)): editing or translating an option's text keeps the
    /// record.
    #[serde(default)]
    pub picked: std::collections::BTreeSet<String>,
}
