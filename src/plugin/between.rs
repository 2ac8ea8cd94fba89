//! NPC ↔ NPC conversations: two NPCs take turns in free chat between their personas, each line
//! streamed on its speaker like any other line and heard by the other ([`LineHeard`]).

use bevy::prelude::*;

use super::backend::{DialogueBackendHandle, Purpose, Speaking, hold};
use super::components::SpeechBuffer;
use super::events::DialogueError;
use super::lookup::{NotReady, NpcLookup};
use super::messages::CancelDialogue;
use super::speech;
use super::story::{DialogueStory, player_partner};
use super::talk::sampling_for;
use crate::engine::backend::{BackendRequest, ConversationId, GenerateRequest, Prompt, RequestId};
use crate::engine::chat::{ChatMessage, Role};
use crate::story::{MEMORY_TURNS, Persona, keep_last};

/// Two NPCs talk to each other: `a` opens, then they take turns, `lines` lines in all (`None`:
/// until a [`CancelDialogue`] on either, or either is despawned). Each line streams on its
/// speaker (`LineQueued` … `LineFinished`) and ends with [`LineHeard`] on the listener; the end
/// of the exchange is [`TalkBetweenEnded`]. A new `TalkBetween` with either NPC replaces the
/// exchange it is in.
#[derive(Message, Debug, Clone)]
pub struct TalkBetween {
    /// Speaks first.
    pub a: Entity,
    /// Answers.
    pub b: Entity,
    /// What they talk about (given to both personas).
    pub topic: String,
    /// Lines in all; `None`: until stopped.
    pub lines: Option<usize>,
}

/// The other NPC of a [`TalkBetween`] finished a line to this one.
#[derive(EntityEvent, Debug, Clone)]
pub struct LineHeard {
    /// The listening NPC.
    pub entity: Entity,
    /// Who spoke.
    pub speaker: Entity,
    /// The whole line.
    pub text: String,
}

/// A [`TalkBetween`] ended (its lines were said, it was cancelled or replaced, or an NPC left).
/// Sent on `a` (or on `b` when `a` is gone).
#[derive(EntityEvent, Debug, Clone)]
pub struct TalkBetweenEnded {
    /// The NPC that spoke first (or the one still there).
    pub entity: Entity,
    /// The other NPC.
    pub partner: Entity,
    /// Lines said.
    pub lines: usize,
}

/// One exchange in progress.
#[derive(Debug)]
struct Exchange {
    key: u64,
    a: Entity,
    b: Entity,
    topic: String,
    left: Option<usize>,
    /// The latest lines, oldest first: who said what.
    said: Vec<(Entity, String)>,
    spoken: usize,
    waiting: Option<RequestId>,
}

impl Exchange {
    fn next_speaker(&self) -> (Entity, Entity) {
        if self.spoken.is_multiple_of(2) {
            (self.a, self.b)
        } else {
            (self.b, self.a)
        }
    }
}

/// The NPC ↔ NPC exchanges in progress.
#[derive(Resource, Debug, Default)]
pub(crate) struct Exchanges {
    next_key: u64,
    list: Vec<Exchange>,
}

impl Exchanges {
    /// A line of exchange `key` is over (said, or its fallback): the listener hears it.
    pub(crate) fn line_done(&mut self, commands: &mut Commands, key: u64, text: &str) {
        let Some(x) = self.list.iter_mut().find(|x| x.key == key) else {
            return;
        };
        let (speaker, listener) = x.next_speaker();
        x.said.push((speaker, text.to_owned()));
        keep_last(&mut x.said, MEMORY_TURNS);
        x.spoken += 1;
        x.waiting = None;
        if let Some(left) = &mut x.left {
            *left = left.saturating_sub(1);
        }
        commands.trigger(LineHeard {
            entity: listener,
            speaker,
            text: text.to_owned(),
        });
    }

    /// Exchange `key` stops (its line was cancelled).
    pub(crate) fn stop(&mut self, commands: &mut Commands, key: u64) {
        if let Some(i) = self.list.iter().position(|x| x.key == key) {
            end(commands, self.list.remove(i), true, true);
        }
    }
}

fn end(commands: &mut Commands, x: Exchange, a_alive: bool, b_alive: bool) {
    let (entity, partner) = match (a_alive, b_alive) {
        (true, _) => (x.a, x.b),
        (false, true) => (x.b, x.a),
        (false, false) => return,
    };
    commands.trigger(TalkBetweenEnded {
        entity,
        partner,
        lines: x.spoken,
    });
}

