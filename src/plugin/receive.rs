//! The one `PreUpdate` system that drains the backend, under a per-frame budget.

use bevy::prelude::*;

use super::backend::{DialogueBackendRes, Pending, Purpose};
use super::between::Exchanges;
use super::components::{NpcMemory, NpcStats, SpeechBuffer};
use super::diagnostics::DialogueStats;
use super::events::DialogueError;
use super::settings::DialogueSettings;
use super::speech;
use super::story::{DialogueStory, StoryWait};
use crate::engine::backend::{BackendEvent, CandidateScore, RequestId};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::generate::FinishReason;

/// A line is over: record it where it belongs and let the story move on.
fn line_done(
    commands: &mut Commands,
    story: &mut DialogueStory,
    memories: &mut Query<&mut NpcMemory>,
    exchanges: &mut Exchanges,
    id: RequestId,
    pending: &Pending,
    text: &str,
) {
    match &pending.purpose {
        Purpose::StoryLine { .. } => {
            if story.wait == StoryWait::Line(id)
                && let Some(rt) = story.runtime.as_mut()
            {
                story.wait = match rt.finish_line(text) {
                    Ok(()) => StoryWait::Advance,
                    Err(_) => StoryWait::Idle,
                };
            }
        }
        Purpose::FreeLine { said, .. } => {
            if let Ok(mut m) = memories.get_mut(pending.npc) {
                if let Some(s) = said {
                    m.turns.push(ChatMessage::new(Role::User, s.clone()));
                }
                m.turns.push(ChatMessage::new(Role::Assistant, text));
                let extra = m.turns.len().saturating_sub(crate::story::MEMORY_TURNS);
                m.turns.drain(..extra);
            }
        }
        Purpose::Between { key, .. } => exchanges.line_done(commands, *key, text),
        Purpose::Route { .. } | Purpose::Warm => {}
    }
}

/// The player's free text of request `id` is routed (by `scores`, or keywords when none).
fn route_done(
    story: &mut DialogueStory,
    id: RequestId,
    text: &str,
    scores: Option<&[CandidateScore]>,
) {
    if story.wait == StoryWait::Route(id)
        && let Some(rt) = story.runtime.as_mut()
    {
        story.wait = match rt.say(text, scores) {
            Ok(_) => StoryWait::Advance,
            Err(_) => StoryWait::Input,
        };
    }
}

fn fallback_of(p: &Purpose) -> Option<&str> {
    match p {
        Purpose::StoryLine { fallback }
        | Purpose::FreeLine { fallback, .. }
        | Purpose::Between { fallback, .. } => Some(fallback),
        _ => None,
    }
}

/// Speaks the fallback of a request that failed, or routes by keywords.
#[allow(clippy::too_many_arguments)] // the pieces of one system, passed down
fn failed(
    commands: &mut Commands,
    story: &mut DialogueStory,
    buffers: &mut Query<&mut SpeechBuffer>,
    memories: &mut Query<&mut NpcMemory>,
    exchanges: &mut Exchanges,
    id: RequestId,
    pending: &Pending,
    message: String,
) {
    if let Some(fallback) = fallback_of(&pending.purpose) {
        if let Some(line) = pending.line.as_ref().filter(|l| !l.started) {
            speech::begin(commands, pending.npc, line.speaker.clone(), false);
        }
        speech::chunk(commands, buffers, pending.npc, fallback);
        speech::finish(commands, buffers, pending.npc, fallback, false, false, None);
        line_done(commands, story, memories, exchanges, id, pending, fallback);
    }
    if let Purpose::Route { text } = &pending.purpose {
        route_done(story, id, text, None);
    }
    commands.trigger(DialogueError {
        entity: pending.npc,
        message,
        fallback_used: fallback_of(&pending.purpose).is_some(),
    });
}

