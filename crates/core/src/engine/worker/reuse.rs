//! Reusing a cached conversation after its oldest turns were dropped (a context shift): the
//! turns that remain are already in the cache, only further along. [`plan`] finds, after the
//! common prefix, the cached chunks that the new prompt repeats in order, and which cached
//! ranges to discard so each chunk moves into place; the model then moves them
//! ([`crate::engine::model::LlamaModel::discard`]: a copy and a key re-rotation instead of a
//! prefill). As in llama.cpp's context shift, the moved positions keep what they computed with
//! the dropped turns in view.

use crate::engine::common_prefix;
use std::ops::Range;

/// The shortest run of tokens worth moving instead of recomputing.
pub(super) const MIN_CHUNK: usize = 16;

/// What to discard from the cache (in order, each range in the positions the cache has after
/// the previous discards) so that it starts with the longest reusable prefix of `prompt`, and
/// that prefix's length. At least one prompt token is always left to compute.
pub(super) fn plan(cached: &[u32], prompt: &[u32]) -> (Vec<Range<usize>>, usize) {
    let limit = prompt.len().saturating_sub(1);
    let mut cache = cached.to_vec();
    let matching =
        |cache: &[u32], from: usize, at: usize| common_prefix(&cache[from..], &prompt[at..limit]);
    let mut reused = matching(&cache, 0, 0);
    let mut discards = Vec::new();
    while reused < limit {
        let found = (reused + 1..cache.len())
            .map(|j| (j, matching(&cache, j, reused)))
            .find(|&(_, run)| run >= MIN_CHUNK);
        let Some((j, run)) = found else { break };
        discards.push(reused..j);
        cache.drain(reused..j);
        reused += run;
    }
    (discards, reused)
}

#[cfg(test)]
mod tests {
    use super::{MIN_CHUNK, plan};

    fn seq(range: std::ops::Range<u32>) -> Vec<u32> {
        range.collect()
    }

    #[test]
    fn the_kept_turns_move_into_place() {
        // persona 0..20, old turn 100..140, kept turns 200..260, reply 300..310.
        let cached = [seq(0..20), seq(100..140), seq(200..260), seq(300..310)].concat();
        // New prompt: persona, the kept turns from their second token, the reply, a new turn.
        let prompt = [seq(0..20), seq(201..260), seq(300..310), seq(400..420)].concat();
        let (discards, reused) = plan(&cached, &prompt);
        assert_eq!(discards, vec![20..61]);
        assert_eq!(reused, 20 + 59 + 10);
        // Applying the plan leaves the cache starting with the prompt's first `reused` tokens.
        let mut cache = cached.clone();
        for d in discards {
            cache.drain(d);
        }
        assert_eq!(&cache[..reused], &prompt[..reused]);
        // A token the cache never saw right after the prefix (a re-rendered join) ends reuse:
        // chunks only move to where the prompt continues them.
        let joined = [seq(0..20), vec![900], seq(201..260)].concat();
        assert_eq!(plan(&cached, &joined), (vec![], 20));
    }

    #[test]
    fn short_runs_are_recomputed_and_the_last_token_always() {
        let cached = [seq(0..10), seq(50..50 + MIN_CHUNK as u32 - 1)].concat();
        let prompt = [seq(0..10), seq(50..50 + MIN_CHUNK as u32 - 1), vec![7]].concat();
        assert_eq!(plan(&cached, &prompt), (vec![], 10 + MIN_CHUNK - 1));
        let short = [seq(0..10), vec![1], seq(50..50 + MIN_CHUNK as u32 - 1)].concat();
        assert_eq!(plan(&cached, &short).1, 10);
        assert_eq!(plan(&cached, &cached), (vec![], cached.len() - 1));
        assert_eq!(plan(&[], &[1, 2]), (vec![], 0));
        assert_eq!(plan(&cached, &[]), (vec![], 0));
    }
}
