//! One generation taken a token at a time: sampling, stop tokens and strings, streaming text
//! and timings, with the forward passes left to the caller. [`generate`](super::generate) drives
//! one with a model's own cache; the worker drives several at once through batched passes.

use std::ops::ControlFlow;
use std::time::Instant;

use super::{FinishReason, GenerateOptions, Generation, GenerationStats};
use crate::engine::constrain::Guide;
use crate::engine::sampler::{LogitMask, Sampler, SamplerError, SamplingParams};
use crate::engine::stop::StopMatcher;
use crate::engine::tokenizer::{StreamDecoder, Tokenizer};

/// What [`Continuation::next`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this token through the model and call [`Continuation::next`] with its logits.
    Token(u32),
    /// The generation ended; call [`Continuation::finish`].
    Done(FinishReason),
}

/// The state of one generation between forward passes.
pub struct Continuation {
    sampler: Sampler,
    max_tokens: usize,
    stop_tokens: Vec<u32>,
    history: Vec<u32>,
    tokens: Vec<u32>,
    text: String,
    decoder: StreamDecoder,
    stops: StopMatcher,
    start: Instant,
    decode_start: Option<Instant>,
    stats: GenerationStats,
    guide: Option<Guide>,
}

impl Continuation {
    /// A generation after `prompt`, of which `cached` tokens were reused without computation.
    /// Timings count from `start` (when the request began, before its prompt ran).
    pub fn new(
        prompt: &[u32],
        cached: usize,
        params: &SamplingParams,
        opts: &GenerateOptions<'_>,
        start: Instant,
    ) -> Result<Self, SamplerError> {
        Ok(Self {
            sampler: Sampler::new(params.clone())?,
            max_tokens: params.max_tokens,
            stop_tokens: opts.stop_tokens.to_vec(),
            history: prompt.to_vec(),
            tokens: Vec::new(),
            text: String::new(),
            decoder: StreamDecoder::new(opts.strip_leading_space),
            stops: StopMatcher::new(
                params
                    .stop
                    .iter()
                    .map(String::as_str)
                    .chain(opts.extra_stops.iter().copied()),
            ),
            start,
            decode_start: None,
            stats: GenerationStats {
                prompt_tokens: prompt.len(),
                cached_tokens: cached,
                ..Default::default()
            },
            guide: None,
        })
    }

    /// Holds the output to `guide`'s grammar: each step's logits are masked by it, and the
    /// generation ends (with the end token) where the grammar is complete.
    pub fn constrained(mut self, guide: Option<Guide>) -> Self {
        self.guide = guide;
        self
    }

    /// Marks the prompt as computed (the prefill time ends now).
    pub fn prefilled(&mut self) {
        self.stats.prefill_ms = ms(self.start);
    }

    /// Takes the logits of the last position run: samples a token, streams the text it
    /// completes to `on_text` (which may cancel), and says whether to go on. `cache_full`:
    /// the sequence's cache has no room for another position.
    pub fn next(
        &mut self,
        logits: &mut [f32],
        tok: &Tokenizer,
        mask: Option<&mut dyn LogitMask>,
        cache_full: bool,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Next, SamplerError> {
        if self.tokens.len() >= self.max_tokens {
            return Ok(Next::Done(FinishReason::MaxTokens));
        }
        if let Some(guide) = &mut self.guide {
            guide.mask(logits)?;
        }
        let next = self.sampler.sample(logits, &self.history, mask)?;
        if self.decode_start.is_none() {
            self.stats.ttft_ms = ms(self.start);
            self.decode_start = Some(Instant::now());
        }
        if self.stop_tokens.contains(&next) {
            return Ok(Next::Done(FinishReason::Eos));
        }
        if let Some(guide) = &mut self.guide {
            guide.commit(next)?;
        }
        self.tokens.push(next);
        self.history.push(next);
        let outcome = self.stops.push(&self.decoder.push(tok, next));
        if !outcome.emit.is_empty() {
            self.text.push_str(&outcome.emit);
            if on_text(&outcome.emit).is_break() {
                return Ok(Next::Done(FinishReason::Cancelled));
            }
        }
        if outcome.stopped {
            return Ok(Next::Done(FinishReason::Stop));
        }
        if self.tokens.len() >= self.max_tokens {
            return Ok(Next::Done(FinishReason::MaxTokens));
        }
        if cache_full {
            return Ok(Next::Done(FinishReason::ContextFull));
        }
        Ok(Next::Token(next))
    }

    /// The text streamed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Ends the generation: releases held-back text (unless it stopped at a stop string or was
    /// cancelled) to `on_text`, and returns the result.
    pub fn finish(
        mut self,
        finish: FinishReason,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Generation {
        if finish != FinishReason::Stop && finish != FinishReason::Cancelled {
            let outcome = self.stops.push(&self.decoder.finish());
            let rest = outcome.emit
                + &if outcome.stopped {
                    String::new()
                } else {
                    self.stops.finish()
                };
            if !rest.is_empty() {
                self.text.push_str(&rest);
                let _ = on_text(&rest);
            }
        }
        self.stats.generated_tokens = self.tokens.len();
        self.stats.decode_ms = self.decode_start.map_or(0.0, ms);
        Generation {
            tokens: self.tokens,
            text: self.text,
            finish,
            stats: self.stats,
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
