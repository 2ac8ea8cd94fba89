//! What callers send to a [`DialogueBackend`](super::DialogueBackend) and what comes back.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::chat::{ChatError, ChatMessage, Role};
use crate::engine::constrain::{Constraint, ConstraintError};
use crate::engine::generate::{FinishReason, GenerationStats};
use crate::engine::sampler::{SamplerError, SamplingParams};

/// Identifies a request. Chosen by the caller, unique among its live requests.
pub type RequestId = u64;

/// Identifies a conversation (typically one NPC talking to the player).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConversationId(pub u64);

/// A prompt in parts, so the backend can cache the persona prefix and fit the context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Persona and instructions: the stable prefix, cached across turns.
    pub system: String,
    /// The conversation so far, oldest first, ending with the message to answer. Player text
    /// goes here as it was typed: it is encoded with special-token parsing off.
    pub turns: Vec<ChatMessage>,
}

impl Prompt {
    /// A prompt with a system text and one user message.
    pub fn new(system: impl Into<String>, user: impl Into<String>) -> Self {
        Self {
            system: system.into(),
            turns: vec![ChatMessage::new(Role::User, user)],
        }
    }

    /// The last user message (what the player just said), if any.
    pub fn last_user_text(&self) -> Option<&str> {
        self.turns
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.as_str())
    }
}

/// Generate a line.
#[derive(Debug, Clone)]
pub struct GenerateRequest {
    /// The request's id.
    pub id: RequestId,
    /// The conversation it belongs to (its follow-up turns reuse the cache).
    pub conversation: ConversationId,
    /// What to answer.
    pub prompt: Prompt,
    /// Sampling and limits.
    pub params: SamplingParams,
    /// Higher is served first (the NPC the player faces).
    pub priority: i32,
    /// The authored line to use without a model (the scripted backend speaks it).
    pub fallback: Option<String>,
    /// Hold the line to a grammar, JSON schema or regex. The local backend compiles each
    /// distinct constraint once and reuses it; the scripted backend ignores it.
    pub constraint: Option<Arc<Constraint>>,
    /// Phrases the line must never contain ([`crate::engine::safety`], authored in
    /// `safety.ron`). The local backend bans them while decoding (holding back and backing
    /// off); every backend's stream is also held back by the plugin until it cannot start one.
    pub banned: Option<Arc<crate::engine::safety::BannedPhrases>>,
}

/// Score candidate continuations of a prompt (route free player text onto authored edges).
#[derive(Debug, Clone)]
pub struct ChooseRequest {
    /// The request's id.
    pub id: RequestId,
    /// The context the candidates continue.
    pub prompt: Prompt,
    /// Candidate continuations; each is scored as text following the assistant's turn opening
    /// (include a leading space where the model would write one).
    pub candidates: Vec<String>,
    /// Higher is served first.
    pub priority: i32,
}

/// A request to a backend.
#[derive(Debug, Clone)]
pub enum BackendRequest {
    /// Generate a line, streamed as [`BackendEvent::Text`].
    Generate(GenerateRequest),
    /// Score candidates, answered by [`BackendEvent::Scores`].
    Choose(ChooseRequest),
    /// Prefill a persona prefix ahead of time, answered by [`BackendEvent::Warmed`].
    Warm {
        /// The request's id.
        id: RequestId,
        /// The persona/system text to prefill.
        system: String,
        /// Higher is served first.
        priority: i32,
    },
    /// Forget a conversation's cached state (served at once, not queued).
    ResetConversation(ConversationId),
}

impl BackendRequest {
    /// The request's id (none for a reset).
    pub fn id(&self) -> Option<RequestId> {
        match self {
            Self::Generate(r) => Some(r.id),
            Self::Choose(r) => Some(r.id),
            Self::Warm { id, .. } => Some(*id),
            Self::ResetConversation(_) => None,
        }
    }

    /// The request's priority.
    pub fn priority(&self) -> i32 {
        match self {
            Self::Generate(r) => r.priority,
            Self::Choose(r) => r.priority,
            Self::Warm { priority, .. } => *priority,
            Self::ResetConversation(_) => i32::MAX,
        }
    }
}

/// The score of one candidate of a [`ChooseRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CandidateScore {
    /// Sum of the log-probabilities of the candidate's tokens (natural log).
    pub log_prob: f32,
    /// Number of tokens in the candidate.
    pub tokens: usize,
}

impl CandidateScore {
    /// Log-probability per token (compares candidates of different lengths).
    pub fn mean_log_prob(&self) -> f32 {
        if self.tokens == 0 {
            self.log_prob
        } else {
            self.log_prob / self.tokens as f32
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RequestError {
    /// Even without history, the persona and the new message leave no room to answer.
    #[error("the prompt does not fit: {needed} tokens needed, the context holds {context}")]
    ContextFull {
        /// Tokens needed (prompt + room to answer).
        needed: usize,
        /// The context length.
        context: usize,
    },
    /// The conversation cannot be put in the template.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// Bad sampling parameters.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    /// The model failed while computing.
    #[error("inference failed: {0}")]
    Model(String),
    /// The request caused a panic; the backend recovered (the local worker clears its caches)
    /// and keeps serving.
    #[error("the request panicked ({0}); the backend recovered and keeps serving")]
    Panicked(String),
    /// The request's constraint does not compile (or failed while decoding).
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// A remote server failed to give the line.
    #[error(transparent)]
    Remote(#[from] crate::engine::remote::RemoteError),
    /// The request cannot be served by this backend.
    #[error("{0}")]
    Unsupported(String),
}

/// What a backend reports. Every request with an id ends with exactly one of `Finished`,
/// `Scores`, `Warmed` or `Error`.
#[derive(Debug, Clone, PartialEq)]
pub enum BackendEvent {
    /// The request left the queue and is being served.
    Started {
        /// The request.
        id: RequestId,
        /// Its conversation, for generate requests.
        conversation: Option<ConversationId>,
    },
    /// A chunk of generated text (whole characters, stop strings removed).
    Text {
        /// The request.
        id: RequestId,
        /// The new text.
        text: String,
    },
    /// A generate request ended.
    Finished {
        /// The request.
        id: RequestId,
        /// Why it ended (`Cancelled` also for requests cancelled while queued).
        reason: FinishReason,
        /// The whole line.
        text: String,
        /// Timings and cache use.
        stats: GenerationStats,
        /// Oldest turns dropped to fit the context (0 when everything fit).
        dropped_turns: usize,
    },
    /// A choose request's scores, in the order of its candidates.
    Scores {
        /// The request.
        id: RequestId,
        /// One per candidate.
        scores: Vec<CandidateScore>,
    },
    /// A warm request finished.
    Warmed {
        /// The request.
        id: RequestId,
        /// Tokens of the persona prefix.
        prefix_tokens: usize,
        /// It was cached already.
        already_cached: bool,
    },
    /// A request failed (the backend keeps serving others).
    Error {
        /// The request, when the error belongs to one.
        id: Option<RequestId>,
        /// What went wrong.
        error: RequestError,
    },
}

impl BackendEvent {
    /// The request the event belongs to.
    pub fn id(&self) -> Option<RequestId> {
        match self {
            Self::Started { id, .. }
            | Self::Text { id, .. }
            | Self::Finished { id, .. }
            | Self::Scores { id, .. }
            | Self::Warmed { id, .. } => Some(*id),
            Self::Error { id, .. } => *id,
        }
    }

    /// Whether this is the last event of its request.
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Started { .. } | Self::Text { .. })
    }
}
