//! The Q6_K kernel of [`super::tiled`]. A 256-value super-block has 16 groups of 16 values with
//! 8-bit signed scales and an f16 `d`: value = `d·sc·(q − 32)`, `q` 6-bit. Per super-block, a
//! tile holds (rearranged from the GGUF order at load):
//!
//! - 32 nibble lines with the low 4 bits: line `k = 8c + g`, byte `b` of a row holds value
//!   `64c + 4g + b` in its low nibble and `64c + 32 + 4g + b` in its high nibble;
//! - 16 lines of high bits: line `32 + k / 2`, byte `b` bits `4i..4i + 2` and `4i + 2..4i + 4`
//!   (`i = k % 2`) are the top two bits of nibble line `k`'s low and high values at byte `b`;
//! - 5 lines of scales: `sc[j]` of the 16 rows at bytes `16j..`, their `d` (f16) at `256..`.
//!
//! A group's integer dot product is scaled by `sc[j]` in 32 bits; the `− 32` of every value is
//! subtracted once per super-block as `32 · Σ_j sc[j] · Σ q_a`, the scales two by two as 16-bit
//! pairs against the activations' sums per 16 (`vpdpwssd`). `q ≤ 63`, so `vpmaddubsw` pairs
//! stay below 2¹⁵.
#![allow(unsafe_code)] // SIMD dot products; each unsafe block says why it is sound

use super::acts::{Acts, PAIRS};
use super::simd::{Simd, isa_kernels};
use super::tiled::{Line, ROWS, TILE, Tile};

/// Values per super-block.
const QK: usize = 256;
/// Bytes of one Q6_K block in a GGUF file: 128 bytes of low nibbles, 64 of high bit pairs, 16
/// scales and `d`.
pub(super) const BLOCK_BYTES: usize = 210;
/// Lines of the scales and `d`.
const AUX_LINES: usize = 5;
/// Lines per super-block of a tile.
pub(super) const LINES: usize = 48 + AUX_LINES;

/// The 6-bit value `v` (0..256) of a GGUF Q6_K block.
fn value(src: &[u8], v: usize) -> u8 {
    let (ql, qh) = (&src[..128], &src[128..192]);
    let (half, quarter, l) = (v / 128, v % 128 / 32, v % 32);
    let lows = ql[64 * half + 32 * (quarter % 2) + l];
    let low = if quarter < 2 { lows & 0xF } else { lows >> 4 };
    let high = (qh[32 * half + l] >> (2 * quarter)) & 3;
    low | (high << 4)
}

/// Copies row `row` of one block into its tile.
pub(super) fn repack(src: &[u8], row: usize, lines: &mut [Line]) {
    for k in 0..32 {
        let (c, g) = (k / 8, k % 8);
        for b in 0..4 {
            let lo = value(src, 64 * c + 4 * g + b);
            let hi = value(src, 64 * c + 32 + 4 * g + b);
            lines[k].0[4 * row + b] = (lo & 0xF) | ((hi & 0xF) << 4);
            let top = (lo >> 4) | ((hi >> 4) << 2);
            lines[32 + k / 2].0[4 * row + b] |= top << (4 * (k % 2));
        }
    }
    let aux = 48 * 64;
    for (j, &sc) in src[192..208].iter().enumerate() {
        let at = aux + 16 * j + row;
        lines[at / 64].0[at % 64] = sc;
    }
    for (i, &d) in src[208..210].iter().enumerate() {
        let at = aux + 256 + 2 * row + i;
        lines[at / 64].0[at % 64] = d;
    }
}

isa_kernels!(isa: dot_rows => AVX512, AVX2_VNNI, AVX2);

/// Part `part` of nibble line `k` of the super-block at `blk` as two lines of 6-bit values (one
/// byte each): the low nibbles' and the high nibbles', with their top two bits. `low` and `top`
/// are `splat8(0x0F)` and `splat8(0x30)`.
///
/// # Safety
/// `S`'s instruction set; `blk` points at a whole super-block of the tile.
#[inline(always)]
pub(super) unsafe fn unpack<S: Simd>(
    blk: *const Line,
    k: usize,
    part: usize,
    low: S::I,
    top: S::I,
) -> (S::I, S::I) {
    // SAFETY: the caller's contract.
    unsafe {
        let v = S::load(blk.add(k), part);
        let h = S::load(blk.add(32 + k / 2), part);
        let i = 4 * (k % 2) as i32;
        let w_lo = S::or(S::and(v, low), S::and(S::shift16(h, 4 - i), top));
        let w_hi = S::or(
            S::and(S::shr16(v, 4), low),
            S::and(S::shift16(h, 2 - i), top),
        );
        (w_lo, w_hi)
    }
}

