//! `llama-dialogue eval` with a real chat model (SmolLM2-135M-Instruct): every generated line
//! is checked, the report is deterministic per seed, and a threshold gates the exit status.

use serde_json::Value;

use crate::common;

fn eval(extra: &[&str]) -> std::process::Output {
    let model = common::smollm2();
    let mut cmd = crate::cli_command();
    cmd.args(["eval", "stories/tutorial.story.ron", "--model"])
        .arg(&model)
        .args([
            "--inputs",
            "tests/golden/tutorial.inputs",
            "--seeds",
            "1",
            "--json",
        ])
        .args(extra);
    common::output(&mut cmd)
}

#[test]
fn eval_checks_every_generated_line_and_gates_on_a_threshold() {
    let out = eval(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lines = v["lines"].as_u64().unwrap();
    let passed = v["passed"].as_u64().unwrap();
    assert!(lines >= 1, "{v}");
    assert_eq!(v["lines_checked"].as_array().unwrap().len() as u64, lines);
    let rate = v["pass_rate"].as_f64().unwrap();
    assert!((rate - passed as f64 / lines as f64).abs() < 1e-9, "{v}");
    let checks = v["by_check"].as_object().unwrap();
    for c in [
        "empty",
        "markup",
        "prompt_echo",
        "speaker_prefix",
        "out_of_character",
        "cut",
        "repeats",
        "echoes_persona",
    ] {
        assert!(checks.contains_key(c), "{c} missing: {v}");
    }
    for l in v["lines_checked"].as_array().unwrap() {
        assert!(
            !l["text"].as_str().unwrap().is_empty()
                || !l["findings"].as_array().unwrap().is_empty()
        );
    }
    assert!(v["model"].as_str().unwrap().contains("SmolLM2"), "{v}");

    // The same seed gives the same report; a threshold above every rate fails the run.
    let again = eval(&["--min-pass", "1.01"]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(
        serde_json::from_slice::<Value>(&again.stdout).unwrap(),
        v,
        "eval is deterministic per seed"
    );
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("below --min-pass 1.01"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn eval_without_a_model_says_it_needs_one() {
    let out = common::output(crate::cli_command().args([
        "eval",
        "stories/tutorial.story.ron",
        "--inputs",
        "tests/golden/tutorial.inputs",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("eval needs a model"));
}
