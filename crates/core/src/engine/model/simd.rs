//! The vector operations the tiled kernels are written in, for each instruction set. A kernel
//! body is written once, generic over [`Simd`], and instantiated inside a `#[target_feature]`
//! wrapper per instruction set (see [`isa_kernels!`]); every method is `#[inline(always)]`, so
//! the body compiles to that instruction set's code with no calls.
//!
//! A vector holds one 32-bit lane per weight row: 16 rows with AVX-512, 8 with AVX2, so a
//! 16-row tile is [`Simd::PARTS`] vectors wide (a 64-byte line is read as `PARTS` parts).
#![allow(unsafe_code)] // SIMD intrinsics; each unsafe block says why it is sound
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use super::tiled::Line;

/// The operations of one instruction set (see the module documentation).
///
/// # Safety
/// Every method needs the CPU features of its implementation; pointer arguments must be valid
/// for the bytes the method reads or writes.
pub(super) trait Simd {
    /// Weight rows per vector.
    const ROWS: usize;
    /// Vectors per 16-row tile.
    const PARTS: usize = 16 / Self::ROWS;
    /// Whether [`Simd::dot`] is one `vpdpbusd` (no 16-bit intermediate that can saturate).
    const VNNI: bool;
    /// 32-bit integer lanes.
    type I: Copy;
    /// 32-bit float lanes.
    type F: Copy;

