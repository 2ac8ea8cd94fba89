//! Activations quantized for the tiled kernels exactly as llama.cpp's x86 build quantizes them
//! for each weight format, so our products equal its (and candle's) to float rounding:
//!
//! - **Q8_0** (for Q4_0 and Q8_0 weights): per 32 values `d = amax / 127` rounded to f16,
//!   `q = nearest(x · 127 / amax)` (llama.cpp's AVX code; its scalar reference and candle round
//!   ties away from zero instead, which only differs when a product lands exactly on a half).
//! - **Q8_K** (for the K-quants): per 256 values, with `max` the value of largest magnitude,
//!   `iscale = −127 / max`, `q = nearest(iscale · x)` capped at 127, `d = 1 / iscale`
//!   (llama.cpp's `quantize_row_q8_K_ref`, which its x86 build uses).
//!
//! `nearest` rounds half to even with a float addition and integer bit operations (llama.cpp's
//! `nearest_int`), so these loops vectorize with plain SSE2 too: a game that builds the crate
//! for the baseline x86-64 target loses nothing here.
//!
//! Besides the values and scales, each block carries the sums of its values per group (the
//! whole 32-value block for Q8_0, every 16 values for Q8_K), which the kernels use for offsets
//! and minima.

/// How activations are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ActsKind {
    /// 32-value blocks with an f16-rounded scale.
    Q8_0,
    /// 256-value blocks with an f32 scale and sums per 16 values.
    Q8K,
}

impl ActsKind {
    /// Values per block.
    pub(super) const fn block(self) -> usize {
        match self {
            Self::Q8_0 => 32,
            Self::Q8K => 256,
        }
    }

    /// Sums per block.
    pub(super) const fn groups(self) -> usize {
        match self {
            Self::Q8_0 => 1,
            Self::Q8K => 16,
        }
    }
}

/// Quantized activations, row-major: values, a scale per block and sums per group.
pub(super) struct Acts {
    pub(super) kind: ActsKind,
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
    pub(super) sums: Vec<i32>,
    /// Q8_K only, [`PAIRS`] per block: the sums per 32 values two by two, then the sums per 16
    /// two by two, each pair as two 16-bit halves (low: the first) for `Simd::dot_i16`.
    pub(super) pairs: Vec<i32>,
    /// Q8_0 only, one per block: `Σ a` as llama.cpp's Q8_1 keeps it (`s = f16(d × Σ q)`), for
    /// the minima of Q4_1 weights. Made once here, not once per weight tile.
    pub(super) totals: Vec<f32>,
    pub(super) blocks_per_row: usize,
}

/// Sum pairs per Q8_K block: 4 of sums per 32, then 8 of sums per 16.
pub(super) const PAIRS: usize = 12;

/// Two sums as the 16-bit halves of one lane (each fits: at most 32 × 128).
fn pair(lo: i32, hi: i32) -> i32 {
    (lo & 0xFFFF) | (hi << 16)
}

impl Acts {
    /// Quantizes `m` rows of `cols` values (`cols` a multiple of the kind's block).
    pub(super) fn quantize(kind: ActsKind, x: &[f32], m: usize, cols: usize) -> Self {
        let (block, groups) = (kind.block(), kind.groups());
        let blocks_per_row = cols / block;
        let n = m * blocks_per_row;
        let pairs = if kind == ActsKind::Q8K { n * PAIRS } else { 0 };
        let mut acts = Self {
            kind,
            quants: vec![0; n * block],
            scales: vec![0.0; n],
            sums: vec![0; n * groups],
            pairs: vec![0; pairs],
            totals: Vec::new(),
            blocks_per_row,
        };
        let chunks = x[..m * cols].chunks_exact(block);
        let outs = acts.quants.chunks_exact_mut(block);
        let sums = acts.sums.chunks_exact_mut(groups);
        for (((src, q), d), sums) in chunks.zip(outs).zip(&mut acts.scales).zip(sums) {
            *d = match kind {
                ActsKind::Q8_0 => quantize_q8_0(src, q),
                ActsKind::Q8K => quantize_q8_k(src, q),
            };
            for (sum, group) in sums.iter_mut().zip(q.chunks_exact(block / groups)) {
                *sum = group.iter().map(|&v| i32::from(v)).sum();
            }
        }
        if kind == ActsKind::Q8_0 {
            acts.totals = acts
                .scales
                .iter()
                .zip(&acts.sums)
                .map(|(&d, &sum)| half::f16::from_f32(d * sum as f32).to_f32())
                .collect();
        }
        if kind == ActsKind::Q8K {
            for (s, p) in acts
                .sums
                .chunks_exact(16)
                .zip(acts.pairs.chunks_exact_mut(PAIRS))
            {
                for i in 0..4 {
                    p[i] = pair(s[4 * i] + s[4 * i + 1], s[4 * i + 2] + s[4 * i + 3]);
                }
                for i in 0..8 {
                    p[4 + i] = pair(s[2 * i], s[2 * i + 1]);
                }
            }
        }
        acts
    }

    /// Pointers to the sum pairs ([`PAIRS`] per block) of rows `first..first + T` (Q8_K).
    pub(super) fn pairs<const T: usize>(&self, first: usize) -> [*const i32; T] {
        let nb = self.blocks_per_row;
        std::array::from_fn(|t| self.pairs.as_ptr().wrapping_add((first + t) * nb * PAIRS))
    }

