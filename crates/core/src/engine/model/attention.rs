//! Scaled dot-product attention straight over the KV cache (F16 or F32), grouped-query and
//! causal: one task per (query head, new position), shared out over the current rayon pool.
//! Keys and values are read where they are stored, converted lane by lane (F16C), never copied
//! or converted as a whole; the dot products and the weighted sums of values use the model's
//! instruction set ([`Isa`]) when the head size is a multiple of its vector width, plain Rust
//! otherwise.
#![allow(unsafe_code)] // SIMD attention; each unsafe block says why it is sound

use half::f16;
use rayon::prelude::*;

use super::kv_cache::{KvBuf, KvCache};
use super::simd::Simd;
use super::tiled::Isa;

/// The shape of one attention call.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Heads {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Positions cached before the new ones.
    pub pos: usize,
    /// New positions.
    pub seq: usize,
}

/// Attention of the new queries `q` (`[n_head][seq][head_dim]`, RoPE applied) over layer
/// `layer` of the cache, whose first `pos + seq` positions are written. Returns
/// `[seq][n_head][head_dim]`.
pub(crate) fn attend(
    q: &[f32],
    cache: &KvCache,
    layer: usize,
    s: Heads,
    isa: Option<Isa>,
) -> Vec<f32> {
    let (k, v, capacity) = cache.layer(layer);
    let hd = s.head_dim;
    let mut out = vec![0f32; s.seq * s.n_head * hd];
    out.par_chunks_mut(hd).enumerate().for_each(|(c, out)| {
        let (i, h) = (c / s.n_head, c % s.n_head);
        let g = h / (s.n_head / s.n_kv_head).max(1);
        let row = Row {
            q: &q[(h * s.seq + i) * hd..(h * s.seq + i + 1) * hd],
            at: g * capacity * hd,
            visible: s.pos + i + 1,
            hd,
        };
        match (k, v) {
            (KvBuf::F16(k), KvBuf::F16(v)) => row.run(k, v, isa, out),
            (KvBuf::F32(k), KvBuf::F32(v)) => row.run(k, v, isa, out),
            _ => unreachable!("keys and values share one type"),
        }
    });
    out
}

/// One query row's task.
struct Row<'a> {
    q: &'a [f32],
    /// Where its kv head starts in the layer buffers.
    at: usize,
    /// Positions it attends to (causal).
    visible: usize,
    hd: usize,
}

/// A stored key/value element.
trait Elem: Copy + Send + Sync {
    fn to_f32(self) -> f32;
    /// `S::ROWS` elements at `p` as floats.
    ///
    /// # Safety
    /// `S`'s features; `p` valid for `S::ROWS` elements.
    unsafe fn load<S: Simd>(p: *const Self) -> S::F;
}

impl Elem for f16 {
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const Self) -> S::F {
        // SAFETY: the caller's contract.
        unsafe { S::rows_f16(p.cast()) }
    }
}

impl Elem for f32 {
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    unsafe fn load<S: Simd>(p: *const Self) -> S::F {
        // SAFETY: the caller's contract.
        unsafe { S::fload(p) }
    }
}

impl Row<'_> {
    fn run<E: Elem>(&self, k: &[E], v: &[E], isa: Option<Isa>, out: &mut [f32]) {
        let end = self.at + self.visible * self.hd;
        assert!(end <= k.len() && end <= v.len() && out.len() == self.hd);
        let (k, v) = (&k[self.at..end], &v[self.at..end]);
        match isa {
            // SAFETY: the model only chooses an instruction set this CPU supports, and the
            // slices hold `visible` rows of `hd` (checked above), a multiple of the width.
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx512Vnni) if self.hd.is_multiple_of(16) => unsafe {
                x86::avx512(self, k, v, out)
            },
            // Heads of 8 (small models) on an AVX-512 CPU take the AVX2 form, which it has too.
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the CPU has this instruction set (checked when `isa` was chosen) and the sizes were checked above.
            Some(Isa::Avx512Vnni | Isa::Avx2Vnni | Isa::Avx2) if self.hd.is_multiple_of(8) => unsafe {
                x86::avx2(self, k, v, out)
            },
            _ => self.portable(k, v, out),
        }
    }

    /// Scores scaled by `1/√hd`, turned into weights in place (a numerically stable softmax).
    fn softmax(scores: &mut [f32]) {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for s in scores.iter_mut() {
            *s = (*s - max).exp();
            sum += *s;
        }
        let inv = 1.0 / sum;
        for s in scores.iter_mut() {
            *s *= inv;
        }
    }

    fn portable<E: Elem>(&self, k: &[E], v: &[E], out: &mut [f32]) {
        let scale = 1.0 / (self.hd as f32).sqrt();
        let mut scores: Vec<f32> = k
            .chunks_exact(self.hd)
            .map(|key| {
                let dot: f32 = key.iter().zip(self.q).map(|(k, q)| k.to_f32() * q).sum();
                dot * scale
            })
            .collect();
        Self::softmax(&mut scores);
        out.fill(0.0);
        for (p, value) in scores.iter().zip(v.chunks_exact(self.hd)) {
            for (o, x) in out.iter_mut().zip(value) {
                *o += p * x.to_f32();
            }
        }
    }

    /// The vector form of [`Row::portable`].
    ///
    /// # Safety
    /// `S`'s features; `hd` a multiple of `S::ROWS`; `k`, `v` hold `visible` rows of `hd`.
    #[inline(always)]
    unsafe fn vector<S: Simd, E: Elem>(&self, k: &[E], v: &[E], out: &mut [f32]) {
        let (hd, scale) = (self.hd, 1.0 / (self.hd as f32).sqrt());
        let mut scores = vec![0f32; self.visible];
        // SAFETY: every pointer below stays within its row of `hd` values.
        unsafe {
            for (j, s) in scores.iter_mut().enumerate() {
                let key = k.as_ptr().add(j * hd);
                let mut acc = S::fzero();
                for c in (0..hd).step_by(S::ROWS) {
                    acc = S::fmadd(
                        S::fload(self.q.as_ptr().add(c)),
                        E::load::<S>(key.add(c)),
                        acc,
                    );
                }
                *s = S::fsum(acc) * scale;
            }
            Self::softmax(&mut scores);
            out.fill(0.0);
            for (j, &p) in scores.iter().enumerate() {
                let value = v.as_ptr().add(j * hd);
                let p = S::fsplat(p);
                for c in (0..hd).step_by(S::ROWS) {
                    let o = out.as_mut_ptr().add(c);
                    S::fstore(o, S::fmadd(p, E::load::<S>(value.add(c)), S::fload(o)));
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::simd::x86::{Avx2, Avx512};
    use super::{Elem, Row};

    /// # Safety
    /// AVX-512 F; see [`Row::vector`].
    #[target_feature(enable = "avx512f,avx2,fma,f16c")]
    pub(super) unsafe fn avx512<E: Elem>(row: &Row<'_>, k: &[E], v: &[E], out: &mut [f32]) {
        // SAFETY: forwarded contract.
        unsafe { row.vector::<Avx512, E>(k, v, out) }
    }

    /// # Safety
    /// AVX2, FMA and F16C; see [`Row::vector`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn avx2<E: Elem>(row: &Row<'_>, k: &[E], v: &[E], out: &mut [f32]) {
        // SAFETY: forwarded contract.
        unsafe { row.vector::<Avx2, E>(k, v, out) }
    }
}
