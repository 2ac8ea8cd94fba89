//! `llama-dialogue bench`.

use bevy_llama_dialogue_core::engine::bench::{BenchConfig, run};
use bevy_llama_dialogue_core::engine::llama::Llama;
use bevy_llama_dialogue_core::engine::model::ModelOptions;

use crate::{CliResult, ModelArg};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArg,
    /// Prompt-processing test length (llama-bench -p).
    #[arg(long, default_value_t = 256)]
    prompt_tokens: usize,
    /// Decode test length from an empty context (llama-bench -n).
    #[arg(long, default_value_t = 64)]
    gen_tokens: usize,
    /// Repetitions (rates are averaged).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Generations decoded together in the decode test (batched decoding): decode is then
    /// reported for all of them together and per stream.
    #[arg(long, default_value_t = 1)]
    streams: usize,
    /// Print exactly one JSON object on stdout: prompt_tok_s, decode_tok_s (all streams),
    /// decode_stream_tok_s, streams, ttft_cold_ms, ttft_warm_ms, peak_rss_mb, threads, kernels,
    /// model (and the test sizes).
    #[arg(long)]
    json: bool,
}

pub fn run_cli(args: Args, threads: Option<usize>) -> CliResult {
    crate::compute_pool(threads)?
        .install(|| bench(args))
        .map_err(|e| e.to_string().into())
}

fn bench(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut llama = Llama::load(&args.model.model, &ModelOptions::default())?;
    let cfg = BenchConfig {
        prompt_tokens: args.prompt_tokens,
        gen_tokens: args.gen_tokens,
        reps: args.reps,
        streams: args.streams,
        ..BenchConfig::default()
    };
    let name = args.model.model.display().to_string();
    let report = run(&mut llama, &name, &cfg, &mut |line| eprintln!("{line}"))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("model:        {}", report.model);
        println!("threads:      {}", report.threads);
        println!("kernels:      {}", report.kernels);
        println!(
            "prompt:       {:.1} tokens/s ({} tokens)",
            report.prompt_tok_s, report.prompt_tokens
        );
        println!(
            "decode:       {:.1} tokens/s ({} tokens from an empty context, {} stream(s): {:.1} tokens/s each)",
            report.decode_tok_s, report.gen_tokens, report.streams, report.decode_stream_tok_s
        );
        println!(
            "ttft cold:    {:.1} ms ({} + {} tokens, nothing cached)",
            report.ttft_cold_ms, cfg.prefix_tokens, cfg.new_tokens
        );
        println!(
            "ttft warm:    {:.1} ms ({}-token prefix restored, {} new)",
            report.ttft_warm_ms, cfg.prefix_tokens, cfg.new_tokens
        );
        println!("peak rss:     {:.0} MiB", report.peak_rss_mb);
    }
    Ok(())
}
