//! [`OpenAiCompatible`]: the [`DialogueBackend`] for a model behind an OpenAI-compatible API.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::choose::{self, ChooseJob};
use super::client::{Client, api_key};
use super::config::RemoteConfig;
use super::stream::{self, Job};
use super::wire::model_ids;
use crate::engine::backend::{
    BackendEvent, BackendKind, BackendRequest, BackendStatus, DialogueBackend, RequestId,
    SubmitError, answer_without_model,
};
use crate::engine::generate::{FinishReason, GenerationStats};

/// Lines from a server that speaks the OpenAI chat-completions API with server-sent events:
/// llama.cpp's `llama-server`, llama-cpp-python's server, vLLM, Ollama (cargo feature
/// `remote`, on by default).
///
/// Like the local backend it never blocks the caller: a start-up thread checks the server
/// (`GET /v1/models`: `Loading` until it answers, then `Ready`, or `Failed` with the reason),
/// and [`RemoteConfig::max_concurrent`] threads stream lines, highest priority first.
/// `cancel` ends a line at once (`Finished { Cancelled }`, nothing after it) and its thread
/// drops the connection at its next read, which stops the server's generation.
///
/// The server holds the model and its caches: `ResetConversation` has nothing to clear, and
/// `Warm` is answered at once. `Choose` (free text onto authored edges) asks the candidates as
/// a lettered multiple choice and scores them by the log-probabilities of the server's
/// one-token answer; a server that returns none fails the request with a message saying the
/// text is routed by keywords (which the story layer then does).
/// A JSON-schema constraint is sent as `response_format` (held by servers that support it);
/// other constraints are not sent, and the story layer validates what comes back.
pub struct OpenAiCompatible {
    shared: Arc<Shared>,
    events: Receiver<BackendEvent>,
    threads: Vec<JoinHandle<()>>,
    /// Submitted lines not yet ended, with their cancel flags and the text delivered so far.
    open: HashMap<RequestId, Open>,
    /// Submitted `Choose` requests not yet answered, with their cancel flags.
    choosing: HashMap<RequestId, Arc<AtomicBool>>,
    /// Cancelled requests whose thread has not ended yet: their late events are dropped.
    dropped: HashSet<RequestId>,
    ready: VecDeque<BackendEvent>,
    label: String,
}

struct Open {
    cancel: Arc<AtomicBool>,
    text: String,
}

struct Shared {
    client: Client,
    queue: Mutex<Queue>,
    wake: Condvar,
    status: Mutex<BackendStatus>,
}

/// Work for a streaming thread.
enum Task {
    Line(Job),
    Choose(ChooseJob),
}

impl Task {
    fn id(&self) -> RequestId {
        match self {
            Task::Line(j) => j.request.id,
            Task::Choose(j) => j.request.id,
        }
    }
}

#[derive(Default)]
struct Queue {
    jobs: Vec<(i32, u64, Task)>,
    seq: u64,
    stopping: bool,
}

impl OpenAiCompatible {
    /// Starts the health check and the streaming threads; returns at once.
    pub fn spawn(config: RemoteConfig) -> Self {
        let label = format!("remote: {}", config.url);
        let (tx, events) = crossbeam_channel::unbounded();
        let max = config.max_concurrent.max(1);
        let (key, status) = match api_key(&config) {
            Ok(key) => (key, BackendStatus::Loading),
            Err(e) => (None, BackendStatus::Failed(e.to_string())),
        };
        let failed = matches!(status, BackendStatus::Failed(_));
        let shared = Arc::new(Shared {
            client: Client::new(config, key),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            status: Mutex::new(status),
        });
        let mut threads = Vec::new();
        if !failed {
            let s = Arc::clone(&shared);
            let mut started = spawn_named("remote-check", move || check(&s));
            for i in 0..max {
                let s = Arc::clone(&shared);
                let tx = tx.clone();
                started = started.and_then(|t| {
                    threads.push(t);
                    spawn_named(&format!("remote-{i}"), move || serve(&s, &tx))
                });
            }
            match started {
                Ok(t) => threads.push(t),
                Err(e) => {
                    *lock(&shared.status) =
                        BackendStatus::Failed(format!("cannot start a thread: {e}"));
                }
            }
        }
        Self {
            shared,
            events,
            threads,
            open: HashMap::new(),
            choosing: HashMap::new(),
            dropped: HashSet::new(),
            ready: VecDeque::new(),
            label,
        }
    }
}

