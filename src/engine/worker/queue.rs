//! The worker's queue order and small helpers of the serving loop.

use crate::engine::backend::{BackendEvent, BackendRequest};
use crate::engine::generate::{FinishReason, GenerationStats};

use super::serve::Channels;

pub(super) struct Queued {
    pub priority: i32,
    pub seq: u64,
    pub request: BackendRequest,
}

impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.priority, self.seq) == (o.priority, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    /// Highest priority first, then first come first served.
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.priority.cmp(&o.priority).then(o.seq.cmp(&self.seq))
    }
}

pub(super) fn cancelled_before_start(request: &BackendRequest, ch: &Channels) {
    if let BackendRequest::Generate(r) = request {
        let _ = ch.events.send(BackendEvent::Finished {
            id: r.id,
            reason: FinishReason::Cancelled,
            text: String::new(),
            stats: GenerationStats::default(),
            dropped_turns: 0,
        });
    }
}

pub(super) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// `ln softmax(logits)[index]`.
pub(super) fn log_softmax_at(logits: &[f32], index: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits
        .get(index as usize)
        .map_or(f32::NEG_INFINITY, |l| l - max - sum.ln())
}
