//! A key/value cache we own: F16 by default (half the memory of F32, as llama.cpp's default),
//! preallocated in blocks, truncatable, snapshot-able, and shiftable.
//!
//! Each layer keeps one buffer for keys and one for values, `[kv_heads][capacity][head_dim]`,
//! that new positions are written into in place ([`super::attention`] reads them directly).
//! Capacity grows in blocks of [`KvCache::BLOCK`] positions up to the context length, so a short
//! chat never pays for a 4096-token cache. [`KvCache::discard`] removes a range of positions and
//! moves the later ones down, re-rotating their keys' RoPE angles to their new positions (a
//! context shift: what follows a dropped exchange is kept instead of recomputed).

use crate::engine::config::RopeStyle;
use std::ops::Range;

use half::f16;

/// How the cache stores keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvType {
    /// 16-bit floats (default): half the memory; llama.cpp's default too.
    #[default]
    F16,
    /// 32-bit floats.
    F32,
}

impl KvType {
    /// Bytes per stored value.
    pub fn bytes(self) -> usize {
        match self {
            Self::F16 => 2,
            Self::F32 => 4,
        }
    }
}

/// Keys or values of one layer.
#[derive(Debug, Clone)]
pub(crate) enum KvBuf {
    F16(Vec<f16>),
    F32(Vec<f32>),
}

impl KvBuf {
    fn zeros(ty: KvType, n: usize) -> Self {
        match ty {
            KvType::F16 => Self::F16(vec![f16::ZERO; n]),
            KvType::F32 => Self::F32(vec![0.0; n]),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::F16(v) => v.len(),
            Self::F32(v) => v.len(),
        }
    }

    /// Stores `src` at `at`.
    fn write(&mut self, at: usize, src: &[f32]) {
        match self {
            Self::F16(v) => {
                for (d, s) in v[at..at + src.len()].iter_mut().zip(src) {
                    *d = f16::from_f32(*s);
                }
            }
            Self::F32(v) => v[at..at + src.len()].copy_from_slice(src),
        }
    }

    /// Copies `n` values from `src` (of the same type) at `from` to `at`.
    fn copy_from(&mut self, at: usize, src: &KvBuf, from: usize, n: usize) {
        match (self, src) {
            (Self::F16(d), Self::F16(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            (Self::F32(d), Self::F32(s)) => d[at..at + n].copy_from_slice(&s[from..from + n]),
            _ => unreachable!("one cache holds one value type"),
        }
    }

    /// Moves `range` to start at `at` within the buffer.
    fn move_within(&mut self, range: Range<usize>, at: usize) {
        match self {
            Self::F16(v) => v.copy_within(range, at),
            Self::F32(v) => v.copy_within(range, at),
        }
    }

    /// Rotates the RoPE pairs of the `head_dim` values at `at` (`(2i, 2i + 1)`, or `(i, i + d/2)`
    /// for NEOX), pair `i` by the angle whose sine and cosine are `turns[i]`.
    fn rotate(&mut self, at: usize, turns: &[(f64, f64)], style: RopeStyle) {
        let pair = |x0: f32, x1: f32, (sin, cos): (f64, f64)| {
            let (x0, x1) = (f64::from(x0), f64::from(x1));
            ((x0 * cos - x1 * sin) as f32, (x0 * sin + x1 * cos) as f32)
        };
        let half = turns.len();
        let at_pair = |i: usize| match style {
            RopeStyle::Interleaved => (at + 2 * i, at + 2 * i + 1),
            RopeStyle::Neox => (at + i, at + i + half),
        };
        match self {
            Self::F16(v) => {
                for (i, &turn) in turns.iter().enumerate() {
                    let (x, y) = at_pair(i);
                    let (a, b) = pair(v[x].to_f32(), v[y].to_f32(), turn);
                    v[x] = f16::from_f32(a);
                    v[y] = f16::from_f32(b);
                }
            }
            Self::F32(v) => {
                for (i, &turn) in turns.iter().enumerate() {
                    let (x, y) = at_pair(i);
                    let (a, b) = pair(v[x], v[y], turn);
                    v[x] = a;
                    v[y] = b;
                }
            }
        }
    }
}

/// The cache of every layer, plus the token ids it holds.
#[derive(Debug)]
pub struct KvCache {
    /// Per layer: keys and values, `[kv_heads][capacity][head_dim]`.
    layers: Vec<(KvBuf, KvBuf)>,
    tokens: Vec<u32>,
    capacity: usize,
    max_len: usize,
    n_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    ty: KvType,
}

/// A copy of the first positions of a cache, to restore later (e.g. a persona prefix).
#[derive(Debug, Clone)]
pub struct KvSnapshot {
    /// Per layer: keys and values, `[kv_heads][len][head_dim]`.
    layers: Vec<(KvBuf, KvBuf)>,
    tokens: Vec<u32>,
    ty: KvType,
}

impl KvSnapshot {
    /// The token ids the snapshot covers.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Number of positions.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether it covers no position.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Memory held, in bytes.
    pub fn size_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|(k, v)| (k.len() + v.len()) * self.ty.bytes())
            .sum()
    }
}

