//! Dialogue figures as `bevy_diagnostic` diagnostics.

use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::prelude::*;

use crate::engine::generate::GenerationStats;

/// Decode speed of the last generated line (tokens/s).
pub const TOKENS_PER_SECOND: DiagnosticPath =
    DiagnosticPath::const_new("llama_dialogue/tokens_per_second");
/// Time to first token of the last generated line (ms).
pub const TTFT_MS: DiagnosticPath = DiagnosticPath::const_new("llama_dialogue/ttft_ms");
/// How long the last generated line waited in the worker's queue before starting (ms).
pub const QUEUE_WAIT_MS: DiagnosticPath = DiagnosticPath::const_new("llama_dialogue/queue_wait_ms");
/// Requests queued or running.
pub const QUEUE_LENGTH: DiagnosticPath = DiagnosticPath::const_new("llama_dialogue/queue_length");
/// Share of prompt tokens taken from the prefix cache instead of computed, over all generated
/// lines so far (0–1; token-weighted: a line that reused 300 of 1800 tokens counts 1/6).
pub const PREFIX_CACHE_HIT_RATE: DiagnosticPath =
    DiagnosticPath::const_new("llama_dialogue/prefix_cache_hit_rate");

/// Running totals behind the diagnostics.
#[derive(Resource, Debug, Clone, Default)]
pub struct DialogueStats {
    /// Generated lines finished.
    pub lines: u64,
    /// Lines whose prompt reused cached tokens.
    pub cache_hits: u64,
    /// Prompt tokens of all lines.
    pub prompt_tokens: u64,
    /// Prompt tokens taken from the cache (not computed), of all lines.
    pub cached_tokens: u64,
    /// Generated tokens in all.
    pub tokens: u64,
    /// The last line's stats.
    pub last: Option<GenerationStats>,
    /// Requests in flight now.
    pub queue: usize,
    /// Warm requests answered.
    pub warmed: u64,
    /// Warm requests that found the persona cached already.
    pub warm_hits: u64,
}

impl DialogueStats {
    pub(crate) fn record(&mut self, s: &GenerationStats) {
        self.lines += 1;
        self.tokens += s.generated_tokens as u64;
        self.prompt_tokens += s.prompt_tokens as u64;
        self.cached_tokens += s.cached_tokens.min(s.prompt_tokens) as u64;
        if s.cached_tokens > 0 {
            self.cache_hits += 1;
        }
        self.last = Some(s.clone());
    }

    /// Share of prompt tokens taken from the prefix cache (0 before any line).
    pub fn hit_rate(&self) -> f64 {
        if self.prompt_tokens == 0 {
            0.0
        } else {
            self.cached_tokens as f64 / self.prompt_tokens as f64
        }
    }
}

pub(crate) fn register(app: &mut App) {
    for path in [
        TOKENS_PER_SECOND,
        TTFT_MS,
        QUEUE_WAIT_MS,
        QUEUE_LENGTH,
        PREFIX_CACHE_HIT_RATE,
    ] {
        app.register_diagnostic(Diagnostic::new(path));
    }
}

pub(crate) fn measure(stats: Res<DialogueStats>, mut diagnostics: Diagnostics) {
    if let Some(last) = &stats.last {
        diagnostics.add_measurement(&TOKENS_PER_SECOND, || last.decode_tok_s());
        diagnostics.add_measurement(&TTFT_MS, || last.ttft_ms);
        diagnostics.add_measurement(&QUEUE_WAIT_MS, || last.queue_ms);
    }
    diagnostics.add_measurement(&QUEUE_LENGTH, || stats.queue as f64);
    diagnostics.add_measurement(&PREFIX_CACHE_HIT_RATE, || stats.hit_rate());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_rate_counts_tokens_not_lines() {
        let mut stats = DialogueStats::default();
        assert_eq!(stats.hit_rate(), 0.0);
        stats.record(&GenerationStats {
            prompt_tokens: 1844,
            cached_tokens: 308,
            ..GenerationStats::default()
        });
        assert!((stats.hit_rate() - 308.0 / 1844.0).abs() < 1e-12);
        stats.record(&GenerationStats {
            prompt_tokens: 156,
            cached_tokens: 0,
            ..GenerationStats::default()
        });
        assert!((stats.hit_rate() - 308.0 / 2000.0).abs() < 1e-12);
        assert_eq!((stats.lines, stats.cache_hits), (2, 1));
    }
}
