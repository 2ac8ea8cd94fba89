//! Game messages in (`TalkTo`, `PlayerSaid`, `ChoicePicked`, `CancelDialogue`) and free chat
//! with NPCs outside the story. Messages for an NPC whose persona is still loading wait for it.
//! Never blocks.

use std::sync::Arc;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::backend::{DialogueBackendHandle, LineMarkup, Purpose, Speaking, hold};
use super::components::{FreeChatMemory, SpeechBuffer};
use super::drive::{conversation, story_involves};
use super::events::DialogueError;
use super::lookup::{NotReady, NpcLookup};
use super::messages::{CancelDialogue, ChoicePicked, PlayerSaid, TalkTo};
use super::safety::{DialogueFlagged, PlayerInputLimited};
use super::speech;
use super::story::{DialogueStory, StoryWait, player_partner};
use crate::engine::backend::{BackendRequest, ChooseRequest, GenerateRequest, Prompt};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::sampler::SamplingParams;
use crate::story::safety::{AuditKind, AuditRecord, Flag, ModerationContext};
use crate::story::{OPENING_TURN, Persona, sanitize_player_text};

/// The parts of the world that answering the player uses: commands for events, the backend,
/// the NPCs' personas, their speech, free-chat memories and requests.
#[derive(SystemParam)]
pub(crate) struct Answering<'w, 's> {
    commands: Commands<'w, 's>,
    backend: ResMut<'w, DialogueBackendHandle>,
    lookup: NpcLookup<'w, 's>,
    buffers: Query<'w, 's, &'static mut SpeechBuffer>,
    memories: Query<'w, 's, &'static mut FreeChatMemory>,
    speaking: Query<'w, 's, &'static mut Speaking>,
}