impl KvCache {
    /// Positions added at a time when the cache grows.
    pub const BLOCK: usize = 256;

    pub(crate) fn new(
        n_layers: usize,
        kv_heads: usize,
        head_dim: usize,
        max_len: usize,
        ty: KvType,
    ) -> Self {
        Self {
            layers: Vec::new(),
            tokens: Vec::new(),
            capacity: 0,
            max_len,
            n_layers,
            kv_heads,
            head_dim,
            ty,
        }
    }

    /// Whether `other` has this cache's layout (layers, heads, head size, length, type).
    pub(crate) fn same_layout(&self, other: &KvCache) -> bool {
        (
            self.n_layers,
            self.kv_heads,
            self.head_dim,
            self.max_len,
            self.ty,
        ) == (
            other.n_layers,
            other.kv_heads,
            other.head_dim,
            other.max_len,
            other.ty,
        )
    }

    /// Number of cached positions.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token ids whose keys and values are cached, in order.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Positions allocated (at least [`len`](Self::len)).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The most positions the cache may hold (the context length).
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// How keys and values are stored.
    pub fn kv_type(&self) -> KvType {
        self.ty
    }

    /// Bytes one cached position takes (keys and values of every layer).
    pub fn bytes_per_position(&self) -> usize {
        2 * self.n_layers * self.kv_heads * self.head_dim * self.ty.bytes()
    }

    /// Memory allocated, in bytes.
    pub fn allocated_bytes(&self) -> usize {
        self.bytes_per_position() * self.capacity
    }

    /// Forgets every position after the first `len` (no copy; a later write overwrites them).
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Where position `p` of head `h` starts in a layer buffer of `capacity` positions.
    fn at(&self, capacity: usize, h: usize, p: usize) -> usize {
        (h * capacity + p) * self.head_dim
    }

    /// Copies the first `len` positions (clamped to what is cached).
    pub fn snapshot(&self, len: usize) -> KvSnapshot {
        let len = len.min(self.len());
        let n = self.kv_heads * len * self.head_dim;
        let layers = if len == 0 {
            Vec::new()
        } else {
            self.layers
                .iter()
                .map(|(k, v)| {
                    let copy = |src: &KvBuf| {
                        let mut out = KvBuf::zeros(self.ty, n);
                        for h in 0..self.kv_heads {
                            let from = self.at(self.capacity, h, 0);
                            out.copy_from(self.at(len, h, 0), src, from, len * self.head_dim);
                        }
                        out
                    };
                    (copy(k), copy(v))
                })
                .collect()
        };
        KvSnapshot {
            layers,
            tokens: self.tokens[..len].to_vec(),
            ty: self.ty,
        }
    }

    /// Replaces the cache's content with a snapshot.
    pub fn restore(&mut self, snapshot: &KvSnapshot) -> Result<(), KvError> {
        let len = snapshot.len();
        if len > self.max_len
            || snapshot.ty != self.ty
            || (len > 0 && snapshot.layers.len() != self.n_layers)
        {
            return Err(KvError::Incompatible(len));
        }
        self.reserve(len)?;
        let capacity = self.capacity;
        let (kv_heads, hd) = (self.kv_heads, self.head_dim);
        for ((k, v), (sk, sv)) in self.layers.iter_mut().zip(&snapshot.layers) {
            for h in 0..kv_heads {
                let (at, from) = ((h * capacity) * hd, (h * len) * hd);
                k.copy_from(at, sk, from, len * hd);
                v.copy_from(at, sv, from, len * hd);
            }
        }
        self.tokens.clear();
        self.tokens.extend_from_slice(&snapshot.tokens);
        Ok(())
    }

