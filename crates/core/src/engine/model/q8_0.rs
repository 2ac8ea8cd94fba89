//! The Q8_0 kernel of [`super::tiled`]: weights stored as `q + 128` (exact for every i8,
//! including −128), eight lines per block (line `g`: values `4g..4g + 4` of each row). With
//! `vpdpbusd`, `128 × Σ q_a` of each activation block is subtracted from the block's integer dot
//! product; without it the weights are made signed again and multiplied as `|w| · sign(a, w)`,
//! whose `vpmaddubsw` pairs cannot saturate.
#![allow(unsafe_code)] // SIMD dot products; each unsafe block says why it is sound

use super::acts::Acts;
use super::simd::{Simd, isa_kernels};
use super::tiled::{Line, ROWS, Scales, TILE, Tile};

/// Values per block.
const QK: usize = 32;
/// Bytes of one Q8_0 block in a GGUF file: an f16 scale and 32 signed bytes.
pub(super) const BLOCK_BYTES: usize = 34;
/// 64-byte lines per block of a tile.
pub(super) const LINES: usize = QK / 4;

/// Copies row `row` of one block into its tile: the scale, and 4 values (`+ 128`) per line.
pub(super) fn repack(src: &[u8], row: usize, lines: &mut [Line], scales: &mut Scales) {
    scales[row] = u16::from_le_bytes([src[0], src[1]]);
    for (line, four) in lines.iter_mut().zip(src[2..].chunks_exact(4)) {
        for (d, &q) in line.0[4 * row..4 * row + 4].iter_mut().zip(four) {
            *d = q ^ 0x80;
        }
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
    // SAFETY: block b's lines and scales lie in the tile, and block b of each activation row
    // lies in the activations (`tiled::check_tile` checked the sizes).
    unsafe {
        let flip = S::splat8(0x80);
        let offset = if S::VNNI { 128 } else { 0 };
        let (aq, ad, asum) = acts.rows::<T>(first);
        for part in 0..S::PARTS {
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let lines = tile.lines.as_ptr().add(b * LINES);
                // Two integer chains (even and odd lines) halve the dependency on `dot`.
                let mut even = [S::zero(); T];
                let mut odd = [S::zero(); T];
                for g in (0..LINES).step_by(2) {
                    let w0 = S::load(lines.add(g), part);
                    let w1 = S::load(lines.add(g + 1), part);
                    for t in 0..T {
                        let a = aq[t].add(b * QK + 4 * g);
                        let (a0, a1) = (S::splat4(a), S::splat4(a.add(4)));
                        if S::VNNI {
                            even[t] = S::dot(even[t], w0, a0);
                            odd[t] = S::dot(odd[t], w1, a1);
                        } else {
                            even[t] = S::dot_signed(even[t], S::xor(w0, flip), a0);
                            odd[t] = S::dot_signed(odd[t], S::xor(w1, flip), a1);
                        }
                    }
                }
                let dw = S::rows_f16(tile.scales[b].as_ptr().add(part * S::ROWS));
                for t in 0..T {
                    let sum = S::add(even[t], odd[t]);
                    let dot = S::sub(sum, S::splat32(offset * *asum[t].add(b)));
                    let scale = S::fmul(dw, S::fsplat(*ad[t].add(b)));
                    acc[t] = S::fmadd(S::to_f(dot), scale, acc[t]);
                }
            }
            for t in 0..T {
                S::fstore(out[t].as_mut_ptr().add(part * S::ROWS), acc[t]);
            }
        }
    }
}
