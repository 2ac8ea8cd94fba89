//! One transformer block: attention with grouped-query heads and RoPE, then a SwiGLU MLP.

use candle_core::Tensor;

use super::linear::Linear;

use super::kv_cache::KvCache;

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

/// What every block needs besides its weights for one forward step.
pub(crate) struct Step<'a> {
    pub pos: usize,
    pub cos: &'a Tensor,
    pub sin: &'a Tensor,
    /// Additive causal mask `(seq, pos + seq)` when more than one position is processed.
    pub mask: Option<&'a Tensor>,
    pub eps: f32,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
}

impl Block {
    /// `x + attention(norm(x))`, then `+ mlp(norm(...))`.
    pub fn forward(
        &self,
        x: &Tensor,
        step: &Step<'_>,
        cache: &KvCache,
        index: usize,
    ) -> candle_core::Result<Tensor> {
        let h = candle_nn::ops::rms_norm(x, &self.attn_norm, step.eps)?;
        let x = (x + self.attention(&h, step, cache, index)?)?;
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
        cache: &KvCache,
        index: usize,
    ) -> candle_core::Result<Tensor> {
        let (_, seq, _) = x.dims3()?;
        let [q, k, v]: [Tensor; 3] = Linear::forward_many(&[&self.wq, &self.wk, &self.wv], x)?
            .try_into()
            .map_err(|_| candle_core::Error::Msg("q/k/v".into()))?;
        let heads = |t: Tensor, n: usize| -> candle_core::Result<Tensor> {
            t.reshape((1, seq, n, s.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = candle_nn::rotary_emb::rope_i(&heads(q, s.n_head)?, s.cos, s.sin)?;
        let k = candle_nn::rotary_emb::rope_i(&heads(k, s.n_kv_head)?, s.cos, s.sin)?;
        let v = heads(v, s.n_kv_head)?;
        let (k, v) = cache.append(index, s.pos, &k, &v)?;
        let kv_len = s.pos + seq;
        // Grouped-query attention without copying K/V: query head h uses kv head h / n_rep, so
        // the n_rep query heads of one kv head are stacked into its rows.
        let n_rep = s.n_head / s.n_kv_head;
        let q = q.reshape((1, s.n_kv_head, n_rep * seq, s.head_dim))?;
        let scale = 1.0 / (s.head_dim as f64).sqrt();
        let att = (q.matmul(&k.t()?)? * scale)?;
        let att = match s.mask {
            Some(mask) => att
                .reshape((1, s.n_head, seq, kv_len))?
                .broadcast_add(mask)?,
            None => att,
        };
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let y = att
            .reshape((1, s.n_kv_head, n_rep * seq, kv_len))?
            .matmul(&v)?;
        let y = y
            .reshape((1, s.n_head, seq, s.head_dim))?
            .transpose(1, 2)?
            .reshape((1, seq, s.n_head * s.head_dim))?;
        self.wo.forward(&y)
    }
}

/// The `(seq, pos + seq)` additive causal mask: position `pos + i` sees keys `0..=pos + i`.
pub(crate) fn causal_mask(
    seq: usize,
    pos: usize,
    device: &candle_core::Device,
) -> candle_core::Result<Tensor> {
    let kv_len = pos + seq;
    let mask: Vec<f32> = (0..seq)
        .flat_map(|i| (0..kv_len).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(mask, (seq, kv_len), device)
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
