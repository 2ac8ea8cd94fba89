//! Random-weight models written by `make-test-model` in every supported tensor type load, and
//! their logits equal candle-transformers' `quantized_llama` on the same file. These need no
//! shared files, so they always run.

mod common;

use bevy_llama_dialogue::engine::gguf::{GgufFile, TensorType};
use bevy_llama_dialogue::engine::model::{LlamaModel, ModelOptions};
use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};

fn check(quant: &str, tolerance: f32) {
    let dir = common::temp_dir(&format!("quant-{quant}"));
    let path = dir.join("tiny.gguf");
    let spec = TestModelSpec {
        shape: ModelShape::by_name("tiny").unwrap(),
        quant: TensorType::from_name(quant).unwrap(),
        seed: 7,
    };
    write_test_model(&spec, None, &path, &mut |_, _| {}).unwrap();
    let gguf = GgufFile::open(&path).unwrap();
    assert_eq!(
        gguf.tensor_info("blk.1.ffn_down.weight").unwrap().ty,
        spec.quant
    );
    let mut ours = LlamaModel::load(&gguf, &ModelOptions::default()).unwrap();
    assert_eq!(ours.config().head_count_kv, 2);
    let (worst, spread) = common::cross_check::max_logit_difference(
        &path,
        &mut ours,
        &[1, 300, 301, 302, 400, 17, 90],
        6,
    );
    eprintln!("{quant}: max |logit| {spread:.3}, max difference vs candle-transformers {worst:e}");
    assert!(spread > 0.1, "logits are not trivially zero");
    assert!(worst <= tolerance, "{quant}: {worst} > {tolerance}");
}

#[test]
fn f32_matches_candle_transformers() {
    check("F32", 1e-4);
}

#[test]
fn f16_matches_candle_transformers() {
    check("F16", 1e-4);
}

#[test]
fn q8_0_matches_candle_transformers() {
    check("Q8_0", 1e-4);
}

#[test]
fn q4_0_matches_candle_transformers() {
    check("Q4_0", 1e-4);
}

#[test]
fn q4_k_matches_candle_transformers() {
    check("Q4_K", 1e-4);
}

#[test]
fn q5_k_matches_candle_transformers() {
    check("Q5_K", 1e-4);
}

#[test]
fn q6_k_matches_candle_transformers() {
    check("Q6_K", 1e-4);
}
