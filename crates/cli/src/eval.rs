//! `llama-dialogue eval`: plays a story with a model over several seeds and checks every line
//! the model wrote (`story::eval`): a table for people, JSON for CI, and an exit status when the
//! share of clean lines falls below the writer's threshold.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bevy_llama_dialogue_core::story::Session;
use bevy_llama_dialogue_core::story::eval::{Finding, LineContext, check_line};

use crate::CliResult;
use crate::drive::{Driver, HeardLine};
use crate::play::{StoryArgs, load_bundle, next_play_through, read_inputs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    story: StoryArgs,
    /// Inputs of the play-throughs, as `transcript` reads them (give it several times).
    #[arg(long, required = true)]
    inputs: Vec<PathBuf>,
    /// Play each input file with this many seeds (--seed, --seed + 1, …).
    #[arg(long, default_value_t = 3)]
    seeds: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Fail (exit status 1) when fewer than this share of the generated lines pass every check.
    #[arg(long, value_name = "RATE")]
    min_pass: Option<f64>,
}

/// One checked line.
#[derive(serde::Serialize)]
struct Checked {
    seed: u64,
    inputs: String,
    node: String,
    speaker: String,
    text: String,
    findings: Vec<Finding>,
}

pub fn run(args: Args, threads: Option<usize>) -> CliResult {
    let a = &args.story;
    if a.model.is_none() && a.remote.remote.is_none() {
        return Err(
            "eval needs a model (--model FILE or --remote URL): it checks what a model \
                    writes"
                .into(),
        );
    }
    let bundle = load_bundle(&a.story, a.locale.as_deref())?;
    let mut s: Option<Session> = None;
    let mut checked = Vec::new();
    let mut fallbacks = 0usize;
    for seed in a.seed..a.seed + args.seeds.max(1) {
        for file in &args.inputs {
            let mut inputs = read_inputs(file)?.into_iter();
            let s = next_play_through(&mut s, &bundle, a, threads)?;
            s.seed = Some(seed);
            let mut heard = Vec::new();
            Driver {
                next_input: &mut || inputs.next(),
                out: &mut std::io::sink(),
                echo: false,
                save_to: None,
                heard: Some(&mut heard),
            }
            .run(s)?;
            let mut earlier: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for HeardLine {
                node,
                speaker,
                text,
                generated,
            } in heard
            {
                if !generated {
                    fallbacks += 1;
                    continue;
                }
                let rt = s.conversation.runtime();
                let name = rt.display_name(&speaker);
                let persona = rt
                    .bundle()
                    .persona(&speaker)
                    .map(|p| {
                        let mut text =
                            format!("{} {} {}", p.description, p.backstory, p.speaking_style);
                        for s in p.goals.iter().chain(&p.refuse).chain(&p.traits) {
                            text.push_str(". ");
                            text.push_str(s);
                        }
                        text
                    })
                    .unwrap_or_default();
                let said = earlier.entry(speaker.clone()).or_default();
                let ctx = LineContext {
                    names: vec![name.as_str(), speaker.as_str()],
                    persona: &persona,
                    earlier: said,
                };
                let findings = check_line(&text, &ctx);
                said.push(text.clone());
                checked.push(Checked {
                    seed,
                    inputs: file.display().to_string(),
                    node,
                    speaker,
                    text,
                    findings,
                });
            }
        }
    }
    let lines = checked.len();
    let passed = checked.iter().filter(|c| c.findings.is_empty()).count();
    let rate = if lines == 0 {
        0.0
    } else {
        passed as f64 / lines as f64
    };
    let mut by_check: BTreeMap<&str, usize> = Finding::CHECKS.iter().map(|c| (*c, 0)).collect();
    for f in checked.iter().flat_map(|c| &c.findings) {
        *by_check.entry(f.check()).or_default() += 1;
    }
    let label = s
        .as_mut()
        .map(|s| s.backend().label().to_owned())
        .unwrap_or_default();
    if args.json {
        let v = serde_json::json!({
            "story": a.story.display().to_string(),
            "model": label,
            "seeds": args.seeds,
            "lines": lines,
            "passed": passed,
            "pass_rate": rate,
            "fallback_lines": fallbacks,
            "by_check": by_check,
            "lines_checked": checked,
        });
        println!("{v}");
    } else {
        println!("{}: {} ({} seeds)", a.story.display(), label, args.seeds);
        println!(
            "{passed} of {lines} generated lines pass every check ({:.1}%); {fallbacks} authored fallback lines",
            rate * 100.0
        );
        for (check, n) in &by_check {
            println!("  {n:>5}  {check}");
        }
        let failing: Vec<_> = checked.iter().filter(|c| !c.findings.is_empty()).collect();
        if !failing.is_empty() {
            println!("failing lines (first 10):");
        }
        for c in failing.iter().take(10) {
            let why: Vec<String> = c
                .findings
                .iter()
                .map(|f| match f {
                    Finding::Empty => "empty".to_owned(),
                    Finding::Markup(m)
                    | Finding::PromptEcho(m)
                    | Finding::SpeakerPrefix(m)
                    | Finding::OutOfCharacter(m)
                    | Finding::Cut(m)
                    | Finding::Repeats(m)
                    | Finding::EchoesPersona(m) => format!("{} ({m:?})", f.check()),
                })
                .collect();
            println!(
                "  seed {} {} [{}]: {:?} -- {}",
                c.seed,
                c.node,
                c.speaker,
                c.text,
                why.join(", ")
            );
        }
    }
    if let Some(min) = args.min_pass
        && rate < min
    {
        return Err(format!(
            "{passed} of {lines} lines pass every check ({rate:.3}), below --min-pass {min}"
        )
        .into());
    }
    Ok(())
}
