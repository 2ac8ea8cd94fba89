//! `llama-dialogue generate`.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::PathBuf;

use bevy_llama_dialogue_core::engine::chat::{ChatMessage, ChatTemplate, Role};
use bevy_llama_dialogue_core::engine::constrain::{Constraint, ConstraintError};
use bevy_llama_dialogue_core::engine::generate::Generation;
use bevy_llama_dialogue_core::engine::llama::Llama;
use bevy_llama_dialogue_core::engine::model::ModelOptions;
use bevy_llama_dialogue_core::engine::sampler::SamplingParams;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// The GGUF model file.
    #[arg(
        long,
        short,
        required_unless_present = "remote",
        conflicts_with = "remote"
    )]
    model: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::remote::RemoteArgs,
    /// The prompt (completion), or the user's message with --chat.
    #[arg(long, short)]
    pub(crate) prompt: String,
    /// A system message (with --chat).
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Wrap the prompt in the model's chat template.
    #[arg(long)]
    pub(crate) chat: bool,
    /// Override the chat template: llama2, zephyr, chatml, plain.
    #[arg(long)]
    template: Option<String>,
    /// Most tokens to generate.
    #[arg(long, default_value_t = 128)]
    pub(crate) max_tokens: usize,
    /// Temperature; 0 is greedy.
    #[arg(long, default_value_t = 0.8)]
    pub(crate) temperature: f32,
    /// Top-k (0 disables).
    #[arg(long, default_value_t = 40)]
    pub(crate) top_k: usize,
    /// Top-p (1 disables).
    #[arg(long, default_value_t = 0.95)]
    pub(crate) top_p: f32,
    /// Min-p (0 disables).
    #[arg(long, default_value_t = 0.05)]
    pub(crate) min_p: f32,
    /// Repetition penalty (1 disables) [default: 1.1, or 1 with --temperature 0]. Given with
    /// --temperature 0, it applies and the top token of the penalised logits is taken, as in
    /// llama.cpp.
    #[arg(long)]
    pub(crate) repeat_penalty: Option<f32>,
    /// Random seed (same seed, same text).
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Stop before this string (repeatable).
    #[arg(long)]
    pub(crate) stop: Vec<String>,
    /// Cap the context window (tokens).
    #[arg(long)]
    ctx: Option<usize>,
    /// Print only one JSON object at the end: {"prompt_tokens":[..],"tokens":[..],"text":"..",..}.
    #[arg(long)]
    pub(crate) json: bool,
    /// Hold the output to a Lark grammar (llguidance's dialect) in FILE.
    #[arg(long, value_name = "FILE", group = "constraint")]
    pub(crate) grammar: Option<PathBuf>,
    /// Hold the output to the JSON schema in FILE (the output is compact JSON).
    #[arg(long, value_name = "FILE", group = "constraint")]
    pub(crate) json_schema: Option<PathBuf>,
    /// Hold the output to a regular expression (the whole output matches it).
    #[arg(long, value_name = "PATTERN", group = "constraint")]
    pub(crate) regex: Option<String>,
}

impl Args {
    /// The constraint asked for, with the name its errors give.
    /// The sampling parameters asked for (greedy runs without a repetition penalty).
    pub(crate) fn sampling(&self) -> SamplingParams {
        let greedy = self.temperature <= 0.0;
        SamplingParams {
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repeat_penalty: self
                .repeat_penalty
                .unwrap_or(if greedy { 1.0 } else { 1.1 }),
            seed: self.seed,
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
            ..SamplingParams::default()
        }
    }

    pub(crate) fn constraint(&self) -> Result<Option<(Constraint, String)>, ConstraintError> {
        Ok(if let Some(path) = &self.grammar {
            Some((Constraint::lark_file(path)?, path.display().to_string()))
        } else if let Some(path) = &self.json_schema {
            Some((
                Constraint::json_schema_file(path)?,
                path.display().to_string(),
            ))
        } else {
            self.regex
                .as_ref()
                .map(|rx| (Constraint::Regex(rx.clone()), "--regex".to_owned()))
        })
    }
}

pub fn run(args: Args, threads: Option<usize>) -> CliResult {
    if args.remote.remote.is_some() {
        return crate::remote::generate(&args);
    }
    // One warm pool for the whole run (a forward pass has many short parallel sections).
    crate::compute_pool(threads)?
        .install(|| run_in_pool(args))
        .map_err(|e| e.to_string().into())
}

fn run_in_pool(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // An unreadable constraint file is reported before the model loads.
    let constraint = args.constraint()?;
    let Some(model) = &args.model else {
        return Err("give --model or --remote".into());
    };
    let mut llama = Llama::load(
        model,
        &ModelOptions {
            max_context: args.ctx,
            ..Default::default()
        },
    )?;
    if let Some(name) = &args.template {
        llama.template = ChatTemplate::from_name(name)
            .ok_or_else(|| format!("unknown template `{name}` (llama2, zephyr, chatml, plain)"))?;
    }
    let grammar = match &constraint {
        Some((c, name)) => Some(llama.constraint_compiler()?.compile(c, name)?),
        None => None,
    };
    let guide = grammar.as_ref().map(|g| g.guide());
    let params = args.sampling();
    let json = args.json;
    let mut stdout = std::io::stdout();
    let mut on_text = |t: &str| {
        if !json {
            let _ = stdout.write_all(t.as_bytes());
            let _ = stdout.flush();
        }
        ControlFlow::Continue(())
    };
    let (prompt, generation): (Vec<u32>, Generation) = if args.chat {
        let mut messages = Vec::new();
        if let Some(s) = &args.system {
            messages.push(ChatMessage::new(Role::System, s.clone()));
        }
        messages.push(ChatMessage::new(Role::User, args.prompt.clone()));
        let prompt = llama.template.render(&llama.tokenizer, &messages)?;
        let generation = llama.chat_guided(&messages, &params, guide, &mut on_text)?;
        (prompt, generation)
    } else {
        if args.system.is_some() {
            return Err("--system needs --chat".into());
        }
        (
            llama.tokenizer.encode(&args.prompt, true),
            llama.complete_guided(&args.prompt, &params, guide, &mut on_text)?,
        )
    };
    let s = &generation.stats;
    let complete = grammar.as_ref().map(|g| g.accepts(&generation.tokens));
    if json {
        let out = serde_json::json!({
            "prompt_tokens": prompt,
            "tokens": generation.tokens,
            "text": generation.text,
            "finish": generation.finish,
            "stats": s,
            "constraint_complete": complete,
        });
        println!("{out}");
    } else {
        println!();
    }
    eprintln!(
        "prompt: {} tokens in {:.1} ms ({:.1} tok/s) | generated: {} tokens, {:.1} tok/s | ttft {:.1} ms | finish: {:?}",
        s.prompt_tokens,
        s.prefill_ms,
        s.prompt_tok_s(),
        s.generated_tokens,
        s.decode_tok_s(),
        s.ttft_ms,
        generation.finish
    );
    if let (Some(false), Some((c, _))) = (complete, &constraint) {
        return Err(format!(
            "the output is incomplete under the {}: generation ended by {:?} before it was complete (raise --max-tokens)",
            c.kind(),
            generation.finish
        )
        .into());
    }
    Ok(())
}
