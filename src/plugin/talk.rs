//! Game messages in (`TalkTo`, `PlayerSaid`, `ChoicePicked`, `CancelDialogue`) and free chat
//! with NPCs outside the story. Messages for an NPC whose persona is still loading wait for it.
//! Never blocks.

use bevy::prelude::*;

use super::backend::{DialogueBackendRes, Purpose};
use super::components::{NpcMemory, SpeechBuffer};
use super::drive::{conversation, story_involves};
use super::events::DialogueError;
use super::lookup::{NotReady, NpcLookup};
use super::messages::{CancelDialogue, ChoicePicked, PlayerSaid, TalkTo};
use super::speech;
use super::story::{DialogueStory, StoryWait};
use crate::engine::backend::{BackendRequest, ChooseRequest, GenerateRequest, Prompt};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::sampler::SamplingParams;
use crate::story::{OPENING_TURN, Persona, sanitize_player_text};

/// Free chat with an NPC outside the story: a greeting (`said: None`) or an answer.
#[allow(clippy::too_many_arguments)] // the pieces of one system, passed down
fn free_line(
    backend: &mut DialogueBackendRes,
    lookup: &NpcLookup,
    memories: &mut Query<&mut NpcMemory>,
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    said: Option<String>,
    partner: Option<Entity>,
) {
    let Some(persona) = lookup.persona(npc) else {
        commands.trigger(DialogueError {
            entity: npc,
            message: "this NPC's persona has not loaded (yet)".into(),
            fallback_used: false,
        });
        return;
    };
    let fallback = persona
        .sample_lines
        .first()
        .map_or_else(|| "…".to_owned(), |s| s.npc.clone());
    let mut turns = memories
        .get(npc)
        .map(|m| m.turns.clone())
        .unwrap_or_default();
    let user = said.clone().unwrap_or_else(|| OPENING_TURN.to_owned());
    turns.push(ChatMessage::new(Role::User, user));
    let params = sampling_for(lookup, persona);
    let id = backend.next_id();
    let request = BackendRequest::Generate(GenerateRequest {
        id,
        conversation: conversation(npc),
        prompt: Prompt {
            system: persona.system_text(),
            turns,
        },
        params,
        priority: lookup.priority(npc, partner),
        fallback: Some(fallback.clone()),
    });
    let generated = backend.has_model();
    let speaker = Some(persona.id.clone());
    match backend.submit(
        request,
        npc,
        Purpose::FreeLine {
            said,
            fallback: fallback.clone(),
        },
    ) {
        Ok(id) => {
            backend.mark_line(id, speaker.clone());
            speech::queue(commands, buffers, npc, speaker, generated);
        }
        Err(e) => {
            speech::authored(commands, buffers, npc, speaker, &fallback);
            commands.trigger(DialogueError {
                entity: npc,
                message: e.to_string(),
                fallback_used: true,
            });
        }
    }
}

/// The plugin's sampling with the persona's overrides.
pub(super) fn sampling_for(lookup: &NpcLookup, persona: &Persona) -> SamplingParams {
    let mut params = lookup.settings().sampling.clone();
    if let Some(t) = persona.generation.temperature {
        params.temperature = t;
    }
    if let Some(m) = persona.generation.max_tokens {
        params.max_tokens = m as usize;
    }
    params
}

/// A `TalkTo` or `PlayerSaid` that waits for its NPC's persona to load.
#[derive(Debug, Clone)]
pub(crate) enum Deferred {
    Talk(Entity),
    Said(Entity, String),
}

/// Messages waiting for their NPC's persona, retried every frame in order.
#[derive(Resource, Debug, Default)]
pub(crate) struct DeferredMessages(Vec<Deferred>);

/// Whether the message's NPC can speak now. If its persona is still loading, the message waits
/// (and is retried next frame); if it can never speak, the game is told why.
fn ready_or_defer(
    lookup: &NpcLookup,
    commands: &mut Commands,
    deferred: &mut DeferredMessages,
    message: Deferred,
) -> bool {
    let (npc, what) = match &message {
        Deferred::Talk(e) => (*e, "TalkTo"),
        Deferred::Said(e, _) => (*e, "PlayerSaid"),
    };
    let why = match lookup.readiness(npc) {
        Ok(_) => return true,
        Err(NotReady::Loading) => {
            deferred.0.push(message);
            return false;
        }
        // Entity observers are gone with the entity; global observers still see the error.
        Err(NotReady::Dead) => format!("{what}: {npc} does not exist (despawned?)"),
        Err(NotReady::NotNpc) => format!("{what}: {npc} is not an NPC (it has no `Npc` component)"),
        Err(NotReady::Failed(e)) => format!("{what}: this NPC's persona failed to load: {e}"),
    };
    warn!("{why}");
    commands.trigger(DialogueError {
        entity: npc,
        message: why,
        fallback_used: false,
    });
    false
}

