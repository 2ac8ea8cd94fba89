//! One generation taken a token at a time: sampling, stop tokens and strings, streaming text
//! and timings, with the forward passes left to the caller. [`generate`](super::generate) drives
//! one with a model's own cache; the worker drives several at once through batched passes.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Instant;

use super::{FinishReason, GenerateOptions, Generation, GenerationStats};
use crate::engine::constrain::Guide;
use crate::engine::safety::BannedPhrases;
use crate::engine::sampler::{LogitMask, Sampler, SamplerError, SamplingParams};
use crate::engine::stop::StopMatcher;
use crate::engine::think::ThinkFilter;
use crate::engine::tokenizer::{StreamDecoder, Tokenizer};

/// What [`Continuation::next`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Run this token through the model and call [`Continuation::next`] with its logits.
    Token(u32),
    /// The generation ended; call [`Continuation::finish`].
    Done(FinishReason),
    /// A banned phrase appeared in the held-back text: cut this sequence's cache to
    /// `cache_len` positions, run `token` (at position `cache_len`) and call
    /// [`Continuation::next`] with its logits; the phrase's first token is banned there.
    Rewind {
        /// Positions to keep in the cache.
        cache_len: usize,
        /// The token to run again.
        token: u32,
    },
}

/// How many times one generation may back off a banned phrase before it gives up
/// ([`FinishReason::Blocked`]).
pub const MAX_REWINDS: usize = 8;

