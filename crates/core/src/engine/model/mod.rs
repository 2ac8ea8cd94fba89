//! The LLaMA forward pass on candle ops and quantized matmuls, with a KV cache we own.

mod acts;
mod attention;
mod batch;
mod expanded;
#[cfg(test)]
mod kernel_tests;
mod kv_cache;
mod layer;
mod linear;
mod parallel;
mod q4_0;
mod q4_1;
mod q4_k;
mod q6_k;
mod q8_0;
mod simd;
mod tiled;

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Tensor};

use crate::engine::config::{Architecture, ConfigError, LlamaConfig};
use crate::engine::cpu::{KernelLevel, KernelLevelError, MissingCpuFeature, check_cpu};
use crate::engine::gguf::{GgufError, GgufFile};

pub use batch::BatchSeq;
pub use kv_cache::{KvCache, KvError, KvSnapshot, KvType};
use layer::{Block, Segment, Step};
use linear::Linear;

/// Errors loading or running a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The processor lacks a feature this build uses.
    #[error(transparent)]
    Cpu(#[from] MissingCpuFeature),
    /// The kernel level asked for (options or `LLAMA_DIALOGUE_CPU`) cannot be used.
    #[error(transparent)]
    KernelLevel(#[from] KernelLevelError),
    /// A snapshot from another model, or a cache operation beyond the context.
    #[error(transparent)]
    Kv(#[from] KvError),
    /// The file could not be read.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The hyper-parameters are missing or unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A tensor has the wrong shape for the hyper-parameters.
    #[error(
        "tensor `{name}` has shape {found:?}, expected {expected:?} from the model's hyper-parameters"
    )]
    TensorShape {
        /// The tensor's name.
        name: String,
        /// The shape the hyper-parameters imply (rows, columns).
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// The prompt would not fit in the context window.
    #[error("the context window is full: {needed} positions needed, the context holds {context}")]
    ContextFull {
        /// Positions the request needs (cached + new).
        needed: usize,
        /// The context length.
        context: usize,
    },
    /// A token id is not in the model's vocabulary.
    #[error("token id {id} is outside the model's vocabulary of {vocab}")]
    TokenOutOfRange {
        /// The id.
        id: u32,
        /// The vocabulary size.
        vocab: usize,
    },
    /// `forward` was called with no tokens.
    #[error("no tokens to process")]
    EmptyInput,
    /// `forward_batch` was given a cache laid out for another model.
    #[error("a KV cache made for another model (other layers, heads or context) was passed")]
    ForeignCache,
    /// candle failed while computing.
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// Options for loading a model.
#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Cap on the context window (the KV cache never grows beyond it); `None` uses the model's
    /// trained context length.
    pub max_context: Option<usize>,
    /// Where to compute (CPU by default).
    pub device: Device,
    /// Force a kernel level (`Generic`: candle's kernels for every type). `None` (default):
    /// `LLAMA_DIALOGUE_CPU` when set, else the fastest level this CPU supports. A level the CPU
    /// lacks fails the load with [`ModelError::KernelLevel`].
    pub kernels: Option<KernelLevel>,
    /// How the KV cache stores keys and values: F16 (default, half the memory, as llama.cpp)
    /// or F32.
    pub kv_type: KvType,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self {
            max_context: None,
            device: Device::Cpu,
            kernels: None,
            kv_type: KvType::F16,
        }
    }
}

/// Which logits [`LlamaModel::forward`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitsFor {
    /// Only the last position (generation).
    Last,
    /// Every new position (scoring continuations).
    All,
}

/// A loaded LLaMA model and its KV cache.
#[derive(Debug)]
pub struct LlamaModel {
    config: LlamaConfig,
    embed: QMatMul,
    blocks: Vec<Block>,
    norm: Tensor,
    output: Linear,
    /// RoPE inverse frequencies, one per rotated pair.
    rope: Vec<f64>,
    vocab: usize,
    context: usize,
    cache: KvCache,
    device: Device,
    kernel_level: KernelLevel,
    /// The instruction set of its kernels (`None`: generic).
    isa: Option<tiled::Isa>,
}

