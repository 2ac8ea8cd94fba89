//! Many NPCs: warm personas ahead of time, cancel lines the player walked away from, and
//! cancel everything of a despawned NPC.

use bevy::prelude::*;

use super::backend::{DialogueBackendRes, Purpose};
use super::components::{Npc, NpcMemory};
use super::events::LineFinished;
use super::lookup::NpcLookup;
use super::story::DialogueStory;
use crate::engine::backend::BackendRequest;

/// Prefills the persona of NPCs the listener comes near; cancels lines of NPCs it left.
pub(crate) fn schedule(
    mut backend: ResMut<DialogueBackendRes>,
    story: Res<DialogueStory>,
    lookup: NpcLookup,
    mut memories: Query<&mut NpcMemory>,
) {
    let s = lookup.settings().scheduling.clone();
    let far: Vec<_> = backend
        .pending
        .values()
        .filter(|p| !matches!(p.purpose, Purpose::Warm))
        .map(|p| p.npc)
        .filter(|&npc| lookup.distance(npc).is_some_and(|d| d > s.cancel_radius))
        .collect();
    for npc in far {
        backend.cancel_npc(npc);
    }
    if !backend.has_model() {
        return;
    }
    for npc in lookup.all().collect::<Vec<_>>() {
        let near = lookup.distance(npc).is_some_and(|d| d <= s.warm_radius);
        let Ok(mut memory) = memories.get_mut(npc) else {
            continue;
        };
        if !near || memory.warmed {
            continue;
        }
        let Some(persona) = lookup.persona(npc) else {
            continue;
        };
        let id = backend.next_id();
        let warm = BackendRequest::Warm {
            id,
            system: persona.system_text(),
            priority: lookup.priority(npc, story.partner()) - 8_000_000,
        };
        if backend.submit(warm, npc, Purpose::Warm).is_ok() {
            memory.warmed = true;
        }
    }
}

/// A despawned NPC's requests are cancelled and forgotten; each of its open lines ends with
/// `LineFinished { cancelled: true }` (seen by global observers: the entity's own are gone).
pub(crate) fn on_npc_removed(
    removed: On<Remove, Npc>,
    mut commands: Commands,
    backend: Option<ResMut<DialogueBackendRes>>,
    story: Option<ResMut<DialogueStory>>,
) {
    let npc = removed.entity;
    if let Some(mut backend) = backend {
        backend.cancel_npc(npc);
        let generated = backend.has_model();
        // Its open lines end here (cut short), so a view that opened them can close them;
        // nothing else arrives for it.
        for (_, p) in backend.pending.extract_if(|_, p| p.npc == npc) {
            if p.line.is_some() {
                commands.trigger(LineFinished {
                    entity: npc,
                    text: p.text.trim().to_owned(),
                    generated,
                    cancelled: true,
                    stats: None,
                });
            }
        }
    }
    if let Some(mut story) = story
        && story.partner == Some(npc)
    {
        story.partner = None;
        if matches!(
            story.wait,
            super::story::StoryWait::Line(_) | super::story::StoryWait::Route(_)
        ) {
            story.wait = super::story::StoryWait::Idle;
        }
    }
}
