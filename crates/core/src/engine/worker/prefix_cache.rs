//! KV snapshots keyed by their token prefix, least-recently-used first out, within a byte budget.

use crate::engine::common_prefix;
use crate::engine::model::KvSnapshot;

/// A persona/conversation prefix cache.
#[derive(Debug)]
pub struct PrefixCache {
    entries: Vec<(KvSnapshot, u64)>,
    budget: usize,
    used: usize,
    clock: u64,
    hits: u64,
    misses: u64,
}

/// Counters of a [`PrefixCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PrefixCacheStats {
    /// Snapshots held.
    pub entries: usize,
    /// Bytes held.
    pub bytes: usize,
    /// Look-ups that found a prefix.
    pub hits: u64,
    /// Look-ups that found none.
    pub misses: u64,
}

impl PrefixCache {
    /// An empty cache holding at most `budget_bytes`.
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            entries: Vec::new(),
            budget: budget_bytes,
            used: 0,
            clock: 0,
            hits: 0,
            misses: 0,
        }
    }

    /// The cached snapshot sharing the longest common prefix with `tokens`, and that length,
    /// marked as used. Restore it and truncate to the length to reuse a conversation whose
    /// last turn was re-rendered slightly differently.
    pub fn best_match(&mut self, tokens: &[u32]) -> Option<(&KvSnapshot, usize)> {
        self.clock += 1;
        let best = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, (s, _))| (i, common_prefix(s.tokens(), tokens)))
            .filter(|&(_, common)| common > 0)
            .max_by_key(|&(_, common)| common);
        match best {
            Some((i, common)) => {
                self.hits += 1;
                self.entries[i].1 = self.clock;
                Some((&self.entries[i].0, common))
            }
            None => {
                self.misses += 1;
                None
            }
        }
    }

    /// The snapshot of exactly `tokens`, counted as a use.
    pub fn get(&mut self, tokens: &[u32]) -> Option<&KvSnapshot> {
        self.clock += 1;
        let clock = self.clock;
        let (s, used) = self
            .entries
            .iter_mut()
            .find(|(s, _)| s.tokens() == tokens)?;
        *used = clock;
        Some(s)
    }

    /// Whether a snapshot of exactly `tokens` is held.
    pub fn contains(&self, tokens: &[u32]) -> bool {
        self.entries.iter().any(|(s, _)| s.tokens() == tokens)
    }

    /// Adds a snapshot (replacing one of the same tokens), evicting the least recently used
    /// until it fits. Returns false when it is larger than the whole budget.
    pub fn insert(&mut self, snapshot: KvSnapshot) -> bool {
        let size = snapshot.size_bytes();
        if size > self.budget || snapshot.is_empty() {
            return false;
        }
        self.remove(snapshot.tokens());
        while self.used + size > self.budget {
            let Some(oldest) = self
                .entries
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(i, _)| i)
            else {
                break;
            };
            let (s, _) = self.entries.swap_remove(oldest);
            self.used -= s.size_bytes();
        }
        self.clock += 1;
        self.used += size;
        self.entries.push((snapshot, self.clock));
        true
    }

    /// Drops the snapshot of exactly `tokens`, if held.
    pub fn remove(&mut self, tokens: &[u32]) {
        if let Some(i) = self.entries.iter().position(|(s, _)| s.tokens() == tokens) {
            let (s, _) = self.entries.swap_remove(i);
            self.used -= s.size_bytes();
        }
    }

    /// Drops everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.used = 0;
    }

    /// Counters.
    pub fn stats(&self) -> PrefixCacheStats {
        PrefixCacheStats {
            entries: self.entries.len(),
            bytes: self.used,
            hits: self.hits,
            misses: self.misses,
        }
    }
}