/// How many transformer blocks a file's tensors describe: one more than the highest `N` of a
/// `blk.N.` name (0 when there is none).
fn blocks_present(tensors: &[crate::engine::gguf::TensorInfo]) -> usize {
    tensors
        .iter()
        .filter_map(|t| {
            t.name
                .strip_prefix("blk.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .map(|n| n.saturating_add(1))
        .max()
        .unwrap_or(0)
}

impl LlamaModel {
    /// Loads a model from an open GGUF file.
    pub fn load(gguf: &GgufFile, options: &ModelOptions) -> Result<Self, ModelError> {
        check_cpu()?;
        let kernel_level = KernelLevel::choose(options.kernels)?;
        let isa = tiled::Isa::for_level(kernel_level);
        let config = LlamaConfig::from_gguf(gguf)?;
        let dev = &options.device;
        let (dim, hd) = (config.embedding_length, config.head_dim);
        let (q_dim, kv_dim) = (config.head_count * hd, config.head_count_kv * hd);
        let arch = config.architecture;
        let ff = config.feed_forward_length;
        let embed_q = gguf.qtensor("token_embd.weight", dev)?;
        gguf.release("token_embd.weight");
        let vocab = embed_q.shape().dims().first().copied().unwrap_or(0);
        check_shape("token_embd.weight", &embed_q, &[vocab.max(1), dim])?;
        let embed_q = Arc::new(embed_q);
        let output = match gguf.tensor_info("output.weight") {
            Some(_) => {
                let output = Linear::load(gguf, "output.weight", vocab, dim, dev, isa)?;
                gguf.release("output.weight");
                output
            }
            // Tied embeddings: the output head reuses the token embedding.
            None => Linear::Candle(QMatMul::from_arc(embed_q.clone())?),
        };
        // Each weight is copied (or repacked) at load: its mapped pages are released after.
        let mat = |name: String, rows: usize, cols: usize| {
            let linear = Linear::load(gguf, &name, rows, cols, dev, isa);
            gguf.release(&name);
            linear
        };
        // A vector of `len` values (norm weights, biases), as F32.
        let vector = |name: String, len: usize| -> Result<Tensor, ModelError> {
            let t = gguf.qtensor(&name, dev)?;
            gguf.release(&name);
            check_shape(&name, &t, &[len])?;
            Ok(t.dequantize(dev)?)
        };
        let norm = |name: String| vector(name, dim);
        // The block count is only a number in the header: check it against the tensors present
        // before anything is sized by it.
        let present = blocks_present(gguf.tensors());
        if config.block_count != present {
            return Err(ModelError::Config(ConfigError::Invalid {
                key: format!("{}.block_count", arch.name()),
                reason: format!(
                    "{} blocks, but the file holds tensors for {present}",
                    config.block_count
                ),
            }));
        }
        let mut blocks = Vec::with_capacity(config.block_count);
        for i in 0..config.block_count {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let b = |s: &str| format!("blk.{i}.{s}.bias");
            // Qwen2 has Q/K/V biases (llama.cpp requires them); a LLaMA file may carry them too.
            let qkv_bias = match arch {
                Architecture::Qwen2 => Some(true),
                _ if gguf.tensor_info(&b("attn_q")).is_some() => Some(true),
                _ => None,
            };
            let qkv_bias = qkv_bias
                .map(|_| -> Result<[Tensor; 3], ModelError> {
                    Ok([
                        vector(b("attn_q"), q_dim)?,
                        vector(b("attn_k"), kv_dim)?,
                        vector(b("attn_v"), kv_dim)?,
                    ])
                })
                .transpose()?;
            let qk_norm = match arch {
                Architecture::Qwen3 => {
                    Some([vector(p("attn_q_norm"), hd)?, vector(p("attn_k_norm"), hd)?])
                }
                _ => None,
            };
            blocks.push(Block {
                attn_norm: norm(p("attn_norm"))?,
                wq: mat(p("attn_q"), q_dim, dim)?,
                wk: mat(p("attn_k"), kv_dim, dim)?,
                wv: mat(p("attn_v"), kv_dim, dim)?,
                wo: mat(p("attn_output"), dim, q_dim)?,
                qkv_bias,
                qk_norm,
                ffn_norm: norm(p("ffn_norm"))?,
                w_gate: mat(p("ffn_gate"), ff, dim)?,
                w_up: mat(p("ffn_up"), ff, dim)?,
                w_down: mat(p("ffn_down"), dim, ff)?,
            });
        }
        let context = options
            .max_context
            .map_or(config.context_length, |c| c.clamp(1, config.context_length));
        // Llama 3's RoPE scaling: one divisor per frequency, stored as a tensor.
        let factors = match gguf.tensor_info("rope_freqs.weight") {
            Some(_) => vector("rope_freqs.weight".to_owned(), hd / 2)?
                .to_vec1::<f32>()?
                .into_iter()
                .map(|f| {
                    if f > 0.0 && f.is_finite() {
                        Ok(f)
                    } else {
                        Err(f)
                    }
                })
                .collect::<Result<Vec<f32>, f32>>()
                .map_err(|f| {
                    ModelError::Config(ConfigError::Invalid {
                        key: "rope_freqs.weight".into(),
                        reason: format!("a frequency factor of {f}"),
                    })
                })?,
            None => Vec::new(),
        };
        let rope =
            layer::rope_frequencies(hd, config.rope_freq_base, config.rope_freq_scale, &factors);
        Ok(Self {
            embed: QMatMul::from_arc(embed_q)?,
            norm: norm("output_norm.weight".to_owned())?,
            output,
            blocks,
            rope,
            vocab,
            context,
            cache: KvCache::new(
                config.block_count,
                config.head_count_kv,
                hd,
                context,
                options.kv_type,
            ),
            device: dev.clone(),
            isa,
            kernel_level,
            config,
        })
    }

    /// The kernel level its matrices use.
    pub fn kernel_level(&self) -> KernelLevel {
        self.kernel_level
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.config
    }

    /// Number of rows of the output head (may exceed the tokenizer's vocabulary).
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// The context window in use (≤ the trained context length).
    pub fn context_length(&self) -> usize {
        self.context
    }

    /// The device it computes on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The KV cache (read-only: which tokens are cached, memory used).
    pub fn cache(&self) -> &KvCache {
        &self.cache
    }

    /// Forgets every cached position after the first `len`.
    pub fn truncate(&mut self, len: usize) {
        self.cache.truncate(len);
    }

    /// Forgets every cached position.
    pub fn clear_cache(&mut self) {
        self.cache.clear();
    }

    /// Copies the first `len` cached positions (clamped) so they can be restored later.
    pub fn snapshot(&self, len: usize) -> Result<KvSnapshot, ModelError> {
        Ok(self.cache.snapshot(len))
    }

    /// Removes cached positions `range` and moves the later ones down, their keys re-rotated
    /// to their new positions (a context shift): the cache then holds the tokens without that
    /// range, as if computed that way, for the cost of a copy instead of a prefill.
    pub fn discard(&mut self, range: std::ops::Range<usize>) {
        let style = self.config.architecture.rope_style();
        self.cache.discard(range, &self.rope, style);
    }

    /// Exchanges the model's own cache with `other` (a cache made by
    /// [`new_cache`](Self::new_cache)), so the single-sequence calls ([`restore`](Self::restore),
    /// [`discard`](Self::discard), [`forward`](Self::forward), …) can work on another sequence's
    /// cache. Fails, changing nothing, when `other` has another layout.
    pub fn swap_cache(&mut self, other: &mut KvCache) -> Result<(), ModelError> {
        if !other.same_layout(&self.cache) {
            return Err(ModelError::ForeignCache);
        }
        std::mem::swap(&mut self.cache, other);
        Ok(())
    }

    /// Replaces the cache with a snapshot taken from this model.
    pub fn restore(&mut self, snapshot: &KvSnapshot) -> Result<(), ModelError> {
        Ok(self.cache.restore(snapshot)?)
    }

    /// Runs `tokens` after the cached positions and caches them. Returns logits as a
    /// `(positions, vocab)` F32 tensor: one row for [`LogitsFor::Last`], one per token for
    /// [`LogitsFor::All`]. On error the cache is left as it was.
    pub fn forward(&mut self, tokens: &[u32], which: LogitsFor) -> Result<Tensor, ModelError> {
        let pos = self.cache.len();
        self.check_input(pos, tokens)?;
        // Long prompts go through in chunks, so the activations of one step stay a few
        // megabytes whatever the prompt's length (the weights are read once per chunk).
        let mut rows = Vec::new();
        for chunk in tokens.chunks(Self::UBATCH) {
            let last = chunk.as_ptr_range().end == tokens.as_ptr_range().end;
            let which = (last || which == LogitsFor::All).then_some(which);
            match self.forward_chunk(chunk, which) {
                Ok(Some(logits)) => rows.push(logits),
                Ok(None) => {}
                Err(e) => {
                    self.cache.truncate(pos);
                    return Err(e);
                }
            }
        }
        Ok(if rows.len() == 1 {
            rows.remove(0)
        } else {
            Tensor::cat(&rows, 0)?
        })
    }

    /// Whether `tokens` may run after `pos` cached positions: not empty, within the context,
    /// every id in the vocabulary.
    fn check_input(&self, pos: usize, tokens: &[u32]) -> Result<(), ModelError> {
        if tokens.is_empty() {
            return Err(ModelError::EmptyInput);
        }
        if pos + tokens.len() > self.context {
            return Err(ModelError::ContextFull {
                needed: pos + tokens.len(),
                context: self.context,
            });
        }
        if let Some(&id) = tokens.iter().find(|&&id| id as usize >= self.vocab) {
            return Err(ModelError::TokenOutOfRange {
                id,
                vocab: self.vocab,
            });
        }
        Ok(())
    }

    /// What every block needs for one step over `segments` (RoPE tables with one row per
    /// step row). Borrows nothing of the model, so the caches can be borrowed alongside.
    fn step<'a>(&self, segments: &'a [Segment], cos: &'a Tensor, sin: &'a Tensor) -> Step<'a> {
        Step {
            segments,
            cos,
            sin,
            isa: self.isa,
            eps: self.config.rms_norm_eps,
            rope_style: self.config.architecture.rope_style(),
            n_head: self.config.head_count,
            n_kv_head: self.config.head_count_kv,
            head_dim: self.config.head_dim,
        }
    }

    /// Positions computed in one step at most (the rows of one pass, shared by a batch).
    pub const UBATCH: usize = 128;

    /// One step of [`forward`](Self::forward): `tokens` (at most `UBATCH`) after the cache, and
    /// the logits asked for (`None`: none, an earlier chunk of a prompt).
    fn forward_chunk(
        &mut self,
        tokens: &[u32],
        which: Option<LogitsFor>,
    ) -> Result<Option<Tensor>, ModelError> {
        let (pos, seq) = (self.cache.len(), tokens.len());
        self.cache.reserve(pos + seq)?;
        let ids = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let mut x = self.embed.embedding(&ids)?;
        let (cos, sin) = layer::rope_tables(&self.rope, pos, seq, &self.device)?;
        let segments = [Segment { pos, len: seq }];
        let step = self.step(&segments, &cos, &sin);
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, &step, &mut [&mut self.cache], i)?;
        }
        self.cache.commit(tokens);
        let x = match which {
            None => return Ok(None),
            Some(LogitsFor::Last) => x.narrow(1, seq - 1, 1)?,
            Some(LogitsFor::All) => x,
        };
        let x = candle_nn::ops::rms_norm(&x, &self.norm, self.config.rms_norm_eps)?;
        Ok(Some(self.output.forward(&x)?.squeeze(0)?))
    }

    /// Convenience: runs `tokens` and returns the last position's logits as a vector.
    pub fn forward_last(&mut self, tokens: &[u32]) -> Result<Vec<f32>, ModelError> {
        Ok(self
            .forward(tokens, LogitsFor::Last)?
            .squeeze(0)?
            .to_vec1::<f32>()?)
    }
}

pub(crate) fn check_shape(name: &str, t: &QTensor, expected: &[usize]) -> Result<(), ModelError> {
    if t.shape().dims() != expected {
        return Err(ModelError::TensorShape {
            name: name.to_owned(),
            expected: expected.to_vec(),
            found: t.shape().dims().to_vec(),
        });
    }
    Ok(())
}