    unsafe fn zero() -> Self::I;
    /// Part `part` of a 64-byte line.
    unsafe fn load(line: *const Line, part: usize) -> Self::I;
    /// Stores part `part` of a 64-byte line.
    unsafe fn store(line: *mut Line, part: usize, v: Self::I);
    unsafe fn and(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn or(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn xor(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn add(a: Self::I, b: Self::I) -> Self::I;
    unsafe fn sub(a: Self::I, b: Self::I) -> Self::I;
    /// Lane-wise 32-bit product.
    unsafe fn mul(a: Self::I, b: Self::I) -> Self::I;
    /// Shifts 16-bit lanes left by `n` (a constant after inlining).
    unsafe fn shl16(a: Self::I, n: u32) -> Self::I;
    /// Shifts 16-bit lanes right (logical) by `n`.
    unsafe fn shr16(a: Self::I, n: u32) -> Self::I;
    /// Shifts 32-bit lanes left by `n`.
    unsafe fn shl32(a: Self::I, n: u32) -> Self::I;
    /// `acc + a₀b₀ + a₁b₁` per 32-bit lane, with `a` and `b` two signed 16-bit halves each
    /// (`vpdpwssd` with VNNI, `vpmaddwd` otherwise).
    unsafe fn dot_i16(acc: Self::I, a: Self::I, b: Self::I) -> Self::I;
    /// Two signed 16-bit values `(lo, hi)` from the low halves of two 32-bit lanes.
    #[inline(always)]
    unsafe fn pair16(lo: Self::I, hi: Self::I) -> Self::I {
        // SAFETY: the implementation's features (the caller's contract).
        unsafe { Self::or(Self::and(lo, Self::splat32(0xFFFF)), Self::shl32(hi, 16)) }
    }
    /// Shifts 16-bit lanes left by `n` bits, right for negative `n`.
    #[inline(always)]
    unsafe fn shift16(a: Self::I, n: i32) -> Self::I {
        // SAFETY: the implementation's features (the caller's contract).
        unsafe {
            if n >= 0 {
                Self::shl16(a, n.unsigned_abs())
            } else {
                Self::shr16(a, n.unsigned_abs())
            }
        }
    }
    unsafe fn splat8(x: u8) -> Self::I;
    unsafe fn splat32(x: i32) -> Self::I;
    /// The 4 bytes at `p` in every lane.
    unsafe fn splat4(p: *const i8) -> Self::I;
    /// `acc + Σ w·a` over each lane's 4 byte pairs, `w` unsigned and `a` signed. Without VNNI
    /// the pairs add up in 16 bits first: `|w₀a₀ + w₁a₁|` must stay below 2¹⁵.
    unsafe fn dot(acc: Self::I, w: Self::I, a: Self::I) -> Self::I;
    /// `acc + (w₀a₀ + w₁a₁)` in 16-bit lanes (two per row), `w` unsigned, `a` signed: the
    /// products of several lines add up in 16 bits and are widened once ([`Simd::widen16`]), for
    /// the instruction sets without VNNI. The caller keeps every 16-bit sum below 2¹⁵.
    unsafe fn dot16(acc: Self::I, w: Self::I, a: Self::I) -> Self::I;
    /// The 16-bit pair sums of [`Simd::dot16`] as one 32-bit sum per row.
    unsafe fn widen16(acc: Self::I) -> Self::I;
    /// `acc + Σ w·a` with both signed (−128 ≤ w ≤ 127, |a| ≤ 127), exact without VNNI too.
    unsafe fn dot_signed(acc: Self::I, w: Self::I, a: Self::I) -> Self::I;
    /// `ROWS` unsigned bytes at `p`, one per lane.
    unsafe fn rows_u8(p: *const u8) -> Self::I;
    /// `ROWS` signed bytes at `p`, one per lane.
    unsafe fn rows_i8(p: *const i8) -> Self::I;

    unsafe fn fzero() -> Self::F;
    unsafe fn fsplat(x: f32) -> Self::F;
    /// `ROWS` floats at `p`.
    unsafe fn fload(p: *const f32) -> Self::F;
    /// The sum of the lanes.
    unsafe fn fsum(a: Self::F) -> f32;
    /// `ROWS` f16 values at `p`, one per lane.
    unsafe fn rows_f16(p: *const u16) -> Self::F;
    unsafe fn to_f(a: Self::I) -> Self::F;
    unsafe fn fmul(a: Self::F, b: Self::F) -> Self::F;
    /// `a · b + c`.
    unsafe fn fmadd(a: Self::F, b: Self::F, c: Self::F) -> Self::F;
    /// Stores `ROWS` floats at `p`.
    unsafe fn fstore(p: *mut f32, a: Self::F);
}

/// Defines a `pub(super) const` kernel table ([`super::tiled::Kernels`]) for each instruction
/// set from one generic kernel body `$body::<S: Simd, const T: usize>`: each entry is a
/// `#[target_feature]` wrapper (in module `$module`) that inlines the body.
macro_rules! isa_kernels {
    ($module:ident: $body:ident => $avx512:ident, $avx2_vnni:ident, $avx2:ident) => {
        /// This format's kernels with AVX-512 F/BW/DQ/VNNI.
        pub(super) const $avx512: super::tiled::Kernels = [
            $module::avx512::<1>,
            $module::avx512::<2>,
            $module::avx512::<3>,
            $module::avx512::<4>,
        ];
        /// This format's kernels with AVX2 + FMA + F16C and AVX-VNNI.
        pub(super) const $avx2_vnni: super::tiled::Kernels = [
            $module::avx2_vnni::<1>,
            $module::avx2_vnni::<2>,
            $module::avx2_vnni::<3>,
            $module::avx2_vnni::<4>,
        ];
        /// This format's kernels with AVX2 + FMA + F16C.
        pub(super) const $avx2: super::tiled::Kernels = [
            $module::avx2::<1>,
            $module::avx2::<2>,
            $module::avx2::<3>,
            $module::avx2::<4>,
        ];

        mod $module {
            use super::super::acts::Acts;
            #[cfg(target_arch = "x86_64")]
            use super::super::simd::x86::{Avx2, Avx2Vnni, Avx512};
            use super::super::tiled::{ROWS, TILE, Tile};

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")]
            pub(super) unsafe fn avx512<const T: usize>(
                tile: &Tile<'_>,
                acts: &Acts,
                first: usize,
                out: &mut [[f32; ROWS]; TILE],
            ) {
                // SAFETY: the caller guarantees the features and the checked slices.
                unsafe { super::$body::<Avx512, T>(tile, acts, first, out) }
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c,avxvnni")]
            pub(super) unsafe fn avx2_vnni<const T: usize>(
                tile: &Tile<'_>,
                acts: &Acts,
                first: usize,
                out: &mut [[f32; ROWS]; TILE],
            ) {
                // SAFETY: the caller guarantees the features and the checked slices.
                unsafe { super::$body::<Avx2Vnni, T>(tile, acts, first, out) }
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            pub(super) unsafe fn avx2<const T: usize>(
                tile: &Tile<'_>,
                acts: &Acts,
                first: usize,
                out: &mut [[f32; ROWS]; TILE],
            ) {
                // SAFETY: the caller guarantees the features and the checked slices.
                unsafe { super::$body::<Avx2, T>(tile, acts, first, out) }
            }

            /// Never called: no instruction set is supported off x86-64.
            #[cfg(not(target_arch = "x86_64"))]
            pub(super) unsafe fn never<const T: usize>(
                _: &Tile<'_>,
                _: &Acts,
                _: usize,
                _: &mut [[f32; ROWS]; TILE],
            ) {
                unreachable!("the tiled kernels only run on x86-64")
            }
            #[cfg(not(target_arch = "x86_64"))]
            pub(super) use never as avx2;
            #[cfg(not(target_arch = "x86_64"))]
            pub(super) use never as avx2_vnni;
            #[cfg(not(target_arch = "x86_64"))]
            pub(super) use never as avx512;
        }
    };
}
pub(super) use isa_kernels;

// Each method is one or two intrinsics whose only safety requirement is the `Simd` contract
// (the CPU features, valid pointers): an `unsafe` block around every intrinsic would add
// nothing, so the lint is off in this module only.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_op_in_unsafe_fn)]
pub(super) mod x86 {
    use std::arch::x86_64::*;

    use super::{Line, Simd};

    /// 512-bit AVX-512 F/BW/DQ/VNNI.
    pub(crate) struct Avx512;
    /// 256-bit AVX2 + FMA + F16C with AVX-VNNI.
    pub(crate) struct Avx2Vnni;
    /// 256-bit AVX2 + FMA + F16C.
    pub(crate) struct Avx2;

    // SAFETY (all methods below): the `Simd` contract; each intrinsic needs the features of its
    // implementation, which the `#[target_feature]` wrapper it is inlined into enables.

    impl Simd for Avx512 {
        const ROWS: usize = 16;
        const VNNI: bool = true;
        type I = __m512i;
        type F = __m512;

        #[inline(always)]
        unsafe fn zero() -> __m512i {
            _mm512_setzero_si512()
        }
        #[inline(always)]
        unsafe fn load(line: *const Line, _part: usize) -> __m512i {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_load_si512(line.cast()) }
        }
        #[inline(always)]
        unsafe fn store(line: *mut Line, _part: usize, v: __m512i) {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_store_si512(line.cast(), v) }
        }
        #[inline(always)]
        unsafe fn and(a: __m512i, b: __m512i) -> __m512i {
            _mm512_and_si512(a, b)
        }
        #[inline(always)]
        unsafe fn or(a: __m512i, b: __m512i) -> __m512i {
            _mm512_or_si512(a, b)
        }
        #[inline(always)]
        unsafe fn xor(a: __m512i, b: __m512i) -> __m512i {
            _mm512_xor_si512(a, b)
        }
        #[inline(always)]
        unsafe fn add(a: __m512i, b: __m512i) -> __m512i {
            _mm512_add_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn sub(a: __m512i, b: __m512i) -> __m512i {
            _mm512_sub_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn mul(a: __m512i, b: __m512i) -> __m512i {
            _mm512_mullo_epi32(a, b)
        }
        #[inline(always)]
        unsafe fn shl16(a: __m512i, n: u32) -> __m512i {
            _mm512_sll_epi16(a, _mm_cvtsi32_si128(n as i32))
        }
        #[inline(always)]
        unsafe fn shr16(a: __m512i, n: u32) -> __m512i {
            _mm512_srl_epi16(a, _mm_cvtsi32_si128(n as i32))
        }
        #[inline(always)]
        unsafe fn shl32(a: __m512i, n: u32) -> __m512i {
            _mm512_sll_epi32(a, _mm_cvtsi32_si128(n as i32))
        }
        #[inline(always)]
        unsafe fn dot_i16(acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
            _mm512_dpwssd_epi32(acc, a, b)
        }
        #[inline(always)]
        unsafe fn splat8(x: u8) -> __m512i {
            _mm512_set1_epi8(x as i8)
        }
        #[inline(always)]
        unsafe fn splat32(x: i32) -> __m512i {
            _mm512_set1_epi32(x)
        }
        #[inline(always)]
        unsafe fn splat4(p: *const i8) -> __m512i {
            // SAFETY: the caller upholds the trait method's contract: valid pointers, on a CPU with the
            // features this impl is compiled for.
            unsafe { _mm512_set1_epi32(p.cast::<i32>().read_unaligned()) }
        }
        #[inline(always)]
        unsafe fn dot(acc: __m512i, w: __m512i, a: __m512i) -> __m512i {
            _mm512_dpbusd_epi32(acc, w, a)
        }
        #[inline(always)]
        unsafe fn dot16(acc: __m512i, w: __m512i, a: __m512i) -> __m512i {
            _mm512_add_epi16(acc, _mm512_maddubs_epi16(w, a))
        }
        #[inline(always)]
        unsafe fn widen16(acc: __m512i) -> __m512i {
            _mm512_madd_epi16(acc, _mm512_set1_epi16(1))
        }
        #[inline(always)]
        unsafe fn dot_signed(acc: __m512i, w: __m512i, a: __m512i) -> __m512i {
            // |w| as unsigned (−128 gives 128) times a with w's sign.
            let neg = _mm512_movepi8_mask(w);
            let a = _mm512_mask_sub_epi8(a, neg, _mm512_setzero_si512(), a);
            _mm512_dpbusd_epi32(acc, _mm512_abs_epi8(w), a)
        }
        #[inline(always)]
        unsafe fn rows_u8(p: *const u8) -> __m512i {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_cvtepu8_epi32(_mm_loadu_si128(p.cast())) }
        }
        #[inline(always)]
        unsafe fn rows_i8(p: *const i8) -> __m512i {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_cvtepi8_epi32(_mm_loadu_si128(p.cast())) }
        }
        #[inline(always)]
        unsafe fn fzero() -> __m512 {
            _mm512_setzero_ps()
        }
        #[inline(always)]
        unsafe fn fsplat(x: f32) -> __m512 {
            _mm512_set1_ps(x)
        }
        #[inline(always)]
        unsafe fn fload(p: *const f32) -> __m512 {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_loadu_ps(p) }
        }
        #[inline(always)]
        unsafe fn fsum(a: __m512) -> f32 {
            _mm512_reduce_add_ps(a)
        }
        #[inline(always)]
        unsafe fn rows_f16(p: *const u16) -> __m512 {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
        }
        #[inline(always)]
        unsafe fn to_f(a: __m512i) -> __m512 {
            _mm512_cvtepi32_ps(a)
        }
        #[inline(always)]
        unsafe fn fmul(a: __m512, b: __m512) -> __m512 {
            _mm512_mul_ps(a, b)
        }
        #[inline(always)]
        unsafe fn fmadd(a: __m512, b: __m512, c: __m512) -> __m512 {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline(always)]
        unsafe fn fstore(p: *mut f32, a: __m512) {
            // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
            // pointers, on a CPU with the features this impl is compiled for.
            unsafe { _mm512_storeu_ps(p, a) }
        }
    }

    /// The AVX2 operations both 256-bit implementations share; only `dot` differs.
    macro_rules! avx2_common {
        () => {
            const ROWS: usize = 8;
            type I = __m256i;
            type F = __m256;

            #[inline(always)]
            unsafe fn zero() -> __m256i {
                _mm256_setzero_si256()
            }
            #[inline(always)]
            unsafe fn load(line: *const Line, part: usize) -> __m256i {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_load_si256(line.cast::<__m256i>().add(part)) }
            }
            #[inline(always)]
            unsafe fn store(line: *mut Line, part: usize, v: __m256i) {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_store_si256(line.cast::<__m256i>().add(part), v) }
            }
            #[inline(always)]
            unsafe fn and(a: __m256i, b: __m256i) -> __m256i {
                _mm256_and_si256(a, b)
            }
            #[inline(always)]
            unsafe fn or(a: __m256i, b: __m256i) -> __m256i {
                _mm256_or_si256(a, b)
            }
            #[inline(always)]
            unsafe fn xor(a: __m256i, b: __m256i) -> __m256i {
                _mm256_xor_si256(a, b)
            }
            #[inline(always)]
            unsafe fn add(a: __m256i, b: __m256i) -> __m256i {
                _mm256_add_epi32(a, b)
            }
            #[inline(always)]
            unsafe fn sub(a: __m256i, b: __m256i) -> __m256i {
                _mm256_sub_epi32(a, b)
            }
            #[inline(always)]
            unsafe fn mul(a: __m256i, b: __m256i) -> __m256i {
                _mm256_mullo_epi32(a, b)
            }
            #[inline(always)]
            unsafe fn shl16(a: __m256i, n: u32) -> __m256i {
                _mm256_sll_epi16(a, _mm_cvtsi32_si128(n as i32))
            }
            #[inline(always)]
            unsafe fn shr16(a: __m256i, n: u32) -> __m256i {
                _mm256_srl_epi16(a, _mm_cvtsi32_si128(n as i32))
            }
            #[inline(always)]
            unsafe fn shl32(a: __m256i, n: u32) -> __m256i {
                _mm256_sll_epi32(a, _mm_cvtsi32_si128(n as i32))
            }
            #[inline(always)]
            unsafe fn splat8(x: u8) -> __m256i {
                _mm256_set1_epi8(x as i8)
            }
            #[inline(always)]
            unsafe fn splat32(x: i32) -> __m256i {
                _mm256_set1_epi32(x)
            }
            #[inline(always)]
            unsafe fn splat4(p: *const i8) -> __m256i {
                // SAFETY: the caller upholds the trait method's contract: valid pointers, on a CPU with the
                // features this impl is compiled for.
                unsafe { _mm256_set1_epi32(p.cast::<i32>().read_unaligned()) }
            }
            #[inline(always)]
            unsafe fn dot16(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
                _mm256_add_epi16(acc, _mm256_maddubs_epi16(w, a))
            }
            #[inline(always)]
            unsafe fn widen16(acc: __m256i) -> __m256i {
                _mm256_madd_epi16(acc, _mm256_set1_epi16(1))
            }
            #[inline(always)]
            unsafe fn dot_signed(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
                // |w| as unsigned (−128 gives 128) times a with w's sign: pairs stay below 2¹⁵.
                let p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
                _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)))
            }
            #[inline(always)]
            unsafe fn rows_u8(p: *const u8) -> __m256i {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.cast())) }
            }
            #[inline(always)]
            unsafe fn rows_i8(p: *const i8) -> __m256i {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast())) }
            }
            #[inline(always)]
            unsafe fn fzero() -> __m256 {
                _mm256_setzero_ps()
            }
            #[inline(always)]
            unsafe fn fsplat(x: f32) -> __m256 {
                _mm256_set1_ps(x)
            }
            #[inline(always)]
            unsafe fn fload(p: *const f32) -> __m256 {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_loadu_ps(p) }
            }
            #[inline(always)]
            unsafe fn fsum(a: __m256) -> f32 {
                let s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
            }
            #[inline(always)]
            unsafe fn rows_f16(p: *const u16) -> __m256 {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
            }
            #[inline(always)]
            unsafe fn to_f(a: __m256i) -> __m256 {
                _mm256_cvtepi32_ps(a)
            }
            #[inline(always)]
            unsafe fn fmul(a: __m256, b: __m256) -> __m256 {
                _mm256_mul_ps(a, b)
            }
            #[inline(always)]
            unsafe fn fmadd(a: __m256, b: __m256, c: __m256) -> __m256 {
                _mm256_fmadd_ps(a, b, c)
            }
            #[inline(always)]
            unsafe fn fstore(p: *mut f32, a: __m256) {
                // SAFETY: the caller upholds the trait method's contract: valid (and, for lines, aligned)
                // pointers, on a CPU with the features this impl is compiled for.
                unsafe { _mm256_storeu_ps(p, a) }
            }
        };
    }

    impl Simd for Avx2Vnni {
        const VNNI: bool = true;
        avx2_common!();

        #[inline(always)]
        unsafe fn dot_i16(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
            _mm256_dpwssd_avx_epi32(acc, a, b)
        }

        #[inline(always)]
        unsafe fn dot(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
            _mm256_dpbusd_avx_epi32(acc, w, a)
        }
    }

    impl Simd for Avx2 {
        const VNNI: bool = false;
        avx2_common!();

        #[inline(always)]
        unsafe fn dot_i16(acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
            _mm256_add_epi32(acc, _mm256_madd_epi16(a, b))
        }

        #[inline(always)]
        unsafe fn dot(acc: __m256i, w: __m256i, a: __m256i) -> __m256i {
            _mm256_add_epi32(acc, Self::widen16(_mm256_maddubs_epi16(w, a)))
        }
    }
}
