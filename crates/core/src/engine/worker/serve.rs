//! The worker thread's loop: queue by priority, admit generations into the batch's slots, run
//! one batched step at a time, watch for cancels between steps, recover from panics.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_channel::{Receiver, Sender, select};

use super::grammars::Grammars;
use super::prefix_cache::PrefixCache;
use super::queue::{Pending, Queued, cancelled_before_start};
use super::slots::Slot;
use super::{Control, ModelInfo, WorkerConfig, WorkerStartError, default_threads};
use crate::engine::backend::{
    BackendEvent, BackendRequest, ConversationId, RequestError, RequestId,
};
use crate::engine::chat::ChatMessage;
use crate::engine::generate::FinishReason;
use crate::engine::llama::Llama;
use crate::engine::model::KvCache;
use crate::engine::pool::ComputePool;

pub(super) struct Channels {
    pub requests: Receiver<BackendRequest>,
    pub control: Receiver<Control>,
    pub events: Sender<BackendEvent>,
    /// Requests submitted and not yet started or dropped (the queue's bound counts these).
    pub waiting: Arc<AtomicUsize>,
}

impl Channels {
    /// `n` requests left the queue (started, answered at once, or cancelled before starting).
    fn left_queue(&self, n: usize) {
        self.waiting.fetch_sub(n, Ordering::AcqRel);
    }
}

pub(super) struct Server {
    pub llama: Llama,
    pub cache: PrefixCache,
    /// The tokens of each conversation's latest cached snapshot.
    pub conversations: HashMap<ConversationId, Vec<u32>>,
    /// Each conversation's first kept turn after its last block drop.
    pub kept_from: HashMap<ConversationId, ChatMessage>,
    pub pending: Pending,
    pub seq: u64,
    pub cancelled: HashSet<RequestId>,
    pub shutdown: bool,
    pub config: WorkerConfig,
    /// The generations advancing together, at most `config.max_batch`.
    pub slots: Vec<Slot>,
    /// Caches of finished slots, kept for the next ones (their tokens stay reusable).
    pub spare: Vec<KvCache>,
    /// Compiled constraints, reused across requests.
    pub grammars: Grammars,
}

pub(super) fn run(
    config: WorkerConfig,
    ch: Channels,
    start: Sender<Result<ModelInfo, WorkerStartError>>,
) {
    // This thread waits for requests; only the computations run inside the compute pool
    // (`serve`), so an idle worker keeps no compute thread busy.
    let threads = config.threads.unwrap_or_else(default_threads);
    if config.background_priority {
        crate::engine::pool::lower_this_threads_priority();
    }
    let pool = match ComputePool::with_priority(threads, config.background_priority) {
        Ok(pool) => pool,
        Err(e) => {
            let _ = start.send(Err(e.into()));
            return;
        }
    };
    let loaded = config
        .model
        .resolve()
        .map_err(WorkerStartError::from)
        .and_then(|path| {
            pool.install(|| Llama::load(&path, &config.model_options))
                .map(|l| (path, l))
                .map_err(WorkerStartError::from)
        });
    let (path, mut llama) = match loaded {
        Ok(ok) => ok,
        Err(e) => {
            let _ = start.send(Err(e));
            return;
        }
    };
    if let Some(t) = config.template {
        llama.template = t;
    }
    let info = ModelInfo {
        path,
        name: llama.model.config().name.clone(),
        template: llama.template,
        context_length: llama.model.context_length(),
        vocab_size: llama.tokenizer.vocab_size(),
        threads: pool.threads(),
    };
    if start.send(Ok(info)).is_err() {
        return;
    }
    let cache = PrefixCache::new(config.prefix_cache_mb.saturating_mul(1 << 20));
    let mut server = Server {
        llama,
        cache,
        conversations: HashMap::new(),
        kept_from: HashMap::new(),
        pending: Pending::new(config.ageing),
        seq: 0,
        cancelled: HashSet::new(),
        shutdown: false,
        config,
        slots: Vec::new(),
        spare: Vec::new(),
        grammars: Grammars::default(),
    };
    server.run(&ch, &pool);
}

impl Server {
    fn run(&mut self, ch: &Channels, pool: &ComputePool) {
        loop {
            if self.shutdown {
                // Running generations end as cancelled, as a cancel would end them.
                for slot in std::mem::take(&mut self.slots) {
                    self.finish_slot(slot, Ok(FinishReason::Cancelled), ch);
                }
                return;
            }
            if self.pending.is_empty() && self.slots.is_empty() {
                select! {
                    recv(ch.requests) -> r => match r {
                        Ok(r) => self.enqueue(r, ch),
                        Err(_) => return,
                    },
                    recv(ch.control) -> c => match c {
                        Ok(c) => self.control(c, ch),
                        Err(_) => return,
                    },
                }
            }
            self.drain(ch);
            if self.shutdown {
                continue;
            }
            self.admit(ch, pool);
            if !self.slots.is_empty() {
                self.guarded(None, ch, pool, |s| s.step(ch));
            }
        }
    }

