//! The Q8_0 kernel of [`super::tiled`]: weights stored as `q + 128` (exact for every i8,
//! including −128), eight lines per block (line `g`: values `4g..4g + 4` of each row), and
//! `128 × Σ q_a` of each activation block subtracted from the block's integer dot product.

use super::tiled::{Acts, Kernels, Line, QK, ROWS, Scales, TILE};

/// Bytes of one Q8_0 block in a GGUF file: an f16 scale and 32 signed bytes.
pub(super) const BLOCK_BYTES: usize = 34;
/// 64-byte lines per block of a tile.
pub(super) const LINES: usize = QK / 4;

/// This format's kernel for 1 to [`TILE`] activation rows (entry `n - 1`). Each call must come
/// from [`super::tiled`] after its size checks, on a CPU with AVX-512 F/BW/DQ/VNNI.
pub(super) const KERNELS: Kernels = [dot_rows::<1>, dot_rows::<2>, dot_rows::<3>, dot_rows::<4>];

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,f16c")]
unsafe fn dot_rows<const T: usize>(
    quants: &[Line],
    scales: &[Scales],
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    use std::arch::x86_64::*;
    let nb = acts.blocks_per_row;
    let mut acc = [_mm512_setzero_ps(); T];
    let (wq, ws) = (quants.as_ptr(), scales.as_ptr());
    let aq: [*const i8; T] =
        std::array::from_fn(|t| acts.quants.as_ptr().wrapping_add((first + t) * nb * QK));
    let ad: [*const f32; T] =
        std::array::from_fn(|t| acts.scales.as_ptr().wrapping_add((first + t) * nb));
    let asum: [*const i32; T] =
        std::array::from_fn(|t| acts.sums.as_ptr().wrapping_add((first + t) * nb));
    for b in 0..nb {
        // SAFETY: block b's lines and scales lie in the tile, and block b of each activation
        // row lies in the activations (`tiled::check_tile` checked the sizes).
        unsafe {
            let lines = wq.add(b * LINES);
            // Two integer chains (even and odd lines) halve the dependency on `vpdpbusd`.
            let mut even = [_mm512_setzero_si512(); T];
            let mut odd = [_mm512_setzero_si512(); T];
            for g in (0..LINES).step_by(2) {
                let w0 = _mm512_load_si512(lines.add(g).cast());
                let w1 = _mm512_load_si512(lines.add(g + 1).cast());
                for t in 0..T {
                    let a = aq[t].add(b * QK + 4 * g);
                    let a0 = _mm512_set1_epi32(a.cast::<i32>().read_unaligned());
                    let a1 = _mm512_set1_epi32(a.add(4).cast::<i32>().read_unaligned());
                    even[t] = _mm512_dpbusd_epi32(even[t], w0, a0);
                    odd[t] = _mm512_dpbusd_epi32(odd[t], w1, a1);
                }
            }
            let dw = _mm512_cvtph_ps(_mm256_loadu_si256(ws.add(b).cast()));
            for t in 0..T {
                let dot = _mm512_sub_epi32(
                    _mm512_add_epi32(even[t], odd[t]),
                    _mm512_set1_epi32(128 * *asum[t].add(b)),
                );
                let scale = _mm512_mul_ps(dw, _mm512_set1_ps(*ad[t].add(b)));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[t]);
            }
        }
    }
    for t in 0..T {
        // SAFETY: `out[t]` holds 16 floats.
        unsafe { _mm512_storeu_ps(out[t].as_mut_ptr(), acc[t]) };
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_rows<const T: usize>(
    _: &[Line],
    _: &[Scales],
    _: &Acts,
    _: usize,
    _: &mut [[f32; ROWS]; TILE],
) {
    unreachable!("the Q8_0 kernel is only chosen on x86-64 with AVX-512 VNNI")
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;

    use super::super::kernel_tests::{
        Lcg, candle_product, exact_product, max_relative_difference, random_matrix,
    };
    use super::super::tiled::{Format, TiledMatrix, available};
    use super::*;

    fn new(rows: usize, cols: usize, bytes: &[u8]) -> Option<TiledMatrix> {
        TiledMatrix::new(Format::Q8_0, rows, cols, bytes)
    }

    fn skip() -> bool {
        let skip = !available();
        if skip {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX-512 VNNI; the model uses candle's kernel ***"
            );
        }
        skip
    }

    /// Against candle's generic Q8_0 kernel (this width does not use candle's repacked one):
    /// equal to float rounding, for 1 to 9 activation rows (tiles and the ragged rest) and a
    /// row count that is not a multiple of the 16-row tile.
    #[test]
    fn matches_candle_q8_0() {
        if skip() {
            return;
        }
        let (rows, cols) = (37, 192);
        let mut rng = Lcg(11);
        let (theirs, bytes, _) = random_matrix(&mut rng, rows, cols, GgmlDType::Q8_0);
        let ours = new(rows, cols, &bytes).unwrap();
        for m in 1..=9 {
            let x = rng.values(m * cols, 3.0);
            let worst = max_relative_difference(
                &TiledMatrix::matmul_many(&[&ours], &x, m).remove(0),
                &candle_product(&theirs, &x, m),
            );
            assert!(worst < 1e-5, "m = {m}: relative difference {worst}");
        }
    }

    /// Weights of −128 (which a file may hold although llama.cpp never writes them) are exact.
    #[test]
    fn extreme_weights() {
        if skip() {
            return;
        }
        let (rows, cols) = (16, 64);
        // Every block: scale 1.0, values alternating −128 and 127.
        let block: Vec<u8> = half::f16::from_f32(1.0)
            .to_le_bytes()
            .into_iter()
            .chain((0..QK).map(|i| if i % 2 == 0 { 0x80 } else { 0x7f }))
            .collect();
        let bytes = block.repeat(rows * cols / QK);
        let ours = new(rows, cols, &bytes).unwrap();
        let x = vec![1.0f32; cols];
        // Activations quantize to 127 with d = f16(1/127): each pair adds (−128 + 127) × 127 × d.
        let want = -(cols as f32 / 2.0) * 127.0 * half::f16::from_f32(1.0 / 127.0).to_f32();
        for got in TiledMatrix::matmul_many(&[&ours], &x, 1).remove(0) {
            assert!((got - want).abs() < 1e-3, "got {got}, want {want}");
        }
    }

    /// Against the exact product (dequantized weights × f32 activations), ours is at least as
    /// accurate as candle's kernel for the same weights (at this width candle uses its
    /// repacked kernel, which quantizes activations more coarsely).
    #[test]
    fn at_least_as_accurate_as_candle() {
        if skip() {
            return;
        }
        let (rows, cols) = (64, 512);
        let mut rng = Lcg(5);
        let (theirs, bytes, exact_w) = random_matrix(&mut rng, rows, cols, GgmlDType::Q8_0);
        let ours = new(rows, cols, &bytes).unwrap();
        for m in [1, 5] {
            let x = rng.values(m * cols, 3.0);
            let exact = exact_product(&exact_w, &x, m);
            let err = |v: &[f32]| {
                v.iter()
                    .zip(&exact)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max)
            };
            let (got, cand) = (
                TiledMatrix::matmul_many(&[&ours], &x, m).remove(0),
                candle_product(&theirs, &x, m),
            );
            eprintln!(
                "m = {m}: max error vs exact: ours {:e}, candle {:e}",
                err(&got),
                err(&cand)
            );
            assert!(err(&got) <= err(&cand) * 1.01 + 1e-6);
        }
    }

    /// Sizes the kernel cannot take are refused, not mis-read.
    #[test]
    fn refuses_wrong_sizes() {
        assert!(new(2, 64, &[0; 4 * BLOCK_BYTES - 1]).is_none());
        assert!(new(2, 48, &[0; 3 * BLOCK_BYTES]).is_none());
        assert!(new(0, 64, &[]).is_none());
    }
}
