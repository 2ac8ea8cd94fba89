//! The Q4_0 kernel of [`super::tiled`]. A Q4_0 block keeps value `i` in the low nibble of byte
//! `i` and value `i + 16` in its high nibble, both stored as `q + 8`; the tile keeps the bytes
//! as they are, four lines per block (line `g`: bytes `4g..4g + 4` of each row). Masking a line
//! gives values `4g..4g + 4` of all 16 rows, shifting it gives `16 + 4g..`, both unsigned as
//! `vpdpbusd` wants; `8 × Σ q_a` of each activation block is subtracted per block. The products
//! of a `vpmaddubsw` pair stay below 2 × 15 × 127, so the AVX2 form cannot saturate.
#![allow(unsafe_code)] // SIMD dot products; each unsafe block says why it is sound

use super::acts::Acts;
use super::simd::{Simd, isa_kernels};
use super::tiled::{Line, ROWS, Scales, TILE, Tile};

/// Values per block.
const QK: usize = 32;
/// Bytes of one Q4_0 block in a GGUF file: an f16 scale and 16 bytes of 4-bit values.
pub(super) const BLOCK_BYTES: usize = 18;
/// 64-byte lines per block of a tile.
pub(super) const LINES: usize = QK / 8;

/// Copies row `row` of one block into its tile: the scale, and 4 bytes per line.
pub(super) fn repack(src: &[u8], row: usize, lines: &mut [Line], scales: &mut Scales) {
    scales[row] = u16::from_le_bytes([src[0], src[1]]);
    for (line, four) in lines.iter_mut().zip(src[2..].chunks_exact(4)) {
        line.0[4 * row..4 * row + 4].copy_from_slice(four);
    }
}

isa_kernels!(isa: dot_rows => AVX512, AVX2_VNNI, AVX2);

/// Rows `first..first + T` of the activations times one tile (see the module documentation).
///
/// # Safety
/// `S`'s instruction set, and slices checked by `tiled::check_tile`.
#[inline(always)]
unsafe fn dot_rows<S: Simd, const T: usize>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    // SAFETY: the caller's guarantees, passed on.
    unsafe { dot_nibbles::<S, T, false>(tile, acts, first, out) }
}

/// The kernel of Q4_0 (`MIN = false`: values `q - 8`, four lines per block) and Q4_1
/// (`MIN = true`: values `q` times the scale plus a per-block minimum, whose 16 f16 values sit
/// in a fifth line: `Σ (d q + m) a = d Σ q a + m Σ a`).
///
/// # Safety
/// `S`'s instruction set, and slices checked by `tiled::check_tile`.
#[inline(always)]
pub(super) unsafe fn dot_nibbles<S: Simd, const T: usize, const MIN: bool>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    let stride = if MIN { LINES + 1 } else { LINES };
    // SAFETY: block b's lines and scales lie in the tile, and block b of each activation row
    // lies in the activations (`tiled::check_tile` checked the sizes).
    unsafe {
        let low = S::splat8(0x0F);
        let (aq, ad, asum) = acts.rows::<T>(first);
        let totals = acts.totals::<T>(first);
        for part in 0..S::PARTS {
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let lines = tile.lines.as_ptr().add(b * stride);
                // Two integer chains (low and high nibbles) halve the dependency on `dot`.
                let mut lo = [S::zero(); T];
                let mut hi = [S::zero(); T];
                for g in 0..LINES {
                    let v = S::load(lines.add(g), part);
                    let w_lo = S::and(v, low);
                    let w_hi = S::and(S::shr16(v, 4), low);
                    for t in 0..T {
                        let a = aq[t].add(b * QK + 4 * g);
                        if S::VNNI {
                            lo[t] = S::dot(lo[t], w_lo, S::splat4(a));
                            hi[t] = S::dot(hi[t], w_hi, S::splat4(a.add(16)));
                        } else {
                            // At most 8 × 2 × 15 × 127 per 16-bit sum: no saturation.
                            lo[t] = S::dot16(lo[t], w_lo, S::splat4(a));
                            lo[t] = S::dot16(lo[t], w_hi, S::splat4(a.add(16)));
                        }
                    }
                }
                if !S::VNNI {
                    for sum in &mut lo {
                        *sum = S::widen16(*sum);
                    }
                }
                let dw = S::rows_f16(tile.scales[b].as_ptr().add(part * S::ROWS));
                for t in 0..T {
                    let dot = if MIN {
                        S::add(lo[t], hi[t])
                    } else {
                        S::sub(S::add(lo[t], hi[t]), S::splat32(8 * *asum[t].add(b)))
                    };
                    let scale = S::fmul(dw, S::fsplat(*ad[t].add(b)));
                    acc[t] = S::fmadd(S::to_f(dot), scale, acc[t]);
                }
                if MIN {
                    // The minima line: 16 f16 values, one per row of the tile.
                    let mins = (*lines.add(LINES)).0.as_ptr().cast::<u16>();
                    let mw = S::rows_f16(mins.add(part * S::ROWS));
                    for t in 0..T {
                        acc[t] = S::fmadd(mw, S::fsplat(*totals[t].add(b)), acc[t]);
                    }
                }
            }
            for t in 0..T {
                S::fstore(out[t].as_mut_ptr().add(part * S::ROWS), acc[t]);
            }
        }
    }
}