    /// Makes room for `needed` positions in total, growing in blocks.
    pub(crate) fn reserve(&mut self, needed: usize) -> Result<(), KvError> {
        if needed <= self.capacity {
            return Ok(());
        }
        if needed > self.max_len {
            return Err(KvError::Full {
                needed,
                context: self.max_len,
            });
        }
        let capacity = needed
            .div_ceil(Self::BLOCK)
            .saturating_mul(Self::BLOCK)
            .min(self.max_len)
            .max(needed);
        let n = self.kv_heads * capacity * self.head_dim;
        let len = self.tokens.len();
        let mut layers = Vec::with_capacity(self.n_layers);
        for i in 0..self.n_layers {
            let (mut k, mut v) = (KvBuf::zeros(self.ty, n), KvBuf::zeros(self.ty, n));
            if let Some((old_k, old_v)) = self.layers.get(i) {
                for h in 0..self.kv_heads {
                    let (at, from) = (self.at(capacity, h, 0), self.at(self.capacity, h, 0));
                    k.copy_from(at, old_k, from, len * self.head_dim);
                    v.copy_from(at, old_v, from, len * self.head_dim);
                }
            }
            layers.push((k, v));
        }
        self.layers = layers;
        self.capacity = capacity;
        Ok(())
    }

    /// Writes the keys and values of new positions of layer `layer` at `pos`: `k` and `v` are
    /// `[kv_heads][seq][head_dim]`. The capacity must have been reserved.
    pub(crate) fn write(&mut self, layer: usize, pos: usize, k: &[f32], v: &[f32]) {
        let seq = k.len() / (self.kv_heads * self.head_dim);
        let (capacity, hd) = (self.capacity, self.head_dim);
        let (ck, cv) = &mut self.layers[layer];
        for h in 0..self.kv_heads {
            let at = (h * capacity + pos) * hd;
            let from = h * seq * hd;
            ck.write(at, &k[from..from + seq * hd]);
            cv.write(at, &v[from..from + seq * hd]);
        }
    }

    /// Layer `layer`'s keys and values and the distance between heads (the capacity).
    pub(crate) fn layer(&self, layer: usize) -> (&KvBuf, &KvBuf, usize) {
        let (k, v) = &self.layers[layer];
        (k, v, self.capacity)
    }

    /// Records that `tokens` now follow the cached ones (after every layer was written).
    pub(crate) fn commit(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
    }

    /// Removes positions `range` and moves the later ones down by its length, re-rotating
    /// their keys by RoPE angle `−len × freqs[i]` so they are exactly as if computed at their
    /// new positions (up to the cache's rounding). `freqs` are the model's RoPE frequencies.
    pub(crate) fn discard(&mut self, range: Range<usize>, freqs: &[f64], style: RopeStyle) {
        let len = self.tokens.len();
        let (start, end) = (range.start.min(len), range.end.min(len));
        if start >= end {
            return;
        }
        let shift = end - start;
        // The angle depends on the pair and the shift only: one table for every key.
        let turns: Vec<(f64, f64)> = freqs
            .iter()
            .map(|f| (-(shift as f64) * f).sin_cos())
            .collect();
        let (capacity, hd, kv_heads) = (self.capacity, self.head_dim, self.kv_heads);
        for (k, v) in &mut self.layers {
            for h in 0..kv_heads {
                let head = h * capacity * hd;
                let moved = head + end * hd..head + len * hd;
                k.move_within(moved.clone(), head + start * hd);
                v.move_within(moved, head + start * hd);
                for p in start..len - shift {
                    k.rotate(head + p * hd, &turns, style);
                }
            }
        }
        self.tokens.drain(start..end);
    }
}

/// A cache operation that cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// More positions than the context holds.
    #[error("the context window is full: {needed} positions needed, the context holds {context}")]
    Full {
        /// Positions needed.
        needed: usize,
        /// The context length.
        context: usize,
    },
    /// The snapshot was taken from another model or cache type.
    #[error("a snapshot of {0} positions does not fit this model's cache")]
    Incompatible(usize),
}

#[cfg(test)]
mod tests {
    use super::{KvCache, KvType};
    use crate::engine::config::RopeStyle;

