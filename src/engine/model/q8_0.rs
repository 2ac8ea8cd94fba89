//! Our own Q8_0 × Q8_0 matrix multiplication (prompts and decode), with AVX-512 VNNI.
//!
//! The weights are repacked once at load into tiles of 16 rows: for each block of 32 columns,
//! eight 64-byte lines, line `g` holding values `4g..4g + 4` of each of the 16 rows. One
//! `vpdpbusd` of a line with 4 broadcast activation bytes then advances 16 output rows at once,
//! every load is aligned and whole, and the tile's bytes are one contiguous stream.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so weights are stored as `q + 128` (exact
//! for every i8, including −128) and `128 × Σ q_a` of each activation block, computed once per
//! call, is subtracted from each block's integer dot product. Activations are quantized to
//! Q8_0 exactly as llama.cpp and candle do (per 32 values `d = amax / 127` rounded to f16,
//! `q = round(x / d)`), so results equal candle's generic kernel to float rounding. Each weight
//! line is reused for a tile of up to [`TILE`] activation rows (prompts).
//!
//! The repacked matrix replaces candle's copy (candle would keep the file's blocks and, after
//! the first prompt, a repacked copy of its own: twice the memory).

use super::parallel::par_row_chunks;

/// Bytes of one Q8_0 block in a GGUF file: an f16 scale and 32 signed bytes.
const BLOCK_BYTES: usize = 34;
/// Values per block.
const QK: usize = 32;
/// Weight rows interleaved in one tile (16 int32 lanes of a 512-bit register).
const ROWS: usize = 16;
/// 64-byte lines per block of a tile: `QK / 4` groups of 4 values.
const LINES: usize = QK / 4;
/// Activation rows sharing one weight line.
const TILE: usize = 4;

/// One aligned 64-byte line: 4 values of each of the 16 rows of a tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// A Q8_0 weight matrix `(rows, cols)` repacked for SIMD (see the module documentation).
/// Rows are padded to a multiple of 16 with zero rows; the size is the file's plus that padding.
pub(crate) struct Q8_0Matrix {
    rows: usize,
    cols: usize,
    /// Per tile, per block: [`LINES`] lines of `q + 128`.
    quants: Vec<Line>,
    /// Per tile, per block: the 16 rows' f16 scales (bits).
    scales: Vec<[u16; ROWS]>,
}

impl std::fmt::Debug for Q8_0Matrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Q8_0Matrix")
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

/// Activations quantized to Q8_0, row-major: values, per-block scale and `128 × Σ q`.
struct Acts {
    quants: Vec<i8>,
    scales: Vec<f32>,
    offsets: Vec<i32>,
    blocks_per_row: usize,
}

impl Q8_0Matrix {
    /// Repacks raw GGUF bytes; `None` unless they are exactly `rows × cols` Q8_0 values.
    pub(crate) fn new(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if rows == 0 || !cols.is_multiple_of(QK) || bytes.len() != rows * cols / QK * BLOCK_BYTES
        {
            return None;
        }
        let nb = cols / QK;
        let tiles = rows.div_ceil(ROWS);
        // Padding rows: value 0 (stored 128), scale 0.
        let mut quants = vec![Line([128; 64]); tiles * nb * LINES];
        let mut scales = vec![[0u16; ROWS]; tiles * nb];
        for (row, src) in bytes.chunks_exact(nb * BLOCK_BYTES).enumerate() {
            let (tile, r) = (row / ROWS, row % ROWS);
            for (b, block) in src.chunks_exact(BLOCK_BYTES).enumerate() {
                let at = tile * nb + b;
                scales[at][r] = u16::from_le_bytes([block[0], block[1]]);
                let lines = &mut quants[at * LINES..(at + 1) * LINES];
                for (line, four) in lines.iter_mut().zip(block[2..].chunks_exact(4)) {
                    for (dst, &q) in line.0[4 * r..4 * r + 4].iter_mut().zip(four) {
                        *dst = q ^ 0x80;
                    }
                }
            }
        }
        Some(Self {
            rows,
            cols,
            quants,
            scales,
        })
    }

