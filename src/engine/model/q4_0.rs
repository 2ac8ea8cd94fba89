//! Our own Q4_0 × Q8_0 matrix multiplication (the hot path of Q4_0 models), with AVX-512 VNNI.
//!
//! candle 0.11 runs Q4_0 as one matrix-vector product per activation row with AVX2 `maddubs`,
//! at about 0.4× llama.cpp's decode and 0.2× its prompt speed on this project's benchmark. Here:
//! - activations are quantized to Q8_0 once per call, exactly as candle and llama.cpp do
//!   (per 32 values: `d = amax / 127` stored as f16, `q = round(x / d)`), so results match
//!   candle's to float rounding;
//! - `vpdpbusd` multiplies 64 unsigned 4-bit weights by 64 signed 8-bit activations per
//!   instruction; the `-8` offset of Q4_0 is applied once per block through `sum(q)`;
//! - each unpacked pair of weight blocks is reused for a tile of up to 4 activation rows, and
//!   weight rows are split across the threads of the current rayon pool (candle's, inside
//!   `Device::with_context`).
//!
//! Used only when the CPU has AVX-512 F/BW/DQ/VNNI (checked at run time); otherwise the model keeps
//! candle's `QMatMul`.

use super::parallel::par_row_chunks;

/// Bytes of one Q4_0 block in a GGUF file: an f16 scale and 16 bytes of 4-bit values.
const BLOCK_BYTES: usize = 18;
/// Values per block.
const QK: usize = 32;
/// Blocks per SIMD group: their 64 value bytes fill one 512-bit register.
const GROUP: usize = 4;
/// Activation rows sharing one unpacked weight group.
const TILE: usize = 8;
/// Weight rows per parallel work item.
const ROWS_PER_TASK: usize = 16;

/// Whether this CPU can run the kernel.
pub(crate) fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A Q4_0 weight matrix `(rows, cols)`, repacked at load for SIMD: per row, the 16 value bytes
/// of each block contiguous (4 blocks = one 512-bit load) and the f16 scales apart. Same size
/// as the file's blocks.
#[derive(Debug)]
pub(crate) struct Q4_0Matrix {
    rows: usize,
    cols: usize,
    quants: Vec<u8>,
    scales: Vec<u16>,
}

/// Activations quantized to Q8_0, laid out to match: per row and group of 4 blocks, 64 bytes
/// with the first 16 values of each block, then 64 bytes with the last 16; each block's scale
/// (f16-rounded, as ggml stores it) and `scale × sum(q)`.
struct Q8Rows {
    quants: Vec<i8>,
    scales: Vec<f32>,
    scaled_sums: Vec<f32>,
    blocks_per_row: usize,
}

impl Q4_0Matrix {
    /// Repacks raw GGUF bytes; `None` unless they are exactly `rows × cols` Q4_0 values with
    /// `cols` a multiple of 128 (whole groups of 4 blocks).
    pub(crate) fn new(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if !cols.is_multiple_of(GROUP * QK) || bytes.len() != rows * cols / QK * BLOCK_BYTES {
            return None;
        }
        let blocks = rows * cols / QK;
        let mut quants = Vec::with_capacity(blocks * 16);
        let mut scales = Vec::with_capacity(blocks);
        for block in bytes.chunks_exact(BLOCK_BYTES) {
            scales.push(u16::from_le_bytes([block[0], block[1]]));
            quants.extend_from_slice(&block[2..]);
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

    /// The products of one input with several matrices of the same width (Q/K/V, gate/up): the
    /// input is quantized once and all rows are shared out in one parallel pass.
    pub(crate) fn matmul_many(mats: &[&Self], x: &[f32], m: usize) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|w| w.cols) else {
            return Vec::new();
        };
        debug_assert!(mats.iter().all(|w| w.cols == cols));
        let q8 = quantize_rows(x, m, cols);
        let rows: Vec<usize> = mats.iter().map(|w| w.rows).collect();
        let nb = cols / QK;
        par_row_chunks(&rows, m, ROWS_PER_TASK, |chunk| {
            let w = mats[chunk.matrix];
            for tile_start in (0..m).step_by(TILE) {
                let tile = (m - tile_start).min(TILE);
                for r in chunk.range.clone() {
                    let mut sums = [0f32; TILE];
                    let quants = &w.quants[r * nb * 16..(r + 1) * nb * 16];
                    let scales = &w.scales[r * nb..(r + 1) * nb];
                    // SAFETY: `available()` was checked when the model chose this kernel.
                    unsafe { dot_tile(quants, scales, &q8, tile_start, tile, &mut sums) };
                    for (t, s) in sums.iter().take(tile).enumerate() {
                        chunk.set(tile_start + t, r, *s);
                    }
                }
            }
        })
    }
}

fn quantize_rows(x: &[f32], m: usize, cols: usize) -> Q8Rows {
    let blocks_per_row = cols / QK;
    let n = m * blocks_per_row;
    let mut quants = vec![0i8; n * QK];
    let mut scales = vec![0f32; n];
    let mut scaled_sums = vec![0f32; n];
    for (b, chunk) in x[..m * cols].chunks_exact(QK).enumerate() {
        let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        // Block b is block `j` of group `g`: its halves go to two 64-byte runs.
        let (g, j) = (b / GROUP, b % GROUP);
        let base = g * GROUP * QK;
        let mut sum = 0i32;
        for (i, v) in chunk.iter().enumerate() {
            let q = (v * id).round() as i8;
            sum += i32::from(q);
            let at = if i < 16 {
                base + j * 16 + i
            } else {
                base + 64 + j * 16 + (i - 16)
            };
            quants[at] = q;
        }
        let d16 = half::f16::from_f32(d).to_f32();
        scales[b] = d16;
        scaled_sums[b] = d16 * sum as f32;
    }
    Q8Rows {
        quants,
        scales,
        scaled_sums,
        blocks_per_row,
    }
}

