//! Random-weight LLaMA models with real tensor names, shapes and metadata (`make-test-model`),
//! so tests and benchmarks need no download. The speed of a model does not depend on its
//! weight values, so a random TinyLlama-shaped file benchmarks like the real one.

use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use crate::engine::gguf::{GgufError, GgufFile, GgufWriter, TensorSpec, TensorType, Value};

/// A model architecture shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelShape {
    /// Name used on the command line.
    pub name: &'static str,
    /// Hidden size.
    pub dim: usize,
    /// Feed-forward size.
    pub ff: usize,
    /// Transformer blocks.
    pub layers: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads.
    pub kv_heads: usize,
    /// Vocabulary size when no vocabulary file is given.
    pub vocab: usize,
    /// Context length.
    pub context: usize,
    /// RMSNorm epsilon.
    pub eps: f32,
}

/// The shapes `make-test-model` knows (sizes from the models' published configs).
pub const SHAPES: [ModelShape; 4] = [
    ModelShape {
        name: "tiny",
        dim: 256,
        ff: 768,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        vocab: 512,
        context: 512,
        eps: 1e-5,
    },
    ModelShape {
        name: "tinyllama-1.1b",
        dim: 2048,
        ff: 5632,
        layers: 22,
        heads: 32,
        kv_heads: 4,
        vocab: 32000,
        context: 2048,
        eps: 1e-5,
    },
    ModelShape {
        name: "llama2-7b",
        dim: 4096,
        ff: 11008,
        layers: 32,
        heads: 32,
        kv_heads: 32,
        vocab: 32000,
        context: 4096,
        eps: 1e-5,
    },
    ModelShape {
        name: "llama2-13b",
        dim: 5120,
        ff: 13824,
        layers: 40,
        heads: 40,
        kv_heads: 40,
        vocab: 32000,
        context: 4096,
        eps: 1e-5,
    },
];

impl ModelShape {
    /// The shape named `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        SHAPES
            .iter()
            .copied()
            .find(|s| s.name.eq_ignore_ascii_case(name))
    }
}

