//! The 256-bit kernels of [`super::tiled`], for CPUs with AVX2 + FMA + F16C but no AVX-512
//! (most desktop CPUs: Intel Haswell to Raptor Lake, AMD Zen 1–3). Same tiles as the 512-bit
//! kernels: each 64-byte line is read as two halves of 8 rows, one half at a time (a tile is
//! small enough to stay in cache for the second half), so the accumulators of up to
//! [`TILE`] activation rows fit in the 16 vector registers.
//!
//! - With AVX-VNNI (Intel Alder Lake and later) the integer dot products use `vpdpbusd`, exactly
//!   as the 512-bit kernels do (unsigned weights, `offset × Σ q_a` subtracted per block).
//! - Without it, `vpmaddubsw` multiplies unsigned bytes by signed bytes into 16-bit pairs and
//!   `vpmaddwd` by ones widens them. Q4_0 nibbles (0..15) times activations (|q| ≤ 127) sum to
//!   at most 8 × 3810 per block, so a whole block adds up in 16 bits before one widening. Q8_0
//!   weights are signed again (`stored ^ 0x80`) and multiplied as `|w| · sign(a, w)`, which is
//!   exact for every i8 weight including −128 and never saturates (2 × 128 × 127 < 2¹⁵).

use super::tiled::{Acts, Kernels, Line, QK, ROWS, Scales, TILE};

/// Q4_0 with AVX-VNNI.
pub(super) const Q4_0_VNNI: Kernels = [
    x86::q4_0_vnni::<1>,
    x86::q4_0_vnni::<2>,
    x86::q4_0_vnni::<3>,
    x86::q4_0_vnni::<4>,
];
/// Q4_0 with `vpmaddubsw`.
pub(super) const Q4_0: Kernels = [
    x86::q4_0_plain::<1>,
    x86::q4_0_plain::<2>,
    x86::q4_0_plain::<3>,
    x86::q4_0_plain::<4>,
];
/// Q8_0 with AVX-VNNI.
pub(super) const Q8_0_VNNI: Kernels = [
    x86::q8_0_vnni::<1>,
    x86::q8_0_vnni::<2>,
    x86::q8_0_vnni::<3>,
    x86::q8_0_vnni::<4>,
];
/// Q8_0 with `vpmaddubsw`.
pub(super) const Q8_0: Kernels = [
    x86::q8_0_plain::<1>,
    x86::q8_0_plain::<2>,
    x86::q8_0_plain::<3>,
    x86::q8_0_plain::<4>,
];

