//! The 1-layer random-weight LLaMA-2 with the full 32000-token vocabulary (F16 weights, from
//! ollama's test data): its tokenizer is LLaMA-2's (the same ids as llama.cpp on the reference
//! strings), and its logits equal candle-transformers' `quantized_llama` at every kernel level.

use crate::common;

use bevy_llama_dialogue::engine::cpu::KernelLevel;
use bevy_llama_dialogue::engine::gguf::{GgufFile, TensorType};
use bevy_llama_dialogue::engine::model::{LlamaModel, ModelOptions};
use bevy_llama_dialogue::engine::tokenizer::Tokenizer;

const FILE: &str = "llama-2-tiny-random.gguf";

#[test]
fn its_tokenizer_is_llama2s() {
    let gguf = GgufFile::open(common::model(FILE)).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    assert_eq!(tok.vocab_size(), 32000);
    let reference = common::reference();
    let cases = reference["vocabs"]["ggml-vocab-llama-spm.gguf"]
        .as_array()
        .unwrap();
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(tok.encode(text, true), want, "{text:?}");
    }
}

#[test]
fn f16_logits_equal_candle_transformers_at_every_level() {
    let path = common::model(FILE);
    let gguf = GgufFile::open(&path).unwrap();
    assert_eq!(
        gguf.tensor_info("blk.0.ffn_down.weight").unwrap().ty,
        TensorType::F16
    );
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    let prompt = tok.encode("The lantern was lost in the mill.", true);
    for level in KernelLevel::ALL.into_iter().filter(|l| l.is_supported()) {
        let options = ModelOptions {
            kernels: Some(level),
            ..ModelOptions::default()
        };
        let mut ours = LlamaModel::load(&gguf, &options).unwrap();
        assert_eq!(ours.vocab_size(), 32000);
        let (worst, spread) =
            crate::cross_check::max_logit_difference(&path, &mut ours, &prompt, 8);
        assert!(spread > 0.0, "logits are not all zero");
        assert!(worst <= 1e-4, "{level}: max logit difference {worst}");
    }
}
