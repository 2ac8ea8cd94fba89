//! `llama-dialogue`: inspect GGUF models, tokenize, generate, and write random-weight test models.
//! Output formats are documented in the README and kept stable.

mod audit;
mod bench;
mod check;
mod drive;
mod eval;
mod generate;
mod inspect;
mod lsp;
mod make_model;
mod play;
mod remote;
mod strings;
mod tokenize;
mod voice;

use std::path::PathBuf;
use std::process::ExitCode;

use bevy_llama_dialogue_core::engine::pool::{ComputePool, PoolError};
use clap::{Parser, Subcommand};

/// Local LLaMA-2 dialogue engine tools.
#[derive(Parser)]
#[command(name = "llama-dialogue", version, about)]
struct Cli {
    /// Compute threads (default: the physical cores for `generate` and `bench`, one fewer for
    /// `play` and `transcript`, as a game's worker gets).
    #[arg(long, global = true)]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Architecture, hyper-parameters, tensor types, vocabulary and chat template of a model.
    Inspect(inspect::Args),
    /// Token ids of a text (special tokens are not parsed unless asked).
    Tokenize(tokenize::Args),
    /// Generate text, streamed to stdout.
    Generate(generate::Args),
    /// Prompt/decode speed and time to first token (cold and with a cached prefix).
    Bench(bench::Args),
    /// Write a random-weight GGUF with real LLaMA tensor names, shapes and metadata.
    MakeTestModel(make_model::Args),
    /// Validate story and persona files or folders (exit status 1 on errors).
    Check(check::Args),
    /// Play a story in the terminal (choices by number, free text accepted).
    Play(play::PlayArgs),
    /// Play a story with scripted inputs and print the transcript.
    Transcript(play::TranscriptArgs),
    /// Play a story with a model over several seeds and check every line it writes (markup,
    /// its own name, assistant talk, cut lines, repetition, its persona said back).
    Eval(eval::Args),
    /// A language server over stdio for story and persona files (for editors: findings while
    /// typing, go to definition, completion).
    Lsp,
    /// A story's lines for translators: export a table, import a translation.
    #[command(subcommand)]
    Strings(strings::Command),
    /// Sum up an audit log of what characters said and what was flagged.
    Audit(audit::Args),
    /// Print what is said in a WAV file, with Whisper (feature `voice`).
    Transcribe(voice::TranscribeArgs),
    /// Write what a persona says, in its voice, to a WAV file (feature `voice`).
    Say(voice::SayArgs),
}

/// A model path argument shared by the subcommands.
#[derive(clap::Args)]
struct ModelArg {
    /// The GGUF model file.
    #[arg(long, short)]
    model: PathBuf,
}

type CliResult = Result<(), Box<dyn std::error::Error>>;

/// The compute pool of `generate` and `bench`: `--threads`, else the physical cores.
fn compute_pool(threads: Option<usize>) -> Result<ComputePool, PoolError> {
    ComputePool::new(threads.unwrap_or_else(num_cpus::get_physical))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Tokenize(a) => tokenize::run(a),
        Command::Generate(a) => generate::run(a, cli.threads),
        Command::MakeTestModel(a) => make_model::run(a),
        Command::Bench(a) => bench::run_cli(a, cli.threads),
        Command::Check(a) => check::run(a),
        Command::Play(a) => play::play(a, cli.threads),
        Command::Transcript(a) => play::transcript(a, cli.threads),
        Command::Eval(a) => eval::run(a, cli.threads),
        Command::Strings(c) => strings::run(c),
        Command::Lsp => lsp::run(),
        Command::Audit(a) => audit::run(a),
        Command::Transcribe(a) => voice::transcribe(a),
        Command::Say(a) => voice::say(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
