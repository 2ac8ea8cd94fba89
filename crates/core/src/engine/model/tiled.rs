//! Our own quantized matrix multiplication, the hot path of Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K
//! models, in one layout for every format and instruction set.
//!
//! - The weights are repacked once at load into tiles of 16 rows: per block of the format, a
//!   few aligned 64-byte lines, each holding 4 bytes of every row of the tile (a 32-bit lane
//!   per row). One `vpdpbusd` of a line with 4 broadcast activation bytes advances all 16
//!   output rows; every load is aligned and whole, and a tile is one contiguous stream.
//!   Q4_0/Q4_1/Q8_0 keep the f16 scales of a block's 16 rows together beside the lines; the
//!   K-quants keep their scales, minima and super-block scales in lines after the values.
//! - Activations are quantized once per call as llama.cpp does for the format ([`acts`]:
//!   Q8_0 for Q4_0/Q4_1/Q8_0, Q8_K for the K-quants), so results equal candle's and llama.cpp's
//!   kernels to float rounding (unit tests).
//! - Each weight line is reused for a tile of up to [`TILE`] activation rows (prompts), and the
//!   16-row tiles of all matrices of a call (Q/K/V, gate/up) are shared out in one parallel pass
//!   over the current rayon pool (the worker's `ComputePool`).
//! - Each format's kernel is written once over [`super::simd::Simd`] and instantiated per
//!   instruction set ([`Isa`]: AVX-512 VNNI, AVX2 with AVX-VNNI, AVX2); the 256-bit ones read
//!   each line as two halves of 8 rows.
//!
//! The instruction set is chosen at run time ([`KernelLevel`]); a matrix is only made for one
//! this CPU supports, and candle's `QMatMul` serves the generic level. The repacked matrix is
//! the only copy of the weights.
//!
//! [`acts`]: super::acts
#![allow(unsafe_code)] // SIMD kernel dispatch; each unsafe block says why it is sound

use std::cell::RefCell;

use super::acts::{Acts, ActsKind};
use super::expanded::{self, Packed};
use super::parallel::par_row_chunks;
use super::{q4_0, q4_1, q4_k, q6_k, q8_0};
use crate::engine::cpu::{KernelLevel, detect};

/// Weight rows interleaved in one tile (16 int32 lanes of a 512-bit register).
pub(super) const ROWS: usize = 16;
/// Activation rows sharing one weight line.
pub(super) const TILE: usize = 4;

/// One aligned 64-byte line: 4 bytes of each of the 16 rows of a tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Line(pub(super) [u8; 64]);

/// The f16 scales (bits) of a tile's 16 rows for one Q4_0/Q8_0 block.
pub(super) type Scales = [u16; ROWS];

/// One weight tile as a kernel sees it: its lines and (Q4_0/Q8_0) per-block scales.
pub(super) struct Tile<'a> {
    pub(super) lines: &'a [Line],
    pub(super) scales: &'a [Scales],
}

