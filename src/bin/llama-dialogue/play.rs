//! `llama-dialogue play` and `transcript`: a story in the terminal.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bevy_llama_dialogue::engine::backend::{BackendStatus, DialogueBackend, LocalLlama, Scripted};
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::WorkerConfig;
use bevy_llama_dialogue::story::{Beat, Estimate, Session, StoryBundle, StoryRuntime};

use crate::CliResult;

#[derive(clap::Args)]
pub struct PlayArgs {
    /// The story file.
    story: PathBuf,
    /// A GGUF model to write the generated lines (default: the authored fallback lines).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(clap::Args)]
pub struct TranscriptArgs {
    /// The story file.
    story: PathBuf,
    /// Inputs, one per line: a choice number, or free text. `#` starts a comment line.
    #[arg(long)]
    inputs: PathBuf,
    /// A GGUF model to write the generated lines (default: the authored fallback lines).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn session(
    story: &Path,
    model: Option<&Path>,
    seed: u64,
    threads: Option<usize>,
) -> Result<Session, Box<dyn std::error::Error>> {
    let bundle = StoryBundle::load(story, &Estimate).map_err(|d| {
        // The findings as `check` prints them, then one line for `main`'s `error:`.
        eprint!("{d}");
        format!("{}: the story has errors (above)", story.display())
    })?;
    let runtime = StoryRuntime::new(Arc::new(bundle))?;
    let backend: Box<dyn DialogueBackend> = match model {
        Some(m) => {
            let mut config = WorkerConfig::new(ModelSource::path(m));
            config.threads = threads;
            Box::new(LocalLlama::spawn(config))
        }
        None => Box::new(Scripted::new()),
    };
    let mut s = Session::new(runtime, backend);
    s.seed = Some(seed);
    // A model asked for by name must be the one that speaks: a load failure is an error here,
    // not a silent switch to the authored lines.
    if let Some(m) = model
        && !s.has_model()
    {
        let why = match s.backend().status() {
            BackendStatus::Failed(why) => why,
            other => format!("{other:?}"),
        };
        return Err(format!("{}: the model could not be loaded: {why}", m.display()).into());
    }
    Ok(s)
}

/// Plays until the end or until inputs run out. Returns whether an ending was reached.
fn drive(
    s: &mut Session,
    next_input: &mut dyn FnMut() -> Option<String>,
    out: &mut dyn Write,
    echo: bool,
) -> Result<bool, Box<dyn std::error::Error>> {
    let title = s.runtime.bundle().story.title.clone();
    writeln!(out, "== {title} ==")?;
    if s.has_model() {
        writeln!(out, "[lines written by {}]", s.backend().label())?;
    } else {
        writeln!(
            out,
            "[no model: generated lines use the authored fallback lines]"
        )?;
    }
    loop {
        match s.runtime.beat()? {
            Beat::Line { speaker, text, .. } => {
                match speaker {
                    Some(k) => writeln!(out, "{}: {text}", s.runtime.display_name(&k))?,
                    None => writeln!(out, "{text}")?,
                }
                s.runtime.advance()?;
            }
            Beat::Generate(req) => {
                write!(out, "{}: ", s.runtime.display_name(&req.speaker))?;
                out.flush()?;
                let spoken = s.speak(&req, &mut |t| {
                    let _ = write!(out, "{t}");
                    let _ = out.flush();
                });
                writeln!(out)?;
                if let Some(e) = &spoken.error {
                    writeln!(out, "[model failed, fallback line used: {e}]")?;
                }
                s.runtime.finish_line(&spoken.text)?;
            }
            Beat::Choice {
                speaker,
                text,
                options,
                ..
            } => {
                if let Some(t) = text {
                    match &speaker {
                        Some(k) => writeln!(out, "{}: {t}", s.runtime.display_name(k))?,
                        None => writeln!(out, "{t}")?,
                    }
                }
                for (n, o) in options.iter().enumerate() {
                    writeln!(out, "  {}) {}", n + 1, o.text)?;
                }
                let pick = loop {
                    let Some(input) = next_input() else {
                        return Ok(false);
                    };
                    if echo {
                        writeln!(out, "> {input}")?;
                    }
                    match input.trim().parse::<usize>() {
                        Ok(n) if (1..=options.len()).contains(&n) => break options[n - 1].index,
                        _ => writeln!(out, "(type a number from 1 to {})", options.len())?,
                    }
                };
                // A run-time error (an effect dividing by zero) leaves the story where it
                // was: say so and ask again.
                if let Err(e) = s.runtime.choose(pick) {
                    writeln!(out, "[error: {e}; the story stays here]")?;
                }
            }
            Beat::FreeInput { speaker, text, .. } => {
                if let Some(t) = text {
                    writeln!(out, "{}: {t}", s.runtime.display_name(&speaker))?;
                }
                writeln!(out, "  (say anything)")?;
                let Some(input) = next_input() else {
                    return Ok(false);
                };
                if echo {
                    writeln!(out, "> {input}")?;
                }
                let routed = match s.route(&input) {
                    Ok(r) => r,
                    Err(e) => {
                        writeln!(out, "[error: {e}; the story stays here]")?;
                        continue;
                    }
                };
                let how = match (routed.edge, routed.probability, routed.by_model) {
                    (Some(e), Some(p), true) => format!("edge {} (model, p={p:.2})", e + 1),
                    (Some(e), Some(p), false) => {
                        format!(
                            "edge {} (keywords; the model was unsure, best p={p:.2})",
                            e + 1
                        )
                    }
                    (Some(e), None, _) => format!("edge {} (keywords)", e + 1),
                    (None, Some(p), _) => format!("no edge matched (model best p={p:.2})"),
                    (None, None, _) => "no edge matched".to_owned(),
                };
                writeln!(out, "  [{how} -> {}]", routed.target)?;
            }
            Beat::Ended { title, text, .. } => {
                if let Some(t) = text {
                    writeln!(out, "{t}")?;
                }
                writeln!(out, "== Ending: {title} ==")?;
                return Ok(true);
            }
        }
    }
}

pub fn play(args: PlayArgs, threads: Option<usize>) -> CliResult {
    let mut s = session(&args.story, args.model.as_deref(), args.seed, threads)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut input = || {
        print!("> ");
        let _ = std::io::stdout().flush();
        lines.next().and_then(Result::ok)
    };
    let mut stdout = std::io::stdout();
    if !drive(&mut s, &mut input, &mut stdout, false)? {
        println!("\n(input ended before the story did)");
    }
    Ok(())
}

pub fn transcript(args: TranscriptArgs, threads: Option<usize>) -> CliResult {
    let text = std::fs::read_to_string(&args.inputs)
        .map_err(|e| format!("{}: {e}", args.inputs.display()))?;
    let mut inputs = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter();
    let mut s = session(&args.story, args.model.as_deref(), args.seed, threads)?;
    let mut stdout = std::io::stdout();
    let ended = drive(&mut s, &mut || inputs.next(), &mut stdout, true)?;
    if !ended {
        writeln!(stdout, "== (inputs ran out before an ending) ==")?;
    }
    Ok(())
}
