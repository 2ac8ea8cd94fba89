//! Our own quantized matrix multiplication (the hot path of Q4_0 and Q8_0 models), in one
//! layout for both formats and every instruction set ([`Isa`]: AVX-512 VNNI, AVX2 with or
//! without AVX-VNNI).
//!
//! - The weights are repacked once at load into tiles of 16 rows: for each block of 32 columns,
//!   a few 64-byte lines (4 for Q4_0, 8 for Q8_0), each holding 4 bytes of every row of the tile.
//!   One `vpdpbusd` of a line with 4 broadcast activation bytes advances all 16 output rows,
//!   every load is aligned and whole, and a tile is one contiguous stream. The f16 scales of the
//!   tile's 16 rows for a block sit together (one conversion instruction).
//! - Activations are quantized to Q8_0 once per call, exactly as llama.cpp and candle do (per
//!   32 values `d = amax / 127` rounded to f16, `q = round(x / d)`), so results equal candle's
//!   generic kernels to float rounding (unit tests). `vpdpbusd` multiplies unsigned weights by
//!   signed activations; each format's weights are stored unsigned (`q + 8`, `q + 128`) and the
//!   offset times each activation block's `Σ q`, computed here once, is subtracted per block.
//! - Each weight line is reused for a tile of up to [`TILE`] activation rows (prompts), and the
//!   16-row tiles of all matrices of a call (Q/K/V, gate/up) are shared out in one parallel pass
//!   over the current rayon pool (candle's, inside `Device::with_context`).
//!
//! - The 256-bit kernels ([`super::avx2`]) read each 64-byte line as two halves of 8 rows.
//!
//! The instruction set is chosen at run time ([`KernelLevel`]); a matrix is only made for one
//! this CPU supports, and candle's `QMatMul` serves the generic level. The repacked matrix is
//! the only copy of the weights.

use super::parallel::par_row_chunks;
use super::{avx2, q4_0, q8_0};
use crate::engine::cpu::{KernelLevel, detect};

/// Values per block (both formats).
pub(super) const QK: usize = 32;
/// Weight rows interleaved in one tile (16 int32 lanes of a 512-bit register).
pub(super) const ROWS: usize = 16;
/// Activation rows sharing one weight line.
pub(super) const TILE: usize = 4;

/// One aligned 64-byte line: 4 bytes of each of the 16 rows of a tile.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(super) struct Line(pub(super) [u8; 64]);

/// The f16 scales (bits) of a tile's 16 rows for one block.
pub(super) type Scales = [u16; ROWS];

/// A format's kernels for one instruction set, one per activation tile size (entry `n - 1`
/// multiplies one weight tile by activation rows `first..first + n`). Unsafe: they need their
/// [`Isa`] and slices that passed [`check_tile`].
pub(super) type Kernels =
    [unsafe fn(&[Line], &[Scales], &Acts, usize, &mut [[f32; ROWS]; TILE]); TILE];

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

    /// The instruction set of a kernel level on this CPU (`None`: candle's kernels).
    pub(crate) fn for_level(level: KernelLevel) -> Option<Self> {
        match level {
            KernelLevel::Avx512 => Some(Self::Avx512Vnni),
            KernelLevel::Avx2 if Self::Avx2Vnni.is_supported() => Some(Self::Avx2Vnni),
            KernelLevel::Avx2 => Some(Self::Avx2),
            KernelLevel::Generic => None,
        }
    }
}

/// The quantization formats with a tiled kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// 4-bit values with an f16 scale per 32.
    Q4_0,
    /// 8-bit values with an f16 scale per 32.
    Q8_0,
}

impl Format {
    /// Lines per block of a tile.
    const fn lines(self) -> usize {
        match self {
            Self::Q4_0 => q4_0::LINES,
            Self::Q8_0 => q8_0::LINES,
        }
    }

    /// The format's kernels for `isa`.
    fn kernels(self, isa: Isa) -> &'static Kernels {
        match (self, isa) {
            (Self::Q4_0, Isa::Avx512Vnni) => &q4_0::KERNELS,
            (Self::Q8_0, Isa::Avx512Vnni) => &q8_0::KERNELS,
            (Self::Q4_0, Isa::Avx2Vnni) => &avx2::Q4_0_VNNI,
            (Self::Q8_0, Isa::Avx2Vnni) => &avx2::Q8_0_VNNI,
            (Self::Q4_0, Isa::Avx2) => &avx2::Q4_0,
            (Self::Q8_0, Isa::Avx2) => &avx2::Q8_0,
        }
    }

    /// Bytes of one block in a GGUF file.
    const fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => q4_0::BLOCK_BYTES,
            Self::Q8_0 => q8_0::BLOCK_BYTES,
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
    quants: Vec<Line>,
    /// Per tile, per block: the 16 rows' scales.
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

