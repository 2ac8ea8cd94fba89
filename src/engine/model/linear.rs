//! A weight matrix and the kernel that multiplies by it: our Q4_0 kernel where the CPU allows,
//! candle's `QMatMul` otherwise.

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

use super::ModelError;
use super::q4_0::{self, Q4_0Matrix};
use crate::engine::gguf::{GgufFile, TensorType};

/// `y = x Wᵀ` for a `(rows, cols)` weight.
#[derive(Debug)]
pub(crate) enum Linear {
    /// candle's quantized (or dequantized F32/F16) matmul.
    Candle(QMatMul),
    /// Our AVX-512 VNNI Q4_0 kernel.
    Q4_0(Q4_0Matrix),
}

/// Whether our own kernels may be used: set `LLAMA_DIALOGUE_KERNELS=candle` to compare with
/// candle's.
fn own_kernels() -> bool {
    std::env::var("LLAMA_DIALOGUE_KERNELS").map_or(true, |v| v != "candle")
}

impl Linear {
    /// Loads tensor `name`, checking it is `(rows, cols)`.
    pub(crate) fn load(
        gguf: &GgufFile,
        name: &str,
        rows: usize,
        cols: usize,
        device: &Device,
    ) -> Result<Self, ModelError> {
        let info = gguf
            .tensor_info(name)
            .ok_or_else(|| crate::engine::gguf::GgufError::MissingTensor(name.to_owned()))?;
        if info.ty == TensorType::Q4_0
            && device.is_cpu()
            && own_kernels()
            && q4_0::available()
            && info.shape() == [rows, cols]
        {
            if let Some(m) = Q4_0Matrix::new(rows, cols, gguf.tensor_bytes(name)?) {
                return Ok(Self::Q4_0(m));
            }
        }
        let t = gguf.qtensor(name, device)?;
        super::check_shape(name, &t, &[rows, cols])?;
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    /// Multiplies `x` by several weights of the same width at once (one activation
    /// quantization and one parallel pass when all use our kernel).
    pub(crate) fn forward_many(
        linears: &[&Linear],
        x: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        let mats: Option<Vec<&Q4_0Matrix>> = linears
            .iter()
            .map(|l| if let Self::Q4_0(w) = l { Some(w) } else { None })
            .collect();
        let Some(mats) = mats else {
            return linears.iter().map(|l| l.forward(x)).collect();
        };
        let mut dims = x.dims().to_vec();
        let k = dims.pop().unwrap_or(1);
        let m = x.elem_count() / k.max(1);
        let data = x.flatten_all()?.to_vec1::<f32>()?;
        Q4_0Matrix::matmul_many(&mats, &data, m)
            .into_iter()
            .zip(&mats)
            .map(|(out, w)| {
                let mut shape = dims.clone();
                shape.push(w.rows());
                Tensor::from_vec(out, shape, x.device())
            })
            .collect()
    }

    /// Multiplies the last dimension of `x` by the weight.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Candle(q) => q.forward(x),
            Self::Q4_0(w) => {
                let mut dims = x.dims().to_vec();
                let k = dims.pop().unwrap_or(1);
                let m = x.elem_count() / k.max(1);
                let data = x.flatten_all()?.to_vec1::<f32>()?;
                dims.push(w.rows());
                Tensor::from_vec(w.matmul(&data, m), dims, x.device())
            }
        }
    }
}