/// Starts exchanges (`TalkBetween`) and stops them (`CancelDialogue` on either NPC).
pub(crate) fn start_and_stop(
    mut commands: Commands,
    mut exchanges: ResMut<Exchanges>,
    mut backend: ResMut<DialogueBackendHandle>,
    lookup: NpcLookup,
    mut talk: MessageReader<TalkBetween>,
    mut cancel: MessageReader<CancelDialogue>,
) {
    for c in cancel.read() {
        while let Some(i) = exchanges
            .list
            .iter()
            .position(|x| x.a == c.npc || x.b == c.npc)
        {
            let x = exchanges.list.remove(i);
            end(&mut commands, x, true, true);
        }
    }
    for t in talk.read() {
        let problem = if t.a == t.b {
            Some("TalkBetween: an NPC cannot talk to itself".to_owned())
        } else {
            [t.a, t.b]
                .into_iter()
                .find_map(|npc| match lookup.readiness(npc) {
                    Err(NotReady::Dead) => Some(format!("TalkBetween: {npc} does not exist")),
                    Err(NotReady::NotNpc) => Some(format!("TalkBetween: {npc} is not an NPC")),
                    _ => None,
                })
        };
        if let Some(message) = problem {
            warn!("{message}");
            commands.trigger(DialogueError {
                entity: t.a,
                message,
                fallback_used: false,
            });
            continue;
        }
        // Either NPC leaves the exchange it was in.
        while let Some(i) = exchanges
            .list
            .iter()
            .position(|x| [x.a, x.b].iter().any(|e| *e == t.a || *e == t.b))
        {
            let x = exchanges.list.remove(i);
            if let Some(id) = x.waiting {
                backend.backend().cancel(id);
            }
            end(&mut commands, x, true, true);
        }
        exchanges.next_key += 1;
        let key = exchanges.next_key;
        exchanges.list.push(Exchange {
            key,
            a: t.a,
            b: t.b,
            topic: t.topic.clone(),
            left: t.lines,
            said: Vec::new(),
            spoken: 0,
            waiting: None,
        });
    }
}

/// Asks the next line of every exchange whose last line is over; ends those that are done or
/// lost an NPC.
pub(crate) fn advance(
    mut commands: Commands,
    mut exchanges: ResMut<Exchanges>,
    mut backend: ResMut<DialogueBackendHandle>,
    stories: Query<&DialogueStory>,
    lookup: NpcLookup,
    mut buffers: Query<&mut SpeechBuffer>,
    mut speaking: Query<&mut Speaking>,
) {
    let mut i = 0;
    while i < exchanges.list.len() {
        let x = &mut exchanges.list[i];
        let alive = |e: Entity| !matches!(lookup.readiness(e), Err(NotReady::Dead));
        let (a_alive, b_alive) = (alive(x.a), alive(x.b));
        // A request that vanished: its NPC was despawned.
        let lost = x.waiting.is_some_and(|id| {
            ![x.a, x.b]
                .iter()
                .any(|e| speaking.get(*e).is_ok_and(|s| s.has(id)))
        });
        if !a_alive || !b_alive || lost || x.left == Some(0) {
            let x = exchanges.list.remove(i);
            end(&mut commands, x, a_alive, b_alive);
            continue;
        }
        i += 1;
        if x.waiting.is_some() {
            continue;
        }
        let (speaker, listener) = x.next_speaker();
        let (Ok(persona), Ok(other)) = (lookup.readiness(speaker), lookup.readiness(listener))
        else {
            continue; // a persona still loading (or failed: its fallback line is spoken)
        };
        let fallback = persona
            .sample_lines
            .first()
            .map_or_else(|| "…".to_owned(), |s| s.npc.clone());
        let request_id = backend.next_id();
        let prompt = prompt(x, speaker, persona, other);
        let guard = lookup
            .safety()
            .guard(Some(&persona.id), None, &prompt, None);
        let request = BackendRequest::Generate(GenerateRequest {
            id: request_id,
            conversation: ConversationId(x.key << 1 | u64::from(speaker == x.b) | 1 << 63),
            prompt,
            params: sampling_for(&lookup, persona),
            priority: lookup.priority(speaker, player_partner(stories)),
            fallback: Some(fallback.clone()),
            constraint: None,
            banned: guard.banned(),
        });
        let generated = backend.has_model();
        let name = Some(persona.id.clone());
        let purpose = Purpose::Between {
            key: x.key,
            fallback: fallback.clone(),
        };
        match backend.submit(request, speaker, purpose, Some(name.clone())) {
            Ok(mut request) => {
                request.guard = Some(guard);
                x.waiting = Some(request.id());
                hold(&mut speaking, speaker, request);
                speech::queue(&mut commands, &mut buffers, speaker, name, generated);
            }
            Err(e) => {
                let key = x.key;
                speech::authored(&mut commands, &mut buffers, speaker, name, &fallback);
                commands.trigger(DialogueError {
                    entity: speaker,
                    message: e.to_string(),
                    fallback_used: true,
                });
                exchanges.line_done(&mut commands, key, &fallback);
            }
        }
    }
}

/// The speaker's prompt: its persona told whom it talks with and about what, its own lines as
/// the assistant's and the other's as the user's.
fn prompt(x: &Exchange, speaker: Entity, persona: &Persona, other: &Persona) -> Prompt {
    let system = format!(
        "{}\n\nYou are talking with {} ({}) about: {}. Answer them in one or two sentences.",
        persona.system_text(),
        other.name,
        other.role,
        x.topic
    );
    let mut turns: Vec<ChatMessage> = x
        .said
        .iter()
        .map(|(who, text)| {
            let role = if *who == speaker {
                Role::Assistant
            } else {
                Role::User
            };
            ChatMessage::new(role, text.clone())
        })
        .collect();
    if turns.first().is_none_or(|t| t.role == Role::Assistant) {
        turns.insert(
            0,
            ChatMessage::new(Role::User, format!("({} comes over to talk.)", other.name)),
        );
    }
    Prompt { system, turns }
}