/// Lines per block: Q4_0 (two values per byte) and Q8_0.
const Q4_0_LINES: usize = QK / 8;
const Q8_0_LINES: usize = QK / 4;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Acts, Line, Q4_0_LINES, Q8_0_LINES, QK, ROWS, Scales, TILE};

    /// Half `h` (rows `8h..8h + 8`) of line `g` of block `b`.
    ///
    /// # Safety
    /// The block's lines lie in `quants` (`tiled::check_tile`), `h < 2`, and the CPU has AVX.
    #[inline(always)]
    unsafe fn half(quants: &[Line], lines: usize, b: usize, g: usize, h: usize) -> __m256i {
        // SAFETY: in bounds (see above); lines are 64-byte aligned, so each half is 32-aligned.
        unsafe { _mm256_load_si256(quants.as_ptr().add(b * lines + g).cast::<__m256i>().add(h)) }
    }

    /// The 4 activation bytes at `at`, broadcast to every 32-bit lane.
    ///
    /// # Safety
    /// `at..at + 4` lies in the activations, and the CPU has AVX.
    #[inline(always)]
    unsafe fn broadcast4(at: *const i8) -> __m256i {
        // SAFETY: see above.
        unsafe { _mm256_set1_epi32(at.cast::<i32>().read_unaligned()) }
    }

    /// Applies one block's scales and offset correction to its integer dot products and
    /// stores nothing: `acc[t] += (dot[t] − offset · Σ q_a) · d_w · d_a` for half `h`.
    ///
    /// # Safety
    /// Block `b` lies in `scales` and in each activation row; the CPU has AVX2, FMA and F16C.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    unsafe fn scale_block<const T: usize>(
        acc: &mut [__m256; T],
        dot: &[__m256i; T],
        scales: &[Scales],
        ad: &[*const f32; T],
        asum: &[*const i32; T],
        offset: i32,
        b: usize,
        h: usize,
    ) {
        // SAFETY: see above.
        unsafe {
            let dw = _mm256_cvtph_ps(_mm_loadu_si128(
                scales.as_ptr().add(b).cast::<u16>().add(8 * h).cast(),
            ));
            for t in 0..T {
                let dot = _mm256_sub_epi32(dot[t], _mm256_set1_epi32(offset * *asum[t].add(b)));
                let scale = _mm256_mul_ps(dw, _mm256_set1_ps(*ad[t].add(b)));
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc[t]);
            }
        }
    }

    /// Stores half `h` of each activation row's 16 outputs.
    #[inline(always)]
    fn store<const T: usize>(out: &mut [[f32; ROWS]; TILE], acc: &[__m256; T], h: usize) {
        for t in 0..T {
            // SAFETY: `out[t][8h..8h + 8]` holds 8 floats (h < 2); storing needs only AVX,
            // which every caller has.
            unsafe { _mm256_storeu_ps(out[t].as_mut_ptr().add(8 * h), acc[t]) };
        }
    }

    /// Q4_0 with `vpdpbusd` (AVX-VNNI).
    ///
    /// # Safety
    /// AVX2, FMA, F16C and AVX-VNNI; slices checked by `tiled::check_tile`.
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub(super) unsafe fn q4_0_vnni<const T: usize>(
        quants: &[Line],
        scales: &[Scales],
        acts: &Acts,
        first: usize,
        out: &mut [[f32; ROWS]; TILE],
    ) {
        let low = _mm256_set1_epi8(0x0F);
        let (aq, ad, asum) = acts.rows::<T>(first);
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..acts.blocks_per_row {
                let mut dot = [_mm256_setzero_si256(); T];
                // SAFETY: block b of the tile and of each activation row are in bounds.
                unsafe {
                    for g in 0..Q4_0_LINES {
                        let v = half(quants, Q4_0_LINES, b, g, h);
                        let w_lo = _mm256_and_si256(v, low);
                        let w_hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                        for t in 0..T {
                            let a = aq[t].add(b * QK + 4 * g);
                            dot[t] = _mm256_dpbusd_avx_epi32(dot[t], w_lo, broadcast4(a));
                            dot[t] = _mm256_dpbusd_avx_epi32(dot[t], w_hi, broadcast4(a.add(16)));
                        }
                    }
                    scale_block(&mut acc, &dot, scales, &ad, &asum, 8, b, h);
                }
            }
            store(out, &acc, h);
        }
    }

    /// Q4_0 with `vpmaddubsw`: a block's products add up in 16 bits (see the module docs).
    ///
    /// # Safety
    /// AVX2, FMA and F16C; slices checked by `tiled::check_tile`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn q4_0_plain<const T: usize>(
        quants: &[Line],
        scales: &[Scales],
        acts: &Acts,
        first: usize,
        out: &mut [[f32; ROWS]; TILE],
    ) {
        let (low, ones) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi16(1));
        let (aq, ad, asum) = acts.rows::<T>(first);
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..acts.blocks_per_row {
                let mut pairs = [_mm256_setzero_si256(); T];
                // SAFETY: block b of the tile and of each activation row are in bounds.
                unsafe {
                    for g in 0..Q4_0_LINES {
                        let v = half(quants, Q4_0_LINES, b, g, h);
                        let w_lo = _mm256_and_si256(v, low);
                        let w_hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
                        for t in 0..T {
                            let a = aq[t].add(b * QK + 4 * g);
                            let lo = _mm256_maddubs_epi16(w_lo, broadcast4(a));
                            let hi = _mm256_maddubs_epi16(w_hi, broadcast4(a.add(16)));
                            pairs[t] = _mm256_add_epi16(pairs[t], _mm256_add_epi16(lo, hi));
                        }
                    }
                    let mut dot = [_mm256_setzero_si256(); T];
                    for t in 0..T {
                        dot[t] = _mm256_madd_epi16(pairs[t], ones);
                    }
                    scale_block(&mut acc, &dot, scales, &ad, &asum, 8, b, h);
                }
            }
            store(out, &acc, h);
        }
    }

    /// Q8_0 with `vpdpbusd` (AVX-VNNI).
    ///
    /// # Safety
    /// AVX2, FMA, F16C and AVX-VNNI; slices checked by `tiled::check_tile`.
    #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
    pub(super) unsafe fn q8_0_vnni<const T: usize>(
        quants: &[Line],
        scales: &[Scales],
        acts: &Acts,
        first: usize,
        out: &mut [[f32; ROWS]; TILE],
    ) {
        let (aq, ad, asum) = acts.rows::<T>(first);
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..acts.blocks_per_row {
                let mut dot = [_mm256_setzero_si256(); T];
                // SAFETY: block b of the tile and of each activation row are in bounds.
                unsafe {
                    for g in 0..Q8_0_LINES {
                        let w = half(quants, Q8_0_LINES, b, g, h);
                        for t in 0..T {
                            let a = broadcast4(aq[t].add(b * QK + 4 * g));
                            dot[t] = _mm256_dpbusd_avx_epi32(dot[t], w, a);
                        }
                    }
                    scale_block(&mut acc, &dot, scales, &ad, &asum, 128, b, h);
                }
            }
            store(out, &acc, h);
        }
    }

    /// Q8_0 with `vpmaddubsw` on `|w|` and `sign(a, w)` (see the module docs).
    ///
    /// # Safety
    /// AVX2, FMA and F16C; slices checked by `tiled::check_tile`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn q8_0_plain<const T: usize>(
        quants: &[Line],
        scales: &[Scales],
        acts: &Acts,
        first: usize,
        out: &mut [[f32; ROWS]; TILE],
    ) {
        let (flip, ones) = (_mm256_set1_epi8(-128), _mm256_set1_epi16(1));
        let (aq, ad, asum) = acts.rows::<T>(first);
        for h in 0..2 {
            let mut acc = [_mm256_setzero_ps(); T];
            for b in 0..acts.blocks_per_row {
                let mut dot = [_mm256_setzero_si256(); T];
                // SAFETY: block b of the tile and of each activation row are in bounds.
                unsafe {
                    for g in 0..Q8_0_LINES {
                        let w = _mm256_xor_si256(half(quants, Q8_0_LINES, b, g, h), flip);
                        let w_abs = _mm256_abs_epi8(w);
                        for t in 0..T {
                            let a = broadcast4(aq[t].add(b * QK + 4 * g));
                            let p = _mm256_maddubs_epi16(w_abs, _mm256_sign_epi8(a, w));
                            dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(p, ones));
                        }
                    }
                    // The weights are signed here: no offset to correct.
                    scale_block(&mut acc, &dot, scales, &ad, &asum, 0, b, h);
                }
            }
            store(out, &acc, h);
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod x86 {
    use super::{Acts, Line, ROWS, Scales, TILE};

    /// Never called: `tiled::Isa::is_supported` is false off x86-64.
    pub(super) unsafe fn never<const T: usize>(
        _: &[Line],
        _: &[Scales],
        _: &Acts,
        _: usize,
        _: &mut [[f32; ROWS]; TILE],
    ) {
        unreachable!("the AVX2 kernels are only chosen on x86-64")
    }
    pub(super) use never as q4_0_plain;
    pub(super) use never as q4_0_vnni;
    pub(super) use never as q8_0_plain;
    pub(super) use never as q8_0_vnni;
}
