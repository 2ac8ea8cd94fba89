//! The one `PreUpdate` system that drains the backend, under a per-frame budget: events are
//! routed to each request's reply, and every NPC reads its own ([`Speaking`]), so nothing
//! reaches an entity that is gone.

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;

use super::backend::{DialogueBackendHandle, InFlight, Purpose, Speaking};
use super::between::Exchanges;
use super::components::{FreeChatMemory, NpcEmotion, NpcStats, SpeechBuffer};
use super::diagnostics::DialogueStats;
use super::events::{DialogueError, NpcAction};
use super::safety::{DialogueFlagged, DialogueSafety};
use super::settings::DialogueSettings;
use super::speech;
use super::story::DialogueStory;
use crate::engine::backend::{BackendEvent, CandidateScore, RequestId};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::generate::FinishReason;
use crate::story::acts::{Action, ActionError, LinePart};
use crate::story::safety::{Direction, Flag};

/// Where answers go: entity events, speech buffers, stories, memories, exchanges, figures.
#[derive(SystemParam)]
pub(crate) struct Outlets<'w, 's> {
    commands: Commands<'w, 's>,
    stories: Query<'w, 's, &'static mut DialogueStory>,
    buffers: Query<'w, 's, &'static mut SpeechBuffer>,
    memories: Query<'w, 's, &'static mut FreeChatMemory>,
    npc_stats: Query<'w, 's, &'static mut NpcStats>,
    exchanges: ResMut<'w, Exchanges>,
    stats: ResMut<'w, DialogueStats>,
    safety: Res<'w, DialogueSafety>,
}

fn fallback_of(p: &Purpose) -> Option<&str> {
    match p {
        Purpose::StoryLine { fallback, .. }
        | Purpose::FreeLine { fallback, .. }
        | Purpose::Between { fallback, .. } => Some(fallback),
        _ => None,
    }
}

impl Outlets<'_, '_> {
    /// A line is over: record it where it belongs and let the story move on (along the
    /// edge of the action the line took, which is then sent as [`NpcAction`]).
    fn line_done(&mut self, r: &InFlight, text: &str) {
        match &r.purpose {
            Purpose::StoryLine { story, .. } => {
                let Ok(mut story) = self.stories.get_mut(*story) else {
                    return;
                };
                let Some(c) = story.conversation.as_mut() else {
                    return;
                };
                match c.line_done(Some(r.id()), text) {
                    Ok(Some(line)) => self.acted(r.npc, line.emotion, line.action, line.refused),
                    Ok(None) => {}
                    Err(e) => self.commands.trigger(DialogueError {
                        entity: r.npc,
                        message: e.to_string(),
                        fallback_used: false,
                    }),
                }
            }
            Purpose::FreeLine { said, format, .. } => {
                let read = format.as_ref().map(|f| f.read(text));
                let text = read.as_ref().map_or(text, |l| l.words.as_str());
                if let Ok(mut m) = self.memories.get_mut(r.npc) {
                    if let Some(s) = said {
                        m.push(ChatMessage::new(Role::User, s.clone()));
                    }
                    m.push(ChatMessage::new(Role::Assistant, text));
                }
                if let Some(read) = read {
                    self.acted(r.npc, read.emotion, read.action, read.refused);
                }
            }
            Purpose::Between { key, .. } => {
                self.exchanges.line_done(&mut self.commands, *key, text)
            }
            Purpose::Route { .. } | Purpose::Warm => {}
        }
    }

    /// What a finished line showed and did: its emotion stays on the NPC, its action is sent,
    /// a refused call is an error (and no action).
    fn acted(
        &mut self,
        npc: Entity,
        emotion: Option<String>,
        action: Option<Action>,
        refused: Option<ActionError>,
    ) {
        if let Some(e) = emotion {
            self.commands.entity(npc).try_insert(NpcEmotion(e));
        }
        if let Some(action) = action {
            self.commands.trigger(NpcAction {
                entity: npc,
                action,
            });
        }
        if let Some(refused) = refused {
            self.commands.trigger(DialogueError {
                entity: npc,
                message: refused.to_string(),
                fallback_used: false,
            });
        }
    }

    /// The player's free text of request `id` is routed (by `scores`, or keywords when none).
    fn route_done(
        &mut self,
        story: Entity,
        id: RequestId,
        text: &str,
        scores: Option<&[CandidateScore]>,
    ) {
        if let Ok(mut story) = self.stories.get_mut(story)
            && let Some(c) = story.conversation.as_mut()
            && c.routing(id)
        {
            // An error leaves the story waiting for text (the player types again).
            let _ = c.routed(text, scores);
        }
    }