/// Reads the game's messages.
#[allow(clippy::too_many_arguments)]
pub(crate) fn handle_messages(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
    mut backend: ResMut<DialogueBackendRes>,
    lookup: NpcLookup,
    mut buffers: Query<&mut SpeechBuffer>,
    mut memories: Query<&mut NpcMemory>,
    mut deferred: ResMut<DeferredMessages>,
    mut talk: MessageReader<TalkTo>,
    mut picked: MessageReader<ChoicePicked>,
    mut said: MessageReader<PlayerSaid>,
    mut cancel: MessageReader<CancelDialogue>,
) {
    let story = &mut *story;
    // Messages that waited for a persona come first, in the order they were sent.
    let mut talks = Vec::new();
    let mut saids = Vec::new();
    for d in std::mem::take(&mut deferred.0) {
        match d {
            Deferred::Talk(npc) => talks.push(npc),
            Deferred::Said(npc, text) => saids.push((npc, text)),
        }
    }
    talks.extend(talk.read().map(|t| t.npc));
    saids.extend(said.read().map(|s| (s.npc, s.text.clone())));
    for npc in talks {
        if !ready_or_defer(&lookup, &mut commands, &mut deferred, Deferred::Talk(npc)) {
            continue;
        }
        let t = TalkTo { npc };
        if story_involves(story, &lookup, t.npc) {
            story.partner = Some(t.npc);
            if story.wait == StoryWait::Idle {
                story.wait = StoryWait::Advance;
            }
        } else {
            let partner = story.partner;
            free_line(
                &mut backend,
                &lookup,
                &mut memories,
                &mut commands,
                &mut buffers,
                t.npc,
                None,
                partner,
            );
        }
    }
    for p in picked.read() {
        let pending_here = story.wait == StoryWait::Choice && story.partner == Some(p.npc);
        if !pending_here {
            let message = match story.partner.filter(|_| story.wait == StoryWait::Choice) {
                Some(other) => format!(
                    "ChoicePicked on {}: the pending choices are {other}'s, not this NPC's",
                    p.npc
                ),
                None => format!(
                    "ChoicePicked (option {}) on {}, but no choice is pending",
                    p.index, p.npc
                ),
            };
            warn!("{message}");
            commands.trigger(DialogueError {
                entity: p.npc,
                message,
                fallback_used: false,
            });
            continue;
        }
        let Some(rt) = story.runtime.as_mut() else {
            continue;
        };
        let result = match story.presented.get(p.index) {
            Some(&authored) => rt.choose(authored).map_err(|e| e.to_string()),
            None => Err(format!(
                "option {} was not presented (there are {} options, numbered from 0)",
                p.index,
                story.presented.len()
            )),
        };
        match result {
            Ok(()) => story.wait = StoryWait::Advance,
            Err(message) => commands.trigger(DialogueError {
                entity: p.npc,
                message,
                fallback_used: false,
            }),
        }
    }
    for (npc, text) in saids {
        let message = Deferred::Said(npc, text.clone());
        if !ready_or_defer(&lookup, &mut commands, &mut deferred, message) {
            continue;
        }
        let s = PlayerSaid { npc, text };
        let waiting_here = story.wait == StoryWait::Input && story.partner == Some(s.npc);
        if !waiting_here {
            let partner = story.partner;
            let text = sanitize_player_text(&s.text, 64 * 3);
            free_line(
                &mut backend,
                &lookup,
                &mut memories,
                &mut commands,
                &mut buffers,
                s.npc,
                Some(text),
                partner,
            );
            continue;
        }
        let Some(rt) = story.runtime.as_mut() else {
            continue;
        };
        let request = match rt.route_request(&s.text) {
            Ok(r) => r,
            Err(e) => {
                commands.trigger(DialogueError {
                    entity: s.npc,
                    message: e.to_string(),
                    fallback_used: false,
                });
                continue;
            }
        };
        if backend.has_model() && !request.candidates.is_empty() {
            let id = backend.next_id();
            let choose = BackendRequest::Choose(ChooseRequest {
                id,
                prompt: request.prompt,
                candidates: request.candidates,
                priority: lookup.priority(s.npc, story.partner),
            });
            if backend
                .submit(
                    choose,
                    s.npc,
                    Purpose::Route {
                        text: s.text.clone(),
                    },
                )
                .is_ok()
            {
                story.wait = StoryWait::Route(id);
                continue;
            }
        }
        match rt.say(&s.text, None) {
            Ok(_) => story.wait = StoryWait::Advance,
            Err(e) => commands.trigger(DialogueError {
                entity: s.npc,
                message: e.to_string(),
                fallback_used: false,
            }),
        }
    }
    for c in cancel.read() {
        backend.cancel_npc(c.npc);
    }
}
