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
    let (aq, ad, asum) = acts.rows::<T>(first);
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
