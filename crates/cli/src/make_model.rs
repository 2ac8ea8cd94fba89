//! `llama-dialogue make-test-model`.

use std::path::PathBuf;

use bevy_llama_dialogue_core::engine::gguf::TensorType;
use bevy_llama_dialogue_core::engine::synth::{
    ModelShape, SHAPES, TestModelSpec, write_test_model,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// tiny, tinyllama-1.1b, llama2-7b, llama2-13b, llama3.2-1b, smollm2-135m, qwen3-0.6b, or the
    /// small test shapes tiny-llama3, tiny-qwen2, tiny-qwen3 (give the real models' vocabulary
    /// with --vocab, e.g. ggml-vocab-llama-bpe.gguf or ggml-vocab-qwen2.gguf).
    #[arg(long)]
    shape: String,
    /// f32, f16, q8_0, q4_0, q4_k (also q5_k, q6_k).
    #[arg(long)]
    quant: String,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Copy the tokenizer from this GGUF (e.g. ggml-vocab-llama-spm.gguf).
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// Seed of the random weights.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

pub fn run(args: Args) -> CliResult {
    let names: Vec<_> = SHAPES.iter().map(|s| s.name).collect();
    let shape = ModelShape::by_name(&args.shape).ok_or_else(|| {
        format!(
            "unknown shape `{}` (one of {})",
            args.shape,
            names.join(", ")
        )
    })?;
    let quant = TensorType::from_name(&args.quant)
        .ok_or_else(|| format!("unknown type `{}`", args.quant))?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tensors {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(format!("writing {} {}", shape.name, quant));
    let spec = TestModelSpec {
        shape,
        quant,
        seed: args.seed,
    };
    write_test_model(
        &spec,
        args.vocab.as_deref(),
        &args.out,
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    )?;
    bar.finish_and_clear();
    let size = std::fs::metadata(&args.out)?.len();
    eprintln!(
        "wrote {} ({:.1} MiB)",
        args.out.display(),
        size as f64 / (1024.0 * 1024.0)
    );
    Ok(())
}
