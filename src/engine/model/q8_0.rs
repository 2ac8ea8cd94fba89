//! Our own Q8_0 × Q8_0 matrix-vector product (decode) with AVX-512 VNNI (see `q4_0`).
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so activations are stored as `q + 128` and the
//! `128 × Σ w` this adds is removed per block with the weight block sums computed at load.

use super::parallel::par_row_chunks;

const BLOCK_BYTES: usize = 34;
const QK: usize = 32;
const ROWS_PER_TASK: usize = 16;

/// What our decode kernel needs besides candle's copy of a Q8_0 matrix: `scale × Σ q` per block.
/// The blocks themselves are read in place from candle's storage (no second copy); prompts
/// (several rows) go through candle's repacked kernel, which is faster there.
#[derive(Debug)]
pub(crate) struct Q8_0Decode {
    rows: usize,
    cols: usize,
    scaled_sums: Vec<f32>,
}

impl Q8_0Decode {
    /// Prepares `rows × cols` Q8_0 blocks; `None` unless `cols` is a multiple of 64.
    pub(crate) fn new(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if !cols.is_multiple_of(2 * QK) || bytes.len() != rows * cols / QK * BLOCK_BYTES {
            return None;
        }
        let scaled_sums = bytes
            .chunks_exact(BLOCK_BYTES)
            .map(|b| {
                half::f16::from_le_bytes([b[0], b[1]]).to_f32()
                    * b[2..].iter().map(|&q| i32::from(q as i8)).sum::<i32>() as f32
            })
            .collect();
        Some(Self {
            rows,
            cols,
            scaled_sums,
        })
    }

    /// Number of output features.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// `x (1 × cols)` times each matrix (given with its candle block bytes), one output each.
    pub(crate) fn gemv_many(mats: &[(&Self, &[u8])], x: &[f32]) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|(w, _)| w.cols) else {
            return Vec::new();
        };
        let acts = quantize_row(&x[..cols]);
        let rows: Vec<usize> = mats.iter().map(|(w, _)| w.rows).collect();
        let nb = cols / QK;
        par_row_chunks(&rows, 1, ROWS_PER_TASK, |chunk| {
            let (w, bytes) = mats[chunk.matrix];
            for r in chunk.range.clone() {
                let row = &bytes[r * nb * BLOCK_BYTES..(r + 1) * nb * BLOCK_BYTES];
                let sums = &w.scaled_sums[r * nb..(r + 1) * nb];
                // SAFETY: CPU features were checked when the model chose this kernel.
                chunk.set(0, r, unsafe { dot_row(row, sums, &acts) });
            }
        })
    }
}

struct Acts {
    /// `q + 128` per value, natural order.
    quants: Vec<u8>,
    scales: Vec<f32>,
}

fn quantize_row(x: &[f32]) -> Acts {
    let nb = x.len() / QK;
    let mut quants = vec![0u8; nb * QK];
    let mut scales = vec![0f32; nb];
    for (b, chunk) in x.chunks_exact(QK).enumerate() {
        let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for (q, v) in quants[b * QK..(b + 1) * QK].iter_mut().zip(chunk) {
            *q = ((v * id).round() as i8 as i16 + 128) as u8;
        }
        scales[b] = half::f16::from_f32(d).to_f32();
    }
    Acts { quants, scales }
}