    /// `x` rotated as RoPE does at position `p`, written out independently of the cache's code:
    /// interleaved pairs `(2i, 2i + 1)`, or NEOX's halves `(i, i + d/2)`.
    fn rope(x: &[f32], p: usize, freqs: &[f64], style: RopeStyle) -> Vec<f32> {
        let mut out = x.to_vec();
        for (i, f) in freqs.iter().enumerate() {
            let (sin, cos) = (p as f64 * f).sin_cos();
            let (ia, ib) = match style {
                RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                RopeStyle::Neox => (i, i + freqs.len()),
            };
            let (a, b) = (f64::from(x[ia]), f64::from(x[ib]));
            out[ia] = (a * cos - b * sin) as f32;
            out[ib] = (a * sin + b * cos) as f32;
        }
        out
    }

    /// After a discard, every moved key equals RoPE at its new position and every value is
    /// unchanged, for both storage types and both RoPE styles, across two heads and two layers.
    #[test]
    fn discard_re_rotates_keys_to_their_new_positions() {
        for style in [RopeStyle::Interleaved, RopeStyle::Neox] {
            discard_re_rotates(style);
        }
    }

    fn discard_re_rotates(style: RopeStyle) {
        let freqs = [1.0, 0.1, 0.01, 0.001];
        let raw = |p: usize, h: usize| -> Vec<f32> {
            (0..8)
                .map(|i| ((p * 31 + h * 7 + i * 3) % 17) as f32 / 8.0 - 1.0)
                .collect()
        };
        for (ty, bound) in [(KvType::F32, 1e-5), (KvType::F16, 2e-2)] {
            let mut cache = KvCache::new(2, 2, 8, 64, ty);
            cache.reserve(10).unwrap();
            let heads = |p: usize, rotate: bool| -> Vec<f32> {
                (0..2)
                    .flat_map(|h| {
                        if rotate {
                            rope(&raw(p, h), p, &freqs, style)
                        } else {
                            raw(p, h)
                        }
                    })
                    .collect()
            };
            for p in 0..10 {
                for layer in 0..2 {
                    cache.write(layer, p, &heads(p, true), &heads(p, false));
                }
                cache.commit(&[p as u32]);
            }
            cache.discard(2..5, &freqs, style);
            assert_eq!(cache.tokens(), &[0, 1, 5, 6, 7, 8, 9]);
            let snap = cache.snapshot(7);
            for (new, old) in [(0, 0), (1, 1), (2, 5), (4, 7), (6, 9)] {
                for h in 0..2 {
                    let want_k = rope(&raw(old, h), new, &freqs, style);
                    let want_v = raw(old, h);
                    for (layer, (k, v)) in snap.layers.iter().enumerate() {
                        let at = (h * 7 + new) * 8;
                        let get = |b: &super::KvBuf, i: usize| match b {
                            super::KvBuf::F16(x) => x[at + i].to_f32(),
                            super::KvBuf::F32(x) => x[at + i],
                        };
                        for i in 0..8 {
                            let (dk, dv) = (get(k, i) - want_k[i], get(v, i) - want_v[i]);
                            assert!(
                                dk.abs() < bound,
                                "{style:?} {ty:?} layer {layer} p {new}: key {dk}"
                            );
                            assert!(dv.abs() < bound, "{ty:?} layer {layer} p {new}: value {dv}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn snapshots_round_trip_and_refuse_other_caches() {
        let mut cache = KvCache::new(1, 1, 2, 8, KvType::F16);
        cache.reserve(3).unwrap();
        cache.write(0, 0, &[1.0, 2.0, 3.0, 4.0], &[5.0, 6.0, 7.0, 8.0]);
        cache.commit(&[7, 8]);
        let snap = cache.snapshot(5);
        assert_eq!((snap.len(), snap.size_bytes()), (2, 2 * 2 * 2 * 2));
        let mut other = KvCache::new(1, 1, 2, 8, KvType::F16);
        other.restore(&snap).unwrap();
        assert_eq!(other.snapshot(2).layers[0].0.len(), 4);
        assert_eq!(other.tokens(), &[7, 8]);
        let mut f32_cache = KvCache::new(1, 1, 2, 8, KvType::F32);
        assert!(f32_cache.restore(&snap).is_err());
        assert!(cache.reserve(9).is_err());
        assert_eq!(cache.bytes_per_position(), 2 * 2 * 2);
    }
}