fn spawn_named(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The start-up check: `Ready` once `/v1/models` answers, else `Failed` with the reason.
fn check(shared: &Shared) {
    let status = match stream::get_json(&shared.client, "/v1/models") {
        Ok(models) => {
            let ids = model_ids(&models);
            if let Some(first) = ids.first() {
                shared.client.set_listed_model(first.clone());
            }
            match &shared.client.config().model {
                Some(m) if !ids.is_empty() && !ids.contains(m) => {
                    tracing::warn!("the server lists {ids:?}, not the configured model {m:?}");
                }
                _ => {}
            }
            BackendStatus::Ready
        }
        Err(e) => BackendStatus::Failed(e.to_string()),
    };
    // Under the queue's lock, as the streaming threads read the status under it: none can
    // read `Loading` and then miss this wake-up.
    let _queue = lock(&shared.queue);
    *lock(&shared.status) = status;
    shared.wake.notify_all();
}

/// A streaming thread: takes the most urgent job once the server is ready, streams it.
fn serve(shared: &Shared, out: &Sender<BackendEvent>) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.stopping {
                    return;
                }
                let ready = !matches!(*lock(&shared.status), BackendStatus::Loading);
                if ready && !queue.jobs.is_empty() {
                    let best = (0..queue.jobs.len())
                        .max_by_key(|&i| (queue.jobs[i].0, std::cmp::Reverse(queue.jobs[i].1)))
                        .unwrap_or(0);
                    break queue.jobs.swap_remove(best).2;
                }
                queue = shared
                    .wake
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let status = lock(&shared.status).clone();
        match status {
            BackendStatus::Failed(reason) => {
                let _ = out.send(BackendEvent::Error {
                    id: Some(job.id()),
                    error: crate::engine::backend::RequestError::Unsupported(format!(
                        "the remote backend is not running: {reason}"
                    )),
                });
            }
            _ => guarded(job.id(), out, || match &job {
                Task::Line(j) => stream::run(&shared.client, j, out),
                Task::Choose(j) => choose::run(&shared.client, j, out),
            }),
        }
    }
}

/// Runs `serve` for request `id`; a panic (a bug, or an answer nobody foresaw) ends the request
/// with [`RequestError::Panicked`](crate::engine::backend::RequestError::Panicked) instead of
/// the thread, which goes on serving the queue.
fn guarded(id: RequestId, out: &Sender<BackendEvent>, serve: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(serve)) {
        let message = crate::engine::panic_message(panic.as_ref());
        tracing::error!("remote request {id} panicked: {message}");
        let _ = out.send(BackendEvent::Error {
            id: Some(id),
            error: crate::engine::backend::RequestError::Panicked(message),
        });
    }
}

impl DialogueBackend for OpenAiCompatible {
    fn kind(&self) -> BackendKind {
        BackendKind::Remote
    }

    fn label(&self) -> String {
        self.label.clone()
    }

    fn status(&mut self) -> BackendStatus {
        lock(&self.shared.status).clone()
    }

    fn submit(&mut self, request: BackendRequest) -> Result<(), SubmitError> {
        match lock(&self.shared.status).clone() {
            BackendStatus::Failed(reason) => return Err(SubmitError::NotRunning(reason)),
            BackendStatus::Stopped => return Err(SubmitError::NotRunning("stopped".into())),
            BackendStatus::Loading | BackendStatus::Ready => {}
        }
        let mut queue = lock(&self.shared.queue);
        let capacity = self.shared.client.config().queue_capacity;
        if queue.jobs.len() >= capacity {
            return Err(SubmitError::Busy { capacity });
        }
        let request = match request {
            BackendRequest::Generate(r) => r,
            BackendRequest::Choose(request) => {
                queue.seq += 1;
                let seq = queue.seq;
                let priority = request.priority;
                let cancel = Arc::new(AtomicBool::new(false));
                self.choosing.insert(request.id, Arc::clone(&cancel));
                let job = ChooseJob {
                    request,
                    queued_at: Instant::now(),
                    cancel,
                };
                queue.jobs.push((priority, seq, Task::Choose(job)));
                drop(queue);
                self.shared.wake.notify_one();
                return Ok(());
            }
            other => {
                drop(queue);
                answer_without_model(other, false, &mut self.ready);
                return Ok(());
            }
        };
        let cancel = Arc::new(AtomicBool::new(false));
        self.open.insert(
            request.id,
            Open {
                cancel: Arc::clone(&cancel),
                text: String::new(),
            },
        );
        queue.seq += 1;
        let seq = queue.seq;
        queue.jobs.push((
            request.priority,
            seq,
            Task::Line(Job {
                request,
                cancel,
                queued_at: Instant::now(),
            }),
        ));
        drop(queue);
        self.shared.wake.notify_one();
        Ok(())
    }

