//! Helpers shared by the integration tests.
#![allow(dead_code)]

#[cfg(feature = "plugin")]
pub mod app;
pub mod cross_check;

use std::path::PathBuf;

/// The folder of real test models: `$LLAMA_DIALOGUE_TEST_MODELS`, else `../shared/models`.
pub fn models_dir() -> PathBuf {
    match std::env::var_os("LLAMA_DIALOGUE_TEST_MODELS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/models"),
    }
}

/// The path of a shared test model, or `None` after printing a loud skip notice.
pub fn shared_model(name: &str) -> Option<PathBuf> {
    let path = models_dir().join(name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "\n*** SKIPPED: test model {} not found. Set LLAMA_DIALOGUE_TEST_MODELS to the folder holding {name}. ***\n",
            path.display()
        );
        None
    }
}

/// The llama.cpp reference outputs (copied from `../shared/models/REFERENCE.md`).
pub fn reference() -> serde_json::Value {
    let text = include_str!("../fixtures/llama_cpp_reference.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

/// A fresh temporary directory under the target folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}
