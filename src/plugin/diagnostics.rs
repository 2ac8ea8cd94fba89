//! Dialogue figures as `bevy_diagnostic` diagnostics.

use bevy::diagnostic::{Diagnostic, DiagnosticPath, Diagnostics, RegisterDiagnostic};
use bevy::prelude::*;

use crate::engine::generate::GenerationStats;

/// Decode speed of the last generated line (tokens/s).
pub const TOKENS_PER_SECOND: DiagnosticPath =
    DiagnosticPath::const_new("llama_dialogue/tokens_per_second");
/// Time to first token of the last generated line (ms).
pub const TTFT_MS: DiagnosticPath = DiagnosticPath::const_new("llama_dialogue/ttft_ms");
/// Requests queued or running.
pub const QUEUE_LENGTH: DiagnosticPath = DiagnosticPath::const_new("llama_dialogue/queue_length");
/// Share of generated lines whose prompt started from a cached prefix (0–1).
pub const PREFIX_CACHE_HIT_RATE: DiagnosticPath =
    DiagnosticPath::const_new("llama_dialogue/prefix_cache_hit_rate");

/// Running totals behind the diagnostics.
#[derive(Resource, Debug, Clone, Default)]
pub struct DialogueStats {
    /// Generated lines finished.
    pub lines: u64,
    /// Lines whose prompt reused cached tokens.
    pub cache_hits: u64,
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
        if s.cached_tokens > 0 {
            self.cache_hits += 1;
        }
        self.last = Some(s.clone());
    }

    /// Share of lines that hit the prefix cache.
    pub fn hit_rate(&self) -> f64 {
        if self.lines == 0 {
            0.0
        } else {
            self.cache_hits as f64 / self.lines as f64
        }
    }
}

pub(crate) fn register(app: &mut App) {
    for path in [
        TOKENS_PER_SECOND,
        TTFT_MS,
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
    }
    diagnostics.add_measurement(&QUEUE_LENGTH, || stats.queue as f64);
    diagnostics.add_measurement(&PREFIX_CACHE_HIT_RATE, || stats.hit_rate());
}
