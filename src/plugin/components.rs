//! What an NPC and the listener carry.

use bevy::prelude::*;

use super::assets::PersonaAsset;

/// An NPC that can talk. One spawn gives it everything it needs:
/// `commands.spawn((Npc::new(persona), Transform::default()))`.
#[derive(Component, Debug, Clone)]
#[require(
    SpeechBuffer,
    FreeChatMemory,
    NpcStats,
    super::backend::Speaking,
    Transform
)]
pub struct Npc {
    /// Its persona (also its cast key in stories: the persona's `id`).
    pub persona: Handle<PersonaAsset>,
}

impl Npc {
    /// An NPC with this persona.
    pub fn new(persona: Handle<PersonaAsset>) -> Self {
        Self { persona }
    }
}

/// The NPC's current line as it streams in, for views that poll instead of observing events.
#[derive(Component, Debug, Clone, Default, PartialEq)]
pub struct SpeechBuffer {
    /// The text so far.
    pub text: String,
    /// A line is streaming.
    pub speaking: bool,
    /// Waiting for the model's first word (show a "thinking" cue).
    pub thinking: bool,
    /// The line comes from a model (false: authored).
    pub generated: bool,
    /// Counts lines, so a view can tell a new line from the same one.
    pub line: u64,
}

/// Per-NPC figures of its generated lines (for debug overlays and crowd tuning).
#[derive(Component, Debug, Clone, Default, PartialEq)]
pub struct NpcStats {
    /// Generated lines finished.
    pub lines: u64,
    /// Time to first token of its last line, in ms (from the worker starting it).
    pub last_ttft_ms: Option<f64>,
    /// How long its last line waited in the worker's queue before starting, in ms.
    pub last_queue_ms: Option<f64>,
    /// The longest any of its lines waited in the queue, in ms.
    pub max_queue_ms: f64,
}

impl NpcStats {
    pub(crate) fn record(&mut self, s: &crate::engine::generate::GenerationStats) {
        self.lines += 1;
        self.last_ttft_ms = Some(s.ttft_ms);
        self.last_queue_ms = Some(s.queue_ms);
        self.max_queue_ms = self.max_queue_ms.max(s.queue_ms);
    }
}

/// Free-chat memory of an NPC that is not in the running story: the story layer's
/// [`NpcMemory`](crate::story::NpcMemory) (recent turns with the player, oldest first, trimmed to
/// [`MEMORY_TURNS`](crate::story::MEMORY_TURNS)), which it dereferences to, and whether the
/// persona's prompt was warmed.
#[derive(Component, Debug, Clone, Default, Deref, DerefMut)]
pub struct FreeChatMemory {
    /// The turns (and facts) remembered.
    #[deref]
    pub memory: crate::story::NpcMemory,
    /// A warm request was sent for this NPC's persona.
    pub warmed: bool,
}

/// The listener: the player (or their head in VR). NPC requests are prioritised by distance to
/// it and by whether the NPC is in front of it (its forward is `-Z`, Bevy's camera convention).
#[derive(Component, Debug, Clone, Copy, Default)]
#[require(Transform)]
pub struct DialogueListener;

/// How the NPC feels, as its last line showed it (one of the emotions its persona declares).
/// Set as soon as a line's emotion is decided, before its words, and kept until the next.
#[derive(Component, Debug, Clone, PartialEq, Eq)]
pub struct NpcEmotion(pub String);
