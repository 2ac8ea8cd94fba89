//! Several sequences in one forward pass (batched decoding): each sequence keeps its own KV
//! cache, but the matrix products run over the rows of all of them at once, so each weight is
//! read from memory once per step for the whole batch instead of once per sequence.

use candle_core::Tensor;

use super::layer::{self, Segment};
use super::{KvCache, LlamaModel, ModelError};

/// One sequence of a batched step: its cache and the tokens to run after what it holds.
#[derive(Debug)]
pub struct BatchSeq<'a> {
    /// The sequence's own cache (made by [`LlamaModel::new_cache`]); the tokens are appended.
    pub cache: &'a mut KvCache,
    /// The tokens to run (at least one): one for a decode step, more for a prompt.
    pub tokens: &'a [u32],
}

impl LlamaModel {
    /// A new, empty KV cache for another sequence, laid out as this model's own (same
    /// context and element type). Memory is taken as positions are written.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(
            self.config.block_count,
            self.config.head_count_kv,
            self.config.head_dim,
            self.context,
            self.cache.kv_type(),
        )
    }

    /// Runs every sequence's tokens after its own cache, all sequences together, and returns
    /// each sequence's last-position logits (in order). The model's own cache is not touched.
    /// The result is the same as running each sequence alone, to float rounding.
    ///
    /// Prompts longer than a step go through in several passes (each sequence gets an equal
    /// share of a step's rows), so a long prompt in the batch shares every pass with the
    /// others' decode tokens instead of stalling them. On error every cache is left as it
    /// was.
    pub fn forward_batch(&self, seqs: &mut [BatchSeq<'_>]) -> Result<Vec<Vec<f32>>, ModelError> {
        for s in seqs.iter() {
            if !s.cache.same_layout(&self.cache) {
                return Err(ModelError::ForeignCache);
            }
            self.check_input(s.cache.len(), s.tokens)?;
        }
        let start: Vec<usize> = seqs.iter().map(|s| s.cache.len()).collect();
        let result = self.batch_passes(seqs);
        if result.is_err() {
            for (s, &len) in seqs.iter_mut().zip(&start) {
                s.cache.truncate(len);
            }
        }
        result
    }

    fn batch_passes(&self, seqs: &mut [BatchSeq<'_>]) -> Result<Vec<Vec<f32>>, ModelError> {
        let n = seqs.len();
        let share = (Self::UBATCH / n.max(1)).max(1);
        let mut done = vec![0usize; n];
        let mut logits: Vec<Vec<f32>> = vec![Vec::new(); n];
        while done
            .iter()
            .zip(seqs.iter())
            .any(|(&d, s)| d < s.tokens.len())
        {
            // This pass: the next share of every sequence that still has tokens.
            let mut active = Vec::new();
            let mut caches = Vec::new();
            let mut parts = Vec::new();
            let mut finished = Vec::new();
            for (i, s) in seqs.iter_mut().enumerate() {
                let rest = &s.tokens[done[i]..];
                if rest.is_empty() {
                    continue;
                }
                let take = rest.len().min(share);
                active.push(i);
                parts.push(&rest[..take]);
                finished.push(take == rest.len());
                caches.push(&mut *s.cache);
            }
            let out = self.pass(&mut caches, &parts)?;
            for (k, &i) in active.iter().enumerate() {
                done[i] += parts[k].len();
            }
            for ((&i, fin), row) in active.iter().zip(&finished).zip(out) {
                if *fin {
                    logits[i] = row;
                }
            }
        }
        Ok(logits)
    }

    /// One forward pass over `parts[i]` after `caches[i]`, returning every part's last
    /// position's logits.
    fn pass(
        &self,
        caches: &mut [&mut KvCache],
        parts: &[&[u32]],
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut segments = Vec::with_capacity(parts.len());
        let mut cos = Vec::with_capacity(parts.len());
        let mut sin = Vec::with_capacity(parts.len());
        for (cache, part) in caches.iter_mut().zip(parts) {
            let pos = cache.len();
            cache.reserve(pos + part.len())?;
            segments.push(Segment {
                pos,
                len: part.len(),
            });
            let (c, s) = layer::rope_tables(&self.rope, pos, part.len(), &self.device)?;
            cos.push(c);
            sin.push(s);
        }
        let ids: Vec<u32> = parts.concat();
        let rows = ids.len();
        let ids = Tensor::new(ids, &self.device)?.unsqueeze(0)?;
        let mut x = self.embed.embedding(&ids)?;
        let (cos, sin) = (Tensor::cat(&cos, 0)?, Tensor::cat(&sin, 0)?);
        let step = self.step(&segments, &cos, &sin);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &step, caches, i)?;
        }
        for (cache, part) in caches.iter_mut().zip(parts) {
            cache.commit(part);
        }
        // Only each segment's last row goes through the output head.
        let mut last = Vec::with_capacity(segments.len());
        let mut end = 0u32;
        for seg in &segments {
            end += seg.len as u32;
            last.push(end - 1);
        }
        debug_assert_eq!(end as usize, rows);
        let last = Tensor::new(last, &self.device)?;
        let x = x.squeeze(0)?.index_select(&last, 0)?.unsqueeze(0)?;
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.config.rms_norm_eps)?;
        Ok(self.output.forward(&x)?.squeeze(0)?.to_vec2::<f32>()?)
    }
}
