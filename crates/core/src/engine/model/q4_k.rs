//! The Q4_K and Q5_K kernels of [`super::tiled`]. A 256-value super-block has 8 sub-blocks of
//! 32 with 6-bit scales and minima, and f16 `d`/`dmin`: value = `d·sc·q − dmin·m`, `q` 4-bit
//! (Q5_K: plus a fifth bit). Per super-block, a tile holds:
//!
//! - 32 nibble lines: line `k = 8c + g`, byte `b` of a row holds value `64c + 4g + b` in its low
//!   nibble and `64c + 32 + 4g + b` in its high nibble (the GGUF order of the bytes);
//! - Q5_K only, 8 lines of fifth bits: line `32 + k / 4`, byte `b` bits `2i, 2i + 1` (`i = k % 4`)
//!   are the fifth bits of nibble line `k`'s low and high values at byte `b`;
//! - 5 lines of scales: `sc[j]` of the 16 rows at bytes `16j..`, `m[j]` at `128 + 16j..`, the
//!   rows' `d` (f16) at `256..` and `dmin` at `288..`.
//!
//! A sub-block's integer dot product is scaled by `sc[j]` in 32 bits; the minima term
//! `Σ_j m[j] · Σ q_a` takes the minima two by two as 16-bit pairs against the activations' sums
//! per 32 (`vpdpwssd`), exactly.
#![allow(unsafe_code)] // SIMD dot products; each unsafe block says why it is sound

use super::acts::{Acts, PAIRS};
use super::simd::{Simd, isa_kernels};
use super::tiled::{Line, ROWS, TILE, Tile};

/// Values per super-block.
const QK: usize = 256;
/// Bytes of one Q4_K block in a GGUF file: `d`, `dmin`, 12 bytes of scales, 128 of nibbles.
pub(super) const Q4K_BLOCK_BYTES: usize = 144;
/// Bytes of one Q5_K block: as Q4_K plus 32 bytes of fifth bits (before the nibbles).
pub(super) const Q5K_BLOCK_BYTES: usize = 176;
/// Lines of the scales, minima and super-block scales.
const AUX_LINES: usize = 5;
/// Lines per super-block of a tile.
pub(super) const Q4K_LINES: usize = 32 + AUX_LINES;
/// Lines per super-block of a tile, Q5_K.
pub(super) const Q5K_LINES: usize = 40 + AUX_LINES;

/// Scale and minimum of sub-block `j` from the 12 packed bytes (6 bits each).
fn scale_min(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// Byte `at` of a super-block's lines.
fn byte(lines: &mut [Line], at: usize) -> &mut u8 {
    &mut lines[at / 64].0[at % 64]
}

/// Copies row `row` of one Q4_K (or, with `q5`, Q5_K) block into its tile.
pub(super) fn repack(src: &[u8], row: usize, lines: &mut [Line], q5: bool) {
    let (packed, rest) = src[4..].split_at(12);
    let (qh, qs) = if q5 {
        rest.split_at(32)
    } else {
        (&[][..], rest)
    };
    for (k, four) in qs.chunks_exact(4).enumerate() {
        lines[k].0[4 * row..4 * row + 4].copy_from_slice(four);
        if q5 {
            let (c, g, i) = (k / 8, k % 8, k % 4);
            for b in 0..4 {
                let h = qh[4 * g + b];
                let bits = ((h >> (2 * c)) & 1) | (((h >> (2 * c + 1)) & 1) << 1);
                lines[32 + k / 4].0[4 * row + b] |= bits << (2 * i);
            }
        }
    }
    let aux = if q5 { 40 } else { 32 } * 64;
    for j in 0..8 {
        let (sc, m) = scale_min(j, packed);
        *byte(lines, aux + 16 * j + row) = sc;
        *byte(lines, aux + 128 + 16 * j + row) = m;
    }
    for (at, v) in [(256, [src[0], src[1]]), (288, [src[2], src[3]])] {
        *byte(lines, aux + at + 2 * row) = v[0];
        *byte(lines, aux + at + 2 * row + 1) = v[1];
    }
}

isa_kernels!(q4k_isa: q4k_rows => Q4K_AVX512, Q4K_AVX2_VNNI, Q4K_AVX2);
isa_kernels!(q5k_isa: q5k_rows => Q5K_AVX512, Q5K_AVX2_VNNI, Q5K_AVX2);

/// Q4_K: see [`dot_rows`].
#[inline(always)]
unsafe fn q4k_rows<S: Simd, const T: usize>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    // SAFETY: forwarded contract.
    unsafe { dot_rows::<S, T, false>(tile, acts, first, out) }
}

/// Q5_K: see [`dot_rows`].
#[inline(always)]
unsafe fn q5k_rows<S: Simd, const T: usize>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    // SAFETY: forwarded contract.
    unsafe { dot_rows::<S, T, true>(tile, acts, first, out) }
}

