//! The benchmark behind `llama-dialogue bench`: the figures compared with llama.cpp's
//! `llama-bench` (prompt processing and decode rates) plus what a player feels (time to first
//! token, cold and with the persona prefix cached).

use std::time::Instant;

use serde::Serialize;

use crate::engine::llama::Llama;
use crate::engine::model::{BatchSeq, LlamaModel, LogitsFor, ModelError};
use crate::engine::sampler::greedy;
use crate::engine::tokenizer::TokenKind;

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// Tokens in the prompt-processing test (llama-bench `-p`).
    pub prompt_tokens: usize,
    /// Tokens in the decode test, from an empty context (llama-bench `-n`).
    pub gen_tokens: usize,
    /// Repetitions; rates are averaged.
    pub reps: usize,
    /// Persona prefix length of the time-to-first-token tests.
    pub prefix_tokens: usize,
    /// New tokens after the prefix (the player's line).
    pub new_tokens: usize,
    /// Generations decoded together in the decode test (batched decoding, each with its own
    /// cache); 1 is the single-sequence path llama-bench's `-n` compares with.
    pub streams: usize,
}

impl Default for BenchConfig {
    fn default() -> Self {
        Self {
            prompt_tokens: 256,
            gen_tokens: 64,
            reps: 3,
            prefix_tokens: 300,
            new_tokens: 30,
            streams: 1,
        }
    }
}

/// The figures; field names are the `--json` interface.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// The model file.
    pub model: String,
    /// Compute threads (the size of the pool the benchmark ran in).
    pub threads: usize,
    /// The kernel level the model used (`avx512`, `avx2`, `generic`).
    pub kernels: String,
    /// Prompt processing, tokens per second.
    pub prompt_tok_s: f64,
    /// Decode, tokens per second, all streams together.
    pub decode_tok_s: f64,
    /// Generations decoded together (`--streams`).
    pub streams: usize,
    /// Decode, tokens per second of each stream (`decode_tok_s / streams`).
    pub decode_stream_tok_s: f64,
    /// Prefill of prefix + new tokens and the first sample, nothing cached, in ms.
    pub ttft_cold_ms: f64,
    /// Restoring the cached prefix, prefill of the new tokens and the first sample, in ms.
    pub ttft_warm_ms: f64,
    /// Peak resident memory of the process, in MiB (0 where unknown).
    pub peak_rss_mb: f64,
    /// Prompt tokens of the prompt test.
    pub prompt_tokens: usize,
    /// Tokens of the decode test.
    pub gen_tokens: usize,
    /// Repetitions.
    pub reps: usize,
}

