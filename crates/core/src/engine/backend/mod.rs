//! Dialogue backends: what the Bevy layer talks to.
//!
//! [`DialogueBackend`] is non-blocking by contract: `submit` either queues or answers
//! [`SubmitError::Busy`], `poll` returns what is ready. [`LocalLlama`] runs a GGUF model on a
//! background worker thread; [`Scripted`] speaks authored lines word by word without a model
//! (tests, and games shipped without a model). [`OpenAiCompatible`](crate::engine::remote)
//! (cargo feature `remote`) streams lines from an OpenAI-compatible server: callers do not
//! change.

mod local;
mod protocol;
mod reply;
mod scripted;

pub use local::LocalLlama;
pub use protocol::{
    BackendEvent, BackendRequest, CandidateScore, ChooseRequest, ConversationId, GenerateRequest,
    Prompt, RequestError, RequestId,
};
pub use reply::{Replies, Reply};
pub use scripted::Scripted;
#[cfg(feature = "remote")]
pub(crate) use scripted::answer_without_model;

/// What kind of backend it is, for UIs that must say whether a model is speaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// A language model running on this machine.
    LocalModel,
    /// Authored lines only, no language model.
    Scripted,
    /// A model behind a network API.
    Remote,
}

/// Whether a backend can take requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendStatus {
    /// Still loading the model.
    Loading,
    /// Serving.
    Ready,
    /// Failed to start; the message says why. Requests are refused.
    Failed(String),
    /// Shut down.
    Stopped,
}

/// Why a request was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The bounded queue is full: try again on a later frame.
    #[error("the dialogue backend is busy ({capacity} requests queued); try again later")]
    Busy {
        /// The queue's capacity.
        capacity: usize,
    },
    /// The backend is not running (failed to load, or shut down).
    #[error("the dialogue backend is not running: {0}")]
    NotRunning(String),
}

/// A source of NPC lines. Every method returns at once.
pub trait DialogueBackend: Send {
    /// What kind of backend this is.
    fn kind(&self) -> BackendKind;
    /// A human label, e.g. `local: llama-2-7b-chat.Q4_K_M.gguf` or `scripted (no model)`.
    fn label(&self) -> String;
    /// Current status (a loading backend becomes `Ready` or `Failed`).
    fn status(&mut self) -> BackendStatus;
    /// Queues a request, or says why not. Never blocks.
    fn submit(&mut self, request: BackendRequest) -> Result<(), SubmitError>;
    /// Cancels a queued or running request; it ends with `Finished { reason: Cancelled }`
    /// (generate) or no further event (others). Never blocks.
    fn cancel(&mut self, id: RequestId);
    /// Appends at most `max` ready events to `out` and returns how many. Never blocks.
    fn poll(&mut self, max: usize, out: &mut Vec<BackendEvent>) -> usize;
    /// Stops the backend (joins its thread, if any).
    fn shutdown(&mut self);
}
