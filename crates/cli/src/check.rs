//! `llama-dialogue check PATH...`: validate stories and personas.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use bevy_llama_dialogue_core::story::safety::{SAFETY_FILE, SafetyRules};
use bevy_llama_dialogue_core::story::{
    Diagnostic, Diagnostics, Estimate, ModelCounter, StoryBundle, TokenCounter, parse_persona,
    read_source,
};

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// Story (`*.story.ron`), persona (`*.persona.ron`) and safety (`safety.ron`) files, or
    /// folders to search.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Count prompt tokens with this model's tokenizer and context (default: an estimate).
    #[arg(long, short)]
    model: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            collect(&e, out)?;
        }
    } else {
        let name = path.to_string_lossy();
        if name.ends_with(".story.ron") || name.ends_with(".persona.ron") || is_safety(path) {
            out.push(path.to_owned());
        }
    }
    Ok(())
}

/// `safety.ron` (or `<name>.safety.ron`): moderation rules.
fn is_safety(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n == SAFETY_FILE || n.ends_with(".safety.ron"))
}

/// How many files of each kind were read.
#[derive(Default)]
pub struct Counts {
    stories: usize,
    personas: usize,
    safety: usize,
}

/// Checks the files; returns the findings and how many files of each kind were read.
pub fn check_files(files: &[PathBuf], counter: &dyn TokenCounter) -> (Diagnostics, Counts) {
    let mut found = Vec::new();
    let mut n = Counts::default();
    for f in files {
        if is_safety(f) {
            n.safety += 1;
            if let Err(d) = SafetyRules::load(f) {
                found.extend(d.0);
            }
        } else if f.to_string_lossy().ends_with(".story.ron") {
            n.stories += 1;
            match StoryBundle::load(f, counter) {
                Ok(b) => found.extend(b.warnings),
                Err(d) => found.extend(d.0),
            }
        } else {
            n.personas += 1;
            match read_source(f).and_then(|s| parse_persona(&s).map(|_| ())) {
                Ok(()) => {}
                Err(d) => found.push(d),
            }
        }
    }
    // A persona used by a story is reported once.
    let mut seen = BTreeSet::new();
    found.retain(|d: &Diagnostic| seen.insert(d.to_string()));
    let mut d = Diagnostics(found);
    d.sort();
    (d, n)
}

pub fn run(args: Args) -> CliResult {
    let mut files = Vec::new();
    for p in &args.paths {
        if !p.exists() {
            return Err(format!("{}: no such file or folder", p.display()).into());
        }
        let before = files.len();
        collect(p, &mut files)?;
        if files.len() == before {
            // An empty or misnamed folder must not pass as "checked, no errors".
            return Err(format!(
                "{}: no story (`*.story.ron`), persona (`*.persona.ron`) or safety (`safety.ron`) files found",
                p.display()
            )
            .into());
        }
    }
    let counter: Box<dyn TokenCounter> = match &args.model {
        Some(m) => Box::new(ModelCounter::open(m).map_err(|e| format!("{}: {e}", m.display()))?),
        None => Box::new(Estimate),
    };
    let (found, n) = check_files(&files, counter.as_ref());
    let errors = found.errors().count();
    let warnings = found.warnings().count();
    if args.json {
        let v = serde_json::json!({
            "stories": n.stories,
            "personas": n.personas,
            "safety_files": n.safety,
            "errors": errors,
            "warnings": warnings,
            "token_counter": counter.describe(),
            "diagnostics": found.0,
        });
        println!("{v}");
    } else {
        print!("{found}");
        let files = match n.safety {
            0 => format!(
                "{} and {}",
                count(n.stories, "story", "stories"),
                count(n.personas, "persona", "personas")
            ),
            k => format!(
                "{}, {} and {}",
                count(n.stories, "story", "stories"),
                count(n.personas, "persona", "personas"),
                count(k, "safety file", "safety files")
            ),
        };
        println!(
            "checked {files} ({}): {}, {}",
            counter.describe(),
            count(errors, "error", "errors"),
            count(warnings, "warning", "warnings"),
        );
    }
    if errors > 0 {
        return Err(format!("{} found", count(errors, "error", "errors")).into());
    }
    Ok(())
}

/// `1 story`, `2 stories`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
