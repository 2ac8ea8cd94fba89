//! Our own Q8_0 × Q8_0 matrix-vector product (decode) with AVX-512 VNNI (see `q4_0`).
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so activations are stored as `q + 128` and the
//! `128 × Σ w` this adds is removed per block with the weight block sums computed at load.

use rayon::prelude::*;

use super::q4_0::SendPtr;

const BLOCK_BYTES: usize = 34;
const QK: usize = 32;
const ROWS_PER_TASK: usize = 16;

/// What our decode kernel needs besides candle's copy of a Q8_0 matrix: `scale × Σ q` per block.
/// The blocks themselves are read in place from candle's storage (no second copy); prompts
/// (several rows) go through candle's repacked kernel, which is faster there.
#[derive(Debug)]
pub(crate) struct Q8_0Decode {
    rows: usize,
    cols: usize,
    scaled_sums: Vec<f32>,
}

impl Q8_0Decode {
    /// Prepares `rows × cols` Q8_0 blocks; `None` unless `cols` is a multiple of 64.
    pub(crate) fn new(rows: usize, cols: usize, bytes: &[u8]) -> Option<Self> {
        if !cols.is_multiple_of(2 * QK) || bytes.len() != rows * cols / QK * BLOCK_BYTES {
            return None;
        }
        let scaled_sums = bytes
            .chunks_exact(BLOCK_BYTES)
            .map(|b| {
                half::f16::from_le_bytes([b[0], b[1]]).to_f32()
                    * b[2..].iter().map(|&q| i32::from(q as i8)).sum::<i32>() as f32
            })
            .collect();
        Some(Self {
            rows,
            cols,
            scaled_sums,
        })
    }

    /// Number of output features.
    pub(crate) fn rows(&self) -> usize {
        self.rows
    }

    /// `x (1 × cols)` times each matrix (given with its candle block bytes), one output each.
    pub(crate) fn gemv_many(mats: &[(&Self, &[u8])], x: &[f32]) -> Vec<Vec<f32>> {
        let Some(cols) = mats.first().map(|(w, _)| w.cols) else {
            return Vec::new();
        };
        let acts = quantize_row(&x[..cols]);
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|(w, _)| vec![0f32; w.rows]).collect();
        let ptrs: Vec<SendPtr> = outs.iter_mut().map(|o| SendPtr(o.as_mut_ptr())).collect();
        let tasks: Vec<(usize, usize)> = mats
            .iter()
            .enumerate()
            .flat_map(|(i, (w, _))| (0..w.rows).step_by(ROWS_PER_TASK).map(move |r| (i, r)))
            .collect();
        let nb = cols / QK;
        tasks.par_iter().for_each(|&(i, r0)| {
            let (w, bytes) = mats[i];
            for r in r0..(r0 + ROWS_PER_TASK).min(w.rows) {
                let row = &bytes[r * nb * BLOCK_BYTES..(r + 1) * nb * BLOCK_BYTES];
                let sums = &w.scaled_sums[r * nb..(r + 1) * nb];
                // SAFETY: CPU features were checked when the model chose this kernel.
                let y = unsafe { dot_row(row, sums, &acts) };
                // SAFETY: every output element is written by one task.
                unsafe { *ptrs[i].0.add(r) = y };
            }
        });
        outs
    }
}

struct Acts {
    /// `q + 128` per value, natural order.
    quants: Vec<u8>,
    scales: Vec<f32>,
}

