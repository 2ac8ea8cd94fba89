//! Story and free-chat driving: game messages in, story steps, requests out. Never blocks.

use bevy::prelude::*;

use super::assets::StoryAsset;
use super::backend::{DialogueBackendRes, Purpose};
use super::components::{NpcMemory, SpeechBuffer};
use super::events::{
    ChoicesPresented, ChoicesWithdrawn, DialogueError, InputRequested, StoryEnded, StoryNodeEntered,
};
use super::lookup::{NotReady, NpcLookup};
use super::messages::{CancelDialogue, ChoicePicked, PlayerSaid, TalkTo};
use super::speech;
use super::story::{DialogueStory, StoryWait};
use crate::engine::backend::{
    BackendRequest, ChooseRequest, ConversationId, GenerateRequest, Prompt,
};
use crate::engine::chat::{ChatMessage, Role};
use crate::story::{Beat, OPENING_TURN, StoryRuntime, sanitize_player_text};

/// Starts the story once its asset is loaded; puts hot-reloaded versions in place.
pub(crate) fn load_story(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
    assets: Res<Assets<StoryAsset>>,
    mut changed: MessageReader<AssetEvent<StoryAsset>>,
    mut failed: MessageReader<bevy::asset::AssetLoadFailedEvent<StoryAsset>>,
) {
    // Bevy's asset server has logged the file's errors already: say only what happens now,
    // without repeating them.
    for f in failed.read() {
        warn!(
            "story file `{}` refused (its errors are above); the last good version keeps running",
            f.path
        );
    }
    let Some(handle) = story.handle.clone() else {
        return;
    };
    for e in changed.read() {
        if let AssetEvent::Modified { id } = e
            && *id == handle.id()
            && let Some(asset) = assets.get(&handle)
        {
            let shown = matches!(story.wait, StoryWait::Choice | StoryWait::Input)
                .then_some(story.partner)
                .flatten();
            match story.reload(asset) {
                Ok(()) => {
                    info!("story `{}` reloaded", asset.0.story.id);
                    // The choices (or prompt) are asked again from the new version.
                    if let Some(npc) = shown {
                        commands.trigger(ChoicesWithdrawn { entity: npc });
                    }
                }
                Err(why) => warn!("story reloaded but the old version keeps running: {why}"),
            }
        }
    }
    if story.runtime.is_none()
        && let Some(asset) = assets.get(&handle)
    {
        match StoryRuntime::new(asset.0.clone()) {
            Ok(rt) => {
                story.runtime = Some(rt);
                story.wait = StoryWait::Idle;
            }
            Err(e) => warn!("story `{}` cannot start: {e}", asset.0.story.id),
        }
    }
}

fn conversation(npc: Entity) -> ConversationId {
    ConversationId(npc.to_bits())
}

/// Whether talking to `npc` resumes the story: its current beat is this NPC's or narration.
fn story_involves(story: &mut DialogueStory, lookup: &NpcLookup, npc: Entity) -> bool {
    let Some(rt) = story.runtime.as_mut() else {
        return false;
    };
    let Some(id) = lookup.persona(npc).map(|p| p.id.clone()) else {
        return false;
    };
    if story.partner == Some(npc) && story.wait != StoryWait::Idle {
        return true;
    }
    match rt.beat() {
        Ok(Beat::Line { speaker, .. }) | Ok(Beat::Choice { speaker, .. }) => {
            speaker.is_none_or(|s| s == id)
        }
        Ok(Beat::Generate(r)) => r.speaker == id,
        Ok(Beat::FreeInput { speaker, .. }) => speaker == id,
        Ok(Beat::Ended { .. }) | Err(_) => false,
    }
}

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
    let mut params = lookup.settings().sampling.clone();
    if let Some(t) = persona.generation.temperature {
        params.temperature = t;
    }
    if let Some(m) = persona.generation.max_tokens {
        params.max_tokens = m as usize;
    }
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

