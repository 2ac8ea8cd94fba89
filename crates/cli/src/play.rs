//! `llama-dialogue play` and `transcript`: a story in the terminal.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bevy_llama_dialogue_core::engine::backend::{
    BackendStatus, DialogueBackend, LocalLlama, Scripted,
};
use bevy_llama_dialogue_core::engine::source::ModelSource;
use bevy_llama_dialogue_core::engine::worker::WorkerConfig;
use bevy_llama_dialogue_core::story::{
    Conversation, Estimate, SaveGame, Session, StoryBundle, StoryRuntime, Translation,
    check_translation, translation_path,
};

use crate::CliResult;
use crate::drive::{self, Driver, Outcome};

/// What `play` and `transcript` share: the story and how it is played.
#[derive(clap::Args)]
pub struct StoryArgs {
    /// The story file.
    pub(crate) story: PathBuf,
    /// A GGUF model to write the generated lines (default: the authored fallback lines).
    #[arg(long, short, conflicts_with = "remote")]
    pub(crate) model: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) remote: crate::remote::RemoteArgs,
    /// Sampling seed.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Play in this language: the story's `<story>.<locale>.strings.csv` translation (made
    /// with `strings import`); untranslated lines keep the authored text.
    #[arg(long)]
    pub(crate) locale: Option<String>,
    /// Start from this save instead of the story's start.
    #[arg(long)]
    pub(crate) load: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct PlayArgs {
    #[command(flatten)]
    story: StoryArgs,
    /// Save here at exit, and on `:save` (`:save FILE` writes elsewhere).
    #[arg(long)]
    save: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TranscriptArgs {
    #[command(flatten)]
    story: StoryArgs,
    /// Inputs, one per line: a choice number, free text, or `:save [FILE]` / `:quit`. `#`
    /// starts a comment line. Give it several times for several play-throughs, each from the
    /// start (or from `--load`).
    #[arg(long, required = true)]
    inputs: Vec<PathBuf>,
    /// Save the last play-through here at its end.
    #[arg(long)]
    save: Option<PathBuf>,
    /// After the transcripts, list the nodes the inputs reached and those they never did.
    #[arg(long)]
    coverage: bool,
}

pub(crate) fn load_bundle(
    story: &Path,
    locale: Option<&str>,
) -> Result<Arc<StoryBundle>, Box<dyn std::error::Error>> {
    let bundle = StoryBundle::load(story, &Estimate).map_err(|d| {
        // The findings as `check` prints them, then one line for `main`'s `error:`.
        eprint!("{d}");
        format!("{}: the story has errors (above)", story.display())
    })?;
    let Some(locale) = locale else {
        return Ok(Arc::new(bundle));
    };
    let path = translation_path(story, locale);
    if !path.exists() {
        return Err(format!(
            "no `{locale}` translation: {} does not exist (make one with `strings export` and \
             `strings import`)",
            path.display()
        )
        .into());
    }
    let table = Translation::read(&path)?;
    let report = check_translation(&bundle.story, &table);
    for w in report.warnings.iter().chain(&report.errors) {
        eprintln!("{w}");
    }
    if !report.errors.is_empty() {
        return Err(format!("{}: the translation has errors (above)", path.display()).into());
    }
    Ok(Arc::new(bundle.localized(&table)))
}

/// A runtime at the story's start, or restored from `load`.
fn runtime(
    bundle: &Arc<StoryBundle>,
    load: Option<&Path>,
) -> Result<StoryRuntime, Box<dyn std::error::Error>> {
    Ok(match load {
        Some(path) => {
            let save = SaveGame::read(path)?;
            StoryRuntime::restore(bundle.clone(), save)
                .map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => StoryRuntime::new(bundle.clone())?,
    })
}

fn session(
    runtime: StoryRuntime,
    args: &StoryArgs,
    threads: Option<usize>,
) -> Result<Session, Box<dyn std::error::Error>> {
    let (backend, named): (Box<dyn DialogueBackend>, Option<String>) =
        match (&args.model, args.remote.backend()) {
            (Some(m), _) => {
                let mut config = WorkerConfig::new(ModelSource::path(m));
                config.threads = threads;
                let named = format!("{}: the model could not be loaded", m.display());
                (Box::new(LocalLlama::spawn(config)), Some(named))
            }
            (None, Some(remote)) => {
                let named = format!("{}: the server cannot be used", remote.label());
                (remote, Some(named))
            }
            (None, None) => (Box::new(Scripted::new()), None),
        };
    let mut s = Session::new(runtime, backend);
    s.seed = Some(args.seed);
    // A model asked for by name must be the one that speaks: a load failure is an error here,
    // not a silent switch to the authored lines.
    if let Some(named) = named
        && !s.has_model()
    {
        let why = match s.backend().status() {
            BackendStatus::Failed(why) => why,
            other => format!("{other:?}"),
        };
        return Err(format!("{named}: {why}").into());
    }
    Ok(s)
}

pub fn play(args: PlayArgs, threads: Option<usize>) -> CliResult {
    let a = &args.story;
    let bundle = load_bundle(&a.story, a.locale.as_deref())?;
    let rt = runtime(&bundle, a.load.as_deref())?;
    let mut s = session(rt, a, threads)?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut input = || {
        print!("> ");
        let _ = std::io::stdout().flush();
        lines.next().and_then(Result::ok)
    };
    let mut stdout = std::io::stdout();
    let outcome = Driver {
        next_input: &mut input,
        out: &mut stdout,
        echo: false,
        save_to: args.save.clone(),
        heard: None,
    }
    .run(&mut s)?;
    if outcome == Outcome::InputsEnded {
        println!("\n(input ended before the story did)");
    }
    if let Some(path) = &args.save {
        drive::save(&s, path, &mut stdout)?;
    }
    Ok(())
}

pub fn transcript(args: TranscriptArgs, threads: Option<usize>) -> CliResult {
    let a = &args.story;
    let bundle = load_bundle(&a.story, a.locale.as_deref())?;
    let mut s: Option<Session> = None;
    let mut reached = BTreeSet::new();
    let mut stdout = std::io::stdout();
    for (n, file) in args.inputs.iter().enumerate() {
        let mut inputs = read_inputs(file)?.into_iter();
        let s = next_play_through(&mut s, &bundle, a, threads)?;
        if args.inputs.len() > 1 {
            writeln!(
                stdout,
                "## {} ({} of {})",
                file.display(),
                n + 1,
                args.inputs.len()
            )?;
        }
        let outcome = Driver {
            next_input: &mut || inputs.next(),
            out: &mut stdout,
            echo: true,
            save_to: args.save.clone(),
            heard: None,
        }
        .run(s)?;
        match outcome {
            Outcome::InputsEnded => writeln!(stdout, "== (inputs ran out before an ending) ==")?,
            Outcome::Quit => writeln!(stdout, "== (quit) ==")?,
            Outcome::Ended => {}
        }
        reached.extend(
            s.conversation
                .runtime()
                .state()
                .visits
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(id, _)| id.clone()),
        );
    }
    if let (Some(path), Some(s)) = (&args.save, &s) {
        drive::save(s, path, &mut stdout)?;
    }
    if args.coverage {
        coverage(&bundle, &reached, &mut stdout)?;
    }
    Ok(())
}

/// The moves of an inputs file: one per line, blank lines and `#` comments skipped.
pub(crate) fn read_inputs(file: &Path) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// The session for the next play-through, from the start (or `--load`): the first one starts
/// the backend, later ones keep it (one model load for every play-through).
pub(crate) fn next_play_through<'s>(
    s: &'s mut Option<Session>,
    bundle: &Arc<StoryBundle>,
    a: &StoryArgs,
    threads: Option<usize>,
) -> Result<&'s mut Session, Box<dyn std::error::Error>> {
    let rt = runtime(bundle, a.load.as_deref())?;
    let session = match s.take() {
        Some(mut old) => {
            old.conversation = Conversation::new(rt);
            old
        }
        None => session(rt, a, threads)?,
    };
    Ok(s.insert(session))
}

