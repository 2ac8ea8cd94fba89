//! The prompt path of the K-quant kernels. In a prompt every weight tile meets many activation
//! rows, and the fused kernels unpack each weight line again for every group of [`TILE`] rows
//! (masks, shifts and, for Q5_K and Q6_K, the high bits merged in). Here a task first expands
//! its tile once into value lines, one byte per weight in natural order (line `k` of a
//! super-block holds values `4k..4k + 4` of each of the 16 rows), followed by the tile's own
//! scale lines; the kernels below then only broadcast and `vpdpbusd` for every row. The scratch
//! is per thread and reused: 69 lines (4.4 KB) per super-block of the tile.
//!
//! Two kernels cover the three formats: scales per 32 values with minima (Q4_K, Q5_K: values up
//! to 31) and scales per 16 with the `− 32` offset (Q6_K: values up to 63), both exact integer
//! sums per super-block as in [`super::q4_k`] and [`super::q6_k`].
#![allow(unsafe_code)] // SIMD unpacking of K-quant blocks; each unsafe block says why it is sound

use super::acts::Acts;
use super::simd::{Simd, isa_kernels};
use super::tiled::{Isa, Line, ROWS, TILE, Tile};

/// Value lines per super-block.
const VALUE_LINES: usize = 64;
/// Lines per super-block of an expanded tile: the values, then the packed tile's 5 scale lines.
pub(super) const LINES: usize = VALUE_LINES + AUX_LINES;
/// Scale lines of a packed K-quant super-block (the same layout in all three formats).
const AUX_LINES: usize = 5;
/// Values per super-block.
const QK: usize = 256;

/// How a packed K-quant tile is laid out, for [`expand`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Packed {
    Q4K,
    Q5K,
    Q6K,
}

impl Packed {
    /// Lines per super-block of the packed tile.
    const fn lines(self) -> usize {
        match self {
            Self::Q4K => super::q4_k::Q4K_LINES,
            Self::Q5K => super::q4_k::Q5K_LINES,
            Self::Q6K => super::q6_k::LINES,
        }
    }
}

/// Expands a packed tile of `blocks` super-blocks into `out` (`blocks × LINES` lines).
///
/// # Safety
/// `S`'s instruction set; `tile` holds `blocks` packed super-blocks of `format` and `out`
/// `blocks × LINES` lines.
#[inline(always)]
pub(super) unsafe fn expand<S: Simd>(
    format: Packed,
    tile: &[Line],
    out: &mut [Line],
    blocks: usize,
) {
    // SAFETY: every line read or written lies in a checked super-block (the caller's contract).
    unsafe {
        let (low, bit, top) = (S::splat8(0x0F), S::splat8(0x10), S::splat8(0x30));
        for b in 0..blocks {
            let blk = tile.as_ptr().add(b * format.lines());
            let dst = out.as_mut_ptr().add(b * LINES);
            for k in 0..32 {
                // Nibble line k = 8c + g holds values 64c + 4g.. (low) and 64c + 32 + 4g.. (high).
                let (c, g) = (k / 8, k % 8);
                for part in 0..S::PARTS {
                    let (lo, hi) = match format {
                        Packed::Q4K => super::q4_k::unpack::<S, false>(blk, k, part, low, bit),
                        Packed::Q5K => super::q4_k::unpack::<S, true>(blk, k, part, low, bit),
                        Packed::Q6K => super::q6_k::unpack::<S>(blk, k, part, low, top),
                    };
                    S::store(dst.add(16 * c + g), part, lo);
                    S::store(dst.add(16 * c + 8 + g), part, hi);
                }
            }
            let aux = blk.add(format.lines() - AUX_LINES);
            std::ptr::copy_nonoverlapping(aux, dst.add(VALUE_LINES), AUX_LINES);
        }
    }
}

isa_kernels!(mins_isa: mins32_rows => MINS32_AVX512, MINS32_AVX2_VNNI, MINS32_AVX2);
isa_kernels!(offset_isa: offset16_rows => OFFSET16_AVX512, OFFSET16_AVX2_VNNI, OFFSET16_AVX2);

/// The dot products of `lines` value lines starting at `first_line` with the activations: one
/// 32-bit sum per row for each of the `T` activation rows.
///
/// # Safety
/// `S`'s instruction set; the lines and the activations' values lie in bounds.
#[inline(always)]
unsafe fn dots<S: Simd, const T: usize>(
    blk: *const Line,
    first_line: usize,
    lines: usize,
    part: usize,
    a: &[*const i8; T],
) -> [S::I; T] {
    // SAFETY: the caller's contract.
    unsafe {
        // Two chains (even and odd lines) halve the dependency on `dot`.
        let mut even = [S::zero(); T];
        let mut odd = [S::zero(); T];
        for l in (first_line..first_line + lines).step_by(2) {
            let (w0, w1) = (S::load(blk.add(l), part), S::load(blk.add(l + 1), part));
            for t in 0..T {
                even[t] = S::dot(even[t], w0, S::splat4(a[t].add(4 * l)));
                odd[t] = S::dot(odd[t], w1, S::splat4(a[t].add(4 * l + 4)));
            }
        }
        for t in 0..T {
            even[t] = S::add(even[t], odd[t]);
        }
        even
    }
}