/// Drains ready backend events (at most `max_events_per_frame`) into entity events, speech
/// buffers and the story. Also notices a model that failed and switches to authored lines.
#[allow(clippy::too_many_arguments)]
pub(crate) fn receive(
    mut commands: Commands,
    mut backend: ResMut<DialogueBackendRes>,
    mut story: ResMut<DialogueStory>,
    settings: Res<DialogueSettings>,
    mut stats: ResMut<DialogueStats>,
    mut buffers: Query<&mut SpeechBuffer>,
    mut memories: Query<&mut NpcMemory>,
    mut npc_stats: Query<&mut NpcStats>,
    mut exchanges: ResMut<Exchanges>,
    mut events: Local<Vec<BackendEvent>>,
) {
    let story = &mut *story;
    let exchanges = &mut *exchanges;
    if let Some((reason, lost)) = backend.check_failed() {
        warn!(
            "the dialogue model is unavailable ({reason}); NPCs speak their authored fallback lines"
        );
        for (id, pending) in lost {
            failed(
                &mut commands,
                story,
                &mut buffers,
                &mut memories,
                exchanges,
                id,
                &pending,
                reason.clone(),
            );
        }
    }
    events.clear();
    let budget = settings.scheduling.max_events_per_frame.max(1);
    backend.backend().poll(budget, &mut events);
    let generated_now = backend.has_model();
    for event in events.drain(..) {
        let Some(id) = event.id() else { continue };
        let Some(pending) = backend.pending.get_mut(&id) else {
            continue;
        };
        match event {
            BackendEvent::Started { .. } => {}
            BackendEvent::Text { text, .. } => {
                // The first chunk's leading space is SentencePiece's word mark, not speech.
                let text = if pending.text.is_empty() {
                    text.trim_start().to_owned()
                } else {
                    text
                };
                pending.text.push_str(&text);
                let npc = pending.npc;
                if !text.is_empty()
                    && let Some(line) = pending.line.as_mut().filter(|l| !l.started)
                {
                    line.started = true;
                    let speaker = line.speaker.clone();
                    speech::begin(&mut commands, npc, speaker, generated_now);
                }
                speech::chunk(&mut commands, &mut buffers, npc, &text);
            }
            BackendEvent::Finished {
                text,
                reason,
                stats: s,
                ..
            } => {
                let Some(pending) = backend.pending.remove(&id) else {
                    continue;
                };
                let text = text.trim().to_owned();
                let generated = backend.has_model();
                let cancelled = reason == FinishReason::Cancelled;
                if generated {
                    stats.record(&s);
                    if let Ok(mut n) = npc_stats.get_mut(pending.npc) {
                        n.record(&s);
                    }
                }
                if !cancelled && text.is_empty() {
                    failed(
                        &mut commands,
                        story,
                        &mut buffers,
                        &mut memories,
                        exchanges,
                        id,
                        &pending,
                        "the model wrote nothing".into(),
                    );
                    continue;
                }
                if !cancelled && let Some(line) = pending.line.as_ref().filter(|l| !l.started) {
                    speech::begin(&mut commands, pending.npc, line.speaker.clone(), generated);
                }
                speech::finish(
                    &mut commands,
                    &mut buffers,
                    pending.npc,
                    &text,
                    generated,
                    cancelled,
                    generated.then_some(s),
                );
                if cancelled {
                    if story.wait == StoryWait::Line(id) {
                        story.wait = StoryWait::Idle; // the line is asked again next time
                    }
                    if let Purpose::Between { key, .. } = pending.purpose {
                        exchanges.stop(&mut commands, key);
                    }
                } else {
                    line_done(
                        &mut commands,
                        story,
                        &mut memories,
                        exchanges,
                        id,
                        &pending,
                        &text,
                    );
                }
            }
            BackendEvent::Scores { scores, .. } => {
                let Some(pending) = backend.pending.remove(&id) else {
                    continue;
                };
                if let Purpose::Route { text } = &pending.purpose {
                    route_done(story, id, text, Some(&scores));
                }
            }
            BackendEvent::Warmed { already_cached, .. } => {
                backend.pending.remove(&id);
                stats.warmed += 1;
                if already_cached {
                    stats.warm_hits += 1;
                }
            }
            BackendEvent::Error { error, .. } => {
                let Some(pending) = backend.pending.remove(&id) else {
                    continue;
                };
                failed(
                    &mut commands,
                    story,
                    &mut buffers,
                    &mut memories,
                    exchanges,
                    id,
                    &pending,
                    error.to_string(),
                );
            }
        }
    }
    stats.queue = backend.in_flight();
}
