//! The `llama-dialogue` command line: output formats are an interface (see README).

use crate::common;

use std::process::Command;

use bevy_llama_dialogue_core::engine::cpu::KernelLevel;

fn cli() -> Command {
    crate::cli_command()
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = common::output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tokenize_json_is_exactly_one_array() {
    let vocab = common::model("ggml-vocab-llama-spm.gguf");
    let out = stdout_of(
        cli()
            .args(["tokenize", "--json", "--model"])
            .arg(&vocab)
            .arg("Hello world"),
    );
    assert_eq!(out, "[1,15043,3186]\n");
    let out = stdout_of(
        cli()
            .args(["tokenize", "--json", "--no-bos", "--model"])
            .arg(&vocab)
            .arg("</s>"),
    );
    let ids: Vec<u32> = serde_json::from_str(&out).unwrap();
    assert!(
        !ids.contains(&2),
        "special tokens are not parsed by default"
    );
    let out = stdout_of(
        cli()
            .args([
                "tokenize",
                "--json",
                "--no-bos",
                "--parse-special",
                "--model",
            ])
            .arg(&vocab)
            .arg("</s>"),
    );
    assert_eq!(out, "[2]\n");
}

#[test]
fn generate_json_is_exactly_one_object_matching_llama_cpp() {
    let model = common::model("stories260K.gguf");
    let out = stdout_of(
        cli()
            .args([
                "generate",
                "--temperature",
                "0",
                "--max-tokens",
                "64",
                "--json",
                "--prompt",
                "Once upon a time",
                "--model",
            ])
            .arg(&model),
    );
    let v: serde_json::Value = serde_json::from_str(out.trim_end()).unwrap();
    assert_eq!(out.lines().count(), 1);
    let reference = common::reference();
    assert_eq!(
        v["prompt_tokens"],
        reference["greedy_stories260K"]["prompt_ids"]
    );
    assert_eq!(
        v["tokens"],
        reference["greedy_stories260K"]["generated_ids"]
    );
    assert_eq!(v["text"], reference["greedy_stories260K"]["generated_text"]);
}

#[test]
fn generate_streams_text() {
    let model = common::model("stories260K.gguf");
    let out = stdout_of(
        cli()
            .args([
                "generate",
                "--temperature",
                "0",
                "--max-tokens",
                "8",
                "--prompt",
                "Once upon a time",
                "--model",
            ])
            .arg(&model),
    );
    assert_eq!(out, ", there was a little girl\n");
}

#[test]
fn make_test_model_then_inspect_and_generate() {
    let dir = common::temp_dir("cli-make");
    let path = dir.join("tiny-q4k.gguf");
    stdout_of(
        cli()
            .args([
                "make-test-model",
                "--shape",
                "tiny",
                "--quant",
                "q4_k",
                "--out",
            ])
            .arg(&path),
    );
    let out = stdout_of(cli().args(["inspect", "--json", "--model"]).arg(&path));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["architecture"], "llama");
    assert_eq!(v["config"]["head_count_kv"], 2);
    assert_eq!(v["tensor_types"]["Q4_K"], 16);
    let out = stdout_of(
        cli()
            .args([
                "generate",
                "--json",
                "--seed",
                "3",
                "--max-tokens",
                "5",
                "--prompt",
                "hello",
                "--model",
            ])
            .arg(&path),
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["tokens"].as_array().unwrap().len(), 5);
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let out = common::output(cli().args([
        "generate",
        "--prompt",
        "hi",
        "--model",
        "/nonexistent/m.gguf",
    ]));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("model file /nonexistent/m.gguf not found")
    );
    let dir = common::temp_dir("cli-err");
    let bogus = dir.join("notes.gguf");
    std::fs::write(&bogus, "these are my notes").unwrap();
    let out = common::output(cli().args(["inspect", "--model"]).arg(&bogus));
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a GGUF file"));
    let out = common::output(
        cli()
            .args([
                "make-test-model",
                "--shape",
                "huge",
                "--quant",
                "q4_0",
                "--out",
            ])
            .arg(dir.join("x.gguf")),
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown shape `huge`"));
}

#[test]
fn bench_json_is_exactly_one_object_with_the_documented_fields() {
    let model = common::model("stories260K.gguf");
    let out = stdout_of(
        cli()
            .args([
                "bench",
                "--json",
                "--prompt-tokens",
                "32",
                "--gen-tokens",
                "8",
                "--reps",
                "1",
                "--model",
            ])
            .arg(&model),
    );
    assert_eq!(out.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for field in [
        "prompt_tok_s",
        "decode_tok_s",
        "ttft_cold_ms",
        "ttft_warm_ms",
        "peak_rss_mb",
        "threads",
    ] {
        assert!(v[field].as_f64().is_some_and(|x| x > 0.0), "{field}: {v}");
    }
    assert!(v["model"].as_str().unwrap().ends_with("stories260K.gguf"));
    let level: KernelLevel = v["kernels"].as_str().unwrap().parse().unwrap();
    assert_eq!(level, KernelLevel::best(), "{v}");
}
