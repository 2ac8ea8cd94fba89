//! Requests served at once between batch steps, on the model's own cache: scoring choices and
//! warming persona prefixes; and the prefix reuse that generations share with them.

use std::time::Instant;

use super::model_error;
use super::prompt::{BuiltPrompt, build, persona_prefix};
use super::queue::log_softmax_at;
use super::reuse;
use super::serve::{Channels, Server};
use crate::engine::backend::{
    BackendEvent, CandidateScore, ChooseRequest, ConversationId, RequestError, RequestId,
};
use crate::engine::common_prefix;
use crate::engine::model::LogitsFor;

impl Server {
    /// Puts the longest reusable prefix of `tokens` in the model's cache (from the cache
    /// itself, a prefix-cache snapshot, or by a context shift of the conversation's last
    /// snapshot). Returns how many of `tokens` are now cached.
    pub(super) fn reuse_prefix(
        &mut self,
        tokens: &[u32],
        conversation: Option<ConversationId>,
    ) -> Result<usize, RequestError> {
        let model = &mut self.llama.model;
        let mut reused = common_prefix(model.cache().tokens(), tokens);
        if let Some((snapshot, common)) = self.cache.best_match(tokens)
            && common > reused
        {
            model.restore(snapshot).map_err(model_error)?;
            model.truncate(common);
            reused = common;
        }
        if self.config.context_shift {
            reused = reused.max(self.shift_into_place(tokens, conversation)?);
        }
        Ok(reused)
    }

    /// [`reuse_prefix`](Self::reuse_prefix), then makes sure the prompt's persona prefix is in
    /// the prefix cache (computing it if needed). Returns the prompt tokens reused without
    /// computation and the milliseconds spent.
    pub(super) fn prepare(
        &mut self,
        prompt: &BuiltPrompt,
        conversation: Option<ConversationId>,
    ) -> Result<(usize, f64), RequestError> {
        let start = Instant::now();
        let reused = self.reuse_prefix(&prompt.tokens, conversation)?;
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

    pub(super) fn choose(&mut self, r: ChooseRequest, ch: &Channels) -> Result<(), RequestError> {
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

    pub(super) fn warm(
        &mut self,
        id: RequestId,
        system: &str,
        ch: &Channels,
    ) -> Result<(), RequestError> {
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
