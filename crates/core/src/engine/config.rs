//! LLaMA hyper-parameters, read from GGUF metadata (never hard-coded).

use crate::engine::gguf::{GgufError, MetadataExt};

/// The hyper-parameters of a LLaMA-architecture model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlamaConfig {
    /// `general.name`, when present.
    pub name: Option<String>,
    /// Trained context length (`llama.context_length`).
    pub context_length: usize,
    /// Hidden size (`llama.embedding_length`).
    pub embedding_length: usize,
    /// Number of transformer blocks (`llama.block_count`).
    pub block_count: usize,
    /// Hidden size of the feed-forward network (`llama.feed_forward_length`).
    pub feed_forward_length: usize,
    /// Query heads (`llama.attention.head_count`).
    pub head_count: usize,
    /// Key/value heads (`llama.attention.head_count_kv`, grouped-query attention when fewer).
    pub head_count_kv: usize,
    /// Size of one head: `embedding_length / head_count`.
    pub head_dim: usize,
    /// Dimensions rotated by RoPE (`llama.rope.dimension_count`).
    pub rope_dimension: usize,
    /// RoPE base frequency (`llama.rope.freq_base`, default 10000).
    pub rope_freq_base: f32,
    /// RoPE linear position scale (1 / `llama.rope.scaling.factor` for linear scaling, else 1).
    pub rope_freq_scale: f32,
    /// RMSNorm epsilon (`llama.attention.layer_norm_rms_epsilon`).
    pub rms_norm_eps: f32,
}

/// Why a file's hyper-parameters cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file is not a LLaMA-architecture model.
    #[error(
        "general.architecture is `{0}`; this crate runs `llama` models (LLaMA-2, TinyLlama, llama2.c conversions)"
    )]
    WrongArchitecture(String),
    /// A required key is missing.
    #[error("model metadata `{0}` is missing")]
    Missing(&'static str),
    /// A value is out of range or inconsistent with another.
    #[error("model metadata `{key}` is invalid: {reason}")]
    Invalid {
        /// The offending key.
        key: &'static str,
        /// Why.
        reason: String,
    },
    /// A value has the wrong type.
    #[error(transparent)]
    Metadata(#[from] GgufError),
}

impl LlamaConfig {
    /// Reads and checks the hyper-parameters of a GGUF file.
    pub fn from_gguf(md: &impl MetadataExt) -> Result<Self, ConfigError> {
        let arch = md
            .opt_str("general.architecture")?
            .ok_or(ConfigError::Missing("general.architecture"))?;
        if arch != "llama" {
            return Err(ConfigError::WrongArchitecture(arch.to_owned()));
        }
        let req = |key: &'static str| -> Result<usize, ConfigError> {
            let v = md.opt_u64(key)?.ok_or(ConfigError::Missing(key))?;
            if v == 0 || v > 1 << 24 {
                return Err(ConfigError::Invalid {
                    key,
                    reason: format!("{v} is out of range"),
                });
            }
            Ok(v as usize)
        };
        let embedding_length = req("llama.embedding_length")?;
        let head_count = req("llama.attention.head_count")?;
        let head_count_kv = match md.opt_u64("llama.attention.head_count_kv")? {
            Some(_) => req("llama.attention.head_count_kv")?,
            None => head_count,
        };
        if embedding_length % head_count != 0 {
            return Err(ConfigError::Invalid {
                key: "llama.attention.head_count",
                reason: format!(
                    "{head_count} heads do not divide the embedding length {embedding_length}"
                ),
            });
        }
        if head_count % head_count_kv != 0 {
            return Err(ConfigError::Invalid {
                key: "llama.attention.head_count_kv",
                reason: format!(
                    "{head_count_kv} key/value heads do not divide {head_count} query heads"
                ),
            });
        }
        let head_dim = embedding_length / head_count;
        let rope_dimension = match md.opt_u64("llama.rope.dimension_count")? {
            Some(_) => req("llama.rope.dimension_count")?,
            None => head_dim,
        };
        if rope_dimension != head_dim || head_dim % 2 != 0 {
            return Err(ConfigError::Invalid {
                key: "llama.rope.dimension_count",
                reason: format!(
                    "{rope_dimension} (head size {head_dim}): only full, even rotary dimensions are supported"
                ),
            });
        }
        let scaling_type = md.opt_str("llama.rope.scaling.type")?;
        let factor = md
            .opt_f32("llama.rope.scaling.factor")?
            .or(md.opt_f32("llama.rope.scale_linear")?);
        let rope_freq_scale = match (scaling_type, factor) {
            (None | Some("linear"), Some(f)) if f > 0.0 && f.is_finite() => 1.0 / f,
            (None | Some("linear") | Some("none"), _) => 1.0,
            (Some(other), _) => {
                return Err(ConfigError::Invalid {
                    key: "llama.rope.scaling.type",
                    reason: format!("`{other}` RoPE scaling is not supported (linear is)"),
                });
            }
        };
        let rope_freq_base = md.opt_f32("llama.rope.freq_base")?.unwrap_or(10_000.0);
        let rms_norm_eps = md
            .opt_f32("llama.attention.layer_norm_rms_epsilon")?
            .unwrap_or(1e-5);
        if !(rope_freq_base > 0.0 && rope_freq_base.is_finite()) {
            return Err(ConfigError::Invalid {
                key: "llama.rope.freq_base",
                reason: format!("{rope_freq_base}"),
            });
        }
        if !(rms_norm_eps >= 0.0 && rms_norm_eps.is_finite()) {
            return Err(ConfigError::Invalid {
                key: "llama.attention.layer_norm_rms_epsilon",
                reason: format!("{rms_norm_eps}"),
            });
        }
        Ok(Self {
            name: md.opt_str("general.name")?.map(str::to_owned),
            context_length: req("llama.context_length")?,
            embedding_length,
            block_count: req("llama.block_count")?,
            feed_forward_length: req("llama.feed_forward_length")?,
            head_count,
            head_count_kv,
            head_dim,
            rope_dimension,
            rope_freq_base,
            rope_freq_scale,
            rms_norm_eps,
        })
    }
}