/// A format's kernels for one instruction set, one per activation tile size (entry `n - 1`
/// multiplies one weight tile by activation rows `first..first + n`). Unsafe: they need their
/// [`Isa`] and slices that passed [`check_tile`].
pub(super) type Kernels = [unsafe fn(&Tile<'_>, &Acts, usize, &mut [[f32; ROWS]; TILE]); TILE];

/// The instruction sets the kernels are written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// 512-bit AVX-512 F/BW/DQ/VNNI.
    Avx512Vnni,
    /// 256-bit AVX2 + FMA + F16C with AVX-VNNI's `vpdpbusd`.
    Avx2Vnni,
    /// 256-bit AVX2 + FMA + F16C with `vpmaddubsw` + `vpmaddwd`.
    Avx2,
}

impl Isa {
    /// Every instruction set, fastest first.
    #[cfg(test)]
    pub(crate) const ALL: [Isa; 3] = [Self::Avx512Vnni, Self::Avx2Vnni, Self::Avx2];

    /// Whether this CPU can run it.
    pub(crate) fn is_supported(self) -> bool {
        match self {
            Self::Avx512Vnni => detect::avx512_vnni(),
            Self::Avx2Vnni => detect::avx2_fma_f16c() && detect::avx_vnni(),
            Self::Avx2 => detect::avx2_fma_f16c(),
        }
    }

    /// The instruction set of a kernel level on this CPU (`None`: candle's kernels). The AVX2
    /// level uses AVX-VNNI where the CPU has it, unless `LLAMA_DIALOGUE_AVX_VNNI=0` (to measure
    /// the plain AVX2 kernels on such a CPU, as on a Haswell-to-Rocket-Lake or Zen 1-3 one).
    pub(crate) fn for_level(level: KernelLevel) -> Option<Self> {
        let vnni_off = std::env::var("LLAMA_DIALOGUE_AVX_VNNI").is_ok_and(|v| v.trim() == "0");
        match level {
            KernelLevel::Avx512 => Some(Self::Avx512Vnni),
            KernelLevel::Avx2 if Self::Avx2Vnni.is_supported() && !vnni_off => Some(Self::Avx2Vnni),
            KernelLevel::Avx2 => Some(Self::Avx2),
            KernelLevel::Generic => None,
        }
    }

    /// Picks this instruction set's entry of a format's three kernel tables.
    pub(super) fn pick(
        self,
        avx512: &'static Kernels,
        avx2_vnni: &'static Kernels,
        avx2: &'static Kernels,
    ) -> &'static Kernels {
        match self {
            Self::Avx512Vnni => avx512,
            Self::Avx2Vnni => avx2_vnni,
            Self::Avx2 => avx2,
        }
    }
}

/// The quantization formats with a tiled kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// 4-bit values with an f16 scale per 32.
    Q4_0,
    /// 4-bit values with an f16 scale and an f16 minimum per 32.
    Q4_1,
    /// 8-bit values with an f16 scale per 32.
    Q8_0,
    /// 4-bit values, 6-bit scales and minima per 32, f16 scales per 256.
    Q4K,
    /// As Q4_K with a fifth bit per value.
    Q5K,
    /// 6-bit values, 8-bit scales per 16, an f16 scale per 256.
    Q6K,
}

impl Format {
    /// Values per block.
    pub(super) const fn block(self) -> usize {
        self.acts().block()
    }

    /// Bytes of one block in a GGUF file.
    const fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => q4_0::BLOCK_BYTES,
            Self::Q4_1 => q4_1::BLOCK_BYTES,
            Self::Q8_0 => q8_0::BLOCK_BYTES,
            Self::Q4K => q4_k::Q4K_BLOCK_BYTES,
            Self::Q5K => q4_k::Q5K_BLOCK_BYTES,
            Self::Q6K => q6_k::BLOCK_BYTES,
        }
    }

    /// Lines per block of a tile.
    pub(super) const fn lines(self) -> usize {
        match self {
            Self::Q4_0 => q4_0::LINES,
            Self::Q4_1 => q4_1::LINES,
            Self::Q8_0 => q8_0::LINES,
            Self::Q4K => q4_k::Q4K_LINES,
            Self::Q5K => q4_k::Q5K_LINES,
            Self::Q6K => q6_k::LINES,
        }
    }

    /// How its activations are quantized.
    const fn acts(self) -> ActsKind {
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => ActsKind::Q8_0,
            Self::Q4K | Self::Q5K | Self::Q6K => ActsKind::Q8K,
        }
    }

    /// The format's kernels for `isa`.
    fn kernels(self, isa: Isa) -> &'static Kernels {
        match self {
            Self::Q4_0 => isa.pick(&q4_0::AVX512, &q4_0::AVX2_VNNI, &q4_0::AVX2),
            Self::Q4_1 => isa.pick(&q4_1::AVX512, &q4_1::AVX2_VNNI, &q4_1::AVX2),
            Self::Q8_0 => isa.pick(&q8_0::AVX512, &q8_0::AVX2_VNNI, &q8_0::AVX2),
            Self::Q4K => isa.pick(&q4_k::Q4K_AVX512, &q4_k::Q4K_AVX2_VNNI, &q4_k::Q4K_AVX2),
            Self::Q5K => isa.pick(&q4_k::Q5K_AVX512, &q4_k::Q5K_AVX2_VNNI, &q4_k::Q5K_AVX2),
            Self::Q6K => isa.pick(&q6_k::AVX512, &q6_k::AVX2_VNNI, &q6_k::AVX2),
        }
    }

    /// The K-quant layout to expand for prompts, with the expanded kernels (`None`: the fused
    /// kernels serve prompts too).
    fn expanded(self, isa: Isa) -> Option<(Packed, &'static Kernels)> {
        let mins = || {
            isa.pick(
                &expanded::MINS32_AVX512,
                &expanded::MINS32_AVX2_VNNI,
                &expanded::MINS32_AVX2,
            )
        };
        match self {
            Self::Q4_0 | Self::Q4_1 | Self::Q8_0 => None,
            Self::Q4K => Some((Packed::Q4K, mins())),
            Self::Q5K => Some((Packed::Q5K, mins())),
            Self::Q6K => Some((
                Packed::Q6K,
                isa.pick(
                    &expanded::OFFSET16_AVX512,
                    &expanded::OFFSET16_AVX2_VNNI,
                    &expanded::OFFSET16_AVX2,
                ),
            )),
        }
    }

    /// Whether the tile keeps one f16 scale per row and block beside its lines (Q4_0, Q4_1,
    /// Q8_0; the K-quants keep theirs in lines).
    const fn has_block_scales(self) -> bool {
        matches!(self, Self::Q4_0 | Self::Q4_1 | Self::Q8_0)
    }

    /// Repacks row `row % 16` of one GGUF block into the block's lines (and Q4_0/Q8_0 scales).
    fn repack(self, src: &[u8], row: usize, lines: &mut [Line], scales: &mut Scales) {
        match self {
            Self::Q4_0 => q4_0::repack(src, row, lines, scales),
            Self::Q4_1 => q4_1::repack(src, row, lines, scales),
            Self::Q8_0 => q8_0::repack(src, row, lines, scales),
            Self::Q4K => q4_k::repack(src, row, lines, false),
            Self::Q5K => q4_k::repack(src, row, lines, true),
            Self::Q6K => q6_k::repack(src, row, lines),
        }
    }
}

