//! Model hyper-parameters, read from GGUF metadata (never hard-coded): the LLaMA family and
//! its close relatives that share its block (Qwen2, Qwen3).

use crate::engine::gguf::{GgufError, MetadataExt};

/// The architectures that load (`general.architecture`): one transformer block, with these
/// differences (as llama.cpp's `llama-model.cpp` builds them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// `llama`: LLaMA-2/3, TinyLlama, SmolLM2, llama2.c conversions. RoPE on interleaved pairs
    /// (the converter permutes Q and K for it); Llama 3's `rope_freqs.weight` when present.
    Llama,
    /// `qwen2` (Qwen2, Qwen2.5): biases on Q, K and V; RoPE on the two halves of a head (NEOX).
    Qwen2,
    /// `qwen3`: RMSNorm of each query and key head before RoPE (NEOX); no biases.
    Qwen3,
}

impl Architecture {
    /// The architectures that load.
    pub const ALL: [Self; 3] = [Self::Llama, Self::Qwen2, Self::Qwen3];

    /// Its `general.architecture` name, also the prefix of its metadata keys.
    pub fn name(self) -> &'static str {
        match self {
            Self::Llama => "llama",
            Self::Qwen2 => "qwen2",
            Self::Qwen3 => "qwen3",
        }
    }

    /// The architecture named `name`, if it loads.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// How its RoPE pairs the dimensions of a head.
    pub fn rope_style(self) -> RopeStyle {
        match self {
            Self::Llama => RopeStyle::Interleaved,
            Self::Qwen2 | Self::Qwen3 => RopeStyle::Neox,
        }
    }
}

/// Which dimensions of a head RoPE rotates together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RopeStyle {
    /// Pairs `(2i, 2i + 1)` (llama.cpp's "norm" RoPE).
    Interleaved,
    /// Pairs `(i, i + d/2)` (llama.cpp's NEOX RoPE, `rotate_half`).
    Neox,
}

/// The hyper-parameters of a model (see [`Architecture`] for the ones that load).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LlamaConfig {
    /// `general.name`, when present.
    pub name: Option<String>,
    /// `general.architecture`.
    pub architecture: Architecture,
    /// Trained context length (`<arch>.context_length`; every key below has the architecture's
    /// prefix: `llama.`, `qwen2.`, `qwen3.`).
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
    /// Size of one head: `attention.key_length` when given (Qwen3: 128 with a hidden size of
    /// 1024 and 16 heads), else `embedding_length / head_count`.
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
    /// The file's architecture is not one that loads.
    #[error(
        "general.architecture is `{0}`; this crate runs `llama` (LLaMA-2/3, TinyLlama, SmolLM2), `qwen2` (Qwen2, Qwen2.5) and `qwen3` models"
    )]
    WrongArchitecture(String),
    /// A required key is missing.
    #[error("model metadata `{0}` is missing")]
    Missing(String),
    /// A value is out of range or inconsistent with another.
    #[error("model metadata `{key}` is invalid: {reason}")]
    Invalid {
        /// The offending key.
        key: String,
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
        let arch_name = md
            .opt_str("general.architecture")?
            .ok_or_else(|| ConfigError::Missing("general.architecture".into()))?;
        let architecture = Architecture::from_name(arch_name)
            .ok_or_else(|| ConfigError::WrongArchitecture(arch_name.to_owned()))?;
        let key = |k: &str| format!("{}.{k}", architecture.name());
        let invalid = |k: &str, reason: String| ConfigError::Invalid {
            key: key(k),
            reason,
        };
        let req = |k: &str| -> Result<usize, ConfigError> {
            let v = md
                .opt_u64(&key(k))?
                .ok_or_else(|| ConfigError::Missing(key(k)))?;
            if v == 0 || v > 1 << 24 {
                return Err(invalid(k, format!("{v} is out of range")));
            }
            Ok(v as usize)
        };
        let opt = |k: &str| -> Result<Option<usize>, ConfigError> {
            md.opt_u64(&key(k))?.map(|_| req(k)).transpose()
        };
        let embedding_length = req("embedding_length")?;
        let head_count = req("attention.head_count")?;
        let head_count_kv = opt("attention.head_count_kv")?.unwrap_or(head_count);
        if head_count % head_count_kv != 0 {
            return Err(invalid(
                "attention.head_count_kv",
                format!("{head_count_kv} key/value heads do not divide {head_count} query heads"),
            ));
        }
        let head_dim = match opt("attention.key_length")? {
            Some(k) => k,
            None if embedding_length % head_count == 0 => embedding_length / head_count,
            None => {
                return Err(invalid(
                    "attention.head_count",
                    format!(
                        "{head_count} heads do not divide the embedding length {embedding_length}"
                    ),
                ));
            }
        };
        if let Some(v) = opt("attention.value_length")?
            && v != head_dim
        {
            return Err(invalid(
                "attention.value_length",
                format!("{v} differs from the key length {head_dim}: not supported"),
            ));
        }
        let rope_dimension = opt("rope.dimension_count")?.unwrap_or(head_dim);
        if rope_dimension != head_dim || head_dim % 2 != 0 {
            return Err(invalid(
                "rope.dimension_count",
                format!(
                    "{rope_dimension} (head size {head_dim}): only full, even rotary dimensions are supported"
                ),
            ));
        }
        let scaling_type = md.opt_str(&key("rope.scaling.type"))?;
        let factor = md
            .opt_f32(&key("rope.scaling.factor"))?
            .or(md.opt_f32(&key("rope.scale_linear"))?);
        let rope_freq_scale = match (scaling_type, factor) {
            (None | Some("linear"), Some(f)) if f > 0.0 && f.is_finite() => 1.0 / f,
            (None | Some("linear") | Some("none"), _) => 1.0,
            (Some(other), _) => {
                return Err(invalid(
                    "rope.scaling.type",
                    format!("`{other}` RoPE scaling is not supported (linear is)"),
                ));
            }
        };
        let rope_freq_base = md.opt_f32(&key("rope.freq_base"))?.unwrap_or(10_000.0);
        let rms_norm_eps = md
            .opt_f32(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5);
        if !(rope_freq_base > 0.0 && rope_freq_base.is_finite()) {
            return Err(invalid("rope.freq_base", format!("{rope_freq_base}")));
        }
        if !(rms_norm_eps >= 0.0 && rms_norm_eps.is_finite()) {
            return Err(invalid(
                "attention.layer_norm_rms_epsilon",
                format!("{rms_norm_eps}"),
            ));
        }
        Ok(Self {
            name: md.opt_str("general.name")?.map(str::to_owned),
            architecture,
            context_length: req("context_length")?,
            embedding_length,
            block_count: req("block_count")?,
            feed_forward_length: req("feed_forward_length")?,
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
