//! A blocking driver for terminals and tests: runs a [`Conversation`] against a
//! [`DialogueBackend`], waiting for each line. (Games use the Bevy plugin, which drives the same
//! [`Conversation`] loop without waiting.)

use std::sync::Arc;
use std::time::Duration;

use crate::engine::backend::{
    BackendEvent, BackendKind, BackendRequest, BackendStatus, ChooseRequest, ConversationId,
    DialogueBackend, GenerateRequest,
};

use super::conversation::Conversation;
use super::runtime::{LineRequest, Routed, RuntimeError, StoryRuntime};

/// How a line was obtained.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenLine {
    /// The text.
    pub text: String,
    /// Whether a model wrote it (false: the authored fallback).
    pub generated: bool,
    /// Why the fallback was used, when a model failed.
    pub error: Option<String>,
}

/// A story conversation with a backend to speak and route through.
pub struct Session {
    /// The story and what it waits for.
    pub conversation: Conversation,
    backend: Box<dyn DialogueBackend>,
    next_id: u64,
    /// Sampling seed applied to every generated line (`None`: the request's own).
    pub seed: Option<u64>,
}

impl Session {
    /// Pairs a runtime with a backend; the conversation starts idle.
    pub fn new(runtime: StoryRuntime, backend: Box<dyn DialogueBackend>) -> Self {
        Self {
            conversation: Conversation::new(runtime),
            backend,
            next_id: 1,
            seed: None,
        }
    }

    /// The backend.
    pub fn backend(&mut self) -> &mut dyn DialogueBackend {
        self.backend.as_mut()
    }

    /// Whether lines come from a model (false: authored fallback lines).
    pub fn has_model(&mut self) -> bool {
        self.backend.kind() != BackendKind::Scripted && self.wait_ready()
    }

    fn wait_ready(&mut self) -> bool {
        loop {
            match self.backend.status() {
                BackendStatus::Ready => return true,
                BackendStatus::Loading => std::thread::sleep(Duration::from_millis(5)),
                _ => return false,
            }
        }
    }

    fn conversation(&self, speaker: &str) -> ConversationId {
        let index = self
            .conversation
            .runtime()
            .bundle()
            .cast
            .keys()
            .position(|k| k == speaker)
            .unwrap_or(usize::MAX);
        ConversationId(index as u64)
    }

    /// Runs events of request `id` until its last one, passing text chunks to `on_text`.
    fn wait(&mut self, id: u64, on_text: &mut dyn FnMut(&str)) -> BackendEvent {
        let mut events = Vec::new();
        loop {
            events.clear();
            if self.backend.poll(64, &mut events) == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            for e in events.drain(..) {
                if e.id() != Some(id) && e.id().is_some() {
                    continue;
                }
                if let BackendEvent::Text { text, .. } = &e {
                    on_text(text);
                } else if e.is_final() {
                    return e;
                }
            }
        }
    }

    /// Gets a line for a [`Beat::Generate`](super::Beat::Generate): from the backend, or the
    /// fallback if it cannot. Streams chunks to `on_text` (the fallback arrives as one chunk
    /// when the backend failed). Does not advance the story.
    pub fn speak(&mut self, req: &LineRequest, on_text: &mut dyn FnMut(&str)) -> SpokenLine {
        let fallback = |error: Option<String>, on_text: &mut dyn FnMut(&str)| {
            on_text(&req.fallback);
            SpokenLine {
                text: req.fallback.clone(),
                generated: false,
                error,
            }
        };
        let scripted = self.backend.kind() == BackendKind::Scripted;
        if !scripted && !self.wait_ready() {
            return fallback(Some(self.backend.label()), on_text);
        }
        let id = self.next_id;
        self.next_id += 1;
        let request = BackendRequest::Generate(GenerateRequest {
            id,
            conversation: self.conversation(&req.speaker),
            prompt: req.prompt.prompt.clone(),
            params: {
                let mut p = req.params.clone();
                if self.seed.is_some() {
                    p.seed = self.seed;
                }
                p
            },
            priority: 0,
            fallback: Some(req.fallback.clone()),
            constraint: req.format.as_ref().map(|f| Arc::new(f.constraint())),
            banned: None,
        });
        if let Err(e) = self.backend.submit(request) {
            return fallback(Some(e.to_string()), on_text);
        }
        // The first chunk's leading space (SentencePiece's word marker) is not shown.
        let mut started = false;
        let mut trimmed = |t: &str| {
            let t = if started { t } else { t.trim_start() };
            if !t.is_empty() {
                started = true;
                on_text(t);
            }
        };
        match self.wait(id, &mut trimmed) {
            BackendEvent::Finished { text, .. } if !text.trim().is_empty() => SpokenLine {
                text: text.trim().to_owned(),
                generated: !scripted,
                error: None,
            },
            BackendEvent::Finished { .. } => {
                fallback(Some("the model wrote nothing".into()), on_text)
            }
            BackendEvent::Error { error, .. } => fallback(Some(error.to_string()), on_text),
            other => fallback(Some(format!("unexpected event {other:?}")), on_text),
        }
    }

    /// Routes free player text: scored by the model when there is one, else by keywords.
    pub fn route(&mut self, player: &str) -> Result<Routed, RuntimeError> {
        let request = self.conversation.route_request(player)?;
        let scores = match request {
            r if !r.candidates.is_empty() && self.has_model() => {
                let (prompt, candidates) = (r.prompt, r.candidates);
                let id = self.next_id;
                self.next_id += 1;
                let submitted = self.backend.submit(BackendRequest::Choose(ChooseRequest {
                    id,
                    prompt,
                    candidates,
                    priority: 0,
                }));
                match submitted {
                    Ok(()) => match self.wait(id, &mut |_| {}) {
                        BackendEvent::Scores { scores, .. } => Some(scores),
                        _ => None,
                    },
                    Err(_) => None,
                }
            }
            _ => None,
        };
        self.conversation.routed(player, scores.as_deref())
    }
}
