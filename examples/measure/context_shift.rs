//! What a chat turn costs once the conversation fills the context: one conversation grows turn
//! by turn through the worker until its oldest turns are dropped, with the context shift on and
//! then off, and the time to first token of each turn is printed.
//!
//! `cargo run --release --example context_shift -- [--model M.gguf] [--ctx N] [--turns N] [--threads N]`
//! (default: the repository's stories260K at its 2048-token context, 2 threads). The last lines
//! compare the mean TTFT of turns with room against turns at the limit (those that dropped
//! turns, and every turn after the first drop), shift on and off.

use std::time::Duration;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, ConversationId, GenerateRequest, Prompt,
};
use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::generate::GenerationStats;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig};

const PERSONA: &str = "Mara is the miller of Oakvale. She is kind and speaks softly. She has \
    lived by the river all her life, she knows every family in the valley, and she knows where \
    the lantern of the festival was hidden, though she will not say it to strangers.";

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// One turn through the worker: its statistics, the turns it dropped, and its text.
fn turn(
    w: &mut Worker,
    id: u64,
    prompt: Prompt,
) -> Result<(GenerationStats, usize, String), String> {
    let request = BackendRequest::Generate(GenerateRequest {
        id,
        conversation: ConversationId(1),
        prompt,
        params: SamplingParams {
            max_tokens: 24,
            seed: Some(id),
            ..SamplingParams::default()
        },
        priority: 0,
        fallback: None,
        constraint: None,
        banned: None,
    });
    w.submit(request).map_err(|e| e.to_string())?;
    loop {
        let event = w
            .events()
            .recv_timeout(Duration::from_secs(600))
            .map_err(|e| e.to_string())?;
        match event {
            BackendEvent::Finished {
                id: i,
                stats,
                text,
                dropped_turns,
                ..
            } if i == id => return Ok((stats, dropped_turns, text)),
            BackendEvent::Error { id: Some(i), error } if i == id => return Err(error.to_string()),
            _ => {}
        }
    }
}

/// The mean, NaN for none.
fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

fn main() -> Result<(), String> {
    let model = arg("--model").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/stories260K.gguf"),
        std::path::PathBuf::from,
    );
    let ctx = arg("--ctx").and_then(|v| v.parse().ok());
    let turns: u64 = arg("--turns").and_then(|v| v.parse().ok()).unwrap_or(120);
    let threads = arg("--threads").and_then(|v| v.parse().ok()).unwrap_or(2);
    for shift in [true, false] {
        let mut config = WorkerConfig::new(ModelSource::path(&model));
        config.threads = Some(threads);
        config.context_shift = shift;
        config.model_options = ModelOptions {
            max_context: ctx,
            ..ModelOptions::default()
        };
        let mut w = Worker::spawn(config);
        let info = w
            .wait_ready(Duration::from_secs(600))
            .map_err(|e| e.to_string())?;
        println!(
            "== context shift {}: {} (context {}, {threads} threads)",
            if shift { "on" } else { "off" },
            info.path.display(),
            info.context_length
        );
        let (mut room, mut limit, mut history) = (Vec::new(), Vec::new(), Vec::new());
        let mut full = false;
        for id in 1..=turns {
            history.push(ChatMessage::new(
                Role::User,
                format!("Turn {id}: have you seen the lantern near the mill or the river?"),
            ));
            let prompt = Prompt {
                system: PERSONA.into(),
                turns: history.clone(),
            };
            let (stats, dropped, text) = turn(&mut w, id, prompt)?;
            history.push(ChatMessage::new(Role::Assistant, text));
            full |= dropped > 0;
            println!(
                "turn {id:3}: prompt {:5} cached {:5} dropped {:3} ttft {:8.1} ms",
                stats.prompt_tokens, stats.cached_tokens, dropped, stats.ttft_ms
            );
            // The first turn pays for the persona; later turns with room are the baseline.
            match (id, full) {
                (1, _) => {}
                (_, false) => room.push(stats.ttft_ms),
                (_, true) => limit.push(stats.ttft_ms),
            }
            // Keep the history to what the context can ever hold (what a game would keep).
            if history.len() > 400 {
                history.drain(..2);
            }
        }
        let (r, l) = (mean(&room), mean(&limit));
        println!(
            "context_shift={} ttft_room_ms={r:.1} ttft_limit_ms={l:.1} ratio={:.2} turns_room={} turns_limit={}",
            if shift { "on" } else { "off" },
            l / r.max(1e-9),
            room.len(),
            limit.len()
        );
    }
    Ok(())
}
