//! Our forward pass against candle-transformers' `quantized_llama` on the same file.

use std::path::Path;

use bevy_llama_dialogue::engine::model::LlamaModel;
use candle_core::{Device, Tensor};

/// Feeds `prompt`, then `steps - 1` greedy tokens, to both models; returns
/// (max |logit difference|, max |logit|) over all steps.
pub fn max_logit_difference(
    path: &Path,
    ours: &mut LlamaModel,
    prompt: &[u32],
    steps: usize,
) -> (f32, f32) {
    let mut file = std::fs::File::open(path).unwrap();
    let content = candle_core::quantized::gguf_file::Content::read(&mut file).unwrap();
    let mut theirs = candle_transformers::models::quantized_llama::ModelWeights::from_gguf(
        content,
        &mut file,
        &Device::Cpu,
    )
    .unwrap();
    let mut input = prompt.to_vec();
    let (mut pos, mut worst, mut spread) = (0, 0f32, 0f32);
    for _ in 0..steps {
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
        assert_eq!(a.len(), b.len());
        worst = worst.max(
            a.iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max),
        );
        spread = spread.max(a.iter().fold(0f32, |m, x| m.max(x.abs())));
        pos += input.len();
        input = vec![
            a.iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .unwrap()
                .0 as u32,
        ];
    }
    (worst, spread)
}