/// Q4_K and Q5_K, expanded: scales per 32 values and minima (see [`super::q4_k`]).
///
/// # Safety
/// `S`'s instruction set, and an expanded tile checked by `tiled::check_tile`.
#[inline(always)]
unsafe fn mins32_rows<S: Simd, const T: usize>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    // SAFETY: super-block b's lines lie in the tile, and block b of each activation row lies
    // in the activations (`tiled::check_tile` checked the sizes).
    unsafe {
        let (aq, ad, _) = acts.rows::<T>(first);
        let pairs = acts.pairs::<T>(first);
        for part in 0..S::PARTS {
            let row0 = part * S::ROWS;
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let blk = tile.lines.as_ptr().add(b * LINES);
                let aux = blk.add(VALUE_LINES).cast::<u8>();
                let a: [*const i8; T] = std::array::from_fn(|t| aq[t].wrapping_add(b * QK));
                let mut sumi = [S::zero(); T];
                for j in 0..8 {
                    let d = dots::<S, T>(blk, 8 * j, 8, part, &a);
                    let sc = S::rows_u8(aux.add(16 * j + row0));
                    for t in 0..T {
                        sumi[t] = S::add(sumi[t], S::mul(d[t], sc));
                    }
                }
                super::q4_k::finish_block::<S, T>(aux, row0, &sumi, &pairs, &ad, b, &mut acc);
            }
            for t in 0..T {
                S::fstore(out[t].as_mut_ptr().add(row0), acc[t]);
            }
        }
    }
}

/// Q6_K, expanded: scales per 16 values and the `− 32` offset (see [`super::q6_k`]).
///
/// # Safety
/// `S`'s instruction set, and an expanded tile checked by `tiled::check_tile`.
#[inline(always)]
unsafe fn offset16_rows<S: Simd, const T: usize>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    // SAFETY: as in `mins32_rows`.
    unsafe {
        let (aq, ad, _) = acts.rows::<T>(first);
        let pairs = acts.pairs::<T>(first);
        for part in 0..S::PARTS {
            let row0 = part * S::ROWS;
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let blk = tile.lines.as_ptr().add(b * LINES);
                let aux = blk.add(VALUE_LINES).cast::<u8>();
                let a: [*const i8; T] = std::array::from_fn(|t| aq[t].wrapping_add(b * QK));
                let mut sumi = [S::zero(); T];
                for j in 0..16 {
                    let d = dots::<S, T>(blk, 4 * j, 4, part, &a);
                    let sc = S::rows_i8(aux.add(16 * j + row0).cast());
                    for t in 0..T {
                        sumi[t] = S::add(sumi[t], S::mul(d[t], sc));
                    }
                }
                super::q6_k::finish_block::<S, T>(aux, row0, &sumi, &pairs, &ad, b, &mut acc);
            }
            for t in 0..T {
                S::fstore(out[t].as_mut_ptr().add(row0), acc[t]);
            }
        }
    }
}

/// Expands `blocks` packed super-blocks of `format` from `tile` into `out` with `isa`.
pub(super) fn expand_tile(
    isa: Isa,
    format: Packed,
    tile: &[Line],
    out: &mut [Line],
    blocks: usize,
) {
    assert!(
        tile.len() >= blocks * format.lines() && out.len() >= blocks * LINES && isa.is_supported(),
        "expansion sizes"
    );
    match isa {
        // SAFETY: the CPU supports `isa` and the sizes were checked just above.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512Vnni => unsafe { x86::avx512(format, tile, out, blocks) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the CPU has this instruction set (checked when `isa` was chosen) and the sizes were checked above.
        Isa::Avx2Vnni | Isa::Avx2 => unsafe { x86::avx2(format, tile, out, blocks) },
        #[cfg(not(target_arch = "x86_64"))]
        _ => unreachable!("the tiled kernels only run on x86-64"),
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::simd::x86::{Avx2, Avx512};
    use super::{Line, Packed, expand};

    /// # Safety
    /// AVX-512 F/BW; see [`expand`].
    #[target_feature(enable = "avx512f,avx512bw,avx2")]
    pub(super) unsafe fn avx512(format: Packed, tile: &[Line], out: &mut [Line], blocks: usize) {
        // SAFETY: forwarded contract.
        unsafe { expand::<Avx512>(format, tile, out, blocks) }
    }

    /// # Safety
    /// AVX2; see [`expand`].
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn avx2(format: Packed, tile: &[Line], out: &mut [Line], blocks: usize) {
        // SAFETY: forwarded contract.
        unsafe { expand::<Avx2>(format, tile, out, blocks) }
    }
}
