//! Random-weight models (LLaMA, Qwen2, Qwen3) with real tensor names, shapes and metadata
//! (`make-test-model`),
//! so tests and benchmarks need no download. The speed of a model does not depend on its
//! weight values, so a random TinyLlama-shaped file benchmarks like the real one.

use std::io::BufWriter;
use std::path::Path;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use crate::engine::config::Architecture;
use crate::engine::gguf::{GgufError, GgufFile, GgufWriter, TensorSpec, TensorType, Value};

/// A model architecture shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelShape {
    /// Name used on the command line.
    pub name: &'static str,
    /// Its architecture (metadata prefix, tensors, RoPE style).
    pub arch: Architecture,
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
    /// Size of one head (`attention.key_length`); `dim / heads` in LLaMA-2-era models, larger
    /// in Qwen3 (128 with a hidden size of 1024 and 16 heads).
    pub head_dim: usize,
    /// Vocabulary size when no vocabulary file is given.
    pub vocab: usize,
    /// Context length.
    pub context: usize,
    /// RMSNorm epsilon.
    pub eps: f32,
    /// RoPE base frequency.
    pub rope_base: f32,
    /// No `output.weight`: the output head is the token embedding (SmolLM2, Llama 3.2, Qwen3).
    pub tied: bool,
    /// Llama 3's RoPE scaling (`rope_freqs.weight`, factor 32 over an original 8192 context).
    pub llama3_rope: bool,
}

const LLAMA2: ModelShape = ModelShape {
    name: "",
    arch: Architecture::Llama,
    dim: 0,
    ff: 0,
    layers: 0,
    heads: 0,
    kv_heads: 0,
    head_dim: 0,
    vocab: 32000,
    context: 4096,
    eps: 1e-5,
    rope_base: 10_000.0,
    tied: false,
    llama3_rope: false,
};

/// The shapes `make-test-model` knows (sizes from the models' published configs), and small
/// ones of each architecture for tests.
pub const SHAPES: [ModelShape; 10] = [
    ModelShape {
        name: "tiny",
        dim: 256,
        ff: 768,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        vocab: 512,
        context: 512,
        ..LLAMA2
    },
    ModelShape {
        name: "tinyllama-1.1b",
        dim: 2048,
        ff: 5632,
        layers: 22,
        heads: 32,
        kv_heads: 4,
        head_dim: 64,
        context: 2048,
        ..LLAMA2
    },
    ModelShape {
        name: "llama2-7b",
        dim: 4096,
        ff: 11008,
        layers: 32,
        heads: 32,
        kv_heads: 32,
        head_dim: 128,
        ..LLAMA2
    },
    ModelShape {
        name: "llama2-13b",
        dim: 5120,
        ff: 13824,
        layers: 40,
        heads: 40,
        kv_heads: 40,
        head_dim: 128,
        ..LLAMA2
    },
    // Llama-3.2-1B(-Instruct): tied embeddings, Llama 3 RoPE scaling, a 128k vocabulary.
    ModelShape {
        name: "llama3.2-1b",
        dim: 2048,
        ff: 8192,
        layers: 16,
        heads: 32,
        kv_heads: 8,
        head_dim: 64,
        vocab: 128_256,
        context: 131_072,
        rope_base: 500_000.0,
        tied: true,
        llama3_rope: true,
        ..LLAMA2
    },
    // SmolLM2-135M(-Instruct): 9 heads over 3 KV heads, tied embeddings.
    ModelShape {
        name: "smollm2-135m",
        dim: 576,
        ff: 1536,
        layers: 30,
        heads: 9,
        kv_heads: 3,
        head_dim: 64,
        vocab: 49_152,
        context: 8192,
        rope_base: 100_000.0,
        tied: true,
        ..LLAMA2
    },
    // Qwen3-0.6B: heads of 128 over a hidden size of 1024, per-head Q/K norms, NEOX RoPE.
    ModelShape {
        name: "qwen3-0.6b",
        arch: Architecture::Qwen3,
        dim: 1024,
        ff: 3072,
        layers: 28,
        heads: 16,
        kv_heads: 8,
        head_dim: 128,
        vocab: 151_936,
        context: 40_960,
        eps: 1e-6,
        rope_base: 1_000_000.0,
        tied: true,
        llama3_rope: false,
    },
    // Small ones of the other architectures, for tests against llama.cpp.
    ModelShape {
        name: "tiny-llama3",
        dim: 128,
        ff: 256,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        head_dim: 32,
        vocab: 512,
        context: 512,
        rope_base: 500_000.0,
        tied: true,
        llama3_rope: true,
        ..LLAMA2
    },
    ModelShape {
        name: "tiny-qwen2",
        arch: Architecture::Qwen2,
        dim: 128,
        ff: 256,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        head_dim: 32,
        vocab: 512,
        context: 512,
        eps: 1e-6,
        rope_base: 1_000_000.0,
        tied: false,
        llama3_rope: false,
    },
    ModelShape {
        name: "tiny-qwen3",
        arch: Architecture::Qwen3,
        dim: 128,
        ff: 256,
        layers: 2,
        heads: 4,
        kv_heads: 2,
        head_dim: 64,
        vocab: 512,
        context: 512,
        eps: 1e-6,
        rope_base: 1_000_000.0,
        tied: true,
        llama3_rope: false,
    },
];

