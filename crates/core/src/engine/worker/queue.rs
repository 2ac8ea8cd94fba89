//! The worker's queue order (priority with ageing) and small helpers of the serving loop.

use crate::engine::backend::{BackendEvent, BackendRequest};
use crate::engine::generate::{FinishReason, GenerationStats};

use super::serve::Channels;

pub(super) struct Queued {
    pub priority: i32,
    pub seq: u64,
    pub request: BackendRequest,
    /// Priority gained while waiting (see [`Pending::pop`]).
    pub boost: i64,
    /// When it was queued.
    pub queued_at: std::time::Instant,
}

impl Queued {
    /// The priority it is served by: its own plus what it gained waiting.
    fn effective(&self) -> i64 {
        i64::from(self.priority) + self.boost
    }
}

/// The queue: highest effective priority first, then first come first served. Every time a
/// request is taken, each one left waiting gains `ageing` priority points, so a low-priority
/// request waits a bounded number of turns behind a stream of higher ones (priority ageing)
/// instead of starving.
pub(super) struct Pending {
    items: Vec<Queued>,
    ageing: i64,
}

impl Pending {
    pub fn new(ageing: i32) -> Self {
        Self {
            items: Vec::new(),
            ageing: i64::from(ageing.max(0)),
        }
    }

    pub fn push(&mut self, q: Queued) {
        self.items.push(q);
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn retain(&mut self, keep: impl FnMut(&Queued) -> bool) {
        self.items.retain(keep);
    }

    /// Takes the request to serve next; the others age.
    #[cfg(test)]
    pub fn pop(&mut self) -> Option<Queued> {
        self.pop_if(|_| true)
    }

    /// Takes the request to serve next among those `allowed` (a generation needs a free
    /// slot, the other requests do not); the others age.
    pub fn pop_if(&mut self, allowed: impl Fn(&Queued) -> bool) -> Option<Queued> {
        let best = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, q)| allowed(q))
            .max_by(|(_, a), (_, b)| a.effective().cmp(&b.effective()).then(b.seq.cmp(&a.seq)))
            .map(|(i, _)| i)?;
        let q = self.items.swap_remove(best);
        for other in &mut self.items {
            other.boost = other.boost.saturating_add(self.ageing);
        }
        Some(q)
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

/// `ln softmax(logits)[index]`.
pub(super) fn log_softmax_at(logits: &[f32], index: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits
        .get(index as usize)
        .map_or(f32::NEG_INFINITY, |l| l - max - sum.ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warm(seq: u64, priority: i32) -> Queued {
        Queued {
            priority,
            seq,
            request: BackendRequest::Warm {
                id: seq,
                system: String::new(),
                priority,
            },
            boost: 0,
            queued_at: std::time::Instant::now(),
        }
    }

    /// One low request behind a stream of high ones (a new one arriving after each turn).
    fn turns_waited(ageing: i32, gap: i32) -> Option<usize> {
        let mut q = Pending::new(ageing);
        q.push(warm(0, 0));
        for (seq, turn) in (1..).zip(0..20) {
            q.push(warm(seq, gap));
            if q.pop().map(|x| x.seq) == Some(0) {
                return Some(turn);
            }
        }
        None
    }

    #[test]
    fn priority_first_then_arrival() {
        let mut q = Pending::new(0);
        for (seq, p) in [(1, 5), (2, 9), (3, 5), (4, 9)] {
            q.push(warm(seq, p));
        }
        let order: Vec<u64> = std::iter::from_fn(|| q.pop().map(|x| x.seq)).collect();
        assert_eq!(order, [2, 4, 1, 3]);
    }

    #[test]
    fn ageing_bounds_the_wait() {
        // Strict priority starves the low request; with ageing it waits ⌈gap / ageing⌉ turns.
        assert_eq!(turns_waited(0, 3_000_000), None);
        assert_eq!(turns_waited(1_000_000, 3_000_000), Some(3));
        assert_eq!(turns_waited(1_000_000, 7_500_000), Some(8));
        assert_eq!(turns_waited(1_000_000, 0), Some(0));
    }
}
