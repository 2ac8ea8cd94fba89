//! Emitting a line: events on the NPC and its [`SpeechBuffer`].

use bevy::prelude::*;

use super::components::SpeechBuffer;
use super::events::{DialogueTag, LineChunk, LineFinished, LineStarted, tags_in};
use crate::engine::generate::GenerationStats;

/// Starts a line on `npc`.
pub(crate) fn start(
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
    start(commands, buffers, npc, speaker, false);
    chunk(commands, buffers, npc, text);
    finish(commands, buffers, npc, text, false, false, None);
}
