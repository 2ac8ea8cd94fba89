//! The inference worker: one dedicated thread owns the model; requests go in and events come
//! out over `crossbeam-channel`, so the caller (a game's frame loop) never blocks.
//!
//! - The request queue is bounded: [`Worker::submit`] answers [`SubmitError::Busy`] when full.
//!   Cancels and shutdown use a separate channel, so they always get through.
//! - Start-up handshake: [`Worker::status`] goes from `Loading` to `Ready` or `Failed` (a
//!   typed [`WorkerStartError`] from [`Worker::wait_ready`]); a failed load ends the thread.
//! - Up to [`WorkerConfig::max_batch`] generations advance together (continuous batching: one
//!   forward pass per step over a token of each, each with its own KV cache and prefix reuse);
//!   long prompts run in shares of a step, so they never stall the others.
//! - Higher-priority requests take free slots first, with ageing ([`WorkerConfig::ageing`]) so
//!   none starves; a queued request can be cancelled before it starts; a running generation
//!   ends before its next token.
//! - A panic while serving a request becomes [`RequestError::Panicked`]; the worker clears its
//!   KV cache and keeps serving.
//! - Dropping the [`Worker`] shuts the thread down and joins it.

mod grammars;
mod oneshot;
mod prefix_cache;
mod prompt;
mod queue;
mod reuse;
mod serve;
mod slots;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, unbounded};

use crate::engine::backend::{
    BackendEvent, BackendRequest, BackendStatus, RequestError, RequestId, SubmitError,
};
use crate::engine::chat::ChatTemplate;
use crate::engine::llama::LoadError;
use crate::engine::model::ModelOptions;
use crate::engine::source::{ModelSource, SourceError};

pub use prefix_cache::{PrefixCache, PrefixCacheStats};
pub use prompt::{
    BuiltPrompt, SummariseHook, build as build_prompt, build_from as build_prompt_from,
    persona_prefix,
};

/// Settings of a [`Worker`]. Public fields with defaults.
#[derive(Clone)]
pub struct WorkerConfig {
    /// The model to load (a download runs on the worker thread).
    pub model: ModelSource,
    /// Context cap and device.
    pub model_options: ModelOptions,
    /// Compute threads; `None`: physical cores minus one (at least 1), leaving a core to the
    /// game's frame loop. The worker's own [`ComputePool`](crate::engine::pool::ComputePool)
    /// gets this size; nothing is read from or written to the environment.
    pub threads: Option<usize>,
    /// Run the worker and its compute threads at a lower scheduling priority than the game
    /// (default `true`; Linux: nice +10 for these threads only): when cores are short, the
    /// frame loop is served first and generation slows instead of frames.
    pub background_priority: bool,
    /// Requests that may wait in the queue before `submit` answers busy.
    pub queue_capacity: usize,
    /// Generations that advance together (continuous batching, default 4): each step runs one
    /// forward pass over one token of each (or a share of a prompt), so every weight is read
    /// once per step for all of them. A new request joins at the next step. 1: one at a time.
    pub max_batch: usize,
    /// Priority ageing: the priority points a queued request gains each time another request
    /// is served before it (default 1 000 000, the plugin's whole distance range), so a request
    /// waits at most `⌈gap / ageing⌉` turns behind a stream of newer requests whose priority is
    /// `gap` higher. 0 turns ageing off (strict priority, which can starve).
    pub ageing: i32,
    /// Memory for cached persona and conversation prefixes, in MiB.
    pub prefix_cache_mb: usize,
    /// Override the chat template detected from the file.
    pub template: Option<ChatTemplate>,
    /// Called with the turns dropped when a conversation outgrows the context.
    pub summarise: Option<SummariseHook>,
    /// When a conversation outgrows the context and its oldest turns are dropped, move the
    /// cached turns that remain into place (a context shift, as llama.cpp's: a copy and a key
    /// re-rotation) instead of recomputing them (default `true`). The moved positions keep what
    /// they computed with the dropped turns in view; `false` recomputes them exactly.
    pub context_shift: bool,
    /// Test hook: a generate request whose last user message equals this panics after its first
    /// token (to test panic recovery).
    #[doc(hidden)]
    pub panic_on_message: Option<String>,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerConfig")
            .field("model", &self.model)
            .field("threads", &self.threads)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_batch", &self.max_batch)
            .field("ageing", &self.ageing)
            .field("prefix_cache_mb", &self.prefix_cache_mb)
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl WorkerConfig {
    /// Defaults for `model`.
    pub fn new(model: ModelSource) -> Self {
        Self {
            model,
            model_options: ModelOptions::default(),
            threads: None,
            queue_capacity: 32,
            background_priority: true,
            max_batch: 4,
            ageing: 1_000_000,
            prefix_cache_mb: 512,
            template: None,
            summarise: None,
            context_shift: true,
            panic_on_message: None,
        }
    }
}

/// The thread count used when none is configured: physical cores minus one, at least 1.
pub fn default_threads() -> usize {
    num_cpus::get_physical().saturating_sub(1).max(1)
}

/// What the worker loaded.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The file.
    pub path: PathBuf,
    /// `general.name`.
    pub name: Option<String>,
    /// The chat template in use.
    pub template: ChatTemplate,
    /// Context window.
    pub context_length: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Compute threads candle uses.
    pub threads: usize,
}

