//! Emitting a line: events on the NPC and its [`SpeechBuffer`].

use bevy::prelude::*;

use super::components::SpeechBuffer;
use super::events::{DialogueTag, LineChunk, LineFinished, LineQueued, LineStarted, tags_in};
use crate::engine::generate::GenerationStats;

/// Queues a line on `npc`: its buffer is cleared and `LineQueued` sent.
pub(crate) fn queue(
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    speaker: Option<String>,
    generated: bool,
) {
    if let Ok(mut b) = buffers.get_mut(npc) {
        b.text.clear();
        b.speaking = true;
        b.thinking = generated;
        b.generated = generated;
        b.line += 1;
    }
    commands.trigger(LineQueued {
        entity: npc,
        speaker,
        generated,
    });
}

/// The queued line's first words exist: `LineStarted`.
pub(crate) fn begin(
    commands: &mut Commands,
    npc: Entity,
    speaker: Option<String>,
    generated: bool,
) {
    commands.trigger(LineStarted {
        entity: npc,
        speaker,
        generated,
    });
}

/// Adds a chunk to `npc`'s line.
pub(crate) fn chunk(
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    text: &str,
) {
    if text.is_empty() {
        return;
    }
    if let Ok(mut b) = buffers.get_mut(npc) {
        b.thinking = false;
        b.text.push_str(text);
    }
    commands.trigger(LineChunk {
        entity: npc,
        text: text.to_owned(),
    });
}

/// Ends `npc`'s line.
pub(crate) fn finish(
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    text: &str,
    generated: bool,
    cancelled: bool,
    stats: Option<GenerationStats>,
) {
    if let Ok(mut b) = buffers.get_mut(npc) {
        b.speaking = false;
        b.thinking = false;
        if b.text != text && !cancelled {
            b.text = text.to_owned();
        }
    }
    for tag in tags_in(text) {
        commands.trigger(DialogueTag { entity: npc, tag });
    }
    commands.trigger(LineFinished {
        entity: npc,
        text: text.to_owned(),
        generated,
        cancelled,
        stats,
    });
}

/// A whole authored line at once.
pub(crate) fn authored(
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    speaker: Option<String>,
    text: &str,
) {
    queue(commands, buffers, npc, speaker.clone(), false);
    begin(commands, npc, speaker, false);
    chunk(commands, buffers, npc, text);
    finish(commands, buffers, npc, text, false, false, None);
}
