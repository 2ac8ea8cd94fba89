//! One transformer block: attention with grouped-query heads and RoPE, then a SwiGLU MLP. The
//! architectures differ only in the attention's details: biases on Q/K/V (Qwen2), an RMSNorm
//! of each query and key head (Qwen3), and which dimensions RoPE pairs.

use candle_core::Tensor;

use super::linear::Linear;
use crate::engine::config::RopeStyle;

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
    /// Qwen2's biases on the Q, K and V projections.
    pub qkv_bias: Option<[Tensor; 3]>,
    /// Qwen3's RMSNorm weights (`head_dim`) for each query head and each key head.
    pub qk_norm: Option<[Tensor; 2]>,
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
    pub rope_style: RopeStyle,
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
        let [mut q, mut k, mut v]: [Tensor; 3] =
            Linear::forward_many(&[&self.wq, &self.wk, &self.wv], x)?
                .try_into()
                .map_err(|_| candle_core::Error::Msg("q/k/v".into()))?;
        if let Some([bq, bk, bv]) = &self.qkv_bias {
            q = q.broadcast_add(bq)?;
            k = k.broadcast_add(bk)?;
            v = v.broadcast_add(bv)?;
        }
        // `[heads][rows][head_dim]`, as RoPE and the cache want them; Qwen3 normalises each
        // head first.
        let heads = |t: Tensor, n: usize, norm: Option<&Tensor>| -> candle_core::Result<Tensor> {
            let mut t = t.reshape((1, rows, n, s.head_dim))?;
            if let Some(w) = norm {
                t = candle_nn::ops::rms_norm(&t.contiguous()?, w, s.eps)?;
            }
            t.transpose(1, 2)?.contiguous()
        };
        let rope = |t: &Tensor| match s.rope_style {
            RopeStyle::Interleaved => candle_nn::rotary_emb::rope_i(t, s.cos, s.sin),
            RopeStyle::Neox => candle_nn::rotary_emb::rope(t, s.cos, s.sin),
        };
        let (q_norm, k_norm) = match &self.qk_norm {
            Some([qn, kn]) => (Some(qn), Some(kn)),
            None => (None, None),
        };
        let q = rope(&heads(q, s.n_head, q_norm)?)?;
        let k = rope(&heads(k, s.n_kv_head, k_norm)?)?;
        let v = heads(v, s.n_kv_head, None)?;
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

/// RoPE inverse frequencies `scale × base^(−2i/d) / factors[i]` for `i` in `0..d/2`; `factors`
/// are Llama 3's per-frequency divisors (`rope_freqs.weight`), empty for other models.
pub(crate) fn rope_frequencies(
    head_dim: usize,
    base: f32,
    scale: f32,
    factors: &[f32],
) -> Vec<f64> {
    (0..head_dim / 2)
        .map(|i| {
            let f = f64::from(scale) * f64::from(base).powf(-2.0 * i as f64 / head_dim as f64);
            factors.get(i).map_or(f, |&d| f / f64::from(d))
        })
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