/// Runs the benchmark. `progress` receives a line per step.
pub fn run(
    llama: &mut Llama,
    model: &str,
    cfg: &BenchConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<BenchReport, ModelError> {
    let needed = cfg
        .prompt_tokens
        .max(cfg.prefix_tokens + cfg.new_tokens)
        .max(cfg.gen_tokens + 1);
    if needed > llama.model.context_length() {
        return Err(ModelError::ContextFull {
            needed,
            context: llama.model.context_length(),
        });
    }
    let tokens = sample_tokens(llama, needed);
    let reps = cfg.reps.max(1);
    let streams = cfg.streams.clamp(1, tokens.len());
    let model_ref = &mut llama.model;
    let mut prompt_rates = Vec::new();
    let mut decode_rates = Vec::new();
    let mut cold = Vec::new();
    let mut warm = Vec::new();
    // One untimed pass: candle repacks some weight types on first use.
    model_ref.clear_cache();
    model_ref.forward(&tokens[..cfg.prompt_tokens.min(16)], LogitsFor::Last)?;
    let prefix = &tokens[..cfg.prefix_tokens];
    let line = &tokens[cfg.prefix_tokens..cfg.prefix_tokens + cfg.new_tokens];
    model_ref.clear_cache();
    model_ref.forward(prefix, LogitsFor::Last)?;
    let snapshot = model_ref.snapshot(prefix.len())?;
    for rep in 1..=reps {
        model_ref.clear_cache();
        let t = Instant::now();
        model_ref.forward(&tokens[..cfg.prompt_tokens], LogitsFor::Last)?;
        prompt_rates.push(cfg.prompt_tokens as f64 / t.elapsed().as_secs_f64());

        model_ref.clear_cache();
        let t = Instant::now();
        if streams == 1 {
            let mut next = tokens[0];
            for _ in 0..cfg.gen_tokens {
                let logits = model_ref.forward_last(&[next])?;
                next = greedy(&logits).unwrap_or(tokens[0]);
            }
        } else {
            decode_streams(model_ref, &tokens[..streams], cfg.gen_tokens)?;
        }
        decode_rates.push((cfg.gen_tokens * streams) as f64 / t.elapsed().as_secs_f64());

        model_ref.clear_cache();
        let t = Instant::now();
        let all: Vec<u32> = prefix.iter().chain(line).copied().collect();
        let logits = model_ref.forward_last(&all)?;
        let _ = greedy(&logits);
        cold.push(t.elapsed().as_secs_f64() * 1000.0);

        model_ref.clear_cache();
        let t = Instant::now();
        model_ref.restore(&snapshot)?;
        let logits = model_ref.forward_last(line)?;
        let _ = greedy(&logits);
        warm.push(t.elapsed().as_secs_f64() * 1000.0);
        progress(&format!(
            "rep {rep}/{reps}: prompt {:.1} t/s, decode {:.1} t/s, ttft cold {:.0} ms, warm {:.0} ms",
            prompt_rates[rep - 1],
            decode_rates[rep - 1],
            cold[rep - 1],
            warm[rep - 1]
        ));
    }
    Ok(BenchReport {
        model: model.to_owned(),
        threads: rayon::current_num_threads(),
        kernels: llama.model.kernel_level().to_string(),
        prompt_tok_s: mean(&prompt_rates),
        decode_tok_s: mean(&decode_rates),
        streams,
        decode_stream_tok_s: mean(&decode_rates) / streams as f64,
        ttft_cold_ms: mean(&cold),
        ttft_warm_ms: mean(&warm),
        peak_rss_mb: peak_rss_mb(),
        prompt_tokens: cfg.prompt_tokens,
        gen_tokens: cfg.gen_tokens,
        reps,
    })
}

/// `starts.len()` greedy generations of `n` tokens each from empty caches, decoded together:
/// one batched forward pass per step.
fn decode_streams(model: &LlamaModel, starts: &[u32], n: usize) -> Result<(), ModelError> {
    let mut caches: Vec<_> = starts.iter().map(|_| model.new_cache()).collect();
    let mut next: Vec<[u32; 1]> = starts.iter().map(|&t| [t]).collect();
    for _ in 0..n {
        let mut seqs: Vec<BatchSeq<'_>> = caches
            .iter_mut()
            .zip(&next)
            .map(|(cache, t)| BatchSeq { cache, tokens: t })
            .collect();
        let logits = model.forward_batch(&mut seqs)?;
        for (t, l) in next.iter_mut().zip(&logits) {
            t[0] = greedy(l).unwrap_or(t[0]);
        }
    }
    Ok(())
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Deterministic ordinary tokens (no control or byte tokens) spread over the vocabulary.
fn sample_tokens(llama: &Llama, n: usize) -> Vec<u32> {
    let tok = &llama.tokenizer;
    let vocab = tok.vocab_size() as u64;
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut out = vec![tok.bos_id()];
    while out.len() < n {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let id = ((state >> 33) % vocab) as u32;
        if tok.kind(id) == Some(TokenKind::Normal) {
            out.push(id);
        }
    }
    out
}

/// Peak resident set size (Linux `VmHWM`), in MiB; 0 elsewhere.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
