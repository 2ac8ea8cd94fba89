//! The worker thread's loop: queue by priority, serve one request at a time, watch for cancels
//! between tokens, recover from panics.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender, select};

use super::prefix_cache::PrefixCache;
use super::prompt::{BuiltPrompt, build, build_from, persona_prefix};
use super::queue::{Pending, Queued, cancelled_before_start, common_prefix, log_softmax_at};
use super::reuse;
use super::{Control, ModelInfo, WorkerConfig, WorkerStartError, default_threads, model_error};
use crate::engine::backend::{
    BackendEvent, BackendRequest, CandidateScore, ChooseRequest, ConversationId, GenerateRequest,
    RequestError, RequestId,
};
use crate::engine::chat::ChatMessage;
use crate::engine::generate::{GenerateError, GenerateOptions, generate};
use crate::engine::llama::Llama;
use crate::engine::model::LogitsFor;
use crate::engine::pool::ComputePool;

pub(super) struct Channels {
    pub requests: Receiver<BackendRequest>,
    pub control: Receiver<Control>,
    pub events: Sender<BackendEvent>,
}

struct Server {
    llama: Llama,
    cache: PrefixCache,
    /// The tokens of each conversation's latest cached snapshot.
    conversations: HashMap<ConversationId, Vec<u32>>,
    /// Each conversation's first kept turn after its last block drop.
    kept_from: HashMap<ConversationId, ChatMessage>,
    pending: Pending,
    seq: u64,
    cancelled: HashSet<RequestId>,
    shutdown: bool,
    config: WorkerConfig,
}

pub(super) fn run(
    config: WorkerConfig,
    ch: Channels,
    start: Sender<Result<ModelInfo, WorkerStartError>>,
) {
    // This thread waits for requests; only the computations run inside the compute pool
    // (`serve`), so an idle worker keeps no compute thread busy.
    {
        let pool = match ComputePool::new(config.threads.unwrap_or_else(default_threads)) {
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
        };
        server.run(&ch, &pool);
    }
}