/// Dot products of one weight row with activation rows `first..first + tile`.
#[cfg(target_arch = "x86_64")]
unsafe fn dot_tile(
    quants: &[u8],
    scales: &[u16],
    q8: &Q8Rows,
    first: usize,
    tile: usize,
    sums: &mut [f32; TILE],
) {
    debug_assert!(quants.len() * 2 == q8.blocks_per_row * QK && scales.len() == q8.blocks_per_row);
    debug_assert!((first + tile) * q8.blocks_per_row <= q8.scales.len());
    // A constant tile size keeps the accumulators in registers.
    // SAFETY: forwarded from the caller (CPU features, slice sizes checked above).
    unsafe {
        match tile {
            1 => dot_rows::<1>(quants, scales, q8, first, sums),
            2 => dot_rows::<2>(quants, scales, q8, first, sums),
            3 => dot_rows::<3>(quants, scales, q8, first, sums),
            4 => dot_rows::<4>(quants, scales, q8, first, sums),
            5 => dot_rows::<5>(quants, scales, q8, first, sums),
            6 => dot_rows::<6>(quants, scales, q8, first, sums),
            7 => dot_rows::<7>(quants, scales, q8, first, sums),
            _ => dot_rows::<8>(quants, scales, q8, first, sums),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,f16c")]
unsafe fn dot_rows<const T: usize>(
    quants: &[u8],
    scales: &[u16],
    q8: &Q8Rows,
    first: usize,
    sums: &mut [f32; TILE],
) {
    use std::arch::x86_64::*;
    let nb = q8.blocks_per_row;
    let low = _mm512_set1_epi8(0x0F);
    // Lane i of the 16 int32 products belongs to block i / 4 of the group.
    let spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    // Two accumulator sets (even and odd groups) halve the FMA dependency chain.
    let mut acc = [[_mm512_setzero_ps(); T]; 2];
    let mut offset = [_mm_setzero_ps(); T];
    let (wq, ws) = (quants.as_ptr(), scales.as_ptr());
    let aq: [*const i8; T] =
        std::array::from_fn(|t| q8.quants.as_ptr().wrapping_add((first + t) * nb * QK));
    let ad: [*const f32; T] =
        std::array::from_fn(|t| q8.scales.as_ptr().wrapping_add((first + t) * nb));
    let asum: [*const f32; T] =
        std::array::from_fn(|t| q8.scaled_sums.as_ptr().wrapping_add((first + t) * nb));
    for g in 0..nb / GROUP {
        // SAFETY: group g (64 value bytes, 4 scales) lies inside the weight row, and inside each
        // activation row (128 quant bytes, 4 scales, 4 sums), as `dot_tile` checked.
        unsafe {
            let v = _mm512_loadu_si512(wq.add(g * 64).cast());
            let dw = _mm_cvtph_ps(_mm_loadl_epi64(ws.add(g * GROUP).cast()));
            let (w_lo, w_hi) = (
                _mm512_and_si512(v, low),
                _mm512_and_si512(_mm512_srli_epi16(v, 4), low),
            );
            let set = &mut acc[g & 1];
            for t in 0..T {
                let p = aq[t].add(g * GROUP * QK);
                let dot = _mm512_dpbusd_epi32(
                    _mm512_dpbusd_epi32(_mm512_setzero_si512(), w_lo, _mm512_loadu_si512(p.cast())),
                    w_hi,
                    _mm512_loadu_si512(p.add(64).cast()),
                );
                let da = _mm_loadu_ps(ad[t].add(g * GROUP));
                let scale =
                    _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
                set[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, set[t]);
                // Q4_0 stores w + 8: remove 8 × d_w × d_a × sum(q_a) per block.
                offset[t] = _mm_fmadd_ps(dw, _mm_loadu_ps(asum[t].add(g * GROUP)), offset[t]);
            }
        }
    }
    for t in 0..T {
        let off = _mm_add_ps(offset[t], _mm_movehl_ps(offset[t], offset[t]));
        let off = _mm_add_ss(off, _mm_shuffle_ps(off, off, 1));
        sums[t] =
            _mm512_reduce_add_ps(_mm512_add_ps(acc[0][t], acc[1][t])) - 8.0 * _mm_cvtss_f32(off);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_tile(_: &[u8], _: &[u16], _: &Q8Rows, _: usize, _: usize, _: &mut [f32; TILE]) {
    unreachable!("the Q4_0 kernel is only chosen on x86-64 with AVX-512 VNNI")
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::GgmlDType;

    use super::super::kernel_tests::{Lcg, candle_product, max_relative_difference, random_matrix};
    use super::*;

    /// Our kernel against candle's Q4_0 matmul on the same weights, for 1 to 9 rows (tiles and
    /// the ragged rest) and a row count that is not a multiple of the task size.
    #[test]
    fn matches_candle_q4_0() {
        if !available() {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX-512 VNNI; the model uses candle's kernel ***"
            );
            return;
        }
        let (rows, cols) = (37, 256);
        let mut rng = Lcg(7);
        let (theirs, bytes, _) = random_matrix(&mut rng, rows, cols, GgmlDType::Q4_0);
        let ours = Q4_0Matrix::new(rows, cols, &bytes).unwrap();
        for m in 1..=9 {
            let x = rng.values(m * cols, 3.0);
            let want = candle_product(&theirs, &x, m);
            let worst =
                max_relative_difference(&Q4_0Matrix::matmul_many(&[&ours], &x, m).remove(0), &want);
            assert!(worst < 1e-5, "m = {m}: relative difference {worst}");
        }
    }
}
