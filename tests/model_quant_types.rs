//! Random-weight models written by `make-test-model` in every supported tensor type load, and
//! their logits equal candle-transformers' `quantized_llama` on the same file. These need no
//! shared files, so they always run.

mod common;

use bevy_llama_dialogue::engine::gguf::{GgufFile, TensorType};
use bevy_llama_dialogue::engine::model::{LlamaModel, ModelOptions};
use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};
use candle_core::{Device, Tensor};

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
    let mut file = std::fs::File::open(&path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let mut theirs = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut file,
        &Device::Cpu,
    )
    .unwrap();
    let mut input: Vec<u32> = vec![1, 300, 301, 302, 400, 17, 90];
    let mut pos = 0;
    let mut worst = 0f32;
    let mut spread = 0f32;
    for _ in 0..6 {
        let a = ours.forward_last(&input).unwrap();
        let t = Tensor::new(input.as_slice(), &Device::Cpu)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let b: Vec<f32> = theirs
            .forward(&t, pos)
            .unwrap()
            .squeeze(0)
            .unwrap()
            .to_vec1()
            .unwrap();
        let diff = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        worst = worst.max(diff);
        spread = spread.max(a.iter().fold(0f32, |m, x| m.max(x.abs())));
        pos += input.len();
        let next = a
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.total_cmp(y.1))
            .unwrap()
            .0 as u32;
        input = vec![next];
    }
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
