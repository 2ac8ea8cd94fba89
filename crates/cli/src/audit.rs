//! `llama-dialogue audit LOG`: sums up an audit log (and its rotated files) for an operator.

use std::path::PathBuf;

use bevy_llama_dialogue_core::story::safety::summarize;

use crate::CliResult;

#[derive(clap::Args)]
pub struct Args {
    /// The audit log (JSON lines, as the plugin's `safety.audit` writes it); its rotated files
    /// (`LOG.1`, `LOG.2`, …) are read too.
    log: PathBuf,
    /// Also print every flagged record (time, NPC, rule, what was said).
    #[arg(long)]
    flagged: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> CliResult {
    let (s, flagged) = summarize(&args.log)?;
    if args.json {
        let v = serde_json::json!({
            "summary": s,
            "flagged": if args.flagged { serde_json::to_value(&flagged)? } else { serde_json::Value::Null },
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "{}: {} records in {} file(s): {} lines spoken, {} flagged ({} on player text, {} on generated lines)",
        args.log.display(),
        s.records,
        s.files,
        s.lines,
        s.flagged,
        s.input_flags,
        s.output_flags
    );
    if let Some((first, last)) = s.span_ms {
        println!(
            "from {first} to {last} ms since the epoch ({:.1} h)",
            (last - first) as f64 / 3.6e6
        );
    }
    for (title, map) in [
        ("by rule", &s.by_rule),
        ("flagged, by NPC", &s.by_npc),
        ("records, by model", &s.by_model),
    ] {
        if map.is_empty() {
            continue;
        }
        println!("{title}:");
        let mut rows: Vec<_> = map.iter().collect();
        rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, n) in rows {
            println!("  {n:>6}  {k}");
        }
    }
    if !s.unreadable.is_empty() {
        println!("{} line(s) are not audit records:", s.unreadable.len());
        for at in s.unreadable.iter().take(10) {
            println!("  {at}");
        }
    }
    if args.flagged {
        for r in &flagged {
            for f in &r.flags {
                println!(
                    "{} {} [{}] {:?} rule `{}` ({}): {:?}",
                    r.time_ms,
                    r.npc,
                    r.persona.as_deref().unwrap_or("-"),
                    f.direction,
                    f.rule,
                    f.by,
                    f.matched
                );
            }
        }
    }
    Ok(())
}