/// Llama 3's RoPE frequency divisors (`rope_freqs.weight`) for heads of `head_dim` and RoPE
/// base `base`, as Meta's published scaling defines them: factor 32, low- and high-frequency
/// factors 1 and 4, an original context of 8192. Wavelengths shorter than 8192/4 keep their
/// frequency, longer than 8192 are divided by 32, and the ones between are blended smoothly.
pub fn llama3_rope_factors(head_dim: usize, base: f32) -> Vec<f32> {
    let (factor, low, high, original) = (32.0f64, 1.0f64, 4.0f64, 8192.0f64);
    (0..head_dim / 2)
        .map(|i| {
            let freq = f64::from(base).powf(-2.0 * i as f64 / head_dim as f64);
            let wavelength = 2.0 * std::f64::consts::PI / freq;
            let f = if wavelength < original / high {
                1.0
            } else if wavelength > original / low {
                factor
            } else {
                let smooth = (original / wavelength - low) / (high - low);
                1.0 / ((1.0 - smooth) / factor + smooth)
            };
            f as f32
        })
        .collect()
}

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
    let widths = [s.dim, s.ff, s.heads * s.head_dim];
    if widths.iter().any(|w| !w.is_multiple_of(block)) {
        return Err(SynthError::Quant {
            quant: spec.quant,
            reason: format!("rows of {widths:?} are not all multiples of its block of {block}"),
        });
    }
    let mut metadata = tokenizer_metadata(vocab, s.vocab)?;
    let n_vocab = metadata
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.as_array())
        .map_or(s.vocab, <[Value]>::len);
    let u32v = |v: usize| Value::U32(v as u32);
    let arch = s.arch.name();
    let key = |k: &str| format!("{arch}.{k}");
    let (hd, q_dim, kv) = (s.head_dim, s.heads * s.head_dim, s.kv_heads * s.head_dim);
    let mut head = vec![
        (
            "general.architecture".to_owned(),
            Value::String(arch.into()),
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
        (key("context_length"), u32v(s.context)),
        (key("embedding_length"), u32v(s.dim)),
        (key("block_count"), u32v(s.layers)),
        (key("feed_forward_length"), u32v(s.ff)),
        (key("attention.head_count"), u32v(s.heads)),
        (key("attention.head_count_kv"), u32v(s.kv_heads)),
        (key("attention.key_length"), u32v(hd)),
        (key("attention.value_length"), u32v(hd)),
        (key("rope.dimension_count"), u32v(hd)),
        (key("rope.freq_base"), Value::F32(s.rope_base)),
        (key("attention.layer_norm_rms_epsilon"), Value::F32(s.eps)),
        (key("vocab_size"), u32v(n_vocab)),
    ];
    head.append(&mut metadata);
    // (name, rows, cols, kind); 1-D tensors have cols == 0.
    let mut tensors: Vec<(String, usize, usize, Fill)> =
        vec![("token_embd.weight".into(), n_vocab, s.dim, Fill::Weight)];
    if s.llama3_rope {
        tensors.push(("rope_freqs.weight".into(), hd / 2, 0, Fill::RopeFactors));
    }
    tensors.push(("output_norm.weight".into(), s.dim, 0, Fill::Norm));
    if !s.tied {
        tensors.push(("output.weight".into(), n_vocab, s.dim, Fill::Weight));
    }
    for i in 0..s.layers {
        let mut layer = vec![("attn_norm.weight", s.dim, 0, Fill::Norm)];
        layer.push(("attn_q.weight", q_dim, s.dim, Fill::Weight));
        layer.push(("attn_k.weight", kv, s.dim, Fill::Weight));
        layer.push(("attn_v.weight", kv, s.dim, Fill::Weight));
        if s.arch == Architecture::Qwen2 {
            layer.push(("attn_q.bias", q_dim, 0, Fill::Bias));
            layer.push(("attn_k.bias", kv, 0, Fill::Bias));
            layer.push(("attn_v.bias", kv, 0, Fill::Bias));
        }
        if s.arch == Architecture::Qwen3 {
            layer.push(("attn_q_norm.weight", hd, 0, Fill::Norm));
            layer.push(("attn_k_norm.weight", hd, 0, Fill::Norm));
        }
        layer.extend([
            ("attn_output.weight", s.dim, q_dim, Fill::Weight),
            ("ffn_norm.weight", s.dim, 0, Fill::Norm),
            ("ffn_gate.weight", s.ff, s.dim, Fill::Weight),
            ("ffn_down.weight", s.dim, s.ff, Fill::Weight),
            ("ffn_up.weight", s.ff, s.dim, Fill::Weight),
        ]);
        for (name, rows, cols, fill) in layer {
            tensors.push((format!("blk.{i}.{name}"), rows, cols, fill));
        }
    }
    let specs: Vec<TensorSpec> = tensors
        .iter()
        .map(|(name, rows, cols, _)| TensorSpec {
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
    let factors = llama3_rope_factors(hd, s.rope_base);
    for (i, (_, rows, cols, fill)) in tensors.iter().enumerate() {
        let data = if *cols == 0 {
            let values: Vec<f32> = match fill {
                // Norm weights near 1, as in trained models.
                Fill::Norm => (0..*rows).map(|_| 1.0 + 0.1 * rng.uniform()).collect(),
                Fill::Bias => (0..*rows).map(|_| 0.1 * rng.uniform()).collect(),
                Fill::RopeFactors => factors.clone(),
                Fill::Weight => unreachable!("2-D"),
            };
            values.iter().flat_map(|v| v.to_le_bytes()).collect()
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

/// What a tensor holds.
#[derive(Debug, Clone, Copy)]
enum Fill {
    /// A matrix of uniform values scaled by its width.
    Weight,
    /// A norm's weights, near 1.
    Norm,
    /// A bias, near 0.
    Bias,
    /// Llama 3's RoPE frequency divisors.
    RopeFactors,
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
