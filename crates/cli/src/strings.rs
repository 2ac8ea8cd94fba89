//! `llama-dialogue strings export|import`: a story's lines as a translation table, and a
//! filled-in table checked and put next to the story for `--locale`.

use std::path::{Path, PathBuf};

use bevy_llama_dialogue_core::story::{
    Estimate, SourceText, StoryBundle, Translation, authored_lines, check_translation,
    promote_generated, translation_path, write_atomic,
};

use crate::CliResult;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write the story's lines as CSV (`id,speaker,source,translation`) for translators. With
    /// `--locale`, the locale's existing translations are filled in and new lines left empty.
    Export {
        /// The story file.
        story: PathBuf,
        /// Keep this locale's existing translations (`<story>.<locale>.strings.csv`).
        #[arg(long)]
        locale: Option<String>,
        /// Where to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Check a filled-in table against the story and install it as the story's `--locale`
    /// translation (`<story>.<locale>.strings.csv`). Nothing is written if it has errors.
    Import {
        /// The story file.
        story: PathBuf,
        /// The table to import.
        table: PathBuf,
        /// The locale it translates into (`fr`, `de`, `pt-BR`).
        #[arg(long)]
        locale: String,
    },
    /// Turn a `Generate` node into an authored `Line` saying TEXT (a line the model wrote that
    /// you want to keep), in place: same id, speaker, effects and `next`; the line id becomes
    /// the node id. The file is checked before it is written.
    Promote {
        /// The story file.
        story: PathBuf,
        /// The `Generate` node.
        node: String,
        /// The line to keep.
        #[arg(long)]
        text: String,
    },
}

fn bundle(story: &Path) -> Result<StoryBundle, Box<dyn std::error::Error>> {
    StoryBundle::load(story, &Estimate).map_err(|d| {
        eprint!("{d}");
        format!("{}: the story has errors (above)", story.display()).into()
    })
}

pub fn run(command: Command) -> CliResult {
    match command {
        Command::Promote { story, node, text } => {
            let b = bundle(&story)?;
            let new = promote_generated(&b.source, &b.story, &node, &text)
                .map_err(|e| format!("{}: {e}", story.display()))?;
            // Never write a file that no longer checks.
            StoryBundle::from_source(SourceText::new(&story, new.clone()), &Estimate).map_err(
                |d| {
                    eprint!("{d}");
                    format!(
                        "{}: the promoted story would not check; not written",
                        story.display()
                    )
                },
            )?;
            write_atomic(&story, new.as_bytes())?;
            println!(
                "promoted `{node}` to an authored line (line id `{node}`) in {}",
                story.display()
            );
            Ok(())
        }
        Command::Export { story, locale, out } => {
            let b = bundle(&story)?;
            let existing = match &locale {
                Some(l) => {
                    let path = translation_path(&story, l);
                    if path.exists() {
                        Translation::read(&path)?
                    } else {
                        Translation::default()
                    }
                }
                None => Translation::default(),
            };
            let table = existing.to_csv(&authored_lines(&b.story));
            match out {
                Some(path) => {
                    write_atomic(&path, table.as_bytes())?;
                    eprintln!(
                        "wrote {} lines to {}",
                        authored_lines(&b.story).len(),
                        path.display()
                    );
                }
                None => print!("{table}"),
            }
            Ok(())
        }
        Command::Import {
            story,
            table,
            locale,
        } => {
            if locale.is_empty()
                || !locale
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
            {
                return Err(
                    format!("`{locale}` is not a locale name (like `fr` or `pt-BR`)").into(),
                );
            }
            let b = bundle(&story)?;
            let t = Translation::read(&table)?;
            let report = check_translation(&b.story, &t);
            for w in &report.warnings {
                println!("{w}");
            }
            for e in &report.errors {
                println!("{e}");
            }
            if !report.errors.is_empty() {
                return Err(format!(
                    "{}: {} {} (above); nothing was imported",
                    table.display(),
                    report.errors.len(),
                    if report.errors.len() == 1 {
                        "error"
                    } else {
                        "errors"
                    }
                )
                .into());
            }
            let lines = authored_lines(&b.story);
            let dest = translation_path(&story, &locale);
            write_atomic(&dest, t.to_csv(&lines).as_bytes())?;
            println!(
                "{locale}: {} of {} lines translated ({} untranslated use the authored text) -> {}",
                lines.len() - report.untranslated.len(),
                lines.len(),
                report.untranslated.len(),
                dest.display()
            );
            Ok(())
        }
    }
}
