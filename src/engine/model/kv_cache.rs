//! A key/value cache we own: preallocated in blocks, truncatable, and snapshot-able.
//!
//! candle-transformers' `quantized_llama` concatenates the whole cache every token; here each
//! layer keeps one `(1, kv_heads, capacity, head_dim)` tensor per K and V that new positions are
//! written into in place. Capacity grows in blocks of [`KvCache::BLOCK`] positions up to the
//! context length, so a short chat never pays for a 4096-token cache.

use candle_core::{DType, Device, Tensor};

/// The cache of every layer, plus the token ids it holds.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<(Tensor, Tensor)>,
    tokens: Vec<u32>,
    capacity: usize,
    max_len: usize,
    n_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    device: Device,
}

/// A copy of the first positions of a cache, to restore later (e.g. a persona prefix).
#[derive(Debug, Clone)]
pub struct KvSnapshot {
    layers: Vec<(Tensor, Tensor)>,
    tokens: Vec<u32>,
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
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * 4)
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
        device: &Device,
    ) -> Self {
        Self {
            layers: Vec::new(),
            tokens: Vec::new(),
            capacity: 0,
            max_len,
            n_layers,
            kv_heads,
            head_dim,
            device: device.clone(),
        }
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

    /// Memory allocated, in bytes.
    pub fn allocated_bytes(&self) -> usize {
        2 * self.n_layers * self.kv_heads * self.head_dim * self.capacity * 4
    }

    /// Forgets every position after the first `len` (no copy; a later write overwrites them).
    pub fn truncate(&mut self, len: usize) {
        self.tokens.truncate(len);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.tokens.clear();
    }

    /// Copies the first `len` positions (clamped to what is cached).
    pub fn snapshot(&self, len: usize) -> candle_core::Result<KvSnapshot> {
        let len = len.min(self.len());
        let layers = if len == 0 {
            Vec::new()
        } else {
            self.layers
                .iter()
                .map(|(k, v)| Ok((owned(&k.narrow(2, 0, len)?)?, owned(&v.narrow(2, 0, len)?)?)))
                .collect::<candle_core::Result<_>>()?
        };
        Ok(KvSnapshot {
            layers,
            tokens: self.tokens[..len].to_vec(),
        })
    }

    /// Replaces the cache's content with a snapshot.
    pub fn restore(&mut self, snapshot: &KvSnapshot) -> candle_core::Result<()> {
        if snapshot.len() > self.max_len
            || (!snapshot.is_empty() && snapshot.layers.len() != self.n_layers)
        {
            candle_core::bail!(
                "snapshot of {} positions does not fit this model's cache",
                snapshot.len()
            );
        }
        self.reserve(snapshot.len())?;
        for ((k, v), (sk, sv)) in self.layers.iter().zip(&snapshot.layers) {
            k.slice_set(sk, 2, 0)?;
            v.slice_set(sv, 2, 0)?;
        }
        self.tokens.clear();
        self.tokens.extend_from_slice(&snapshot.tokens);
        Ok(())
    }

    /// Makes room for `needed` positions in total, growing in blocks.
    pub(crate) fn reserve(&mut self, needed: usize) -> candle_core::Result<()> {
        if needed <= self.capacity {
            return Ok(());
        }
        let capacity = needed
            .div_ceil(Self::BLOCK)
            .saturating_mul(Self::BLOCK)
            .min(self.max_len)
            .max(needed);
        let shape = (1, self.kv_heads, capacity, self.head_dim);
        let mut layers = Vec::with_capacity(self.n_layers);
        for i in 0..self.n_layers {
            let k = Tensor::zeros(shape, DType::F32, &self.device)?;
            let v = Tensor::zeros(shape, DType::F32, &self.device)?;
            if let Some((old_k, old_v)) = self.layers.get(i).filter(|_| !self.tokens.is_empty()) {
                let len = self.tokens.len();
                k.slice_set(&old_k.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
                v.slice_set(&old_v.narrow(2, 0, len)?.contiguous()?, 2, 0)?;
            }
            layers.push((k, v));
        }
        self.layers = layers;
        self.capacity = capacity;
        Ok(())
    }

    /// Writes the keys/values of new positions of layer `layer` at `pos` and returns views of
    /// all `pos + new` positions.
    pub(crate) fn append(
        &self,
        layer: usize,
        pos: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> candle_core::Result<(Tensor, Tensor)> {
        let (ck, cv) = &self.layers[layer];
        ck.slice_set(k, 2, pos)?;
        cv.slice_set(v, 2, pos)?;
        let len = pos + k.dim(2)?;
        Ok((ck.narrow(2, 0, len)?, cv.narrow(2, 0, len)?))
    }

    /// Records that `tokens` now follow the cached ones (after every layer was written).
    pub(crate) fn commit(&mut self, tokens: &[u32]) {
        self.tokens.extend_from_slice(tokens);
    }
}

/// A contiguous copy that shares no storage with `t` (candle's `contiguous` returns `t` itself
/// when it already is, and `copy` keeps a strided layout).
fn owned(t: &Tensor) -> candle_core::Result<Tensor> {
    if t.is_contiguous() {
        t.copy()
    } else {
        t.contiguous()
    }
}
