//! [`SamplingParams`]: what a caller asks of the sampler, as plain serde data.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::SamplerError;

/// How to pick each next token. Serde data (RON/JSON), every field optional with a default.
///
/// The order the sampler applies them in is documented on [`Sampler`](super::Sampler).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// Softmax temperature; `0` (or less) means greedy: always the most likely token.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens; `0` disables.
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability adds up to `top_p`; `1` disables.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` × the most likely one's probability; `0` disables.
    pub min_p: f32,
    /// Divide positive (multiply negative) logits of recently seen tokens by this; `1` disables.
    pub repeat_penalty: f32,
    /// How many recent tokens (prompt included) the penalties look at.
    pub repeat_last_n: usize,
    /// Subtracted once from the logit of every token seen in the window (OpenAI semantics).
    pub presence_penalty: f32,
    /// Subtracted from a token's logit once per time it occurs in the window.
    pub frequency_penalty: f32,
    /// Added to the logits of the given token ids (a large negative value bans a token).
    pub logit_bias: BTreeMap<u32, f32>,
    /// Random seed; the same seed, prompt and parameters give the same tokens. `None`: random.
    pub seed: Option<u64>,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Generation stops before any of these strings; they never appear in the output.
    pub stop: Vec<String>,
}

impl Default for SamplingParams {
    /// llama.cpp's defaults (temperature 0.8, top-k 40, top-p 0.95, min-p 0.05, repeat penalty
    /// 1.1 over 64 tokens), with 256 tokens at most.
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: BTreeMap::new(),
            seed: None,
            max_tokens: 256,
            stop: Vec::new(),
        }
    }
}

impl SamplingParams {
    /// Greedy decoding with no penalties: deterministic, for tests and tools.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            ..Self::default()
        }
    }

    /// Checks every field is in range.
    pub fn validate(&self) -> Result<(), SamplerError> {
        let bad = |field: &'static str, reason: String| {
            Err(SamplerError::InvalidParams { field, reason })
        };
        if !self.temperature.is_finite() {
            return bad(
                "temperature",
                format!("{} is not a finite number", self.temperature),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return bad("top_p", format!("{} is not in (0, 1]", self.top_p));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return bad("min_p", format!("{} is not in [0, 1]", self.min_p));
        }
        if !(self.repeat_penalty > 0.0 && self.repeat_penalty.is_finite()) {
            return bad(
                "repeat_penalty",
                format!("{} is not a positive number", self.repeat_penalty),
            );
        }
        if !self.presence_penalty.is_finite() || !self.frequency_penalty.is_finite() {
            return bad(
                "presence_penalty/frequency_penalty",
                "must be finite".into(),
            );
        }
        if let Some((id, b)) = self.logit_bias.iter().find(|(_, b)| b.is_nan()) {
            return bad("logit_bias", format!("bias of token {id} is {b}"));
        }
        if self.stop.iter().any(String::is_empty) {
            return bad("stop", "an empty stop string would stop at once".into());
        }
        Ok(())
    }
}
