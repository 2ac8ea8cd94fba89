//! Many NPCs: warm personas ahead of time, cancel lines the player walked away from, and
//! end everything of a despawned NPC.

use bevy::prelude::*;

use super::backend::{DialogueBackendHandle, Purpose, Speaking, hold};
use super::components::{FreeChatMemory, Npc};
use super::events::LineFinished;
use super::lookup::NpcLookup;
use super::story::{DialogueStory, player_partner};
use crate::engine::backend::BackendRequest;

/// Prefills the persona of NPCs the listener comes near; cancels lines of NPCs it left.
pub(crate) fn schedule(
    mut backend: ResMut<DialogueBackendHandle>,
    stories: Query<&DialogueStory>,
    lookup: NpcLookup,
    mut memories: Query<&mut FreeChatMemory>,
    mut speaking: Query<&mut Speaking>,
) {
    let partner = player_partner(stories);
    let s = lookup.settings().scheduling.clone();
    for npc in lookup.all() {
        let far = lookup.distance(npc).is_some_and(|d| d > s.cancel_radius);
        if let (true, Ok(held)) = (far, speaking.get(npc)) {
            for r in held
                .requests
                .iter()
                .filter(|r| !matches!(r.purpose, Purpose::Warm))
            {
                r.reply.cancel();
            }
        }
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
            priority: lookup.priority(npc, partner) - 8_000_000,
        };
        if let Ok(request) = backend.submit(warm, npc, Purpose::Warm, None) {
            hold(&mut speaking, npc, request);
            memory.warmed = true;
        }
    }
}

/// A despawned NPC's requests are dropped with it, which cancels them; each of its open lines
/// ends with `LineFinished { cancelled: true }` (seen by global observers: the entity's own
/// are gone), and a story waiting on one of them pauses (the line is asked again on resume).
pub(crate) fn on_npc_removed(
    removed: On<Remove, Npc>,
    mut commands: Commands,
    backend: Option<Res<DialogueBackendHandle>>,
    mut speaking: Query<&mut Speaking>,
    mut stories: Query<&mut DialogueStory>,
) {
    let npc = removed.entity;
    let generated = backend.is_some_and(|b| b.has_model());
    let requests = speaking
        .get_mut(npc)
        .map(|mut s| std::mem::take(&mut s.requests))
        .unwrap_or_default();
    for r in requests {
        if r.line.is_some() {
            commands.trigger(LineFinished {
                entity: npc,
                text: r.text.trim().to_owned(),
                generated,
                cancelled: true,
                stats: None,
            });
        }
        if let Purpose::StoryLine { story, .. } | Purpose::Route { story, .. } = r.purpose
            && let Ok(mut story) = stories.get_mut(story)
            && let Some(c) = story.conversation.as_mut()
        {
            c.cancelled(r.id());
        }
        // `r` is dropped here: its request is cancelled.
    }
    // A story that talked with it pauses.
    for mut story in &mut stories {
        if story.partner == Some(npc) {
            story.partner = None;
            if let Some(c) = story.conversation.as_mut() {
                c.abandoned();
                c.pause();
            }
        }
    }
}
