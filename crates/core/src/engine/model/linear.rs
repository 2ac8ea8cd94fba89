//! A weight matrix and the kernel that multiplies by it: our Q4_0, Q4_1, Q8_0, Q4_K, Q5_K and Q6_K
//! kernels at the model's kernel level, candle's `QMatMul` for the generic level and other
//! tensor types.

use candle_core::quantized::QMatMul;
use candle_core::{Device, Module, Tensor};

use super::ModelError;
use super::tiled::{Format, Isa, TiledMatrix};
use crate::engine::gguf::{GgufFile, TensorType};

/// `y = x Wᵀ` for a `(rows, cols)` weight.
#[derive(Debug)]
pub(crate) enum Linear {
    /// candle's quantized (or dequantized F32/F16) matmul.
    Candle(QMatMul),
    /// Our kernels (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K).
    Tiled(TiledMatrix),
}

impl Linear {
    /// Loads tensor `name`, checking it is `(rows, cols)`, for our kernels on `isa` where it
    /// has one (`None`: candle's). The matrix holds its own copy: the caller may then
    /// [`release`](GgufFile::release) the file's pages.
    pub(crate) fn load(
        gguf: &GgufFile,
        name: &str,
        rows: usize,
        cols: usize,
        device: &Device,
        isa: Option<Isa>,
    ) -> Result<Self, ModelError> {
        let info = gguf
            .tensor_info(name)
            .ok_or_else(|| crate::engine::gguf::GgufError::MissingTensor(name.to_owned()))?;
        if let Some(isa) = isa
            && device.is_cpu()
            && info.shape() == [rows, cols]
        {
            let format = match info.ty {
                TensorType::Q4_0 => Some(Format::Q4_0),
                TensorType::Q4_1 => Some(Format::Q4_1),
                TensorType::Q8_0 => Some(Format::Q8_0),
                TensorType::Q4_K => Some(Format::Q4K),
                TensorType::Q5_K => Some(Format::Q5K),
                TensorType::Q6_K => Some(Format::Q6K),
                _ => None,
            };
            if let Some(format) = format
                && let Some(m) = TiledMatrix::new(format, isa, rows, cols, gguf.tensor_bytes(name)?)
            {
                return Ok(Self::Tiled(m));
            }
        }
        let t = gguf.qtensor(name, device)?;
        super::check_shape(name, &t, &[rows, cols])?;
        Ok(Self::Candle(QMatMul::from_qtensor(t)?))
    }

    /// Multiplies `x` by several weights of the same width at once (one activation
    /// quantization and one parallel pass when all use our kernels).
    pub(crate) fn forward_many(
        linears: &[&Linear],
        x: &Tensor,
    ) -> candle_core::Result<Vec<Tensor>> {
        let tiled: Option<Vec<&TiledMatrix>> = linears
            .iter()
            .map(|l| {
                if let Self::Tiled(w) = l {
                    Some(w)
                } else {
                    None
                }
            })
            .collect();
        let Some(mats) = tiled.filter(|m| m.iter().all(|w| w.cols() == m[0].cols())) else {
            return linears.iter().map(|l| l.forward(x)).collect();
        };
        let (data, m) = rows_of(x)?;
        let outs = TiledMatrix::matmul_many(&mats, &data, m);
        let rows: Vec<usize> = mats.iter().map(|w| w.rows()).collect();
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
            Self::Tiled(_) => Self::forward_many(&[self], x)?
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
