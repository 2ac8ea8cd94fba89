//! Picking the next token from logits: penalties, filters, temperature, seeded randomness.

mod params;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub use params::SamplingParams;

/// Errors from the sampler.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SamplerError {
    /// A parameter is out of range.
    #[error("sampling parameter `{field}` is invalid: {reason}")]
    InvalidParams {
        /// The field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// Every token was masked, banned or not a number.
    #[error(
        "no token can be sampled: every logit is -inf or NaN (check logit_bias and the logit mask)"
    )]
    NoCandidates,
    /// The output constraint (grammar, JSON schema, regex) failed.
    #[error(transparent)]
    Constraint(#[from] crate::engine::constrain::ConstraintError),
}

/// A hook that edits logits before sampling, e.g. to allow only the tokens of authored choices.
/// Set a logit to `f32::NEG_INFINITY` to forbid that token.
pub trait LogitMask {
    /// Edits `logits` in place.
    fn apply(&mut self, logits: &mut [f32]);
}

impl<F: FnMut(&mut [f32])> LogitMask for F {
    fn apply(&mut self, logits: &mut [f32]) {
        self(logits)
    }
}

/// Samples tokens according to [`SamplingParams`].
///
/// Order of operations on each step (llama.cpp's default chain):
/// 1. `logit_bias` is added;
/// 2. the [`LogitMask`], if any, edits the logits;
/// 3. repetition penalties over the last `repeat_last_n` tokens: `repeat_penalty` (divide a
///    positive logit, multiply a negative one), then `frequency_penalty` × count and
///    `presence_penalty` are subtracted;
/// 4. `temperature <= 0`: the highest logit wins (lowest id on a tie) and the rest is skipped;
/// 5. `top_k`, then `top_p`, then `min_p` filter the candidates (probabilities at temperature 1);
/// 6. the survivors' logits are divided by `temperature`, soft-maxed and one is drawn with the
///    seeded generator.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: StdRng,
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    /// A sampler; fails when a parameter is out of range.
    pub fn new(params: SamplingParams) -> Result<Self, SamplerError> {
        params.validate()?;
        let rng = match params.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Ok(Self {
            params,
            rng,
            candidates: Vec::new(),
        })
    }

    /// The parameters in use.
    pub fn params(&self) -> &SamplingParams {
        &self.params
    }

    /// Picks the next token. `logits` is modified in place (penalties, mask); `history` is every
    /// token so far (prompt and generated), the penalties look at its tail.
    pub fn sample(
        &mut self,
        logits: &mut [f32],
        history: &[u32],
        mask: Option<&mut dyn LogitMask>,
    ) -> Result<u32, SamplerError> {
        for (&id, &bias) in &self.params.logit_bias {
            if let Some(l) = logits.get_mut(id as usize) {
                *l += bias;
            }
        }
        if let Some(mask) = mask {
            mask.apply(logits);
        }
        self.apply_penalties(logits, history);
        if self.params.temperature <= 0.0 {
            return greedy(logits);
        }
        self.candidates.clear();
        self.candidates.extend(
            logits
                .iter()
                .enumerate()
                .filter(|(_, l)| l.is_finite())
                .map(|(i, &l)| (i as u32, l)),
        );
        if self.candidates.is_empty() {
            return Err(SamplerError::NoCandidates);
        }
        let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        let p = &self.params;
        // Top-k first by selection (linear), so only the k kept are sorted.
        if p.top_k > 0 && p.top_k < self.candidates.len() {
            self.candidates.select_nth_unstable_by(p.top_k - 1, order);
            self.candidates.truncate(p.top_k);
        }
        self.candidates.sort_unstable_by(order);
        if p.top_p < 1.0 {
            let probs = softmax(&self.candidates, 1.0);
            let mut sum = 0.0;
            let keep = probs.iter().position(|&q| {
                sum += q;
                sum >= p.top_p
            });
            self.candidates
                .truncate(keep.map_or(probs.len(), |i| i + 1));
        }
        if p.min_p > 0.0 {
            // p_i >= min_p * p_max  <=>  l_i >= l_max + ln(min_p)
            let floor = self.candidates[0].1 + p.min_p.ln();
            let keep = self
                .candidates
                .iter()
                .take_while(|c| c.1 >= floor)
                .count()
                .max(1);
            self.candidates.truncate(keep);
        }
        let probs = softmax(&self.candidates, p.temperature);
        let mut r: f32 = self.rng.random::<f32>();
        for (c, q) in self.candidates.iter().zip(&probs) {
            if r < *q {
                return Ok(c.0);
            }
            r -= q;
        }
        // Rounding left r just above the last probability: take the last candidate.
        Ok(self.candidates.last().map_or(0, |c| c.0))
    }

    fn apply_penalties(&self, logits: &mut [f32], history: &[u32]) {
        let p = &self.params;
        if p.repeat_last_n == 0
            || (p.repeat_penalty == 1.0 && p.presence_penalty == 0.0 && p.frequency_penalty == 0.0)
        {
            return;
        }
        let window = &history[history.len().saturating_sub(p.repeat_last_n)..];
        let mut counts: HashMap<u32, u32> = HashMap::new();
        for &t in window {
            *counts.entry(t).or_default() += 1;
        }
        for (&t, &n) in &counts {
            let Some(l) = logits.get_mut(t as usize) else {
                continue;
            };
            if *l > 0.0 {
                *l /= p.repeat_penalty;
            } else {
                *l *= p.repeat_penalty;
            }
            *l -= n as f32 * p.frequency_penalty + p.presence_penalty;
        }
    }
}

/// The index of the highest finite logit (lowest index on a tie).
pub fn greedy(logits: &[f32]) -> Result<u32, SamplerError> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &l) in logits.iter().enumerate() {
        if !l.is_nan() && l > f32::NEG_INFINITY && best.is_none_or(|(_, b)| l > b) {
            best = Some((i, l));
        }
    }
    best.map(|(i, _)| i as u32)
        .ok_or(SamplerError::NoCandidates)
}

fn softmax(candidates: &[(u32, f32)], temperature: f32) -> Vec<f32> {
    let max = candidates
        .iter()
        .map(|c| c.1)
        .fold(f32::NEG_INFINITY, f32::max);
    let mut probs: Vec<f32> = candidates
        .iter()
        .map(|c| ((c.1 - max) / temperature).exp())
        .collect();
    let sum: f32 = probs.iter().sum();
    for q in &mut probs {
        *q /= sum;
    }
    probs
}
