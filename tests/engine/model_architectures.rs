//! Every architecture that loads, against llama.cpp's own logits on the same file: random-weight
//! Llama 3 (tied embeddings, `rope_freqs.weight` scaling), Qwen2 (Q/K/V biases, NEOX RoPE) and
//! Qwen3 (per-head Q/K RMSNorm, heads wider than hidden / heads, NEOX RoPE) written by
//! `make-test-model`, and the LLaMA-2 test files. Teacher-forced along 256 positions, as
//! `llama-perplexity --kl-divergence` measures (references: scripts/arch_reference.py).

use std::path::{Path, PathBuf};

use bevy_llama_dialogue::engine::config::Architecture;
use bevy_llama_dialogue::engine::gguf::{GgufFile, TensorType};
use bevy_llama_dialogue::engine::model::{KvType, LlamaModel, LogitsFor, ModelOptions};
use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::common;

fn reference() -> Value {
    serde_json::from_str(include_str!("../models/arch_reference.json")).unwrap()
}

/// The test model of `shape`, written as scripts/arch_reference.py's instructions write it.
fn synthesized(shape: &str) -> PathBuf {
    let out = common::temp_dir(&format!("arch-{shape}")).join(format!("{shape}.gguf"));
    let spec = TestModelSpec {
        shape: ModelShape::by_name(shape).unwrap(),
        quant: TensorType::F32,
        seed: 1,
    };
    write_test_model(&spec, None, &out, &mut |_, _| {}).unwrap();
    out
}

/// Our logits along the reference's sequence, against llama.cpp's.
fn agreement(path: &Path, kv_type: KvType) -> common::kl::Agreement {
    let name = path.file_name().unwrap().to_str().unwrap();
    let r = reference();
    let m = &r["models"][name];
    let bytes = std::fs::read(path).unwrap();
    let sha: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        m["sha256"].as_str(),
        Some(sha.as_str()),
        "{name} is not the file the reference was made from: rerun scripts/arch_reference.py"
    );
    let seq: Vec<u32> = serde_json::from_value(m["sequence"].clone()).unwrap();
    let gguf = GgufFile::open(path).unwrap();
    let options = ModelOptions {
        kv_type,
        ..ModelOptions::default()
    };
    let mut model = LlamaModel::load(&gguf, &options).unwrap();
    let logits = model
        .forward(&seq[..seq.len() - 1], LogitsFor::All)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    common::kl::compare(&logits, m["positions"].as_array().unwrap())
}

fn check(path: &Path, arch: Architecture) {
    let gguf = GgufFile::open(path).unwrap();
    let config = LlamaModel::load(&gguf, &ModelOptions::default())
        .unwrap()
        .config()
        .clone();
    assert_eq!(config.architecture, arch);
    for kv_type in [KvType::F32, KvType::F16] {
        let a = agreement(path, kv_type);
        eprintln!(
            "{} ({arch:?}, {kv_type:?} cache) vs llama.cpp: {a}",
            path.display()
        );
        // The same file, the same arithmetic up to float rounding (an F16 cache rounds keys
        // and values as llama.cpp's default cache does).
        assert!(a.mean_kl <= 1e-4, "{a}");
        assert!(a.top_share() >= 0.995, "{a}");
        assert!(a.max_logprob_diff <= 0.1, "{a}");
    }
}

#[test]
fn llama3_with_tied_embeddings_and_rope_scaling_is_llama_cpps() {
    let path = synthesized("tiny-llama3");
    let gguf = GgufFile::open(&path).unwrap();
    assert!(gguf.tensor_info("rope_freqs.weight").is_some());
    assert!(gguf.tensor_info("output.weight").is_none());
    check(&path, Architecture::Llama);
}

#[test]
fn qwen2_with_biases_is_llama_cpps() {
    check(&synthesized("tiny-qwen2"), Architecture::Qwen2);
}

#[test]
fn qwen3_with_head_norms_and_wide_heads_is_llama_cpps() {
    let path = synthesized("tiny-qwen3");
    let gguf = GgufFile::open(&path).unwrap();
    let config = LlamaModel::load(&gguf, &ModelOptions::default())
        .unwrap()
        .config()
        .clone();
    // Heads of 64 over a hidden size of 128 with 4 heads: the query projection is wider than
    // the hidden state, as in Qwen3-0.6B (16 × 128 over 1024).
    assert_eq!(
        (config.head_dim, config.embedding_length, config.head_count),
        (64, 128, 4)
    );
    check(&path, Architecture::Qwen3);
}

#[test]
fn llama2_test_files_are_llama_cpps() {
    for name in ["stories260K.gguf", "llama-2-tiny-random.gguf"] {
        check(&common::model(name), Architecture::Llama);
    }
}
