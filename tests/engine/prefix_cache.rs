//! The prefix cache: LRU eviction within the byte budget, longest-common-prefix matching.

use crate::common;

use bevy_llama_dialogue::engine::gguf::GgufFile;
use bevy_llama_dialogue::engine::model::{KvSnapshot, LlamaModel, ModelOptions};
use bevy_llama_dialogue::engine::worker::PrefixCache;

fn snapshots() -> (KvSnapshot, KvSnapshot, KvSnapshot) {
    let path = common::model("stories260K.gguf");
    let mut m = LlamaModel::load(&GgufFile::open(path).unwrap(), &ModelOptions::default()).unwrap();
    let mut snap = |tokens: &[u32]| {
        m.clear_cache();
        m.forward_last(tokens).unwrap();
        m.snapshot(tokens.len()).unwrap()
    };
    (
        snap(&[1, 10, 11, 12, 13, 14, 15, 16]),
        snap(&[1, 20, 21, 22, 23, 24, 25, 26]),
        snap(&[1, 10, 11, 12, 13, 30, 31, 32]),
    )
}

#[test]
fn least_recently_used_is_evicted_within_the_budget() {
    let (a, b, c) = snapshots();
    let size = a.size_bytes();
    assert_eq!(size, b.size_bytes());
    let mut cache = PrefixCache::new(2 * size);
    assert!(cache.insert(a.clone()));
    assert!(cache.insert(b.clone()));
    // Touch `a`, so `b` is the least recently used when `c` comes in.
    assert_eq!(
        cache
            .best_match(&[1, 10, 11, 12, 13, 14, 15, 16, 99])
            .map(|(s, n)| (s.len(), n)),
        Some((8, 8))
    );
    assert!(cache.insert(c.clone()));
    assert!(
        cache.contains(a.tokens()) && cache.contains(c.tokens()) && !cache.contains(b.tokens())
    );
    let stats = cache.stats();
    assert_eq!((stats.entries, stats.bytes, stats.hits), (2, 2 * size, 1));
    // Too big for the whole budget: refused, nothing evicted.
    let mut tiny = PrefixCache::new(size - 1);
    assert!(!tiny.insert(a));
    assert_eq!(tiny.stats().entries, 0);
}

#[test]
fn best_match_is_the_longest_common_prefix() {
    let (a, b, c) = snapshots();
    let mut cache = PrefixCache::new(usize::MAX);
    for s in [a, b, c] {
        cache.insert(s);
    }
    // Shares 6 tokens with `c`, 5 with `a`.
    let (s, n) = cache.best_match(&[1, 10, 11, 12, 13, 30, 77]).unwrap();
    assert_eq!((s.tokens()[5], n), (30, 6));
    assert!(cache.best_match(&[5, 6]).is_none());
    assert_eq!(cache.stats().misses, 1);
}