/// Why the worker did not start.
#[derive(Debug, thiserror::Error)]
pub enum WorkerStartError {
    /// The model file could not be obtained.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The model could not be loaded (missing file, bad GGUF, no AVX2, …).
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The thread could not be spawned.
    #[error("cannot start the worker thread: {0}")]
    Spawn(std::io::Error),
    /// The compute threads could not be started.
    #[error(transparent)]
    Pool(#[from] crate::engine::pool::PoolError),
    /// The worker did not report within the wait.
    #[error("the model is still loading after {0:?}")]
    Timeout(Duration),
    /// The worker stopped before reporting (it panicked while loading).
    #[error("the worker stopped while loading")]
    Died,
}

pub(crate) enum Control {
    Cancel(RequestId),
    Shutdown,
}

/// A handle on the worker thread.
pub struct Worker {
    requests: Sender<BackendRequest>,
    control: Sender<Control>,
    events: Receiver<BackendEvent>,
    start: Receiver<Result<ModelInfo, WorkerStartError>>,
    status: BackendStatus,
    info: Option<ModelInfo>,
    start_error: Option<WorkerStartError>,
    thread: Option<JoinHandle<()>>,
    capacity: usize,
    /// Requests submitted and not yet started or dropped, whether still in the channel or in
    /// the worker's own queue: the bound `submit` keeps.
    waiting: Arc<AtomicUsize>,
}

impl Worker {
    /// Starts the worker thread; returns at once (the model loads in the background).
    pub fn spawn(config: WorkerConfig) -> Self {
        let capacity = config.queue_capacity.max(1);
        let (req_tx, req_rx) = bounded(capacity);
        let waiting = Arc::new(AtomicUsize::new(0));
        let (ctl_tx, ctl_rx) = unbounded();
        let (ev_tx, ev_rx) = unbounded();
        let (start_tx, start_rx) = bounded(1);
        let channels = serve::Channels {
            requests: req_rx,
            control: ctl_rx,
            events: ev_tx,
            waiting: Arc::clone(&waiting),
        };
        let spawned = std::thread::Builder::new()
            .name("llama-dialogue-worker".into())
            .spawn(move || serve::run(config, channels, start_tx));
        let (thread, status, start_error) = match spawned {
            Ok(handle) => (Some(handle), BackendStatus::Loading, None),
            Err(e) => (
                None,
                BackendStatus::Failed(e.to_string()),
                Some(WorkerStartError::Spawn(e)),
            ),
        };
        Self {
            requests: req_tx,
            control: ctl_tx,
            events: ev_rx,
            start: start_rx,
            status,
            info: None,
            start_error,
            thread,
            capacity,
            waiting,
        }
    }