fn quantize_row(x: &[f32]) -> Acts {
    let nb = x.len() / QK;
    let mut quants = vec![0u8; nb * QK];
    let mut scales = vec![0f32; nb];
    for (b, chunk) in x.chunks_exact(QK).enumerate() {
        let amax = chunk.iter().fold(0f32, |a, v| a.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        for (q, v) in quants[b * QK..(b + 1) * QK].iter_mut().zip(chunk) {
            *q = ((v * id).round() as i8 as i16 + 128) as u8;
        }
        scales[b] = half::f16::from_f32(d).to_f32();
    }
    Acts { quants, scales }
}

/// One weight row (candle's 34-byte blocks) times the activation row.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vnni,avx2,f16c")]
unsafe fn dot_row(row: &[u8], sums: &[f32], a: &Acts) -> f32 {
    use std::arch::x86_64::*;
    let nb = sums.len();
    debug_assert!(row.len() == nb * BLOCK_BYTES && a.scales.len() == nb);
    // Lanes 0..8 of the products belong to the pair's first block, 8..16 to the second.
    let spread = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    let mut acc = [_mm512_setzero_ps(); 2];
    let mut offset = 0f32;
    let (wp, aq, ad) = (row.as_ptr(), a.quants.as_ptr(), a.scales.as_ptr());
    for p in 0..nb / 2 {
        // SAFETY: blocks 2p and 2p + 1 lie inside the row (checked above) and the activations.
        unsafe {
            let b0 = wp.add(2 * p * BLOCK_BYTES);
            let b1 = b0.add(BLOCK_BYTES);
            let w = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(b0.add(2).cast())),
                _mm256_loadu_si256(b1.add(2).cast()),
                1,
            );
            let dw = _mm_cvtph_ps(_mm_set_epi16(
                0,
                0,
                0,
                0,
                0,
                0,
                b1.cast::<i16>().read_unaligned(),
                b0.cast::<i16>().read_unaligned(),
            ));
            let dot = _mm512_dpbusd_epi32(
                _mm512_setzero_si512(),
                _mm512_loadu_si512(aq.add(p * 64).cast()),
                w,
            );
            let da = _mm_castpd_ps(_mm_load_sd(ad.add(2 * p).cast()));
            let scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(_mm_mul_ps(dw, da)));
            acc[p & 1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), scale, acc[p & 1]);
            // Activations carry +128: remove 128 × d_a × (d_w × Σ q_w) per block.
            offset += *ad.add(2 * p) * sums[2 * p] + *ad.add(2 * p + 1) * sums[2 * p + 1];
        }
    }
    _mm512_reduce_add_ps(_mm512_add_ps(acc[0], acc[1])) - 128.0 * offset
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn dot_row(_: &[u8], _: &[f32], _: &Acts) -> f32 {
    unreachable!("the Q8_0 kernel is only chosen on x86-64 with AVX-512 VNNI")
}

#[cfg(test)]
mod tests {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;

    #[test]
    fn matches_candle_q8_0() {
        if !super::super::q4_0::available() {
            eprintln!(
                "*** SKIPPED: this CPU has no AVX-512 VNNI; the model uses candle's kernel ***"
            );
            return;
        }
        let (rows, cols) = (37, 192);
        let mut state = 11u32;
        let mut rnd = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
        let wq = QTensor::quantize(
            &Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap(),
            GgmlDType::Q8_0,
        )
        .unwrap();
        let bytes = wq.data().unwrap().into_owned();
        let ours = Q8_0Decode::new(rows, cols, &bytes).unwrap();
        let theirs = QMatMul::from_qtensor(wq).unwrap();
        {
            let m = 1;
            let x: Vec<f32> = (0..m * cols).map(|_| rnd() * 3.0).collect();
            let want: Vec<f32> = theirs
                .forward(&Tensor::from_vec(x.clone(), (m, cols), &Device::Cpu).unwrap())
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = Q8_0Decode::gemv_many(&[(&ours, &bytes)], &x).remove(0);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
                .fold(0f32, f32::max);
            assert!(worst < 1e-5, "m = {m}: relative difference {worst}");
        }
    }
}

#[cfg(test)]
mod accuracy {
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    use super::*;

    /// Against the exact product (dequantized weights × f32 activations), our decode kernel is at
    /// least as accurate as candle's kernel for the same weights.
    #[test]
    fn at_least_as_accurate_as_candle() {
        if !super::super::q4_0::available() {
            return;
        }
        let (rows, cols) = (64, 512);
        let mut state = 5u32;
        let mut rnd = || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..rows * cols).map(|_| rnd()).collect();
        let wq = QTensor::quantize(
            &Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap(),
            GgmlDType::Q8_0,
        )
        .unwrap();
        let exact_w = wq.dequantize(&Device::Cpu).unwrap();
        let bytes = wq.data().unwrap().into_owned();
        let ours = Q8_0Decode::new(rows, cols, &bytes).unwrap();
        let theirs = QMatMul::from_qtensor(wq).unwrap();
        let x: Vec<f32> = (0..cols).map(|_| rnd() * 3.0).collect();
        let xt = Tensor::from_vec(x.clone(), (1, cols), &Device::Cpu).unwrap();
        let exact: Vec<f32> = xt
            .matmul(&exact_w.t().unwrap())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let cand: Vec<f32> = theirs
            .forward(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let got = Q8_0Decode::gemv_many(&[(&ours, &bytes)], &x).remove(0);
        let err = |v: &[f32]| {
            v.iter()
                .zip(&exact)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max)
        };
        eprintln!(
            "max error vs exact: ours {:e}, candle {:e}",
            err(&got),
            err(&cand)
        );
        assert!(err(&got) <= err(&cand) * 1.01 + 1e-6);
    }
}
