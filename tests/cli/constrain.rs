//! `llama-dialogue generate` under a constraint: one at a time, bad ones reported with their place.

use std::path::PathBuf;

use serde_json::Value;

use crate::common;
use crate::common::constrain::{full_match, trade};

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/constrain").join(name)
}

fn cli(args: &[&str]) -> std::process::Output {
    common::output(crate::cli_command().args(args))
}

#[test]
fn cli_generate_takes_one_constraint_and_reports_bad_ones() {
    let model = common::model("llama-2-tiny-random.gguf");
    let model = model.to_str().unwrap();
    let rx = r"(north|south|east|west) by the (mill|well|forge)";
    let out = cli(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "Which way?",
        "--seed",
        "7",
        "--regex",
        rx,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(full_match(rx)(text.trim_end()).is_ok(), "{text:?}");

    let schema = fixture("trade.schema.json");
    let out = cli(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "Trade?",
        "--seed",
        "3",
        "--json",
        "--json-schema",
        schema.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["constraint_complete"], true);
    trade(result["text"].as_str().unwrap()).unwrap();

    // Two constraints at once are refused by the argument parser.
    let out = cli(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "x",
        "--regex",
        "a",
        "--json-schema",
        schema.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));

    // A broken grammar: file:line:col.
    let broken = fixture("broken.lark");
    let out = cli(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "x",
        "--grammar",
        broken.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}:3:7: ", broken.display())),
        "{err}"
    );

    // Too few tokens to finish: a clear error, not a silently broken output.
    let out = cli(&[
        "generate",
        "--model",
        model,
        "--prompt",
        "x",
        "--max-tokens",
        "2",
        "--json-schema",
        schema.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("incomplete under the JSON schema"), "{err}");
}