/// Banned phrases and the text held back because it could still become one.
struct Bans {
    set: Arc<BannedPhrases>,
    /// Decoded text not yet released (it could start a banned phrase).
    pending: String,
    /// The tokens whose text is in `pending`: (index in the generated tokens, offset of its
    /// text in `pending`).
    pending_tokens: Vec<(usize, usize)>,
    /// The last released character (whether `pending` starts a word).
    last: Option<char>,
    /// Tokens banned at a position of the generated tokens.
    banned: Vec<(usize, u32)>,
    rewinds: usize,
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
    /// Reasoning (`<think>…</think>`) is never shown.
    think: ThinkFilter,
    start: Instant,
    decode_start: Option<Instant>,
    stats: GenerationStats,
    guide: Option<Guide>,
    strip_leading_space: bool,
    bans: Option<Bans>,
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
        let bans = opts.banned.clone();
        let this = Self {
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
            think: ThinkFilter::new(),
            start,
            decode_start: None,
            stats: GenerationStats {
                prompt_tokens: prompt.len(),
                cached_tokens: cached,
                ..Default::default()
            },
            guide: None,
            strip_leading_space: opts.strip_leading_space,
            bans: None,
        };
        Ok(this.banning(bans))
    }

    /// Keeps `set`'s phrases out of the output: text that could start one is held back, and
    /// when one appears the generation backs off to the token that began it and bans that
    /// token there (at most [`MAX_REWINDS`] times).
    pub fn banning(mut self, set: Option<Arc<BannedPhrases>>) -> Self {
        self.bans = set.filter(|s| !s.is_empty()).map(|set| Bans {
            set,
            pending: String::new(),
            pending_tokens: Vec::new(),
            last: None,
            banned: Vec::new(),
            rewinds: 0,
        });
        self
    }

    /// How many times this generation backed off a banned phrase.
    pub fn rewinds(&self) -> usize {
        self.bans.as_ref().map_or(0, |b| b.rewinds)
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
        if let Some(bans) = &self.bans {
            let at = self.tokens.len();
            for &(_, t) in bans.banned.iter().filter(|(pos, _)| *pos == at) {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        let next = self.sampler.sample(logits, &self.history, mask)?;
        if self.decode_start.is_none() {
            self.stats.ttft_ms = ms(self.start);
            self.decode_start = Some(Instant::now());
        }
        if self.stop_tokens.contains(&next) {
            // The line ends here: a banned phrase at its very end is complete now.
            if let Some(rewind) = self.check_bans(tok, true)? {
                return Ok(rewind);
            }
            return Ok(Next::Done(FinishReason::Eos));
        }
        if let Some(guide) = &mut self.guide {
            guide.commit(next)?;
        }
        self.tokens.push(next);
        self.history.push(next);
        let piece = self.decoder.push(tok, next);
        let released = match &mut self.bans {
            Some(bans) => {
                bans.pending_tokens
                    .push((self.tokens.len() - 1, bans.pending.len()));
                bans.pending.push_str(&piece);
                if let Some(rewind) = self.check_bans(tok, false)? {
                    return Ok(rewind);
                }
                self.release()
            }
            None => piece,
        };
        let outcome = self.stops.push(&released);
        let shown = self.think.push(&outcome.emit);
        if !shown.is_empty() {
            self.text.push_str(&shown);
            if on_text(&shown).is_break() {
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

    /// Looks for a banned phrase in the held-back text; if one is there, backs off to the token
    /// that began it and bans that token at its position. `Some(Done(Blocked))` once the
    /// rewinds are spent.
    fn check_bans(
        &mut self,
        tok: &Tokenizer,
        complete: bool,
    ) -> Result<Option<Next>, SamplerError> {
        let Some(bans) = &mut self.bans else {
            return Ok(None);
        };
        let (window, ctx) = bans.window();
        let Some(hit) = bans.set.find(&window, ctx, complete) else {
            return Ok(None);
        };
        let at = hit.start - ctx;
        if bans.pending_tokens.is_empty() {
            return Ok(None);
        }
        // The token that began the phrase: the first whose text reaches past `at` (a token that
        // only began a character counts with the one that ended it).
        let i = bans
            .pending_tokens
            .iter()
            .rposition(|&(_, off)| off <= at)
            .unwrap_or(0);
        let off = bans.pending_tokens[i].1;
        let i = bans
            .pending_tokens
            .iter()
            .position(|&(_, o)| o == off)
            .unwrap_or(i);
        let (t, off) = bans.pending_tokens[i];
        if bans.rewinds >= MAX_REWINDS {
            bans.pending.truncate(off);
            return Ok(Some(Next::Done(FinishReason::Blocked)));
        }
        bans.rewinds += 1;
        let token = self.tokens[t];
        bans.banned.retain(|&(pos, _)| pos <= t);
        bans.banned.push((t, token));
        bans.pending.truncate(off);
        bans.pending_tokens.truncate(i);
        let dropped = self.tokens.len() - t;
        if let Some(guide) = &mut self.guide {
            guide.rollback(dropped)?;
        }
        self.tokens.truncate(t);
        self.history.truncate(self.history.len() - dropped);
        self.decoder = StreamDecoder::new(self.strip_leading_space);
        for &t in &self.tokens {
            let _ = self.decoder.push(tok, t);
        }
        let cache_len = self.history.len() - 1;
        Ok(Some(Next::Rewind {
            cache_len,
            token: self.history[cache_len],
        }))
    }

    /// Releases the held-back text that can no longer become a banned phrase, up to the start
    /// of a token (so a rewind never takes back text already shown).
    fn release(&mut self) -> String {
        let Some(bans) = &mut self.bans else {
            return String::new();
        };
        let (window, ctx) = bans.window();
        let keep = bans.set.hold_from(&window, ctx) - ctx;
        let cut = if keep >= bans.pending.len() {
            bans.pending_tokens.clear();
            bans.pending.len()
        } else {
            let i = bans
                .pending_tokens
                .iter()
                .rposition(|&(_, off)| off <= keep)
                .unwrap_or(0);
            let cut = bans.pending_tokens[i].1;
            bans.pending_tokens.drain(..i);
            for (_, off) in &mut bans.pending_tokens {
                *off -= cut;
            }
            cut
        };
        let out: String = bans.pending.drain(..cut).collect();
        if let Some(c) = out.chars().next_back() {
            bans.last = Some(c);
        }
        out
    }

    /// The text streamed so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Ends the generation: releases held-back text (unless it stopped at a stop string or was
    /// cancelled) to `on_text`, and returns the result.
    pub fn finish(
        mut self,
        mut finish: FinishReason,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Generation {
        if finish != FinishReason::Stop && finish != FinishReason::Cancelled {
            let mut tail = self.decoder.finish();
            if let Some(bans) = &mut self.bans {
                bans.pending.push_str(&tail);
                let (window, ctx) = bans.window();
                if let Some(hit) = bans.set.find(&window, ctx, true) {
                    bans.pending.truncate(hit.start - ctx);
                    finish = FinishReason::Blocked;
                }
                tail = std::mem::take(&mut bans.pending);
            }
            let outcome = self.stops.push(&tail);
            let rest = outcome.emit
                + &if outcome.stopped {
                    String::new()
                } else {
                    self.stops.finish()
                };
            let rest = self.think.push(&rest) + &self.think.finish();
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

impl Bans {
    /// The held-back text with the last released character before it (as context), and where
    /// the held-back text starts in it.
    fn window(&self) -> (String, usize) {
        let mut w = String::with_capacity(self.pending.len() + 4);
        if let Some(c) = self.last {
            w.push(c);
        }
        let ctx = w.len();
        w.push_str(&self.pending);
        (w, ctx)
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
