//! The backend as a resource, each NPC's requests as its [`Speaking`] component, and the switch
//! to authored lines when the model cannot run.

use std::sync::Mutex;

use bevy::prelude::*;

use crate::engine::backend::{
    BackendKind, BackendRequest, BackendStatus, DialogueBackend, Replies, Reply, RequestId,
    Scripted, SubmitError,
};
use crate::story::acts::{LineFormat, MarkupSplitter};

/// What an in-flight request is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Purpose {
    /// A generated line of a story.
    StoryLine {
        /// The story's entity.
        story: Entity,
        /// Spoken if the model fails.
        fallback: String,
    },
    /// A free-chat line of an NPC outside the story.
    FreeLine {
        /// What the player said (recorded with the answer).
        said: Option<String>,
        /// Spoken if the model fails.
        fallback: String,
        /// The persona's emotions and `chat_actions`, if it has any.
        format: Option<LineFormat>,
    },
    /// A line of an NPC ↔ NPC exchange.
    Between {
        /// The exchange.
        key: u64,
        /// Spoken if the model fails.
        fallback: String,
    },
    /// Scoring the player's free text against a story's edges.
    Route {
        /// The story's entity.
        story: Entity,
        /// What the player typed.
        text: String,
    },
    /// Prefilling a persona.
    Warm,
}

/// One request an NPC waits on, with its own reply (dropping it cancels the request).
#[derive(Debug)]
pub(crate) struct InFlight {
    pub reply: Reply,
    pub npc: Entity,
    pub purpose: Purpose,
    /// The text streamed so far.
    pub text: String,
    /// For a line: who speaks, and whether `LineStarted` was sent (at its first words).
    pub line: Option<LineInfo>,
    /// For a line held to a format (emotion, words, action): splits the stream so that only
    /// the words are shown.
    pub markup: Option<LineMarkup>,
    /// For a generated line: its safety (banned phrases held back, moderators, audit).
    pub guard: Option<super::safety::LineGuard>,
}

/// The streaming side of a line format: the splitter that keeps markup out of the shown words,
/// and the emotions the format allows (a server that does not hold the line to the format may
/// write any word in brackets; only a declared emotion is set on the NPC).
#[derive(Debug)]
pub struct LineMarkup {
    /// Splits the stream into words, emotion and call.
    pub splitter: MarkupSplitter,
    /// The declared emotions.
    pub emotions: Vec<String>,
}

impl LineMarkup {
    /// For a line held to `format`.
    pub fn new(format: &LineFormat) -> Self {
        Self {
            splitter: MarkupSplitter::new(),
            emotions: format.emotions.clone(),
        }
    }
}

impl InFlight {
    /// The request's id.
    pub fn id(&self) -> RequestId {
        self.reply.id()
    }
}

/// The line a request speaks.
#[derive(Debug, Clone)]
pub(crate) struct LineInfo {
    pub speaker: Option<String>,
    pub started: bool,
}

/// The requests an NPC waits on (its lines, the routing of what the player said to it, the
/// warm-up of its persona), each holding its own reply from the backend. They live and die
/// with the NPC: despawning it drops them, which cancels them, so nothing is ever delivered to
/// an entity that is gone. Every `Npc` has one.
#[derive(Component, Debug, Default)]
pub struct Speaking {
    pub(crate) requests: Vec<InFlight>,
}

impl Speaking {
    /// Whether a line of this NPC is queued or streaming.
    pub fn is_speaking(&self) -> bool {
        self.requests.iter().any(|r| r.line.is_some())
    }

    /// Requests in flight for this NPC (lines, routing, warm-up).
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Whether request `id` is one of this NPC's.
    pub fn has(&self, id: RequestId) -> bool {
        self.requests.iter().any(|r| r.id() == id)
    }

    /// Cancels every request of this NPC (lines end with `LineFinished { cancelled: true }`).
    pub(crate) fn cancel_all(&self) {
        for r in &self.requests {
            r.reply.cancel();
        }
    }
}

/// The dialogue backend the plugin talks to.
///
/// Held in a `Mutex` only so the resource is `Sync`; systems reach it through `ResMut` and
/// `Mutex::get_mut`, which never locks.
#[derive(Resource)]
pub struct DialogueBackendHandle {
    inner: Mutex<Replies>,
    kind: BackendKind,
    label: String,
    /// Why the plugin fell back to authored lines, if it did.
    fallback_reason: Option<String>,
}

impl DialogueBackendHandle {
    /// Wraps a backend.
    pub fn new(backend: Box<dyn DialogueBackend>) -> Self {
        Self {
            kind: backend.kind(),
            label: backend.label(),
            inner: Mutex::new(Replies::new(backend)),
            fallback_reason: None,
        }
    }

    /// What kind of backend speaks (`Scripted` after a fallback).
    pub fn kind(&self) -> BackendKind {
        self.kind
    }

    /// Its label (`local: model.gguf`, `scripted (no model)`).
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Why lines are authored fallbacks instead of a model's, if the model failed.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Requests in flight (queued or running, until their last event has been received).
    pub fn in_flight(&self) -> usize {
        match self.inner.lock() {
            Ok(r) => r.in_flight(),
            Err(poisoned) => poisoned.into_inner().in_flight(),
        }
    }

    pub(crate) fn replies(&mut self) -> &mut Replies {
        match self.inner.get_mut() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub(crate) fn backend(&mut self) -> &mut dyn DialogueBackend {
        self.replies().backend()
    }

    pub(crate) fn next_id(&mut self) -> RequestId {
        self.replies().next_id()
    }

    /// Whether lines come from a model.
    pub fn has_model(&self) -> bool {
        self.kind != BackendKind::Scripted
    }

    /// Submits a request for `npc`; the caller puts what comes back in the NPC's
    /// [`Speaking`]. `speaker`: the request speaks a line of this cast member (its
    /// `LineStarted` is still due).
    pub(crate) fn submit(
        &mut self,
        request: BackendRequest,
        npc: Entity,
        purpose: Purpose,
        line: Option<Option<String>>,
    ) -> Result<InFlight, SubmitError> {
        let reply = self.replies().submit(request)?;
        Ok(InFlight {
            reply,
            npc,
            purpose,
            text: String::new(),
            line: line.map(|speaker| LineInfo {
                speaker,
                started: false,
            }),
            markup: None,
            guard: None,
        })
    }

    /// Checks the backend; when a model failed to load or stopped, switches to authored lines
    /// (once) and returns the reason. The requests in flight will never be answered: the
    /// caller fails them.
    pub(crate) fn check_failed(&mut self) -> Option<String> {
        if self.kind == BackendKind::Scripted {
            return None;
        }
        let reason = match self.backend().status() {
            BackendStatus::Failed(why) => why,
            BackendStatus::Stopped => "the model worker stopped".into(),
            BackendStatus::Loading | BackendStatus::Ready => return None,
        };
        let old = self.replies().replace(Box::new(Scripted::new()));
        drop(old);
        self.kind = BackendKind::Scripted;
        self.label = format!("scripted (model failed: {reason})");
        self.fallback_reason = Some(reason.clone());
        Some(reason)
    }
}

/// Gives `npc` a request that was accepted, or says it could not (the entity is gone).
pub(crate) fn hold(speaking: &mut Query<&mut Speaking>, npc: Entity, request: InFlight) {
    if let Ok(mut s) = speaking.get_mut(npc) {
        s.requests.push(request);
    }
    // Otherwise the request is dropped here, which cancels it.
}