/// A quantized weight matrix `(rows, cols)` in tiles (see the module documentation). Rows are
/// padded to a multiple of 16 with zero rows.
pub(crate) struct TiledMatrix {
    format: Format,
    /// The instruction set its kernels use (supported by this CPU: checked in `new`).
    isa: Isa,
    rows: usize,
    cols: usize,
    /// Per tile, per block: `format.lines()` lines.
    lines: Vec<Line>,
    /// Per tile, per block: the 16 rows' scales (Q4_0 and Q8_0 only; empty otherwise).
    scales: Vec<Scales>,
}

impl std::fmt::Debug for TiledMatrix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TiledMatrix")
            .field("format", &self.format)
            .field("isa", &self.isa)
            .field("rows", &self.rows)
            .field("cols", &self.cols)
            .finish_non_exhaustive()
    }
}

impl TiledMatrix {
    /// Repacks raw GGUF bytes of `format` for `isa`; `None` unless they are exactly
    /// `rows × cols` values and this CPU supports `isa`.
    pub(crate) fn new(
        format: Format,
        isa: Isa,
        rows: usize,
        cols: usize,
        bytes: &[u8],
    ) -> Option<Self> {
        let (block, block_bytes, lines) = (format.block(), format.block_bytes(), format.lines());
        if rows == 0
            || !cols.is_multiple_of(block)
            || bytes.len() != rows * cols / block * block_bytes
            || !isa.is_supported()
        {
            return None;
        }
        let nb = cols / block;
        let tiles = rows.div_ceil(ROWS);
        // Padding rows stay zero: scale 0, so their values do not matter.
        let mut packed = vec![Line([0; 64]); tiles * nb * lines];
        let per_block_scales = format.has_block_scales();
        let mut scales = vec![[0u16; ROWS]; if per_block_scales { tiles * nb } else { 0 }];
        let mut unused: Scales = [0; ROWS];
        for (row, src) in bytes.chunks_exact(nb * block_bytes).enumerate() {
            let tile = row / ROWS;
            for (b, src) in src.chunks_exact(block_bytes).enumerate() {
                let at = tile * nb + b;
                let dst = &mut packed[at * lines..(at + 1) * lines];
                let s = scales.get_mut(at).unwrap_or(&mut unused);
                format.repack(src, row % ROWS, dst, s);
            }
        }
        Some(Self {
            format,
            isa,
            rows,
            cols,
            lines: packed,
            scales,
        })
    }