    /// Speaks the fallback of a request that failed, or routes by keywords.
    fn failed(&mut self, r: &InFlight, message: String) {
        let npc = r.npc;
        if let Some(fallback) = fallback_of(&r.purpose) {
            if let Some(line) = r.line.as_ref().filter(|l| !l.started) {
                speech::begin(&mut self.commands, npc, line.speaker.clone(), false);
            }
            speech::chunk(&mut self.commands, &mut self.buffers, npc, fallback);
            speech::finish(
                &mut self.commands,
                &mut self.buffers,
                npc,
                fallback,
                false,
                false,
                None,
            );
            self.line_done(r, fallback);
        }
        if let Purpose::Route { story, text } = &r.purpose {
            self.route_done(*story, r.id(), text, None);
        }
        self.commands.trigger(DialogueError {
            entity: npc,
            message,
            fallback_used: fallback_of(&r.purpose).is_some(),
        });
    }

    /// A line broke a safety rule before the player saw it: the request is cancelled and the
    /// line replaced (by the rule's replacement, else the line's fallback), and the story goes
    /// on as it would after the fallback.
    fn blocked(&mut self, r: InFlight, flag: Flag, generated: bool, model: &str) {
        r.reply.cancel();
        let fallback = fallback_of(&r.purpose).unwrap_or("…");
        let replacement = match &r.guard {
            Some(g) => g.replacement(&flag, fallback).to_owned(),
            None => fallback.to_owned(),
        };
        if let Some(line) = r.line.as_ref().filter(|l| !l.started) {
            speech::begin(&mut self.commands, r.npc, line.speaker.clone(), generated);
        }
        speech::finish(
            &mut self.commands,
            &mut self.buffers,
            r.npc,
            &replacement,
            generated,
            false,
            None,
        );
        self.line_done(&r, &replacement);
        if let Some(g) = &r.guard {
            self.safety
                .audit(|| g.record(r.npc, model, &replacement, vec![flag.clone()]));
        }
        warn!(
            "{}: a generated line broke safety rule `{}` ({:?}); replaced",
            r.npc, flag.rule, flag.matched
        );
        self.commands.trigger(DialogueFlagged {
            entity: r.npc,
            flag,
            replaced_with: replacement,
        });
    }

    /// A piece of a line streamed in. Under a line format only its words are spoken; its
    /// emotion is set on the NPC as soon as it is closed. Under safety rules, only what cannot
    /// start a banned phrase is shown; a broken rule ends the line (`Err`).
    fn text(&mut self, r: &mut InFlight, text: String, generated: bool) -> Result<(), Flag> {
        let text = match r.markup.as_mut() {
            Some(markup) => {
                let mut words = String::new();
                for part in markup.splitter.push(&text) {
                    match part {
                        LinePart::Words(w) => words.push_str(&w),
                        LinePart::Emotion(e) if markup.emotions.contains(&e) => {
                            self.commands.entity(r.npc).try_insert(NpcEmotion(e));
                        }
                        LinePart::Emotion(_) => {}
                        // Read, validated and routed with the whole line at its end.
                        LinePart::Call(_) => {}
                    }
                }
                words
            }
            None => text,
        };
        // The first chunk's leading space is SentencePiece's word mark, not speech.
        let first = r.text.is_empty() && !r.guard.as_ref().is_some_and(|g| g.started());
        let text = if first {
            text.trim_start().to_owned()
        } else {
            text
        };
        let text = match r.guard.as_mut() {
            Some(g) => g.push(&r.text, &text)?,
            None => text,
        };
        self.show(r, &text, generated);
        Ok(())
    }

    /// Shows words of a line (its first words start it).
    fn show(&mut self, r: &mut InFlight, text: &str, generated: bool) {
        r.text.push_str(text);
        if !text.is_empty()
            && let Some(line) = r.line.as_mut().filter(|l| !l.started)
        {
            line.started = true;
            let speaker = line.speaker.clone();
            speech::begin(&mut self.commands, r.npc, speaker, generated);
        }
        speech::chunk(&mut self.commands, &mut self.buffers, r.npc, text);
    }