/// Free chat with an NPC outside the story: a greeting (`said: None`) or an answer.
fn free_line(a: &mut Answering, npc: Entity, said: Option<String>, partner: Option<Entity>) {
    let Answering {
        commands,
        backend,
        lookup,
        buffers,
        memories,
        speaking,
    } = a;
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
    let mut params = sampling_for(lookup, persona);
    // The persona's emotions and free-chat actions: described once in the (cached) system
    // text, and the answer held to their format.
    let format = persona.line_format(&persona.chat_actions);
    let mut system = persona.system_text();
    if let Some(f) = &format {
        system = format!("{system}\n{}", f.instructions());
        params.max_tokens += crate::story::MARKUP_TOKENS;
    }
    let id = backend.next_id();
    let prompt = Prompt { system, turns };
    let guard = lookup
        .safety()
        .guard(Some(&persona.id), None, &prompt, said.as_deref());
    let request = BackendRequest::Generate(GenerateRequest {
        id,
        conversation: conversation(npc),
        prompt,
        params,
        priority: lookup.priority(npc, partner),
        fallback: Some(fallback.clone()),
        constraint: format.as_ref().map(|f| Arc::new(f.constraint())),
        banned: guard.banned(),
    });
    let generated = backend.has_model();
    let speaker = Some(persona.id.clone());
    let markup = format.as_ref().map(LineMarkup::new);
    let purpose = Purpose::FreeLine {
        said,
        fallback: fallback.clone(),
        format,
    };
    match backend.submit(request, npc, purpose, Some(speaker.clone())) {
        Ok(mut request) => {
            request.markup = markup;
            request.guard = Some(guard);
            hold(speaking, npc, request);
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

/// What the player said to `npc`, against the input limit and the moderators: the text to use,
/// or `None` when it was refused (too long) or flagged, in which case the NPC answered with the
/// deflection line and nothing reached a prompt or the story.
fn screen(
    lookup: &NpcLookup,
    commands: &mut Commands,
    buffers: &mut Query<&mut SpeechBuffer>,
    npc: Entity,
    text: &str,
    story: Option<&str>,
    model: &str,
) -> Option<String> {
    let safety = lookup.safety();
    let persona = lookup.persona(npc).map(|p| p.id.clone());
    let record = |flags: Vec<Flag>, reply: Option<&str>| {
        let mut r = AuditRecord::now(AuditKind::Input, format!("{npc}"), model);
        r.persona = persona.clone();
        r.story = story.map(str::to_owned);
        r.player_text = Some(text.chars().take(2000).collect());
        r.output = reply.map(str::to_owned);
        r.flags = flags;
        r
    };
    let limit = &safety.rules().file.input;
    let text = match limit.apply(text) {
        Ok(l) => {
            if l.cut > 0 {
                commands.trigger(PlayerInputLimited {
                    entity: npc,
                    chars: l.text.chars().count() + l.cut,
                    max_chars: limit.max_chars,
                    refused: false,
                });
            }
            l.text
        }
        Err(refused) => {
            warn!("PlayerSaid to {npc}: {refused}; refused");
            commands.trigger(PlayerInputLimited {
                entity: npc,
                chars: refused.chars,
                max_chars: refused.max,
                refused: true,
            });
            safety.audit(|| record(Vec::new(), None));
            return None;
        }
    };
    let ctx = ModerationContext {
        persona: persona.as_deref(),
        story,
    };
    let Some(flag) = safety.check_input(&text, &ctx) else {
        return Some(text);
    };
    let deflection = safety.rules().deflection(&flag).to_owned();
    speech::authored(commands, buffers, npc, persona.clone(), &deflection);
    safety.audit(|| record(vec![flag.clone()], Some(&deflection)));
    commands.trigger(DialogueFlagged {
        entity: npc,
        flag,
        replaced_with: deflection,
    });
    None
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

/// The story a `TalkTo` for `npc` resumes: the first whose current beat involves it.
/// Autoplaying stories run by themselves and are never resumed by the player.
fn story_of<'a>(
    stories: &'a mut Query<(Entity, &mut DialogueStory)>,
    lookup: &NpcLookup,
    npc: Entity,
) -> Option<(Entity, Mut<'a, DialogueStory>)> {
    stories.iter_mut().find_map(|(e, mut s)| {
        (s.autoplay.is_none() && story_involves(&mut s, lookup, npc)).then_some((e, s))
    })
}

/// The story whose pending `wait` (a choice or a prompt) is on `npc`.
fn waiting_on<'a>(
    stories: &'a mut Query<(Entity, &mut DialogueStory)>,
    npc: Entity,
    wait: StoryWait,
) -> Option<(Entity, Mut<'a, DialogueStory>)> {
    stories
        .iter_mut()
        .find(|(_, s)| s.wait() == wait && s.partner == Some(npc))
}

/// Reads the game's messages.
pub(crate) fn handle_messages(
    mut a: Answering,
    mut stories: Query<(Entity, &mut DialogueStory)>,
    mut deferred: ResMut<DeferredMessages>,
    mut talk: MessageReader<TalkTo>,
    mut picked: MessageReader<ChoicePicked>,
    mut said: MessageReader<PlayerSaid>,
    mut cancel: MessageReader<CancelDialogue>,
) {
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
        if !ready_or_defer(
            &a.lookup,
            &mut a.commands,
            &mut deferred,
            Deferred::Talk(npc),
        ) {
            continue;
        }
        if let Some((_, mut story)) = story_of(&mut stories, &a.lookup, npc) {
            story.partner = Some(npc);
            if let Some(c) = story.conversation.as_mut() {
                c.resume();
            }
        } else {
            let partner = player_partner(stories.iter().map(|(_, s)| s));
            free_line(&mut a, npc, None, partner);
        }
    }
    for p in picked.read() {
        let Some((_, mut story)) = waiting_on(&mut stories, p.npc, StoryWait::Choice) else {
            let elsewhere = stories
                .iter()
                .find(|(_, s)| s.wait() == StoryWait::Choice)
                .and_then(|(_, s)| s.partner);
            let message = match elsewhere {
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
            a.commands.trigger(DialogueError {
                entity: p.npc,
                message,
                fallback_used: false,
            });
            continue;
        };
        let Some(c) = story.conversation.as_mut() else {
            continue;
        };
        if let Err(e) = c.pick(p.index) {
            a.commands.trigger(DialogueError {
                entity: p.npc,
                message: e.to_string(),
                fallback_used: false,
            });
        }
    }
    for (npc, text) in saids {
        let message = Deferred::Said(npc, text.clone());
        if !ready_or_defer(&a.lookup, &mut a.commands, &mut deferred, message) {
            continue;
        }
        let story_id = stories
            .iter()
            .find(|(_, s)| s.wait() == StoryWait::Input && s.partner == Some(npc))
            .and_then(|(_, s)| s.conversation.as_ref())
            .map(|c| c.runtime().bundle().story.id.clone());
        let model = a.backend.label().to_owned();
        let screened = screen(
            &a.lookup,
            &mut a.commands,
            &mut a.buffers,
            npc,
            &text,
            story_id.as_deref(),
            &model,
        );
        let Some(text) = screened else {
            continue;
        };
        let partner = player_partner(stories.iter().map(|(_, s)| s));
        let Some((entity, mut story)) = waiting_on(&mut stories, npc, StoryWait::Input) else {
            let text = sanitize_player_text(&text, 64 * 3);
            free_line(&mut a, npc, Some(text), partner);
            continue;
        };
        let Some(c) = story.conversation.as_mut() else {
            continue;
        };
        let request = match c.route_request(&text) {
            Ok(r) => r,
            Err(e) => {
                a.commands.trigger(DialogueError {
                    entity: npc,
                    message: e.to_string(),
                    fallback_used: false,
                });
                continue;
            }
        };
        if a.backend.has_model() && !request.candidates.is_empty() {
            let id = a.backend.next_id();
            let choose = BackendRequest::Choose(ChooseRequest {
                id,
                prompt: request.prompt,
                candidates: request.candidates,
                priority: a.lookup.priority(npc, Some(npc)),
            });
            let purpose = Purpose::Route {
                story: entity,
                text: text.clone(),
            };
            if let Ok(request) = a.backend.submit(choose, npc, purpose, None) {
                c.route_sent(id);
                hold(&mut a.speaking, npc, request);
                continue;
            }
        }
        if let Err(e) = c.routed(&text, None) {
            a.commands.trigger(DialogueError {
                entity: npc,
                message: e.to_string(),
                fallback_used: false,
            });
        }
    }
    for c in cancel.read() {
        if let Ok(s) = a.speaking.get(c.npc) {
            s.cancel_all();
        }
    }
}