    /// Current status; never blocks.
    pub fn status(&mut self) -> BackendStatus {
        if self.status == BackendStatus::Loading {
            match self.start.try_recv() {
                Ok(result) => self.take_start(result),
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    self.take_start(Err(WorkerStartError::Died))
                }
            }
        }
        self.status.clone()
    }

    fn take_start(&mut self, result: Result<ModelInfo, WorkerStartError>) {
        match result {
            Ok(info) => {
                self.info = Some(info);
                self.status = BackendStatus::Ready;
            }
            Err(e) => {
                self.status = BackendStatus::Failed(e.to_string());
                self.start_error = Some(e);
                if let Some(t) = self.thread.take() {
                    let _ = t.join();
                }
            }
        }
    }

    /// Blocks until the model is loaded or failed (for tools and tests; games poll
    /// [`status`](Self::status) instead).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<&ModelInfo, WorkerStartError> {
        if self.status == BackendStatus::Loading {
            match self.start.recv_timeout(timeout) {
                Ok(result) => self.take_start(result),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    return Err(WorkerStartError::Timeout(timeout));
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    self.take_start(Err(WorkerStartError::Died))
                }
            }
        }
        if let Some(e) = self.start_error.take() {
            return Err(e);
        }
        self.info.as_ref().ok_or(WorkerStartError::Died)
    }

    /// What was loaded, once ready.
    pub fn info(&self) -> Option<&ModelInfo> {
        self.info.as_ref()
    }

    /// Queues a request; never blocks.
    pub fn submit(&mut self, request: BackendRequest) -> Result<(), SubmitError> {
        match self.status() {
            BackendStatus::Failed(e) => return Err(SubmitError::NotRunning(e)),
            BackendStatus::Stopped => return Err(SubmitError::NotRunning("shut down".into())),
            BackendStatus::Loading | BackendStatus::Ready => {}
        }
        // The worker takes requests off the channel into its own queue as soon as it can: the
        // bound counts every request not yet started, wherever it waits.
        let busy = SubmitError::Busy {
            capacity: self.capacity,
        };
        if self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.capacity).then_some(n + 1)
            })
            .is_err()
        {
            return Err(busy);
        }
        match self.requests.try_send(request) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.waiting.fetch_sub(1, Ordering::AcqRel);
                Err(match e {
                    TrySendError::Full(_) => busy,
                    TrySendError::Disconnected(_) => {
                        SubmitError::NotRunning("the worker thread has stopped".into())
                    }
                })
            }
        }
    }

    /// Cancels a queued or running request; never blocks.
    pub fn cancel(&self, id: RequestId) {
        let _ = self.control.send(Control::Cancel(id));
    }

    /// The next ready event, if any; never blocks.
    pub fn try_event(&self) -> Option<BackendEvent> {
        self.events.try_recv().ok()
    }

    /// The event channel, to wait on in tools and tests.
    pub fn events(&self) -> &Receiver<BackendEvent> {
        &self.events
    }

    /// Stops the worker after the current token and joins its thread (a worker still loading
    /// its model is not waited for: it stops when the load ends).
    pub fn shutdown(&mut self) {
        let _ = self.control.send(Control::Shutdown);
        let loading = self.status() == BackendStatus::Loading;
        if let Some(t) = self.thread.take() {
            // A model still loading (or downloading) is not waited for: a game's exit must
            // not take as long as a load. The thread reads the shutdown when the load ends and
            // stops; a running generation stops at its next step, so that one is joined.
            if !loading || t.is_finished() {
                let _ = t.join();
            }
        }
        self.status = BackendStatus::Stopped;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub(crate) fn model_error(e: impl std::fmt::Display) -> RequestError {
    RequestError::Model(e.to_string())
}