impl Server {
    fn run(&mut self, ch: &Channels, pool: &ComputePool) {
        loop {
            // A shutdown may have arrived during the last generation (seen between tokens).
            if self.shutdown {
                return;
            }
            if self.pending.is_empty() {
                select! {
                    recv(ch.requests) -> r => match r {
                        Ok(r) => self.enqueue(r),
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
                return;
            }
            let Some(Queued {
                request, queued_at, ..
            }) = self.pending.pop()
            else {
                continue;
            };
            let id = request.id();
            if id.is_some_and(|id| self.cancelled.remove(&id)) {
                cancelled_before_start(&request, ch);
                continue;
            }
            let served = catch_unwind(AssertUnwindSafe(|| {
                let waited_ms = queued_at.elapsed().as_secs_f64() * 1000.0;
                pool.install(|| self.serve(request, waited_ms, ch));
            }));
            if let Err(panic) = served {
                let message = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                // The cache may be half-written: start clean.
                self.llama.model.clear_cache();
                self.conversations.clear();
                self.kept_from.clear();
                let _ = ch.events.send(BackendEvent::Error {
                    id,
                    error: RequestError::Panicked(message),
                });
            }
        }
    }

    fn enqueue(&mut self, request: BackendRequest) {
        if let BackendRequest::ResetConversation(c) = request {
            self.kept_from.remove(&c);
            if let Some(tokens) = self.conversations.remove(&c) {
                self.cache.remove(&tokens);
                if self.llama.model.cache().tokens() == tokens.as_slice() {
                    self.llama.model.clear_cache();
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
                    // Not drained yet (or already running): remember it.
                    self.cancelled.insert(id);
                }
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
            self.enqueue(r);
        }
    }

    fn serve(&mut self, request: BackendRequest, waited_ms: f64, ch: &Channels) {
        let id = request.id();
        let result = match request {
            BackendRequest::Generate(r) => self.generate(r, waited_ms, ch),
            BackendRequest::Choose(r) => self.choose(r, ch),
            BackendRequest::Warm { id, system, .. } => self.warm(id, &system, ch),
            BackendRequest::ResetConversation(_) => Ok(()),
        };
        if let Err(error) = result {
            let _ = ch.events.send(BackendEvent::Error { id, error });
        }
    }

    /// Puts the longest reusable prefix of `prompt` in the model's cache (from the model's own
    /// cache or a snapshot) and makes sure its persona prefix is in the prefix cache. Returns the
    /// number of prompt tokens reused without computation and the milliseconds spent.
    fn prepare(
        &mut self,
        prompt: &BuiltPrompt,
        conversation: Option<ConversationId>,
    ) -> Result<(usize, f64), RequestError> {
        let start = std::time::Instant::now();
        let model = &mut self.llama.model;
        let mut reused = common_prefix(model.cache().tokens(), &prompt.tokens);
        if let Some((snapshot, common)) = self.cache.best_match(&prompt.tokens)
            && common > reused
        {
            model.restore(snapshot).map_err(model_error)?;
            model.truncate(common);
            reused = common;
        }
        if self.config.context_shift {
            reused = reused.max(self.shift_into_place(&prompt.tokens, conversation)?);
        }
        let model = &mut self.llama.model;
        let persona = &prompt.tokens[..prompt
            .persona_len
            .min(prompt.tokens.len().saturating_sub(1))];
        if !persona.is_empty() && !self.cache.contains(persona) {
            let have = common_prefix(model.cache().tokens(), persona);
            if have < persona.len() {
                model.truncate(have);
                model
                    .forward(&persona[have..], LogitsFor::Last)
                    .map_err(model_error)?;
            }
            let snapshot = model.snapshot(persona.len()).map_err(model_error)?;
            self.cache.insert(snapshot);
        }
        Ok((
            reused.min(prompt.tokens.len().saturating_sub(1)),
            start.elapsed().as_secs_f64() * 1000.0,
        ))
    }

    /// A context shift: when the prompt repeats, after its common prefix, chunks of the cached
    /// conversation that are further along in the cache (its oldest turns were dropped), moves
    /// them into place. Plans against the model's cache and the conversation's last snapshot,
    /// and applies the better. Returns the prompt tokens now cached.
    fn shift_into_place(
        &mut self,
        tokens: &[u32],
        conversation: Option<ConversationId>,
    ) -> Result<usize, RequestError> {
        let model = &mut self.llama.model;
        let (mut discards, mut reused) = reuse::plan(model.cache().tokens(), tokens);
        if let Some(saved) = conversation.and_then(|c| self.conversations.get(&c)) {
            let (other, better) = reuse::plan(saved, tokens);
            if better > reused
                && let Some(snapshot) = self.cache.get(saved)
            {
                model.restore(snapshot).map_err(model_error)?;
                (discards, reused) = (other, better);
            }
        }
        for range in discards {
            model.discard(range);
        }
        Ok(reused)
    }

    fn generate(
        &mut self,
        r: GenerateRequest,
        waited_ms: f64,
        ch: &Channels,
    ) -> Result<(), RequestError> {
        let _ = ch.events.send(BackendEvent::Started {
            id: r.id,
            conversation: Some(r.conversation),
        });
        let reserve = r
            .params
            .max_tokens
            .clamp(1, (self.llama.model.context_length() / 4).max(1));
        let turns = &r.prompt.turns;
        let start = self
            .kept_from
            .get(&r.conversation)
            .and_then(|first| turns.iter().position(|t| t == first))
            .unwrap_or(0);
        let summarise = self.config.summarise.as_ref();
        let built = build_from(&self.llama, &r.prompt, reserve, summarise, start)?;
        match turns
            .get(built.dropped_turns)
            .filter(|_| built.dropped_turns > 0)
        {
            Some(first) => self.kept_from.insert(r.conversation, first.clone()),
            None => self.kept_from.remove(&r.conversation),
        };
        let (reused, prepare_ms) = self.prepare(&built, Some(r.conversation))?;
        let stop_tokens = self.llama.template.stop_tokens(&self.llama.tokenizer);
        let opts = GenerateOptions {
            stop_tokens: &stop_tokens,
            extra_stops: self.llama.template.stop_strings(),
            strip_leading_space: self.llama.template.strips_leading_space(),
            mask: None,
        };
        let inject = self.config.panic_on_message.is_some()
            && self.config.panic_on_message.as_deref() == r.prompt.last_user_text();
        let (cancelled, shutdown) = (&mut self.cancelled, &mut self.shutdown);
        let mut on_text = |text: &str| {
            let _ = ch.events.send(BackendEvent::Text {
                id: r.id,
                text: text.to_owned(),
            });
            if inject {
                panic!("injected fault");
            }
            let mut stop = false;
            while let Ok(c) = ch.control.try_recv() {
                match c {
                    Control::Cancel(x) if x == r.id => stop = true,
                    Control::Cancel(x) => {
                        cancelled.insert(x);
                    }
                    Control::Shutdown => {
                        *shutdown = true;
                        stop = true;
                    }
                }
            }
            if stop {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        let generation = generate(
            &mut self.llama.model,
            &self.llama.tokenizer,
            &built.tokens,
            &r.params,
            opts,
            &mut on_text,
        )
        .map_err(|e| match e {
            GenerateError::Sampler(s) => RequestError::Sampler(s),
            GenerateError::Model(m) => model_error(m),
        })?;
        // Account for the work `prepare` did: the persona prefill is part of this prompt.
        let mut stats = generation.stats;
        stats.cached_tokens = reused;
        stats.prefill_ms += prepare_ms;
        stats.ttft_ms += prepare_ms;
        stats.queue_ms = waited_ms;
        let _ = ch.events.send(BackendEvent::Finished {
            id: r.id,
            reason: generation.finish,
            text: generation.text,
            stats,
            dropped_turns: built.dropped_turns,
        });
        // Keep the conversation so its next turn prefills only the new tokens.
        let model = &self.llama.model;
        if let Ok(snapshot) = model.snapshot(model.cache().len()) {
            let tokens = snapshot.tokens().to_vec();
            if let Some(old) = self.conversations.insert(r.conversation, tokens)
                && old.len() > built.persona_len
            {
                self.cache.remove(&old);
            }
            self.cache.insert(snapshot);
        }
        Ok(())
    }

    fn choose(&mut self, r: ChooseRequest, ch: &Channels) -> Result<(), RequestError> {
        let _ = ch.events.send(BackendEvent::Started {
            id: r.id,
            conversation: None,
        });
        let candidates: Vec<Vec<u32>> = r
            .candidates
            .iter()
            .map(|c| self.llama.tokenizer.encode_fragment_vec(c, false))
            .collect();
        let longest = candidates.iter().map(Vec::len).max().unwrap_or(0);
        let built = build(&self.llama, &r.prompt, longest.max(1), None)?;
        self.prepare(&built, None)?;
        let model = &mut self.llama.model;
        let cached =
            common_prefix(model.cache().tokens(), &built.tokens).min(built.tokens.len() - 1);
        model.truncate(cached);
        let last = model
            .forward_last(&built.tokens[cached..])
            .map_err(model_error)?;
        let base = model.cache().len();
        let mut scores = Vec::with_capacity(candidates.len());
        for ids in &candidates {
            let Some(&first) = ids.first() else {
                scores.push(CandidateScore {
                    log_prob: f32::NEG_INFINITY,
                    tokens: 0,
                });
                continue;
            };
            let mut log_prob = log_softmax_at(&last, first);
            if ids.len() > 1 {
                let rows = model
                    .forward(&ids[..ids.len() - 1], LogitsFor::All)
                    .map_err(model_error)?;
                let rows: Vec<Vec<f32>> = rows.to_vec2().map_err(model_error)?;
                for (row, &next) in rows.iter().zip(&ids[1..]) {
                    log_prob += log_softmax_at(row, next);
                }
                model.truncate(base);
            }
            scores.push(CandidateScore {
                log_prob,
                tokens: ids.len(),
            });
        }
        let _ = ch.events.send(BackendEvent::Scores { id: r.id, scores });
        Ok(())
    }

    fn warm(&mut self, id: RequestId, system: &str, ch: &Channels) -> Result<(), RequestError> {
        let _ = ch.events.send(BackendEvent::Started {
            id,
            conversation: None,
        });
        let persona = persona_prefix(&self.llama, system)?;
        let already_cached = persona.is_empty() || self.cache.contains(&persona);
        if !already_cached {
            // A prompt of just the persona plus one token: `prepare` caches the persona part.
            let mut tokens = persona.clone();
            tokens.push(self.llama.tokenizer.bos_id());
            let built = BuiltPrompt {
                persona_len: persona.len(),
                tokens,
                dropped_turns: 0,
            };
            self.prepare(&built, None)?;
        }
        let _ = ch.events.send(BackendEvent::Warmed {
            id,
            prefix_tokens: persona.len(),
            already_cached,
        });
        Ok(())
    }
}
