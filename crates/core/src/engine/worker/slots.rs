//! Continuous batching: the generations in progress, each in a slot with its own KV cache,
//! advance together, one batched forward pass per step (a decode token of each, or the next
//! chunk of a prompt). A request joins at the next step and leaves when it ends, as llama.cpp's
//! server slots and vLLM's scheduler do.

use std::ops::ControlFlow;
use std::time::Instant;

use super::model_error;
use super::prompt::build_from;
use super::serve::{Channels, Server};
use crate::engine::backend::{
    BackendEvent, ConversationId, GenerateRequest, RequestError, RequestId,
};
use crate::engine::generate::{Continuation, FinishReason, GenerateOptions, Next};
use crate::engine::model::{BatchSeq, KvCache, LlamaModel};

/// One generation in the batch.
pub(super) struct Slot {
    pub id: RequestId,
    conversation: ConversationId,
    /// This sequence's own cache.
    cache: KvCache,
    /// The whole prompt; `prompt[..fed]` is in `cache`.
    prompt: Vec<u32>,
    fed: usize,
    /// The persona prefix's length.
    persona_len: usize,
    /// A persona snapshot to take once `fed` reaches this (0: none).
    snapshot_at: usize,
    /// The sampled token to run next (`None` while the prompt is being fed).
    next: Option<u32>,
    line: Continuation,
    dropped_turns: usize,
    queue_ms: f64,
    /// Test hook: panic after the first streamed text.
    inject: bool,
}

impl Server {
    /// Starts a generation: builds its prompt, gives it a cache holding the longest reusable
    /// prefix, and adds it to the batch. Its prompt runs in the next steps.
    pub(super) fn start_slot(
        &mut self,
        r: GenerateRequest,
        waited_ms: f64,
        ch: &Channels,
    ) -> Result<(), RequestError> {
        let begun = Instant::now();
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
        // The longest reusable prefix goes into a cache of its own (a spare one holds tokens
        // that may be reused as they are).
        let mut cache = match self.spare.pop() {
            Some(c) => c,
            None => self.llama.model.new_cache(),
        };
        self.llama
            .model
            .swap_cache(&mut cache)
            .map_err(model_error)?;
        let reused = self.reuse_prefix(&built.tokens, Some(r.conversation));
        self.llama
            .model
            .swap_cache(&mut cache)
            .map_err(model_error)?;
        let last = built.tokens.len().saturating_sub(1);
        let fed = match reused {
            Ok(n) => n.min(last),
            Err(e) => {
                self.spare.push(cache);
                return Err(e);
            }
        };
        cache.truncate(fed);
        let persona = built.persona_len.min(last);
        let snapshot_at = if persona == 0 || self.cache.contains(&built.tokens[..persona]) {
            0
        } else if fed >= persona {
            self.cache.insert(cache.snapshot(persona));
            0
        } else {
            persona
        };
        let stop_tokens = self.llama.template.stop_tokens(&self.llama.tokenizer);
        let opts = GenerateOptions {
            stop_tokens: &stop_tokens,
            extra_stops: self.llama.template.stop_strings(),
            strip_leading_space: self.llama.template.strips_leading_space(),
            mask: None,
            constraint: None,
            banned: r.banned.clone(),
        };
        let guide = match &r.constraint {
            Some(c) => match self.grammars.guide(&self.llama, c) {
                Ok(g) => Some(g),
                Err(e) => {
                    self.spare.push(cache);
                    return Err(e.into());
                }
            },
            None => None,
        };
        let line = match Continuation::new(&built.tokens, fed, &r.params, &opts, begun) {
            Ok(g) => g.constrained(guide),
            Err(e) => {
                self.spare.push(cache);
                return Err(RequestError::Sampler(e));
            }
        };
        let inject = self.config.panic_on_message.is_some()
            && self.config.panic_on_message.as_deref() == r.prompt.last_user_text();
        self.slots.push(Slot {
            id: r.id,
            conversation: r.conversation,
            cache,
            prompt: built.tokens,
            fed,
            persona_len: built.persona_len,
            snapshot_at,
            next: None,
            line,
            dropped_turns: built.dropped_turns,
            queue_ms: waited_ms,
            inject,
        });
        Ok(())
    }

