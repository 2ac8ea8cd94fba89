//! Teacher-forced agreement with llama.cpp, as `llama-perplexity --kl-divergence` measures it:
//! the KL divergence from llama.cpp's distribution to ours at every position, and whether the
//! top token is the same. References keep llama.cpp's k most likely tokens per position, so the
//! KL is taken over those k and the rest as one bucket (a lower bound of the full KL); the
//! largest log-probability difference on those k tokens is reported too (exact, whatever k).

use serde_json::Value;

/// The figures over a sequence.
#[derive(Debug, Clone, Copy)]
pub struct Agreement {
    /// Positions compared.
    pub positions: usize,
    /// Mean KL divergence (nats).
    pub mean_kl: f64,
    /// Largest KL at one position.
    pub worst_kl: f64,
    /// Positions whose top token is llama.cpp's.
    pub same_top: usize,
    /// Largest |our log-probability − llama.cpp's| over its top tokens.
    pub max_logprob_diff: f64,
}

impl Agreement {
    /// The share of positions with the same top token.
    pub fn top_share(&self) -> f64 {
        self.same_top as f64 / self.positions as f64
    }
}

impl std::fmt::Display for Agreement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} positions: mean KL {:.2e} nats (worst {:.2e}), same top token {}/{}, max |Δ log p| {:.2e}",
            self.positions,
            self.mean_kl,
            self.worst_kl,
            self.same_top,
            self.positions,
            self.max_logprob_diff
        )
    }
}

/// Our `logits` (one row per position) against llama.cpp's `positions` (`{ids, logprobs}`).
pub fn compare(logits: &[Vec<f32>], positions: &[Value]) -> Agreement {
    assert_eq!(logits.len(), positions.len(), "one row per position");
    let mut a = Agreement {
        positions: positions.len(),
        mean_kl: 0.0,
        worst_kl: 0.0,
        same_top: 0,
        max_logprob_diff: 0.0,
    };
    for (row, p) in logits.iter().zip(positions) {
        let max = row.iter().fold(f32::MIN, |m, &x| m.max(x)) as f64;
        let logz = max
            + row
                .iter()
                .map(|&x| (x as f64 - max).exp())
                .sum::<f64>()
                .ln();
        let top: Vec<u32> = serde_json::from_value(p["ids"].clone()).expect("ids");
        let lp: Vec<f64> = serde_json::from_value(p["logprobs"].clone()).expect("logprobs");
        let (mut kl, mut p_top, mut q_top) = (0f64, 0f64, 0f64);
        for (&id, &lp) in top.iter().zip(&lp) {
            let lq = row[id as usize] as f64 - logz;
            kl += lp.exp() * (lp - lq);
            p_top += lp.exp();
            q_top += lq.exp();
            a.max_logprob_diff = a.max_logprob_diff.max((lp - lq).abs());
        }
        let (p_rest, q_rest) = ((1.0 - p_top).max(1e-12), (1.0 - q_top).max(1e-12));
        kl += p_rest * (p_rest / q_rest).ln();
        a.mean_kl += kl;
        a.worst_kl = a.worst_kl.max(kl);
        let ours = row
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .map(|(i, _)| i as u32);
        a.same_top += usize::from(ours == top.first().copied());
    }
    a.mean_kl /= a.positions.max(1) as f64;
    a
}
