//! What holding a line to a grammar costs: the same chat prompt decoded free, under a JSON
//! schema (nested objects, enums, numbers, required fields) and under an NPC's action format
//! (emotion, words, a typed action call), and the grammar engine's mask time per token replayed
//! on its own.
//!
//! `cargo run --release --example constrained_speed -- --model M.gguf [--runs N] [--threads N]`
//! (a TinyLlama-shaped file: `llama-dialogue make-test-model --shape tinyllama-1.1b --quant q4_0
//! --vocab tests/models/ggml-vocab-llama-spm.gguf --out /tmp/tl.gguf`). Default: the repository's
//! random-weight LLaMA-2 (32000-token vocabulary). The last line is
//! `constrained_speed free_tok_s=… schema_tok_s=… schema_ratio=… action_tok_s=… action_ratio=…
//! mask_ms_mean=… mask_ms_p99=…`.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::time::Instant;

use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::constrain::{Constraint, Grammar};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::pool::ComputePool;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::story::acts::{ActionDecl, ArgType, LineFormat};
use serde_json::json;

/// Any error, for a measurement program.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn schema() -> Constraint {
    Constraint::JsonSchema(json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 24},
            "mood": {"enum": ["calm", "angry", "glad"]},
            "trust": {"type": "integer", "minimum": -3, "maximum": 3},
            "item": {
                "type": "object",
                "properties": {
                    "kind": {"enum": ["key", "coin", "map"]},
                    "count": {"type": "integer", "minimum": 1, "maximum": 9}
                },
                "required": ["kind", "count"]
            }
        },
        "required": ["name", "mood", "trust", "item"]
    }))
}

fn action_format() -> Constraint {
    let give = ActionDecl {
        description: "hand the player something from your stall".into(),
        args: [
            (
                "item".to_owned(),
                ArgType::OneOf(vec!["bread".into(), "oil".into()]),
            ),
            ("count".to_owned(), ArgType::Int { min: 1, max: 3 }),
            ("price".to_owned(), ArgType::Float { min: 0.0, max: 9.5 }),
        ]
        .into(),
    };
    LineFormat::new(
        vec!["calm".into(), "glad".into(), "worried".into()],
        [("give_item".to_owned(), give)].into(),
    )
    .constraint()
}

/// Decode tokens/s over `runs` seeded answers, and the tokens of each.
fn decode(
    llama: &mut Llama,
    grammar: Option<&Grammar>,
    runs: u64,
) -> Result<(f64, Vec<Vec<u32>>), BoxError> {
    let messages = [
        ChatMessage::new(
            Role::System,
            "You are Mara, a trader in the village of Oakvale.",
        ),
        ChatMessage::new(Role::User, "What do you have for me today?"),
    ];
    let (mut tokens, mut ms, mut outputs) = (0usize, 0.0, Vec::new());
    for seed in 0..runs {
        let params = SamplingParams {
            max_tokens: 96,
            seed: Some(seed),
            ..SamplingParams::default()
        };
        // Start from an empty cache each time so every run pays the same prefill.
        llama.model.truncate(0);
        let g = llama.chat_guided(&messages, &params, grammar.map(Grammar::guide), &mut |_| {
            ControlFlow::Continue(())
        })?;
        tokens += g.stats.generated_tokens.saturating_sub(1);
        ms += g.stats.decode_ms;
        outputs.push(g.tokens);
    }
    Ok((tokens as f64 * 1000.0 / ms, outputs))
}

/// Mask + commit time per token, replaying `outputs` through fresh guides.
fn mask_times(grammar: &Grammar, outputs: &[Vec<u32>], vocab: usize) -> Vec<f64> {
    let mut logits = vec![0.0f32; vocab];
    let mut times = Vec::new();
    for tokens in outputs {
        let mut guide = grammar.guide();
        for &t in tokens {
            let start = Instant::now();
            if guide.mask(&mut logits).is_err() || guide.commit(t).is_err() {
                break;
            }
            times.push(start.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times
}

fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let model: PathBuf = arg("--model").map_or_else(
        || {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/models/llama-2-tiny-random.gguf"
            )
            .into()
        },
        PathBuf::from,
    );
    let runs: u64 = arg("--runs").and_then(|n| n.parse().ok()).unwrap_or(5);
    let threads: usize = arg("--threads").and_then(|n| n.parse().ok()).unwrap_or(2);
    let pool = ComputePool::new(threads)?;
    pool.install(|| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let mut llama = Llama::load(&model, &ModelOptions::default())?;
        let vocab = llama.model.vocab_size();
        let start = Instant::now();
        let compiler = llama.constraint_compiler()?;
        let compiler_ms = start.elapsed().as_secs_f64() * 1000.0;
        let start = Instant::now();
        let schema = compiler.compile(&schema(), "schema")?;
        let action = compiler.compile(&action_format(), "action format")?;
        let compile_ms = start.elapsed().as_secs_f64() * 1000.0 / 2.0;
        println!("model {} ({vocab} tokens), {threads} threads, {runs} runs", model.display());
        println!("vocabulary index {compiler_ms:.1} ms, compile {compile_ms:.2} ms per grammar");
        let (free, _) = decode(&mut llama, None, runs)?;
        let (with_schema, schema_out) = decode(&mut llama, Some(&schema), runs)?;
        let (with_action, action_out) = decode(&mut llama, Some(&action), runs)?;
        let mut masks = mask_times(&schema, &schema_out, vocab);
        masks.extend(mask_times(&action, &action_out, vocab));
        masks.sort_by(f64::total_cmp);
        let mean = masks.iter().sum::<f64>() / masks.len().max(1) as f64;
        let p99 = masks
            .get((masks.len() as f64 * 0.99) as usize)
            .copied()
            .unwrap_or(0.0);
        println!(
            "constrained_speed free_tok_s={free:.2} schema_tok_s={with_schema:.2} schema_ratio={:.3} action_tok_s={with_action:.2} action_ratio={:.3} mask_ms_mean={mean:.3} mask_ms_p99={p99:.3}",
            with_schema / free,
            with_action / free
        );
        Ok(())
    })
}
