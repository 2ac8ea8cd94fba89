//! The backend as a resource, and the switch to authored lines when the model cannot run.

use std::collections::HashMap;
use std::sync::Mutex;

use bevy::prelude::*;

use crate::engine::backend::{
    BackendKind, BackendStatus, DialogueBackend, RequestId, Scripted, SubmitError,
};

/// What an in-flight request is for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Purpose {
    /// A generated line of the running story.
    StoryLine {
        /// Spoken if the model fails.
        fallback: String,
    },
    /// A free-chat line of an NPC outside the story.
    FreeLine {
        /// What the player said (recorded with the answer).
        said: Option<String>,
        /// Spoken if the model fails.
        fallback: String,
    },
    /// A line of an NPC ↔ NPC exchange.
    Between {
        /// The exchange.
        key: u64,
        /// Spoken if the model fails.
        fallback: String,
    },
    /// Scoring the player's free text against the story's edges.
    Route {
        /// What the player typed.
        text: String,
    },
    /// Prefilling a persona.
    Warm,
}

/// One request the plugin waits on.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub npc: Entity,
    pub purpose: Purpose,
    pub text: String,
    /// For a line: who speaks, and whether `LineStarted` was sent (at its first words).
    pub line: Option<LineInfo>,
}

/// The line a request speaks.
#[derive(Debug, Clone)]
pub(crate) struct LineInfo {
    pub speaker: Option<String>,
    pub started: bool,
}

/// The dialogue backend the plugin talks to, and the requests in flight.
///
/// Held in a `Mutex` only so the resource is `Sync`; systems reach it through `ResMut` and
/// `Mutex::get_mut`, which never locks.
#[derive(Resource)]
pub struct DialogueBackendRes {
    inner: Mutex<Box<dyn DialogueBackend>>,
    kind: BackendKind,
    label: String,
    next_id: RequestId,
    pub(crate) pending: HashMap<RequestId, Pending>,
    /// Why the plugin fell back to authored lines, if it did.
    fallback_reason: Option<String>,
}

impl DialogueBackendRes {
    /// Wraps a backend.
    pub fn new(backend: Box<dyn DialogueBackend>) -> Self {
        Self {
            kind: backend.kind(),
            label: backend.label(),
            inner: Mutex::new(backend),
            next_id: 1,
            pending: HashMap::new(),
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

    /// Requests in flight (queued or running).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    pub(crate) fn backend(&mut self) -> &mut dyn DialogueBackend {
        match self.inner.get_mut() {
            Ok(b) => b.as_mut(),
            Err(poisoned) => poisoned.into_inner().as_mut(),
        }
    }

    pub(crate) fn next_id(&mut self) -> RequestId {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Whether lines come from a model.
    pub fn has_model(&self) -> bool {
        self.kind != BackendKind::Scripted
    }

    /// Submits a request, remembering what it is for.
    pub(crate) fn submit(
        &mut self,
        request: crate::engine::backend::BackendRequest,
        npc: Entity,
        purpose: Purpose,
    ) -> Result<RequestId, SubmitError> {
        let id = request.id().unwrap_or(0);
        self.backend().submit(request)?;
        self.pending.insert(
            id,
            Pending {
                npc,
                purpose,
                text: String::new(),
                line: None,
            },
        );
        Ok(id)
    }

    /// Marks request `id` as speaking a line of `speaker` (its `LineStarted` is still due).
    pub(crate) fn mark_line(&mut self, id: RequestId, speaker: Option<String>) {
        if let Some(p) = self.pending.get_mut(&id) {
            p.line = Some(LineInfo {
                speaker,
                started: false,
            });
        }
    }

    /// Cancels every request of `npc`.
    pub(crate) fn cancel_npc(&mut self, npc: Entity) {
        let ids: Vec<RequestId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.npc == npc)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.backend().cancel(id);
        }
    }

    /// Checks the backend; when a model failed to load or stopped, switches to authored lines
    /// (once) and returns the reason and the requests that will never be answered.
    pub(crate) fn check_failed(&mut self) -> Option<(String, Vec<(RequestId, Pending)>)> {
        if self.kind == BackendKind::Scripted {
            return None;
        }
        let reason = match self.backend().status() {
            BackendStatus::Failed(why) => why,
            BackendStatus::Stopped => "the model worker stopped".into(),
            BackendStatus::Loading | BackendStatus::Ready => return None,
        };
        let lost: Vec<(RequestId, Pending)> = self.pending.drain().collect();
        let old = std::mem::replace(
            self.inner.get_mut().unwrap_or_else(|p| p.into_inner()),
            Box::new(Scripted::new()),
        );
        drop(old);
        self.kind = BackendKind::Scripted;
        self.label = format!("scripted (model failed: {reason})");
        self.fallback_reason = Some(reason.clone());
        Some((reason, lost))
    }
}