    /// One step: a batched forward pass over every slot's next token (or next prompt chunk:
    /// a step's rows are shared, so a long prompt never stalls the others' tokens), then a
    /// token sampled and streamed for each slot whose prompt is done.
    pub(super) fn step(&mut self, ch: &Channels) {
        let n = self.slots.len();
        // A prompt alone takes whole passes; in company, its share of one pass per step.
        let share = if n == 1 {
            usize::MAX
        } else {
            (LlamaModel::UBATCH / n).max(1)
        };
        let mut took = Vec::with_capacity(n);
        let mut batch: Vec<BatchSeq<'_>> = Vec::with_capacity(n);
        for s in &mut self.slots {
            let tokens: &[u32] = match &s.next {
                Some(t) => std::slice::from_ref(t),
                None => {
                    let mut end = s.fed.saturating_add(share).min(s.prompt.len());
                    if s.snapshot_at > s.fed {
                        end = end.min(s.snapshot_at);
                    }
                    &s.prompt[s.fed..end]
                }
            };
            took.push(tokens.len());
            batch.push(BatchSeq {
                cache: &mut s.cache,
                tokens,
            });
        }
        let result = self.llama.model.forward_batch(&mut batch);
        drop(batch);
        let mut logits = match result {
            Ok(l) => l,
            Err(e) => {
                let error = model_error(e);
                for slot in std::mem::take(&mut self.slots) {
                    self.finish_slot(slot, Err(error.clone()), ch);
                }
                return;
            }
        };
        let context = self.llama.model.context_length();
        let mut ended = Vec::new();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.next.is_none() {
                s.fed += took[i];
                if s.snapshot_at > 0 && s.fed >= s.snapshot_at {
                    self.cache.insert(s.cache.snapshot(s.snapshot_at));
                    s.snapshot_at = 0;
                }
                if s.fed < s.prompt.len() {
                    continue;
                }
                s.line.prefilled();
            }
            let (id, inject) = (s.id, s.inject);
            let mut emit = |text: &str| {
                let _ = ch.events.send(BackendEvent::Text {
                    id,
                    text: text.to_owned(),
                });
                assert!(!inject, "injected fault");
                ControlFlow::Continue(())
            };
            let full = s.cache.len() >= context;
            match s
                .line
                .next(&mut logits[i], &self.llama.tokenizer, None, full, &mut emit)
            {
                Ok(Next::Token(t)) => s.next = Some(t),
                Ok(Next::Rewind { cache_len, token }) => {
                    s.cache.truncate(cache_len);
                    s.next = Some(token);
                }
                Ok(Next::Done(reason)) => ended.push((i, Ok(reason))),
                Err(e) => ended.push((i, Err(RequestError::Sampler(e)))),
            }
        }
        for (i, outcome) in ended.into_iter().rev() {
            let slot = self.slots.remove(i);
            self.finish_slot(slot, outcome, ch);
        }
    }

    /// Ends a slot: reports the result, keeps the conversation's cache as a snapshot (so its
    /// next turn prefills only its new tokens) and the cache itself as a spare.
    pub(super) fn finish_slot(
        &mut self,
        slot: Slot,
        outcome: Result<FinishReason, RequestError>,
        ch: &Channels,
    ) {
        let Slot {
            id,
            conversation,
            cache,
            persona_len,
            line,
            dropped_turns,
            queue_ms,
            ..
        } = slot;
        match outcome {
            Err(error) => {
                let _ = ch.events.send(BackendEvent::Error {
                    id: Some(id),
                    error,
                });
            }
            Ok(reason) => {
                let mut emit = |text: &str| {
                    let _ = ch.events.send(BackendEvent::Text {
                        id,
                        text: text.to_owned(),
                    });
                    ControlFlow::Continue(())
                };
                let generation = line.finish(reason, &mut emit);
                let mut stats = generation.stats;
                stats.queue_ms = queue_ms;
                let _ = ch.events.send(BackendEvent::Finished {
                    id,
                    reason: generation.finish,
                    text: generation.text,
                    stats,
                    dropped_turns,
                });
                let snapshot = cache.snapshot(cache.len());
                let tokens = snapshot.tokens().to_vec();
                if let Some(old) = self.conversations.insert(conversation, tokens)
                    && old.len() > persona_len
                {
                    self.cache.remove(&old);
                }
                self.cache.insert(snapshot);
            }
        }
        if self.spare.len() < self.config.max_batch.max(1) {
            self.spare.push(cache);
        }
    }
}