    /// Number of output features.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// The products of one input (`m × cols`, row-major) with several matrices of the same width
    /// (Q/K/V, gate/up): the input is quantized once and all tiles are shared out in one
    /// parallel pass. Returns one `m × rows` output per matrix.
    pub(crate) fn matmul_many(mats: &[&Self], x: &[f32], m: usize) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|w| w.cols) else {
            return Vec::new();
        };
        debug_assert!(mats.iter().all(|w| w.cols == cols));
        let acts = quantize_rows(x, m, cols);
        let rows: Vec<usize> = mats.iter().map(|w| w.rows).collect();
        let nb = cols / QK;
        par_row_chunks(&rows, m, ROWS, |chunk| {
            let w = mats[chunk.matrix];
            let tile = chunk.range.start / ROWS;
            let quants = &w.quants[tile * nb * LINES..(tile + 1) * nb * LINES];
            let scales = &w.scales[tile * nb..(tile + 1) * nb];
            for first in (0..m).step_by(TILE) {
                let n = (m - first).min(TILE);
                let mut out = [[0f32; ROWS]; TILE];
                // SAFETY: `q4_0::available()` was checked when the model chose this kernel.
                unsafe { dot_tile(quants, scales, &acts, first, n, &mut out) };
                for (t, sums) in out.iter().take(n).enumerate() {
                    for r in chunk.range.clone() {
                        chunk.set(first + t, r, sums[r - chunk.range.start]);
                    }
                }
            }
        })
    }
}

fn quantize_rows(x: &[f32], m: usize, cols: usize) -> Acts {
    let blocks_per_row = cols / QK;
    let n = m * blocks_per_row;
    let mut quants = vec![0i8; n * QK];
    let mut scales = vec![0f32; n];
    let mut offsets = vec![0i32; n];
    for (b, chunk) in x[..m * cols].chunks_exact(QK).enumerate() {
        let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in quants[b * QK..(b + 1) * QK].iter_mut().zip(chunk) {
            *q = (v * id).round() as i8;
            sum += i32::from(*q);
        }
        scales[b] = half::f16::from_f32(d).to_f32();
        offsets[b] = 128 * sum;
    }
    Acts {
        quants,
        scales,
        offsets,
        blocks_per_row,
    }
}

/// One weight tile (16 rows) times activation rows `first..first + n`.
#[cfg(target_arch = "x86_64")]
unsafe fn dot_tile(
    quants: &[Line],
    scales: &[[u16; ROWS]],
    acts: &Acts,
    first: usize,
    n: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    let nb = acts.blocks_per_row;
    assert!(quants.len() == nb * LINES && scales.len() == nb);
    assert!((first + n) * nb <= acts.scales.len() && n <= TILE);
    // A constant tile size keeps the accumulators in registers.
    // SAFETY: forwarded from the caller (CPU features); slice sizes checked above.
    unsafe {
        match n {
            1 => dot_rows::<1>(quants, scales, acts, first, out),
            2 => dot_rows::<2>(quants, scales, acts, first, out),
            3 => dot_rows::<3>(quants, scales, acts, first, out),
            _ => dot_rows::<4>(quants, scales, acts, first, out),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,f16c")]
unsafe fn dot_rows<const T: usize>(
    quants: &[Line],
    scales: &[[u16; ROWS]],
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
    let ao: [*const i32; T] =
        std::array::from_fn(|t| acts.offsets.as_ptr().wrapping_add((first + t) * nb));
    for b in 0..nb {
        // SAFETY: block b's lines and scales lie in the tile, and block b of each activation
        // row lies in the activations (`dot_tile` checked the sizes).
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
                    _mm512_set1_epi32(*ao[t].add(b)),
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
unsafe fn dot_tile(
    _: &[Line],
    _: &[[u16; ROWS]],
    _: &Acts,
    _: usize,
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
        let ours = Q8_0Matrix::new(rows, cols, &bytes).unwrap();
        for m in 1..=9 {
            let x = rng.values(m * cols, 3.0);
            let worst = max_relative_difference(
                &Q8_0Matrix::matmul_many(&[&ours], &x, m).remove(0),
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
        let ours = Q8_0Matrix::new(rows, cols, &bytes).unwrap();
        let x = vec![1.0f32; cols];
        // Activations quantize to 127 with d = f16(1/127): each pair adds (−128 + 127) × 127 × d.
        let want = -(cols as f32 / 2.0) * 127.0 * half::f16::from_f32(1.0 / 127.0).to_f32();
        for got in Q8_0Matrix::matmul_many(&[&ours], &x, 1).remove(0) {
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
        let ours = Q8_0Matrix::new(rows, cols, &bytes).unwrap();
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
                Q8_0Matrix::matmul_many(&[&ours], &x, m).remove(0),
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
        assert!(Q8_0Matrix::new(2, 64, &[0; 4 * BLOCK_BYTES - 1]).is_none());
        assert!(Q8_0Matrix::new(2, 48, &[0; 3 * BLOCK_BYTES]).is_none());
        assert!(Q8_0Matrix::new(0, 64, &[]).is_none());
    }
}