    /// The last event of request `r`.
    fn last(&mut self, mut r: InFlight, event: BackendEvent, generated: bool, model: &str) {
        match event {
            BackendEvent::Finished {
                text,
                reason,
                stats: s,
                ..
            } => {
                if reason != FinishReason::Cancelled {
                    let shown = r.text.clone();
                    let rest = r.guard.as_mut().map(|g| g.finish(&shown));
                    match rest {
                        Some(Err(flag)) => return self.blocked(r, flag, generated, model),
                        Some(Ok(rest)) if !rest.is_empty() => self.show(&mut r, &rest, generated),
                        _ => {}
                    }
                }
                if reason == FinishReason::Blocked {
                    let flag = Flag {
                        rule: "banned_phrase".into(),
                        direction: Direction::Output,
                        matched: String::new(),
                        by: "decoder".into(),
                    };
                    return self.blocked(r, flag, generated, model);
                }
                // Under a line format, what was shown is the words; the story reads the rest.
                let raw = text.trim().to_owned();
                let text = match &r.markup {
                    Some(_) => r.text.trim().to_owned(),
                    None => raw.clone(),
                };
                let cancelled = reason == FinishReason::Cancelled;
                if generated {
                    self.stats.record(&s);
                    if let Ok(mut n) = self.npc_stats.get_mut(r.npc) {
                        n.record(&s);
                    }
                }
                if !cancelled && text.is_empty() {
                    self.failed(&r, "the model wrote nothing".into());
                    return;
                }
                if !cancelled && let Some(line) = r.line.as_ref().filter(|l| !l.started) {
                    speech::begin(&mut self.commands, r.npc, line.speaker.clone(), generated);
                }
                speech::finish(
                    &mut self.commands,
                    &mut self.buffers,
                    r.npc,
                    &text,
                    generated,
                    cancelled,
                    generated.then_some(s),
                );
                if !cancelled {
                    if let Some(g) = &r.guard {
                        self.safety
                            .audit(|| g.record(r.npc, model, &text, Vec::new()));
                    }
                    self.line_done(&r, &raw);
                    return;
                }
                match r.purpose {
                    Purpose::StoryLine { story, .. } => {
                        if let Ok(mut story) = self.stories.get_mut(story)
                            && let Some(c) = story.conversation.as_mut()
                        {
                            c.cancelled(r.id()); // the line is asked again next time
                        }
                    }
                    Purpose::Between { key, .. } => self.exchanges.stop(&mut self.commands, key),
                    _ => {}
                }
            }
            BackendEvent::Scores { scores, .. } => {
                if let Purpose::Route { story, text } = &r.purpose {
                    self.route_done(*story, r.id(), text, Some(&scores));
                }
            }
            BackendEvent::Warmed { already_cached, .. } => {
                self.stats.warmed += 1;
                if already_cached {
                    self.stats.warm_hits += 1;
                }
            }
            BackendEvent::Error { error, .. } => self.failed(&r, error.to_string()),
            BackendEvent::Started { .. } | BackendEvent::Text { .. } => {}
        }
    }
}

/// Drains ready backend events (at most `max_events_per_frame`) into entity events, speech
/// buffers and the stories. Also notices a model that failed and switches to authored lines.
pub(crate) fn receive(
    mut backend: ResMut<DialogueBackendHandle>,
    settings: Res<DialogueSettings>,
    mut speaking: Query<&mut Speaking>,
    mut out: Outlets,
) {
    if let Some(reason) = backend.check_failed() {
        warn!(
            "the dialogue model is unavailable ({reason}); NPCs speak their authored fallback lines"
        );
        for mut held in &mut speaking {
            for r in std::mem::take(&mut held.requests) {
                out.failed(&r, reason.clone());
            }
        }
    }
    let budget = settings.scheduling.max_events_per_frame.max(1);
    backend.replies().pump(budget);
    let generated = backend.has_model();
    let model = backend.label().to_owned();
    for mut held in &mut speaking {
        if held.requests.is_empty() {
            continue;
        }
        let mut i = 0;
        while i < held.requests.len() {
            let mut last = None;
            let mut blocked = None;
            while let Some(event) = held.requests[i].reply.try_next() {
                if event.is_final() {
                    last = Some(event);
                    break;
                }
                if let BackendEvent::Text { text, .. } = event
                    && let Err(flag) = out.text(&mut held.requests[i], text, generated)
                {
                    blocked = Some(flag);
                    break;
                }
            }
            if let Some(flag) = blocked {
                let r = held.requests.remove(i);
                out.blocked(r, flag, generated, &model);
                continue;
            }
            match last {
                Some(event) => {
                    let r = held.requests.remove(i);
                    out.last(r, event, generated, &model);
                }
                // A reply the backend was replaced under: nothing more comes.
                None if held.requests[i].reply.is_done() => {
                    held.requests.remove(i);
                }
                None => i += 1,
            }
        }
    }
    out.stats.queue = backend.in_flight();
}
