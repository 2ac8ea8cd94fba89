//! One transformer block: attention with grouped-query heads and RoPE, then a SwiGLU MLP.

use candle_core::Tensor;

use super::linear::Linear;

use super::attention::{self, Heads};
use super::kv_cache::KvCache;
use super::tiled::Isa;

/// The weights of one block.
#[derive(Debug)]
pub(crate) struct Block {
    pub attn_norm: Tensor,
    pub wq: Linear,
    pub wk: Linear,
    pub wv: Linear,
    pub wo: Linear,
    pub ffn_norm: Tensor,
    pub w_gate: Linear,
    pub w_up: Linear,
    pub w_down: Linear,
}

/// One sequence's rows in a forward step: `len` new positions after `pos` cached ones.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segment {
    pub pos: usize,
    pub len: usize,
}

/// What every block needs besides its weights for one forward step. The step's rows are the
/// segments' rows one after the other; `cos` and `sin` hold one row per step row, at that
/// row's own position.
pub(crate) struct Step<'a> {
    pub segments: &'a [Segment],
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// The instruction set of the model's kernels (`None`: generic).
    pub isa: Option<Isa>,
    pub eps: f32,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
}

impl Block {
    /// `x + attention(norm(x))`, then `+ mlp(norm(...))`. `caches` has one cache per segment
    /// of `step`, in order.
    pub fn forward(
        &self,
        x: &Tensor,
        step: &Step<'_>,
        caches: &mut [&mut KvCache],
        index: usize,
    ) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.attn_norm, step.eps)?;
        let x = (x + self.attention(&h, step, caches, index)?)?;
        let h = candle_nn::ops::rms_norm(&x, &self.ffn_norm, step.eps)?;
        let [gate, up]: [Tensor; 2] = Linear::forward_many(&[&self.w_gate, &self.w_up], &h)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("gate/up".into()))?;
        let gate = candle_nn::ops::silu(&gate)?;
        x + self.w_down.forward(&(gate * up)?)?
    }

    fn attention(
        &self,
        x: &Tensor,
        s: &Step<'_>,
        caches: &mut [&mut KvCache],
        index: usize,
    ) -> candle_core::Result<Tensor> {
        let (_, rows, _) = x.dims3()?;
        let [q, k, v]: [Tensor; 3] = Linear::forward_many(&[&self.wq, &self.wk, &self.wv], x)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q/k/v".into()))?;
        // `[heads][rows][head_dim]`, as RoPE and the cache want them.
        let heads = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
            t.reshape((1, rows, n, s.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = candle_nn::rotary_emb::rope_i(&heads(q, s.n_head)?, s.cos, s.sin)?;
        let k = candle_nn::rotary_emb::rope_i(&heads(k, s.n_kv_head)?, s.cos, s.sin)?;
        let v = heads(v, s.n_kv_head)?;
        // Each segment writes its own cache and attends over it alone.
        let mut y = Vec::with_capacity(rows * s.n_head * s.head_dim);
        let mut start = 0;
        for (seg, cache) in s.segments.iter().zip(caches.iter_mut()) {
            let part = |t: &Tensor| {
                t.narrow(2, start, seg.len)?
                    .contiguous()?
                    .flatten_all()?
                    .to_vec1::<f32>()
            };
            cache.write(index, seg.pos, &part(&k)?, &part(&v)?);
            let shape = Heads {
                n_head: s.n_head,
                n_kv_head: s.n_kv_head,
                head_dim: s.head_dim,
                pos: seg.pos,
                seq: seg.len,
            };
            y.extend(attention::attend(&part(&q)?, cache, index, shape, s.isa));
            start += seg.len;
        }
        let y = Tensor::from_vec(y, (1, rows, s.n_head * s.head_dim), x.device())?;
        self.wo.forward(&y)
    }
}

/// RoPE inverse frequencies `scale × base^(−2i/d)` for `i` in `0..d/2`.
pub(crate) fn rope_frequencies(head_dim: usize, base: f32, scale: f32) -> Vec<f64> {
    (0..head_dim / 2)
        .map(|i| f64::from(scale) * f64::from(base).powf(-2.0 * i as f64 / head_dim as f64))
        .collect()
}

/// RoPE `(cos, sin)` tables `(seq, d/2)` for positions `pos..pos + seq`, computed per step so
/// memory does not depend on the (file-provided) context length.
pub(crate) fn rope_tables(
    freqs: &[f64],
    pos: usize,
    seq: usize,
    device: &candle_core::Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut cos = Vec::with_capacity(seq * freqs.len());
    let mut sin = Vec::with_capacity(seq * freqs.len());
    for p in pos..pos + seq {
        for f in freqs {
            let angle = p as f64 * f;
            cos.push(angle.cos() as f32);
            sin.push(angle.sin() as f32);
        }
    }
    let shape = (seq, freqs.len());
    Ok((
        Tensor::from_vec(cos, shape, device)?,
        Tensor::from_vec(sin, shape, device)?,
    ))
}
