//! The kernel unit tests, on every instruction set this CPU supports: random matrices and
//! candle's product to compare with.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::tiled::{Format, Isa, TiledMatrix};

/// Values per Q4_0/Q8_0 block.
const QK: usize = 32;

/// A seeded linear congruential generator, uniform in [-0.5, 0.5).
struct Lcg(pub u32);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// A random `rows × cols` matrix quantized to `dtype`: candle's matmul on it, its GGUF bytes,
/// and its exact (dequantized) values.
fn random_matrix(
    rng: &mut Lcg,
    rows: usize,
    cols: usize,
    dtype: GgmlDType,
) -> (QMatMul, Vec<u8>, Tensor) {
    let w = Tensor::from_vec(rng.values(rows * cols, 1.0), (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, dtype).unwrap();
    let bytes = q.data().unwrap().into_owned();
    let exact = q.dequantize(&Device::Cpu).unwrap();
    (QMatMul::from_qtensor(q).unwrap(), bytes, exact)
}

/// `x (m × cols) · Wᵀ` with candle's quantized kernel, row-major.
fn candle_product(w: &QMatMul, x: &[f32], m: usize) -> Vec<f32> {
    let x = Tensor::from_vec(x.to_vec(), (m, x.len() / m), &Device::Cpu).unwrap();
    w.forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `x (m × cols) · Wᵀ` in f32 with the dequantized weights: the exact product.
fn exact_product(exact: &Tensor, x: &[f32], m: usize) -> Vec<f32> {
    let x = Tensor::from_vec(x.to_vec(), (m, x.len() / m), &Device::Cpu).unwrap();
    x.matmul(&exact.t().unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest `|a - b| / (1 + |b|)`.
fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0f32, f32::max)
}

/// The instruction sets this CPU supports: every kernel test runs on each of them.
fn isas() -> Vec<Isa> {
    let isas: Vec<Isa> = Isa::ALL.into_iter().filter(|i| i.is_supported()).collect();
    let missing: Vec<Isa> = Isa::ALL.into_iter().filter(|i| !i.is_supported()).collect();
    if !missing.is_empty() {
        eprintln!("kernel instruction sets NOT exercised (this CPU lacks them): {missing:?}");
    }
    isas
}

/// Each instruction set's product for one matrix.
fn products(
    format: Format,
    bytes: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    m: usize,
) -> Vec<(Isa, Vec<f32>)> {
    isas()
        .into_iter()
        .map(|isa| {
            let w = TiledMatrix::new(format, isa, rows, cols, bytes).unwrap();
            (isa, TiledMatrix::matmul_many(&[&w], x, m).remove(0))
        })
        .collect()
}

/// Against candle's generic kernel on the same weights: equal to float rounding, for 1 to 9
/// activation rows (tiles and the ragged rest) and a row count that is not a multiple of the
/// 16-row tile, on every instruction set.
#[test]
fn every_isa_matches_candle() {
    for (format, dtype, cols, seed) in [
        (Format::Q4_0, GgmlDType::Q4_0, 224, 7),
        (Format::Q4_1, GgmlDType::Q4_1, 256, 9),
        (Format::Q8_0, GgmlDType::Q8_0, 192, 11),
        (Format::Q4K, GgmlDType::Q4K, 512, 13),
        (Format::Q5K, GgmlDType::Q5K, 512, 17),
        (Format::Q6K, GgmlDType::Q6K, 512, 19),
    ] {
        let rows = 37;
        let mut rng = Lcg(seed);
        let (theirs, bytes, _) = random_matrix(&mut rng, rows, cols, dtype);
        for m in 1..=9 {
            let x = rng.values(m * cols, 3.0);
            let want = candle_product(&theirs, &x, m);
            for (isa, got) in products(format, &bytes, rows, cols, &x, m) {
                let worst = max_relative_difference(&got, &want);
                assert!(
                    worst < 1e-5,
                    "{format:?} {isa:?} m = {m}: relative difference {worst}"
                );
            }
        }
    }
}

/// One call with matrices of several formats and the same width (as a mixed file has: Q4_K_M
/// keeps some matrices in Q6_K) gives each matrix's own product, with both activation kinds.
#[test]
fn mixed_formats_in_one_call() {
    let (cols, mut rng) = (256, Lcg(3));
    let specs = [
        (Format::Q4_0, GgmlDType::Q4_0, 20),
        (Format::Q4_1, GgmlDType::Q4_1, 24),
        (Format::Q8_0, GgmlDType::Q8_0, 33),
        (Format::Q4K, GgmlDType::Q4K, 16),
        (Format::Q6K, GgmlDType::Q6K, 21),
    ];
    let mats: Vec<_> = specs
        .iter()
        .map(|&(_, dtype, rows)| random_matrix(&mut rng, rows, cols, dtype))
        .collect();
    let x = rng.values(3 * cols, 2.0);
    for isa in isas() {
        let ours: Vec<TiledMatrix> = specs
            .iter()
            .zip(&mats)
            .map(|(&(format, _, rows), (_, bytes, _))| {
                TiledMatrix::new(format, isa, rows, cols, bytes).unwrap()
            })
            .collect();
        let refs: Vec<&TiledMatrix> = ours.iter().collect();
        let outs = TiledMatrix::matmul_many(&refs, &x, 3);
        for ((out, (theirs, _, _)), spec) in outs.iter().zip(&mats).zip(&specs) {
            let worst = max_relative_difference(out, &candle_product(theirs, &x, 3));
            assert!(worst < 1e-5, "{isa:?} {:?}: {worst}", spec.0);
        }
    }
}

/// Q8_0 weights of −128 (which a file may hold although llama.cpp never writes them) and 127
/// are exact on every instruction set.
#[test]
fn extreme_q8_0_weights() {
    let (rows, cols) = (16, 64);
    // Every block: scale 1.0, values alternating −128 and 127.
    let block: Vec<u8> = half::f16::from_f32(1.0)
        .to_le_bytes()
        .into_iter()
        .chain((0..QK).map(|i| if i % 2 == 0 { 0x80 } else { 0x7f }))
        .collect();
    let bytes = block.repeat(rows * cols / QK);
    // Activations of ±1 quantize to ±127 with d = f16(1/127): each pair adds
    // (−128 · a + 127 · a') · d.
    let want_for =
        |sign: f32| sign * -(cols as f32 / 2.0) * 127.0 * half::f16::from_f32(1.0 / 127.0).to_f32();
    for sign in [1.0f32, -1.0] {
        let x = vec![sign; cols];
        for (isa, got) in products(Format::Q8_0, &bytes, rows, cols, &x, 1) {
            for v in got {
                assert!(
                    (v - want_for(sign)).abs() < 1e-3,
                    "{isa:?}: got {v}, want {}",
                    want_for(sign)
                );
            }
        }
    }
}

/// Against the exact product (dequantized weights × f32 activations), ours is at least as
/// accurate as candle's kernel for the same weights, in every format (for Q8_0 at this width
/// candle uses its repacked kernel, which quantizes activations more coarsely), with a row count
/// that is not a multiple of the tile.
#[test]
fn at_least_as_accurate_as_candle() {
    let (rows, cols) = (40, 512);
    for (format, dtype, seed) in [
        (Format::Q4_0, GgmlDType::Q4_0, 4),
        (Format::Q4_1, GgmlDType::Q4_1, 9),
        (Format::Q8_0, GgmlDType::Q8_0, 5),
        (Format::Q4K, GgmlDType::Q4K, 6),
        (Format::Q5K, GgmlDType::Q5K, 7),
        (Format::Q6K, GgmlDType::Q6K, 8),
    ] {
        let mut rng = Lcg(seed);
        let (theirs, bytes, exact_w) = random_matrix(&mut rng, rows, cols, dtype);
        for m in [1, 5] {
            let x = rng.values(m * cols, 3.0);
            let exact = exact_product(&exact_w, &x, m);
            let err = |v: &[f32]| {
                v.iter()
                    .zip(&exact)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max)
            };
            let cand = err(&candle_product(&theirs, &x, m));
            for (isa, got) in products(format, &bytes, rows, cols, &x, m) {
                let ours = err(&got);
                eprintln!(
                    "{format:?} {isa:?} m = {m}: max error vs exact: ours {ours:e}, candle {cand:e}"
                );
                assert!(ours <= cand * 1.01 + 1e-5, "{format:?} {isa:?} m = {m}");
            }
        }
    }
}

/// Sizes the kernels cannot take are refused, not mis-read.
#[test]
fn refuses_wrong_sizes() {
    for isa in isas() {
        for (format, values, block) in [
            (Format::Q4_0, 32, 18),
            (Format::Q4_1, 32, 20),
            (Format::Q8_0, 32, 34),
            (Format::Q4K, 256, 144),
            (Format::Q5K, 256, 176),
            (Format::Q6K, 256, 210),
        ] {
            let new = |rows, cols, bytes: &[u8]| TiledMatrix::new(format, isa, rows, cols, bytes);
            let cols = 2 * values;
            assert!(new(2, cols, &vec![0; 4 * block - 1]).is_none());
            assert!(new(2, cols - values / 2, &vec![0; 3 * block]).is_none());
            assert!(new(0, cols, &[]).is_none());
            assert!(new(2, cols, &vec![0; 4 * block]).is_some());
        }
    }
}