/// Takes story steps until the story needs a line, an answer, or ends.
pub(crate) fn advance_story(
    mut commands: Commands,
    mut story: ResMut<DialogueStory>,
    mut backend: ResMut<DialogueBackendRes>,
    lookup: NpcLookup,
    mut buffers: Query<&mut SpeechBuffer>,
) {
    let story = &mut *story;
    if story.wait != StoryWait::Advance {
        return;
    }
    let Some(partner) = story.partner else {
        story.wait = StoryWait::Idle;
        return;
    };
    let Some(rt) = story.runtime.as_mut() else {
        return;
    };
    let target =
        |speaker: Option<&str>| speaker.and_then(|s| lookup.entity_of(s)).unwrap_or(partner);
    for _ in 0..lookup.settings().scheduling.max_steps_per_frame {
        // Every node entered, Branch nodes included; after a load, the node it resumes at.
        let mut entered = rt.take_entered();
        let node = rt.state().node.clone();
        if entered.is_empty() && story.last_node.as_deref() != Some(node.as_str()) {
            entered.push(node);
        }
        for node in entered {
            let speaker = rt
                .bundle()
                .story
                .node(&node)
                .and_then(|n| n.speaker())
                .map(str::to_owned);
            commands.trigger(StoryNodeEntered {
                entity: target(speaker.as_deref()),
                speaker,
                partner,
                node: node.clone(),
            });
            story.last_node = Some(node);
        }
        // Story lines sample as the plugin's settings say (changeable at run time).
        if rt.sampling() != &lookup.settings().sampling {
            rt.set_sampling(lookup.settings().sampling.clone());
        }
        let beat = match rt.beat() {
            Ok(b) => b,
            Err(e) => {
                commands.trigger(DialogueError {
                    entity: partner,
                    message: e.to_string(),
                    fallback_used: false,
                });
                story.wait = StoryWait::Idle;
                return;
            }
        };
        match beat {
            Beat::Line { speaker, text, .. } => {
                let npc = target(speaker.as_deref());
                speech::authored(&mut commands, &mut buffers, npc, speaker, &text);
                if let Err(e) = rt.advance() {
                    commands.trigger(DialogueError {
                        entity: npc,
                        message: e.to_string(),
                        fallback_used: false,
                    });
                    story.wait = StoryWait::Idle;
                    return;
                }
            }
            Beat::Generate(req) => {
                let npc = target(Some(&req.speaker));
                let id = backend.next_id();
                let mut params = req.params.clone();
                params.seed = params.seed.or(lookup.settings().sampling.seed);
                story.last_prompt = Some(req.prompt.prompt.clone());
                let request = BackendRequest::Generate(GenerateRequest {
                    id,
                    conversation: conversation(npc),
                    prompt: req.prompt.prompt.clone(),
                    params,
                    priority: lookup.priority(npc, Some(partner)),
                    fallback: Some(req.fallback.clone()),
                });
                let generated = backend.has_model();
                let purpose = Purpose::StoryLine {
                    fallback: req.fallback.clone(),
                };
                match backend.submit(request, npc, purpose) {
                    Ok(id) => {
                        backend.mark_line(id, Some(req.speaker.clone()));
                        speech::queue(
                            &mut commands,
                            &mut buffers,
                            npc,
                            Some(req.speaker.clone()),
                            generated,
                        );
                        story.wait = StoryWait::Line(id);
                        return;
                    }
                    Err(e) => {
                        speech::authored(
                            &mut commands,
                            &mut buffers,
                            npc,
                            Some(req.speaker.clone()),
                            &req.fallback,
                        );
                        commands.trigger(DialogueError {
                            entity: npc,
                            message: e.to_string(),
                            fallback_used: true,
                        });
                        if rt.finish_line(&req.fallback).is_err() {
                            story.wait = StoryWait::Idle;
                            return;
                        }
                    }
                }
            }
            Beat::Choice {
                speaker,
                text,
                options,
                ..
            } => {
                let npc = target(speaker.as_deref());
                story.presented = options.iter().map(|o| o.index).collect();
                commands.trigger(ChoicesPresented {
                    entity: npc,
                    speaker,
                    partner,
                    text,
                    options: options.into_iter().map(|o| o.text).collect(),
                });
                story.partner = Some(npc);
                story.wait = StoryWait::Choice;
                return;
            }
            Beat::FreeInput { speaker, text, .. } => {
                let npc = target(Some(&speaker));
                commands.trigger(InputRequested {
                    entity: npc,
                    speaker: Some(speaker),
                    partner,
                    prompt: text,
                });
                story.partner = Some(npc);
                story.wait = StoryWait::Input;
                return;
            }
            Beat::Ended { title, text, .. } => {
                commands.trigger(StoryEnded {
                    entity: partner,
                    partner,
                    title,
                    text,
                });
                story.wait = StoryWait::Ended;
                return;
            }
        }
    }
}
