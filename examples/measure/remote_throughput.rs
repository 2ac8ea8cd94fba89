//! Lines per second for N NPCs speaking at once, through the local backend or a remote
//! server, with the same prompts and limits: what `docs/SCALING.md` compares.
//!
//! `cargo run --release --example remote_throughput -- (--model M.gguf | --remote URL)
//! [--npcs 1,4] [--tokens 64] [--rounds 2] [--threads N] [--slots N]` (`--slots`: pin each NPC
//! to one of llama.cpp's N server slots)
//!
//! Each NPC asks for one line of at most `--tokens` tokens (greedy; an end token may end it
//! sooner); all are submitted at once, in `--rounds` rounds: the first with prompts never seen,
//! the next with the same NPCs asking again (their prompts cached by the local prefix cache or
//! the server's slots). One line per NPC count and round: `throughput backend=… npcs=N round=R
//! chunks=… seconds=… chunks_per_s=… ttft_ms_mean=…` (a chunk is one streamed piece: one token for llama.cpp's
//! servers and for the local backend).

use std::time::{Duration, Instant};

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, BackendStatus, ConversationId, DialogueBackend, GenerateRequest,
    LocalLlama, Prompt,
};
use bevy_llama_dialogue::engine::remote::{OpenAiCompatible, RemoteConfig};
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::WorkerConfig;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn backend(npcs: usize) -> Box<dyn DialogueBackend> {
    if let Some(url) = arg("--remote") {
        let mut config = RemoteConfig::new(url);
        config.max_concurrent = npcs.max(1);
        config.slots = arg("--slots").and_then(|n| n.parse().ok());
        return Box::new(OpenAiCompatible::spawn(config));
    }
    let Some(model) = arg("--model") else {
        eprintln!("give --model M.gguf or --remote URL");
        std::process::exit(2);
    };
    let mut config = WorkerConfig::new(ModelSource::path(model));
    config.threads = arg("--threads").and_then(|t| t.parse().ok());
    config.max_batch = npcs.max(1);
    Box::new(LocalLlama::spawn(config))
}

fn main() {
    let tokens: usize = arg("--tokens").and_then(|t| t.parse().ok()).unwrap_or(64);
    let rounds: usize = arg("--rounds").and_then(|t| t.parse().ok()).unwrap_or(2);
    let counts: Vec<usize> = arg("--npcs")
        .unwrap_or_else(|| "1,4".into())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    for npcs in counts {
        let mut b = backend(npcs);
        loop {
            match b.status() {
                BackendStatus::Ready => break,
                BackendStatus::Loading => std::thread::sleep(Duration::from_millis(5)),
                other => {
                    eprintln!("{}: {other:?}", b.label());
                    std::process::exit(1);
                }
            }
        }
        // One warm-up line so that loading and first-use costs are not measured.
        run(b.as_mut(), 1, 8, 1000);
        // Round 1: prompts never seen; later rounds: the same NPCs ask again, their prompts
        // cached (the local prefix cache, the server's slots).
        for round in 1..=rounds {
            let (chunks, seconds, ttft) = run(b.as_mut(), npcs, tokens, 10_000 * round as u64);
            println!(
                "throughput backend={:?} npcs={npcs} round={round} chunks={chunks} seconds={seconds:.2} chunks_per_s={:.1} ttft_ms_mean={ttft:.0}",
                b.label(),
                chunks as f64 / seconds
            );
        }
        b.shutdown();
    }
}

/// Submits `npcs` lines at once; returns (chunks, seconds, mean time to first chunk).
fn run(b: &mut dyn DialogueBackend, npcs: usize, tokens: usize, base: u64) -> (usize, f64, f64) {
    let start = Instant::now();
    for i in 0..npcs as u64 {
        let request = GenerateRequest {
            id: base + i + 1,
            conversation: ConversationId(i),
            prompt: Prompt::new(
                "You are a villager of Millbrook. Answer in a few sentences.",
                format!("Villager {i}, tell me a story about the lantern."),
            ),
            params: SamplingParams {
                max_tokens: tokens,
                seed: Some(i),
                ..SamplingParams::greedy()
            },
            priority: 0,
            fallback: None,
            constraint: None,
            banned: None,
        };
        if let Err(e) = b.submit(BackendRequest::Generate(request)) {
            eprintln!("submit: {e}");
            std::process::exit(1);
        }
    }
    let mut open = npcs;
    let mut chunks = 0;
    let mut first: Vec<Option<f64>> = vec![None; npcs];
    let mut events = Vec::new();
    while open > 0 {
        events.clear();
        if b.poll(256, &mut events) == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
        for e in &events {
            match e {
                BackendEvent::Text { id, .. } => {
                    chunks += 1;
                    let slot = (*id - base - 1) as usize;
                    first[slot].get_or_insert(start.elapsed().as_secs_f64() * 1e3);
                }
                BackendEvent::Finished { .. } => open -= 1,
                BackendEvent::Error { error, .. } => {
                    eprintln!("error: {error}");
                    open -= 1;
                }
                _ => {}
            }
        }
    }
    let ttft: Vec<f64> = first.into_iter().flatten().collect();
    let mean = ttft.iter().sum::<f64>() / ttft.len().max(1) as f64;
    (chunks, start.elapsed().as_secs_f64(), mean)
}