    /// Number of output features.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// Number of input features.
    pub(crate) fn cols(&self) -> usize {
        self.cols
    }

    /// The products of one input (`m × cols`, row-major) with several matrices of the same width
    /// (Q/K/V, gate/up; formats may differ): the input is quantized once per activation kind
    /// and all tiles are shared out in one parallel pass. Returns one `m × rows` output per
    /// matrix.
    pub(crate) fn matmul_many(mats: &[&Self], x: &[f32], m: usize) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|w| w.cols) else {
            return Vec::new();
        };
        debug_assert!(mats.iter().all(|w| w.cols == cols));
        let quantized = |kind: ActsKind| {
            mats.iter()
                .any(|w| w.format.acts() == kind)
                .then(|| Acts::quantize(kind, x, m, cols))
        };
        let (q8_0, q8_k) = (quantized(ActsKind::Q8_0), quantized(ActsKind::Q8K));
        let rows: Vec<usize> = mats.iter().map(|w| w.rows).collect();
        par_row_chunks(&rows, m, ROWS, |chunk| {
            let w = mats[chunk.matrix];
            let acts = match w.format.acts() {
                ActsKind::Q8_0 => q8_0.as_ref(),
                ActsKind::Q8K => q8_k.as_ref(),
            };
            let Some(acts) = acts else {
                unreachable!("activations are quantized for every format of the call")
            };
            let nb = acts.blocks_per_row;
            let t = chunk.range.start / ROWS;
            let lines = w.format.lines();
            let tile = Tile {
                lines: &w.lines[t * nb * lines..(t + 1) * nb * lines],
                scales: w.scales.get(t * nb..(t + 1) * nb).unwrap_or(&[]),
            };
            let run = |tile: &Tile<'_>, kernels: &Kernels, lines: usize| {
                for first in (0..m).step_by(TILE) {
                    let n = (m - first).min(TILE);
                    let mut out = [[0f32; ROWS]; TILE];
                    check_tile(tile, w.format, lines, acts, first, n);
                    // SAFETY: `new` made this matrix only for an instruction set this CPU
                    // supports, and the slices were checked just above. A constant tile size
                    // per kernel keeps the accumulators in registers.
                    unsafe { kernels[n - 1](tile, acts, first, &mut out) };
                    for (t, sums) in out.iter().take(n).enumerate() {
                        for r in chunk.range.clone() {
                            chunk.set(first + t, r, sums[r - chunk.range.start]);
                        }
                    }
                }
            };
            match w.format.expanded(w.isa).filter(|_| m > TILE) {
                // A prompt: unpack the tile once, then every activation row uses plain bytes.
                Some((packed, kernels)) => SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    let need = nb * expanded::LINES;
                    if scratch.len() < need {
                        scratch.resize(need, Line([0; 64]));
                    }
                    expanded::expand_tile(w.isa, packed, tile.lines, &mut scratch[..need], nb);
                    let wide = Tile {
                        lines: &scratch[..need],
                        scales: &[],
                    };
                    run(&wide, kernels, expanded::LINES);
                }),
                None => run(&tile, w.format.kernels(w.isa), lines),
            }
        })
    }
}

thread_local! {
    /// Each compute thread's scratch for expanded prompt tiles (reused across calls).
    static SCRATCH: RefCell<Vec<Line>> = const { RefCell::new(Vec::new()) };
}

/// Checks the slices a kernel is handed (`lines` per block); a failure is a bug in this module.
fn check_tile(tile: &Tile<'_>, format: Format, lines: usize, acts: &Acts, first: usize, n: usize) {
    let nb = acts.blocks_per_row;
    let scales = if format.has_block_scales() { nb } else { 0 };
    assert!(
        tile.lines.len() == nb * lines && tile.scales.len() == scales,
        "tile size"
    );
    assert!(
        acts.kind == format.acts()
            && (first + n) * nb <= acts.scales.len()
            && (acts.kind != ActsKind::Q8_0 || (first + n) * nb <= acts.totals.len())
            && (1..=TILE).contains(&n),
        "activation rows"
    );
}