    fn cancel(&mut self, id: RequestId) {
        if let Some(flag) = self.choosing.remove(&id) {
            // A `Choose` ends with no further event: out of the queue, or its answer dropped.
            flag.store(true, Ordering::Relaxed);
            let mut queue = lock(&self.shared.queue);
            let before = queue.jobs.len();
            queue.jobs.retain(|(_, _, job)| job.id() != id);
            if queue.jobs.len() == before {
                self.dropped.insert(id);
            }
            return;
        }
        let Some(open) = self.open.remove(&id) else {
            return;
        };
        open.cancel.store(true, Ordering::Relaxed);
        let mut queue = lock(&self.shared.queue);
        let before = queue.jobs.len();
        queue.jobs.retain(|(_, _, job)| job.id() != id);
        if queue.jobs.len() == before {
            // Taken by a thread already: its remaining events are dropped when they arrive.
            self.dropped.insert(id);
        }
        drop(queue);
        self.ready.push_back(BackendEvent::Finished {
            id,
            reason: FinishReason::Cancelled,
            text: open.text,
            stats: GenerationStats::default(),
            dropped_turns: 0,
        });
    }

    fn poll(&mut self, max: usize, out: &mut Vec<BackendEvent>) -> usize {
        let mut n = 0;
        while n < max {
            let event = match self.ready.pop_front() {
                Some(e) => e,
                None => match self.events.try_recv() {
                    Ok(e) => {
                        let id = e.id().unwrap_or(RequestId::MAX);
                        if self.dropped.contains(&id) {
                            if e.is_final() {
                                self.dropped.remove(&id);
                            }
                            continue;
                        }
                        if let BackendEvent::Text { text, .. } = &e
                            && let Some(open) = self.open.get_mut(&id)
                        {
                            open.text.push_str(text);
                        }
                        if e.is_final() {
                            self.open.remove(&id);
                            self.choosing.remove(&id);
                        }
                        e
                    }
                    Err(_) => break,
                },
            };
            out.push(event);
            n += 1;
        }
        n
    }

    fn shutdown(&mut self) {
        *lock(&self.shared.status) = BackendStatus::Stopped;
        let mut queue = lock(&self.shared.queue);
        queue.stopping = true;
        queue.jobs.clear();
        drop(queue);
        for open in self.open.values() {
            open.cancel.store(true, Ordering::Relaxed);
        }
        self.shared.wake.notify_all();
        // Threads waiting for work end now; one inside a read ends at its next chunk or its
        // idle timeout, so it is not joined (a game's exit must not wait on a slow server).
        for t in std::mem::take(&mut self.threads) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for OpenAiCompatible {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_request_ends_with_an_error_and_the_thread_goes_on() {
        let (tx, rx) = crossbeam_channel::unbounded();
        guarded(3, &tx, || panic!("a chunk nobody foresaw"));
        guarded(4, &tx, || {
            let _ = tx.send(BackendEvent::Warmed {
                id: 4,
                prefix_tokens: 0,
                already_cached: true,
            });
        });
        let events: Vec<BackendEvent> = rx.try_iter().collect();
        assert_eq!(events.len(), 2, "{events:?}");
        assert!(matches!(
            &events[0],
            BackendEvent::Error { id: Some(3), error: crate::engine::backend::RequestError::Panicked(m) }
                if m == "a chunk nobody foresaw"
        ));
        assert!(matches!(events[1], BackendEvent::Warmed { id: 4, .. }));
    }
}
