//! Shared pieces of the kernel unit tests: random matrices and candle's product to compare with.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

/// A seeded linear congruential generator, uniform in [-0.5, 0.5).
pub(super) struct Lcg(pub u32);

impl Lcg {
    pub(super) fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) as f32 / (1u32 << 24) as f32 - 0.5
    }

    pub(super) fn values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// A random `rows × cols` matrix quantized to `dtype`: candle's matmul on it, its GGUF bytes,
/// and its exact (dequantized) values.
pub(super) fn random_matrix(
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
pub(super) fn candle_product(w: &QMatMul, x: &[f32], m: usize) -> Vec<f32> {
    let x = Tensor::from_vec(x.to_vec(), (m, x.len() / m), &Device::Cpu).unwrap();
    w.forward(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `x (m × cols) · Wᵀ` in f32 with the dequantized weights: the exact product.
pub(super) fn exact_product(exact: &Tensor, x: &[f32], m: usize) -> Vec<f32> {
    let x = Tensor::from_vec(x.to_vec(), (m, x.len() / m), &Device::Cpu).unwrap();
    x.matmul(&exact.t().unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// Largest `|a - b| / (1 + |b|)`.
pub(super) fn max_relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / (1.0 + y.abs()))
        .fold(0f32, f32::max)
}