/// The nodes the inputs reached, and those they never did with their positions.
fn coverage(bundle: &StoryBundle, reached: &BTreeSet<String>, out: &mut dyn Write) -> CliResult {
    let nodes = &bundle.story.nodes;
    let hit = nodes.iter().filter(|n| reached.contains(n.id())).count();
    writeln!(
        out,
        "== coverage: {hit} of {} nodes reached ==",
        nodes.len()
    )?;
    let ids: Vec<&str> = nodes
        .iter()
        .map(|n| n.id())
        .filter(|id| reached.contains(*id))
        .collect();
    writeln!(out, "reached: {}", ids.join(", "))?;
    let src = &bundle.source;
    let from = src.find_field("nodes", 0).unwrap_or(0);
    let at: HashMap<String, usize> = src.id_fields(from).into_iter().rev().collect();
    let missed: Vec<_> = nodes.iter().filter(|n| !reached.contains(n.id())).collect();
    if missed.is_empty() {
        writeln!(out, "never reached: none")?;
    } else {
        writeln!(out, "never reached:")?;
    }
    for n in missed {
        let loc = src.location(at.get(n.id()).copied().unwrap_or(from));
        writeln!(
            out,
            "  {}:{}:{}: {} `{}`",
            src.path.display(),
            loc.line,
            loc.col,
            n.kind_name(),
            n.id()
        )?;
    }
    Ok(())
}