/// One weight row (candle's 34-byte blocks) times the activation row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,f16c")]
unsafe fn dot_row(row: &[u8], sums: &[f32], a: &Acts) -> f32 {
    use std::arch::x86_64::*;
    let nb = sums.len();
    debug_assert!(row.len() == nb * BLOCK_BYTES && a.scales.len() == nb);
    // Lanes 0..8 of the products belong to the pair's first block, 8..16 to the second.
    let spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    let mut acc = [_mm512_setzero_ps(); 2];
    let (wp, aq, ad) = (row.as_ptr(), a.quants.as_ptr(), a.scales.as_ptr());
    for p in 0..nb / 2 {
        // SAFETY: blocks 2p and 2p + 1 lie inside the row (checked above) and the activations.
        unsafe {
            let b0 = wp.add(2 * p * BLOCK_BYTES);
            let b1 = b0.add(BLOCK_BYTES);
            let w = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(b0.add(2).cast())),
                _mm256_loadu_si256(b1.add(2).cast()),
                1,
            );
            let dw = _mm_cvtph_ps(_mm_set_epi16(
                0,
                0,
                0,
                0,
                0,
                0,
                b1.cast::<i16>().read_unaligned(),
                b0.cast::<i16>().read_unaligned(),
            ));
            let dot = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(),
                _mm512_loadu_si512(aq.add(p * 64).cast()),
                w,
            );
            let da = _mm_castpd_ps(_mm_load_sd(ad.add(2 * p).cast()));
            let scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
            acc[p & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[p & 1]);
        }
    }
    // Activations carry +128: remove 128 × Σ d_a × (d_w × Σ q_w), a separate vector dot product
    // (kept out of the main loop, where it was a scalar dependency chain).
    let mut off = _mm512_setzero_ps();
    let mut b = 0;
    while b + 16 <= nb {
        // SAFETY: b + 16 <= nb = sums.len() = a.scales.len().
        unsafe {
            off = _mm512_fmadd_ps(
                _mm512_loadu_ps(ad.add(b)),
                _mm512_loadu_ps(sums.as_ptr().add(b)),
                off,
            );
        }
        b += 16;
    }
    let mut offset = _mm512_reduce_add_ps(off);
    offset += a.scales[b..]
        .iter()
        .zip(&sums[b..])
        .map(|(d, s)| d * s)
        .sum::<f32>();
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - 128.0 * offset
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_row(_: &[u8], _: &[f32], _: &Acts) -> f32 {
    unreachable!("the Q8_0 kernel is only chosen on x86-64 with AVX-512 VNNI")
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;

    use super::super::kernel_tests::{
        Lcg, candle_product, exact_product, max_relative_difference, random_matrix,
    };
    use super::*;

    fn skip() -> bool {
        let skip = !super::super::q4_0::available();
        if skip {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX-512 VNNI; the model uses candle's kernel ***"
            );
        }
        skip
    }

    /// Our decode kernel against candle's generic Q8_0 kernel (this width does not use candle's
    /// repacked one): equal to float rounding.
    #[test]
    fn matches_candle_q8_0() {
        if skip() {
            return;
        }
        let (rows, cols) = (37, 192);
        let mut rng = Lcg(11);
        let (theirs, bytes, _) = random_matrix(&mut rng, rows, cols, GgmlDType::Q8_0);
        let ours = Q8_0Decode::new(rows, cols, &bytes).unwrap();
        let x = rng.values(cols, 3.0);
        let worst = max_relative_difference(
            &Q8_0Decode::gemv_many(&[(&ours, &bytes)], &x).remove(0),
            &candle_product(&theirs, &x, 1),
        );
        assert!(worst < 1e-5, "relative difference {worst}");
    }

    /// Against the exact product (dequantized weights × f32 activations), our decode kernel is at
    /// least as accurate as candle's kernel for the same weights (at this width candle uses its
    /// repacked kernel).
    #[test]
    fn at_least_as_accurate_as_candle() {
        if skip() {
            return;
        }
        let (rows, cols) = (64, 512);
        let mut rng = Lcg(5);
        let (theirs, bytes, exact_w) = random_matrix(&mut rng, rows, cols, GgmlDType::Q8_0);
        let ours = Q8_0Decode::new(rows, cols, &bytes).unwrap();
        let x = rng.values(cols, 3.0);
        let exact = exact_product(&exact_w, &x, 1);
        let err = |v: &[f32]| {
            v.iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        let (got, cand) = (
            Q8_0Decode::gemv_many(&[(&ours, &bytes)], &x).remove(0),
            candle_product(&theirs, &x, 1),
        );
        eprintln!(
            "max error vs exact: ours {:e}, candle {:e}",
            err(&got),
            err(&cand)
        );
        assert!(err(&got) <= err(&cand) * 1.01 + 1e-6);
    }
}