/// Activations quantized to Q8_0, row-major: values, per-block scale and `Σ q`.
pub(super) struct Acts {
    pub(super) quants: Vec<i8>,
    pub(super) scales: Vec<f32>,
    pub(super) sums: Vec<i32>,
    pub(super) blocks_per_row: usize,
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
        let block_bytes = format.block_bytes();
        if rows == 0
            || !cols.is_multiple_of(QK)
            || bytes.len() != rows * cols / QK * block_bytes
            || !isa.is_supported()
        {
            return None;
        }
        let (nb, lines) = (cols / QK, format.lines());
        let tiles = rows.div_ceil(ROWS);
        // Padding rows: scale 0 (their values do not matter).
        let mut quants = vec![Line([0; 64]); tiles * nb * lines];
        let mut scales = vec![[0u16; ROWS]; tiles * nb];
        for (row, src) in bytes.chunks_exact(nb * block_bytes).enumerate() {
            let (tile, r) = (row / ROWS, row % ROWS);
            for (b, block) in src.chunks_exact(block_bytes).enumerate() {
                let at = tile * nb + b;
                scales[at][r] = u16::from_le_bytes([block[0], block[1]]);
                let dst = &mut quants[at * lines..(at + 1) * lines];
                for (line, four) in dst.iter_mut().zip(block[2..].chunks_exact(4)) {
                    for (d, &q) in line.0[4 * r..4 * r + 4].iter_mut().zip(four) {
                        *d = match format {
                            // Two values per byte (low nibble: value i, high: i + 16), kept.
                            Format::Q4_0 => q,
                            Format::Q8_0 => q ^ 0x80,
                        };
                    }
                }
            }
        }
        Some(Self {
            format,
            isa,
            rows,
            cols,
            quants,
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
    /// (Q/K/V, gate/up; formats may differ): the input is quantized once and all tiles are
    /// shared out in one parallel pass. Returns one `m × rows` output per matrix.
    pub(crate) fn matmul_many(mats: &[&Self], x: &[f32], m: usize) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|w| w.cols) else {
            return Vec::new();
        };
        debug_assert!(mats.iter().all(|w| w.cols == cols));
        let acts = quantize_rows(x, m, cols);
        let rows: Vec<usize> = mats.iter().map(|w| w.rows).collect();
        let nb = cols / QK;
        par_row_chunks(&rows, m, ROWS, |chunk| {
            let w = mats[chunk.matrix];
            let tile = chunk.range.start / ROWS;
            let (lines, kernels) = (w.format.lines(), w.format.kernels(w.isa));
            let quants = &w.quants[tile * nb * lines..(tile + 1) * nb * lines];
            let scales = &w.scales[tile * nb..(tile + 1) * nb];
            for first in (0..m).step_by(TILE) {
                let n = (m - first).min(TILE);
                let mut out = [[0f32; ROWS]; TILE];
                check_tile(quants, scales, &acts, lines, first, n);
                // SAFETY: `new` made this matrix only for an instruction set this CPU supports,
                // and the slices were checked just above. A constant tile size per kernel keeps
                // the accumulators in registers.
                unsafe { kernels[n - 1](quants, scales, &acts, first, &mut out) };
                for (t, sums) in out.iter().take(n).enumerate() {
                    for r in chunk.range.clone() {
                        chunk.set(first + t, r, sums[r - chunk.range.start]);
                    }
                }
            }
        })
    }
}

impl Acts {
    /// Pointers to the quantized values, scales and sums of rows `first..first + T`. A kernel
    /// reads block `b < blocks_per_row` of each, after [`check_tile`].
    pub(super) fn rows<const T: usize>(
        &self,
        first: usize,
    ) -> ([*const i8; T], [*const f32; T], [*const i32; T]) {
        let nb = self.blocks_per_row;
        (
            std::array::from_fn(|t| self.quants.as_ptr().wrapping_add((first + t) * nb * QK)),
            std::array::from_fn(|t| self.scales.as_ptr().wrapping_add((first + t) * nb)),
            std::array::from_fn(|t| self.sums.as_ptr().wrapping_add((first + t) * nb)),
        )
    }
}

/// Quantizes `m` rows of `cols` values to Q8_0.
fn quantize_rows(x: &[f32], m: usize, cols: usize) -> Acts {
    let blocks_per_row = cols / QK;
    let n = m * blocks_per_row;
    let mut quants = vec![0i8; n * QK];
    let mut scales = vec![0f32; n];
    let mut sums = vec![0i32; n];
    for (b, chunk) in x[..m * cols].chunks_exact(QK).enumerate() {
        let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut sum = 0i32;
        for (q, v) in quants[b * QK..(b + 1) * QK].iter_mut().zip(chunk) {
            *q = (v * id).round() as i8;
            sum += i32::from(*q);
        }
        scales[b] = half::f16::from_f32(d).to_f32();
        sums[b] = sum;
    }
    Acts {
        quants,
        scales,
        sums,
        blocks_per_row,
    }
}

/// Checks the slices a kernel is handed; a failure is a bug in this module.
fn check_tile(
    quants: &[Line],
    scales: &[Scales],
    acts: &Acts,
    lines: usize,
    first: usize,
    n: usize,
) {
    let nb = acts.blocks_per_row;
    assert!(
        quants.len() == nb * lines && scales.len() == nb,
        "tile size"
    );
    assert!(
        (first + n) * nb <= acts.scales.len() && (1..=TILE).contains(&n),
        "activation rows"
    );
}
