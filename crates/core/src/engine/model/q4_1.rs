//! The Q4_1 kernel of [`super::tiled`] (SmolLM2's files, among others). A Q4_1 block is an f16
//! scale `d`, an f16 minimum `m` and 32 unsigned 4-bit values in Q4_0's nibble order; value
//! `i` is `d q_i + m`. The tile keeps Q4_0's four lines per block and a fifth with the 16 rows'
//! minima; the kernel is Q4_0's without the `-8` offset and with `m × Σ a` added per block
//! (llama.cpp takes `Σ a` from its Q8_1 activations, the same sum).
#![allow(unsafe_code)] // SIMD dot products; each unsafe block says why it is sound

use super::acts::Acts;
use super::q4_0;
use super::simd::{Simd, isa_kernels};
use super::tiled::{Line, ROWS, Scales, TILE, Tile};

/// Bytes of one Q4_1 block in a GGUF file: f16 scale, f16 minimum, 16 bytes of 4-bit values.
pub(super) const BLOCK_BYTES: usize = 20;
/// 64-byte lines per block of a tile: Q4_0's four, then the minima.
pub(super) const LINES: usize = q4_0::LINES + 1;

/// Copies row `row` of one block into its tile: the scale, 4 bytes per value line, the minimum.
pub(super) fn repack(src: &[u8], row: usize, lines: &mut [Line], scales: &mut Scales) {
    scales[row] = u16::from_le_bytes([src[0], src[1]]);
    let (values, mins) = lines.split_at_mut(q4_0::LINES);
    for (line, four) in values.iter_mut().zip(src[4..].chunks_exact(4)) {
        line.0[4 * row..4 * row + 4].copy_from_slice(four);
    }
    if let Some(mins) = mins.first_mut() {
        mins.0[2 * row..2 * row + 2].copy_from_slice(&src[2..4]);
    }
}

isa_kernels!(isa: dot_rows => AVX512, AVX2_VNNI, AVX2);

/// Rows `first..first + T` of the activations times one tile.
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
    unsafe { q4_0::dot_nibbles::<S, T, true>(tile, acts, first, out) }
}
