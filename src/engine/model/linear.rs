//! A weight matrix and the kernel that multiplies by it: our Q4_0 and Q8_0 kernels where the
//! CPU allows, candle's `QMatMul` otherwise.

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

use super::ModelError;
use super::q4_0::{self, Q4_0Matrix};
use super::q8_0::Q8_0Matrix;
use crate::engine::gguf::{GgufFile, TensorType};

/// `y = x Wᵀ` for a `(rows, cols)` weight.
#[derive(Debug)]
pub(crate) enum Linear {
    /// candle's quantized (or dequantized F32/F16) matmul.
    Candle(QMatMul),
    /// Our AVX-512 VNNI Q4_0 kernel.
    Q4_0(Q4_0Matrix),
    /// Our AVX-512 VNNI Q8_0 kernel.
    Q8_0(Q8_0Matrix),
}

/// Whether our own kernels may be used: set `LLAMA_DIALOGUE_KERNELS=candle` to compare with
/// candle's.
fn own_kernels() -> bool {
    std::env::var("LLAMA_DIALOGUE_KERNELS").map_or(true, |v| v != "candle")
}

impl Linear {
    /// Loads tensor `name`, checking it is `(rows, cols)`, then releases the file's pages of it
    /// (the matrix holds its own copy).
    pub(crate) fn load(
        gguf: &GgufFile,
        name: &str,
        rows: usize,
        cols: usize,
        device: &Device,
        own: bool,
    ) -> Result<Self, ModelError> {
        let linear = Self::load_copy(gguf, name, rows, cols, device, own);
        gguf.release(name);
        linear
    }

    /// [`load`](Self::load) without releasing the file's pages.
    fn load_copy(
        gguf: &GgufFile,
        name: &str,
        rows: usize,
        cols: usize,
        device: &Device,
        own: bool,
    ) -> Result<Self, ModelError> {
        let info = gguf
            .tensor_info(name)
            .ok_or_else(|| crate::engine::gguf::GgufError::MissingTensor(name.to_owned()))?;
        if own
            && device.is_cpu()
            && own_kernels()
            && q4_0::available()
            && info.shape() == [rows, cols]
        {
            let bytes = || gguf.tensor_bytes(name);
            if info.ty == TensorType::Q4_0 {
                if let Some(m) = Q4_0Matrix::new(rows, cols, bytes()?) {
                    return Ok(Self::Q4_0(m));
                }
            } else if info.ty == TensorType::Q8_0
                && let Some(m) = Q8_0Matrix::new(rows, cols, bytes()?)
            {
                return Ok(Self::Q8_0(m));
            }
        }
        let t = gguf.qtensor(name, device)?;
        super::check_shape(name, &t, &[rows, cols])?;
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    /// Multiplies `x` by several weights of the same width at once (one activation
    /// quantization and one parallel pass when all use the same one of our kernels).
    pub(crate) fn forward_many(
        linears: &[&Linear],
        x: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        let q4: Option<Vec<&Q4_0Matrix>> = linears
            .iter()
            .map(|l| if let Self::Q4_0(w) = l { Some(w) } else { None })
            .collect();
        let q8: Option<Vec<&Q8_0Matrix>> = linears
            .iter()
            .map(|l| if let Self::Q8_0(w) = l { Some(w) } else { None })
            .collect();
        let (outs, rows): (Vec<Vec<f32>>, Vec<usize>) = match (q4, q8) {
            (Some(mats), _) => {
                let (data, m) = rows_of(x)?;
                (
                    Q4_0Matrix::matmul_many(&mats, &data, m),
                    mats.iter().map(|w| w.rows()).collect(),
                )
            }
            (_, Some(mats)) => {
                let (data, m) = rows_of(x)?;
                (
                    Q8_0Matrix::matmul_many(&mats, &data, m),
                    mats.iter().map(|w| w.rows()).collect(),
                )
            }
            _ => return linears.iter().map(|l| l.forward(x)).collect(),
        };
        let mut dims = x.dims().to_vec();
        dims.pop();
        outs.into_iter()
            .zip(rows)
            .map(|(out, n)| {
                let mut shape = dims.clone();
                shape.push(n);
                Tensor::from_vec(out, shape, x.device())
            })
            .collect()
    }

    /// Multiplies the last dimension of `x` by the weight.
    pub(crate) fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Candle(q) => q.forward(x),
            Self::Q4_0(_) | Self::Q8_0(_) => Self::forward_many(&[self], x)?
                .pop()
                .ok_or_else(|| candle_core::Error::Msg("no output".into())),
        }
    }
}

/// The rows of `x` (all dimensions but the last flattened) as one f32 buffer.
fn rows_of(x: &Tensor) -> candle_core::Result<(Vec<f32>, usize)> {
    let k = x.dims().last().copied().unwrap_or(1).max(1);
    Ok((x.flatten_all()?.to_vec1::<f32>()?, x.elem_count() / k))
}