    /// Takes queued requests while there is room: a generation joins the batch (its prompt
    /// runs in the next steps); a choice or a warm-up is served at once.
    fn admit(&mut self, ch: &Channels, pool: &ComputePool) {
        loop {
            let room = self.slots.len() < self.config.max_batch.max(1);
            let Some(Queued {
                request, queued_at, ..
            }) = self
                .pending
                .pop_if(|q| room || !matches!(q.request, BackendRequest::Generate(_)))
            else {
                return;
            };
            ch.left_queue(1);
            let id = request.id();
            if id.is_some_and(|id| self.cancelled.remove(&id)) {
                cancelled_before_start(&request, ch);
                continue;
            }
            let waited_ms = queued_at.elapsed().as_secs_f64() * 1000.0;
            self.guarded(id, ch, pool, |s| {
                let result = match request {
                    BackendRequest::Generate(r) => s.start_slot(r, waited_ms, ch),
                    BackendRequest::Choose(r) => s.choose(r, ch),
                    BackendRequest::Warm { id, system, .. } => s.warm(id, &system, ch),
                    BackendRequest::ResetConversation(_) => Ok(()),
                };
                if let Err(error) = result {
                    let _ = ch.events.send(BackendEvent::Error { id, error });
                }
            });
        }
    }

    /// Runs `work` in the compute pool; a panic becomes [`RequestError::Panicked`] for request
    /// `id` and for every running generation, and every cache is cleared (it may be
    /// half-written).
    fn guarded(
        &mut self,
        id: Option<RequestId>,
        ch: &Channels,
        pool: &ComputePool,
        work: impl FnOnce(&mut Self) + Send,
    ) {
        let Err(panic) = catch_unwind(AssertUnwindSafe(|| pool.install(|| work(self)))) else {
            return;
        };
        let message = crate::engine::panic_message(panic.as_ref());
        let mut failed: Vec<RequestId> = self.slots.drain(..).map(|s| s.id).collect();
        failed.extend(id.filter(|id| !failed.contains(id)));
        self.llama.model.clear_cache();
        self.spare.clear();
        self.cache.clear();
        self.conversations.clear();
        self.kept_from.clear();
        for id in failed {
            let _ = ch.events.send(BackendEvent::Error {
                id: Some(id),
                error: RequestError::Panicked(message.clone()),
            });
        }
    }

    fn enqueue(&mut self, request: BackendRequest, ch: &Channels) {
        if let BackendRequest::ResetConversation(c) = request {
            ch.left_queue(1);
            self.kept_from.remove(&c);
            if let Some(tokens) = self.conversations.remove(&c) {
                self.cache.remove(&tokens);
                if self.llama.model.cache().tokens() == tokens.as_slice() {
                    self.llama.model.clear_cache();
                }
                for spare in &mut self.spare {
                    if spare.tokens() == tokens.as_slice() {
                        spare.clear();
                    }
                }
            }
            return;
        }
        self.seq += 1;
        self.pending.push(Queued {
            priority: request.priority(),
            seq: self.seq,
            request,
            boost: 0,
            queued_at: std::time::Instant::now(),
        });
    }

    fn control(&mut self, c: Control, ch: &Channels) {
        match c {
            Control::Shutdown => self.shutdown = true,
            Control::Cancel(id) => {
                if let Some(i) = self.slots.iter().position(|s| s.id == id) {
                    let slot = self.slots.remove(i);
                    self.finish_slot(slot, Ok(FinishReason::Cancelled), ch);
                    return;
                }
                let before = self.pending.len();
                let mut removed = Vec::new();
                self.pending.retain(|q| {
                    let hit = q.request.id() == Some(id);
                    if hit {
                        removed.push(q.request.clone());
                    }
                    !hit
                });
                if self.pending.len() == before {
                    // Not drained yet: remember it.
                    self.cancelled.insert(id);
                }
                ch.left_queue(removed.len());
                for r in removed {
                    cancelled_before_start(&r, ch);
                }
            }
        }
    }

    fn drain(&mut self, ch: &Channels) {
        while let Ok(c) = ch.control.try_recv() {
            self.control(c, ch);
        }
        while let Ok(r) = ch.requests.try_recv() {
            self.enqueue(r, ch);
        }
    }
}