    /// Pointers to the values, scales and sums of rows `first..first + T`. A kernel reads
    /// block `b < blocks_per_row` of each, after `tiled::check_tile`.
    pub(super) fn rows<const T: usize>(
        &self,
        first: usize,
    ) -> ([*const i8; T], [*const f32; T], [*const i32; T]) {
        let (nb, block, groups) = (self.blocks_per_row, self.kind.block(), self.kind.groups());
        (
            std::array::from_fn(|t| self.quants.as_ptr().wrapping_add((first + t) * nb * block)),
            std::array::from_fn(|t| self.scales.as_ptr().wrapping_add((first + t) * nb)),
            std::array::from_fn(|t| self.sums.as_ptr().wrapping_add((first + t) * nb * groups)),
        )
    }

    /// Pointers to the block totals ([`Acts::totals`], Q8_0) of rows `first..first + T`.
    pub(super) fn totals<const T: usize>(&self, first: usize) -> [*const f32; T] {
        let nb = self.blocks_per_row;
        std::array::from_fn(|t| self.totals.as_ptr().wrapping_add((first + t) * nb))
    }
}

/// Rounds to the nearest integer, ties to even (valid for `|x| < 2²²`): adding 1.5 × 2²³ leaves
/// the rounded integer in the low bits of the mantissa.
#[inline(always)]
fn nearest(x: f32) -> i32 {
    let v = x + 12_582_912.0;
    (v.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// One Q8_0 block; returns its scale.
fn quantize_q8_0(x: &[f32], q: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    for (q, v) in q.iter_mut().zip(x) {
        *q = nearest(v * id) as i8;
    }
    half::f16::from_f32(amax / 127.0).to_f32()
}

/// One Q8_K block; returns its scale.
fn quantize_q8_k(x: &[f32], q: &mut [i8]) -> f32 {
    let (mut amax, mut max) = (0f32, 0f32);
    for &v in x {
        if v.abs() > amax {
            amax = v.abs();
            max = v;
        }
    }
    if amax == 0.0 {
        q.fill(0);
        return 0.0;
    }
    let iscale = -127.0 / max;
    for (q, v) in q.iter_mut().zip(x) {
        *q = nearest(iscale * v).min(127) as i8;
    }
    1.0 / iscale
}

#[cfg(test)]
mod tests {
    use super::{Acts, ActsKind};

    #[test]
    fn q8_k_blocks_match_the_reference_rule() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let acts = Acts::quantize(ActsKind::Q8K, &x, 2, 256);
        assert_eq!(acts.scales.len(), 2);
        for (b, chunk) in x.chunks_exact(256).enumerate() {
            let max = chunk
                .iter()
                .copied()
                .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            assert_eq!(acts.scales[b], max / -127.0);
            let q = &acts.quants[b * 256..(b + 1) * 256];
            // The value of largest magnitude maps to −127 (the scale is negative for a positive max).
            let at = chunk.iter().position(|&v| v == max).unwrap();
            assert_eq!(q[at], -127);
            for (g, sum) in acts.sums[b * 16..(b + 1) * 16].iter().enumerate() {
                let want: i32 = q[g * 16..(g + 1) * 16].iter().map(|&v| i32::from(v)).sum();
                assert_eq!(*sum, want);
            }
        }
        let p = &acts.pairs[..super::PAIRS];
        let s = &acts.sums[..16];
        let half = |v: i32, hi: bool| if hi { v >> 16 } else { (v << 16) >> 16 };
        assert_eq!(
            (half(p[1], false), half(p[1], true)),
            (s[4] + s[5], s[6] + s[7])
        );
        assert_eq!((half(p[4 + 3], false), half(p[4 + 3], true)), (s[6], s[7]));
        let zeros = Acts::quantize(ActsKind::Q8K, &[0.0; 256], 1, 256);
        assert_eq!((zeros.scales[0], zeros.sums[3]), (0.0, 0));
    }

    #[test]
    fn nearest_rounds_half_to_even() {
        for (x, want) in [
            (0.0, 0),
            (0.49999997, 0),
            (0.5, 0),
            (1.5, 2),
            (2.5, 2),
            (-2.5, -2),
            (-3.5, -4),
            (126.6, 127),
            (-127.0, -127),
        ] {
            assert_eq!(super::nearest(x), want, "{x}");
        }
    }

    /// Ties round to even, as llama.cpp's `nearest_int` does (candle rounds them away from zero,
    /// so a K-quant product can differ from candle's by one activation step at a tie).
    #[test]
    fn q8_k_ties_round_to_even() {
        let mut x = vec![0.0f32; 256];
        x[..5].copy_from_slice(&[-127.0, 2.5, 3.5, -2.5, 0.5]);
        let acts = Acts::quantize(ActsKind::Q8K, &x, 1, 256);
        assert_eq!(acts.scales[0], 1.0);
        assert_eq!(&acts.quants[..5], &[-127, 2, 4, -2, 0]);
    }

    #[test]
    fn q8_0_sums_are_per_block() {
        let x: Vec<f32> = (0..64).map(|i| i as f32 - 20.0).collect();
        let acts = Acts::quantize(ActsKind::Q8_0, &x, 1, 64);
        assert_eq!(acts.sums.len(), 2);
        assert_eq!(
            acts.sums[0],
            acts.quants[..32].iter().map(|&v| i32::from(v)).sum::<i32>()
        );
    }
}