/// Part `part` of nibble line `k` of the super-block at `blk` as two lines of values (one byte
/// each, unsigned): the low nibbles' and the high nibbles' (with their fifth bits for Q5_K).
/// `low` and `bit` are `splat8(0x0F)` and `splat8(0x10)`.
///
/// # Safety
/// `S`'s instruction set; `blk` points at a whole super-block of the tile.
#[inline(always)]
pub(super) unsafe fn unpack<S: Simd, const Q5: bool>(
    blk: *const Line,
    k: usize,
    part: usize,
    low: S::I,
    bit: S::I,
) -> (S::I, S::I) {
    // SAFETY: the caller's contract.
    unsafe {
        let v = S::load(blk.add(k), part);
        let mut w_lo = S::and(v, low);
        let mut w_hi = S::and(S::shr16(v, 4), low);
        if Q5 {
            let h = S::load(blk.add(32 + k / 4), part);
            let i = 2 * (k % 4) as i32;
            w_lo = S::or(w_lo, S::and(S::shift16(h, 4 - i), bit));
            w_hi = S::or(w_hi, S::and(S::shift16(h, 3 - i), bit));
        }
        (w_lo, w_hi)
    }
}

/// Adds super-block `b`'s share to each activation row's 16 outputs: `d · Σ_j sc[j] · dot_j`
/// (`sumi`) less `dmin · Σ_j m[j] · Σ q_a`, both times the activations' scale. The minima go two
/// sub-blocks at a time, as 16-bit pairs against the activations' sums per 32
/// (`Acts::pairs`). `aux` is the super-block's scale lines, `row0` the first row of the part.
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
    // SAFETY: the caller's contract. (No closures here: they would not inherit the target
    // features.)
    unsafe {
        let dw = S::rows_f16(aux.add(256 + 2 * row0).cast());
        let dmin = S::rows_f16(aux.add(288 + 2 * row0).cast());
        let mut mins = [S::zero(); 4];
        for (p, m) in mins.iter_mut().enumerate() {
            let at = aux.add(128 + 32 * p + row0);
            *m = S::pair16(S::rows_u8(at), S::rows_u8(at.add(16)));
        }
        for t in 0..T {
            let sums = pairs[t].add(b * PAIRS);
            let mut m = S::zero();
            for (p, &mp) in mins.iter().enumerate() {
                m = S::dot_i16(m, mp, S::splat32(*sums.add(p)));
            }
            let da = *ad[t].add(b);
            acc[t] = S::fmadd(S::to_f(sumi[t]), S::fmul(dw, S::fsplat(da)), acc[t]);
            acc[t] = S::fmadd(S::to_f(m), S::fmul(dmin, S::fsplat(-da)), acc[t]);
        }
    }
}

/// Rows `first..first + T` of the activations times one tile (see the module documentation).
///
/// # Safety
/// `S`'s instruction set, and slices checked by `tiled::check_tile`.
#[inline(always)]
unsafe fn dot_rows<S: Simd, const T: usize, const Q5: bool>(
    tile: &Tile<'_>,
    acts: &Acts,
    first: usize,
    out: &mut [[f32; ROWS]; TILE],
) {
    let lines_per_block = if Q5 { Q5K_LINES } else { Q4K_LINES };
    // SAFETY: super-block b's lines lie in the tile, and block b of each activation row lies
    // in the activations (`tiled::check_tile` checked the sizes).
    unsafe {
        let (low, bit) = (S::splat8(0x0F), S::splat8(0x10));
        let (aq, ad, _) = acts.rows::<T>(first);
        let pairs = acts.pairs::<T>(first);
        for part in 0..S::PARTS {
            let row0 = part * S::ROWS;
            let mut acc = [S::fzero(); T];
            for b in 0..acts.blocks_per_row {
                let blk = tile.lines.as_ptr().add(b * lines_per_block);
                let aux = blk.add(lines_per_block - AUX_LINES).cast::<u8>();
                let mut sumi = [S::zero(); T];
                for c in 0..4 {
                    let mut lo = [S::zero(); T];
                    let mut hi = [S::zero(); T];
                    for g in 0..8 {
                        let (w_lo, w_hi) = unpack::<S, Q5>(blk, 8 * c + g, part, low, bit);
                        for t in 0..T {
                            let a = aq[t].add(b * QK + 64 * c + 4 * g);
                            if S::VNNI || Q5 {
                                lo[t] = S::dot(lo[t], w_lo, S::splat4(a));
                                hi[t] = S::dot(hi[t], w_hi, S::splat4(a.add(32)));
                            } else {
                                // Q4_K: at most 8 × 2 × 15 × 127 per 16-bit sum.
                                lo[t] = S::dot16(lo[t], w_lo, S::splat4(a));
                                hi[t] = S::dot16(hi[t], w_hi, S::splat4(a.add(32)));
                            }
                        }
                    }
                    if !(S::VNNI || Q5) {
                        for sum in lo.iter_mut().chain(&mut hi) {
                            *sum = S::widen16(*sum);
                        }
                    }
                    let sc_lo = S::rows_u8(aux.add(32 * c + row0));
                    let sc_hi = S::rows_u8(aux.add(32 * c + 16 + row0));
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