/// Adds super-block `b`'s share to each activation row's 16 outputs: `d` times the activations'
/// scale times `Σ_j sc[j] · dot_j` (`sumi`) less the `− 32` of every value,
/// `32 · Σ_j sc[j] · Σ q_a`, with the scales two by two as 16-bit pairs against the activations'
/// sums per 16 (`Acts::pairs`). `aux` is the super-block's scale lines, `row0` the first row of
/// the part.
///
/// # Safety
/// `S`'s instruction set; `aux` and block `b` of the activations in bounds.
#[inline(always)]
pub(super) unsafe fn finish_block<S: Simd, const T: usize>(
    aux: *const u8,
    row0: usize,
    sumi: &[S::I; T],
    pairs: &[*const i32; T],
    ad: &[*const f32; T],
    b: usize,
    acc: &mut [S::F; T],
) {
    // SAFETY: the caller's contract.
    unsafe {
        let mut scales = [S::zero(); 8];
        for (p, s) in scales.iter_mut().enumerate() {
            let at = aux.add(32 * p + row0).cast::<i8>();
            *s = S::pair16(S::rows_i8(at), S::rows_i8(at.add(16)));
        }
        let dw = S::rows_f16(aux.add(256 + 2 * row0).cast());
        for t in 0..T {
            let sums = pairs[t].add(b * PAIRS + 4);
            let mut offset = S::zero();
            for (p, &sp) in scales.iter().enumerate() {
                offset = S::dot_i16(offset, sp, S::splat32(*sums.add(p)));
            }
            let sum = S::sub(sumi[t], S::shl32(offset, 5));
            let scale = S::fmul(dw, S::fsplat(*ad[t].add(b)));
            acc[t] = S::fmadd(S::to_f(sum), scale, acc[t]);
        }
    }
}

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
    // SAFETY: super-block b's lines lie in the tile, and block b of each activation row lies
    // in the activations (`tiled::check_tile` checked the sizes).
    unsafe {
        let (low, top) = (S::splat8(0x0F), S::splat8(0x30));
        let (aq, ad, _) = acts.rows::<T>(first);
        let pairs = acts.pairs::<T>(first);
        for part in 0..S::PARTS {
            let row0 = part * S::ROWS;
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let blk = tile.lines.as_ptr().add(b * LINES);
                let aux = blk.add(48).cast::<u8>();
                let mut sumi = [S::zero(); T];
                // Chunk c, half q: nibble lines 8c + 4q.. hold groups 4c + q (low) and
                // 4c + 2 + q (high).
                for cq in 0..8 {
                    let (c, q) = (cq / 2, cq % 2);
                    let mut lo = [S::zero(); T];
                    let mut hi = [S::zero(); T];
                    for g in 4 * q..4 * q + 4 {
                        let (w_lo, w_hi) = unpack::<S>(blk, 8 * c + g, part, low, top);
                        for t in 0..T {
                            let a = aq[t].add(b * QK + 64 * c + 4 * g);
                            lo[t] = S::dot(lo[t], w_lo, S::splat4(a));
                            hi[t] = S::dot(hi[t], w_hi, S::splat4(a.add(32)));
                        }
                    }
                    let (j_lo, j_hi) = (4 * c + q, 4 * c + 2 + q);
                    let sc_lo = S::rows_i8(aux.add(16 * j_lo + row0).cast());
                    let sc_hi = S::rows_i8(aux.add(16 * j_hi + row0).cast());
                    for t in 0..T {
                        let both = S::add(S::mul(lo[t], sc_lo), S::mul(hi[t], sc_hi));
                        sumi[t] = S::add(sumi[t], both);
                    }
                }
                finish_block::<S, T>(aux, row0, &sumi, &pairs, &ad, b, &mut acc);
            }
            for t in 0..T {
                S::fstore(out[t].as_mut_ptr().add(row0), acc[t]);
            }
        }
    }
}