/// Errors writing a test model.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// Reading the vocabulary file or writing the output failed.
    #[error(transparent)]
    Gguf(#[from] GgufError),
    /// The quantisation does not fit the shape or is not supported.
    #[error("cannot write {quant} weights: {reason}")]
    Quant {
        /// The requested type.
        quant: TensorType,
        /// Why.
        reason: String,
    },
    /// candle failed to quantize.
    #[error("quantization failed: {0}")]
    Candle(#[from] candle_core::Error),
}

/// What to write.
#[derive(Debug, Clone)]
pub struct TestModelSpec {
    /// Architecture shape.
    pub shape: ModelShape,
    /// Type of the 2-D weights (norms stay F32).
    pub quant: TensorType,
    /// Seed of the weights.
    pub seed: u64,
}

/// Writes a random-weight GGUF to `out`. The tokenizer is copied from `vocab` (any GGUF with
/// `tokenizer.*` keys, e.g. `ggml-vocab-llama-spm.gguf`) or, without one, a synthetic
/// SentencePiece vocabulary of `shape.vocab` tokens. `progress(done, total)` is called per tensor.
pub fn write_test_model(
    spec: &TestModelSpec,
    vocab: Option<&Path>,
    out: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), SynthError> {
    let s = spec.shape;
    let dtype = spec
        .quant
        .candle()
        .filter(|_| spec.quant != TensorType(30))
        .ok_or_else(|| SynthError::Quant {
            quant: spec.quant,
            reason: "not a type this crate can write".into(),
        })?;
    let block = dtype.block_size();
    if !s.dim.is_multiple_of(block) || !s.ff.is_multiple_of(block) {
        return Err(SynthError::Quant {
            quant: spec.quant,
            reason: format!(
                "rows of {} and {} are not multiples of its block of {block}",
                s.dim, s.ff
            ),
        });
    }
    let mut metadata = tokenizer_metadata(vocab, s.vocab)?;
    let n_vocab = metadata
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.as_array())
        .map_or(s.vocab, <[Value]>::len);
    let u32v = |v: usize| Value::U32(v as u32);
    let mut head = vec![
        (
            "general.architecture".to_owned(),
            Value::String("llama".into()),
        ),
        (
            "general.name".to_owned(),
            Value::String(format!(
                "bevy_llama_dialogue random {} {}",
                s.name, spec.quant
            )),
        ),
        (
            "general.file_type".to_owned(),
            Value::U32(file_type(spec.quant)),
        ),
        ("general.quantization_version".to_owned(), Value::U32(2)),
        ("llama.context_length".to_owned(), u32v(s.context)),
        ("llama.embedding_length".to_owned(), u32v(s.dim)),
        ("llama.block_count".to_owned(), u32v(s.layers)),
        ("llama.feed_forward_length".to_owned(), u32v(s.ff)),
        ("llama.attention.head_count".to_owned(), u32v(s.heads)),
        ("llama.attention.head_count_kv".to_owned(), u32v(s.kv_heads)),
        (
            "llama.rope.dimension_count".to_owned(),
            u32v(s.dim / s.heads),
        ),
        ("llama.rope.freq_base".to_owned(), Value::F32(10_000.0)),
        (
            "llama.attention.layer_norm_rms_epsilon".to_owned(),
            Value::F32(s.eps),
        ),
        ("llama.vocab_size".to_owned(), u32v(n_vocab)),
    ];
    head.append(&mut metadata);
    let kv = s.kv_heads * (s.dim / s.heads);
    // (name, rows, cols); cols == 0 marks a 1-D norm.
    let mut tensors: Vec<(String, usize, usize)> = vec![
        ("token_embd.weight".into(), n_vocab, s.dim),
        ("output_norm.weight".into(), s.dim, 0),
        ("output.weight".into(), n_vocab, s.dim),
    ];
    for i in 0..s.layers {
        for (name, rows, cols) in [
            ("attn_norm", s.dim, 0),
            ("attn_q", s.dim, s.dim),
            ("attn_k", kv, s.dim),
            ("attn_v", kv, s.dim),
            ("attn_output", s.dim, s.dim),
            ("ffn_norm", s.dim, 0),
            ("ffn_gate", s.ff, s.dim),
            ("ffn_down", s.dim, s.ff),
            ("ffn_up", s.ff, s.dim),
        ] {
            tensors.push((format!("blk.{i}.{name}.weight"), rows, cols));
        }
    }
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|(name, rows, cols)| TensorSpec {
            name: name.clone(),
            dims: if *cols == 0 {
                vec![*rows as u64]
            } else {
                vec![*cols as u64, *rows as u64]
            },
            ty: if *cols == 0 {
                TensorType::F32
            } else {
                spec.quant
            },
        })
        .collect();
    let file = std::fs::File::create(out).map_err(|source| GgufError::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let mut w = GgufWriter::write_header(BufWriter::with_capacity(1 << 20, file), &head, &specs)?;
    let mut rng = XorShift(spec.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for (i, (_, rows, cols)) in tensors.iter().enumerate() {
        let data = if *cols == 0 {
            // Norm weights near 1, as in trained models.
            (0..*rows)
                .flat_map(|_| (1.0 + 0.1 * rng.uniform()).to_le_bytes())
                .collect::<Vec<u8>>()
        } else {
            let scale = (3.0 / *cols as f32).sqrt();
            let values: Vec<f32> = (0..rows * cols).map(|_| scale * rng.uniform()).collect();
            let t = Tensor::from_vec(values, (*rows, *cols), &Device::Cpu)?;
            QTensor::quantize(&t, dtype)?.data()?.into_owned()
        };
        w.write_tensor(&data)?;
        progress(i + 1, tensors.len());
    }
    w.finish()?;
    Ok(())
}

/// llama.cpp's `general.file_type` for a whole-model type.
fn file_type(t: TensorType) -> u32 {
    match t.0 {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 3,
        8 => 7,
        6 => 8,
        7 => 9,
        10 => 10,
        11 => 12,
        12 => 15,
        13 => 17,
        14 => 18,
        _ => 0,
    }
}

fn tokenizer_metadata(vocab: Option<&Path>, n: usize) -> Result<Vec<(String, Value)>, SynthError> {
    if let Some(path) = vocab {
        let g = GgufFile::open(path)?;
        return Ok(g
            .metadata()
            .iter()
            .filter(|(k, _)| k.starts_with("tokenizer."))
            .cloned()
            .collect());
    }
    let mut pieces: Vec<(String, i32)> =
        vec![("<unk>".into(), 2), ("<s>".into(), 3), ("</s>".into(), 3)];
    pieces.extend((0..=255u8).map(|b| (format!("<0x{b:02X}>"), 6)));
    pieces.push(("\u{2581}".into(), 1));
    pieces.extend((b'!'..=b'~').map(|c| ((c as char).to_string(), 1)));
    pieces.extend((b'a'..=b'z').map(|c| (format!("\u{2581}{}", c as char), 1)));
    let mut i = 0;
    while pieces.len() < n {
        pieces.push((format!("\u{2581}w{i}"), 1));
        i += 1;
    }
    pieces.truncate(n);
    let scores = (0..pieces.len()).map(|i| Value::F32(-(i as f32))).collect();
    Ok(vec![
        ("tokenizer.ggml.model".into(), Value::String("llama".into())),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(
                pieces
                    .iter()
                    .map(|(p, _)| Value::String(p.clone()))
                    .collect(),
            ),
        ),
        ("tokenizer.ggml.scores".into(), Value::Array(scores)),
        (
            "tokenizer.ggml.token_type".into(),
            Value::Array(pieces.iter().map(|(_, t)| Value::I32(*t)).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_eos_token".into(), Value::Bool(false)),
    ])
}

/// A small, fast, seeded generator (xorshift64*): weights need speed, not quality.
struct XorShift(u64);

impl XorShift {
    /// Uniform in [-1, 1).
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }
}
