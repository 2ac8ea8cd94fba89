//! The generation loop: reuse the cached prefix, prefill the rest, then sample, detokenize and
//! check stops token by token (the order of candle's quantized example).

mod continuation;

use std::ops::ControlFlow;
use std::time::Instant;

use serde::Serialize;

use crate::engine::constrain::Guide;
use crate::engine::model::{LlamaModel, ModelError};
use crate::engine::sampler::{LogitMask, SamplerError, SamplingParams};
use crate::engine::tokenizer::Tokenizer;

pub use continuation::{Continuation, MAX_REWINDS, Next};

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The model produced an end token (EOS, or the template's end-of-turn token).
    Eos,
    /// A stop string was reached.
    Stop,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The callback asked to stop.
    Cancelled,
    /// The context window filled up.
    ContextFull,
    /// A banned phrase kept coming back (see
    /// [`GenerateOptions::banned`]): the line ends before it.
    Blocked,
}

/// Timings and counts of one generation.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GenerationStats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose keys/values were already cached (not recomputed).
    pub cached_tokens: usize,
    /// Time to compute the uncached prompt tokens, in milliseconds.
    pub prefill_ms: f64,
    /// Time from the call to the first sampled token, in milliseconds.
    pub ttft_ms: f64,
    /// Tokens generated (end tokens not counted).
    pub generated_tokens: usize,
    /// Time spent generating after the first token, in milliseconds.
    pub decode_ms: f64,
    /// Time the request waited in the worker's queue before it started, in milliseconds (0
    /// outside the worker). Not part of `ttft_ms`, which counts from the start.
    pub queue_ms: f64,
}

impl GenerationStats {
    /// Prompt tokens computed per second.
    pub fn prompt_tok_s(&self) -> f64 {
        per_second(self.prompt_tokens - self.cached_tokens, self.prefill_ms)
    }

    /// Generated tokens per second, after the first.
    pub fn decode_tok_s(&self) -> f64 {
        per_second(self.generated_tokens.saturating_sub(1), self.decode_ms)
    }
}

fn per_second(n: usize, ms: f64) -> f64 {
    if ms > 0.0 {
        n as f64 * 1000.0 / ms
    } else {
        0.0
    }
}

/// The result of [`generate`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    /// Generated token ids (end tokens excluded; tokens after a stop string's start excluded
    /// from `text` but kept here).
    pub tokens: Vec<u32>,
    /// The generated text, stop strings removed.
    pub text: String,
    /// Why it ended.
    pub finish: FinishReason,
    /// Timings.
    pub stats: GenerationStats,
}

/// Errors during generation.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The forward pass failed (including a prompt longer than the context).
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The sampler failed.
    #[error(transparent)]
    Sampler(#[from] SamplerError),
}

/// Extra settings of one generation beyond [`SamplingParams`].
#[derive(Default)]
pub struct GenerateOptions<'a> {
    /// Token ids that end generation (EOS and template end-of-turn tokens).
    pub stop_tokens: &'a [u32],
    /// Stop strings added to `params.stop` (e.g. the template's).
    pub extra_stops: &'a [&'a str],
    /// Drop the single leading space of the answer (chat templates whose answer follows a space).
    pub strip_leading_space: bool,
    /// Edits logits before each sample (constrained choices).
    pub mask: Option<&'a mut dyn LogitMask>,
    /// Holds the output to a grammar, JSON schema or regex
    /// ([`Grammar::guide`](crate::engine::constrain::Grammar::guide)).
    pub constraint: Option<Guide>,
    /// Phrases the output must never contain: text that could start one is held back, and
    /// the generation backs off one that appears ([`crate::engine::safety`]).
    pub banned: Option<std::sync::Arc<crate::engine::safety::BannedPhrases>>,
}

/// Generates a continuation of `prompt`, streaming text to `on_text` (which may return
/// `ControlFlow::Break` to cancel before the next token).
///
/// The model's cache is reused: only the part of `prompt` after the longest common prefix with
/// the cached tokens is computed, so a follow-up turn of a conversation prefills only its new
/// tokens. On return the cache holds the prompt and the generated tokens.
pub fn generate(
    model: &mut LlamaModel,
    tok: &Tokenizer,
    prompt: &[u32],
    params: &SamplingParams,
    mut opts: GenerateOptions<'_>,
    on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
) -> Result<Generation, GenerateError> {
    let start = Instant::now();
    if prompt.is_empty() {
        return Err(ModelError::EmptyInput.into());
    }
    // Keep the common prefix; at least one token must be recomputed to get logits.
    let common = crate::engine::common_prefix(model.cache().tokens(), prompt);
    let cached = common.min(prompt.len() - 1);
    let guide = opts.constraint.take();
    let mut state = Continuation::new(prompt, cached, params, &opts, start)?.constrained(guide);
    model.truncate(cached);
    let mut logits = {
        let _span =
            tracing::info_span!("prefill", tokens = prompt.len() - cached, cached).entered();
        model.forward_last(&prompt[cached..])?
    };
    state.prefilled();
    let decode_span = tracing::info_span!("decode", max_tokens = params.max_tokens).entered();
    let finish = loop {
        let mask = opts.mask.as_mut().map(|m| &mut **m as &mut dyn LogitMask);
        let full = model.cache().len() >= model.context_length();
        match state.next(&mut logits, tok, mask, full, on_text)? {
            Next::Token(next) => logits = model.forward_last(&[next])?,
            Next::Rewind { cache_len, token } => {
                model.truncate(cache_len);
                logits = model.forward_last(&[token])?;
            }
            Next::Done(reason) => break reason,
        }
    };
    drop(decode_span);
    Ok(state.finish(finish, on_text))
}
