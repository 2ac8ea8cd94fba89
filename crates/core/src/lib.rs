//! The Bevy-free core of [bevy_llama_dialogue](https://docs.rs/bevy_llama_dialogue): the
//! inference [`engine`] (GGUF files, tokenizers, the forward pass with our own kernels, sampling,
//! chat templates, the worker thread and its backends) and the [`story`] layer (personas,
//! branching stories in RON, prompts, routing, saves).
//!
//! This crate never depends on Bevy: a game uses it through the plugin crate, which re-exports it
//! as `bevy_llama_dialogue::engine` and `bevy_llama_dialogue::story`; tools and servers can use it
//! directly. See `docs/ARCHITECTURE.md` for the floors and the path of one line.
#![deny(missing_docs)]

pub mod engine;
pub mod story;

/// The cases a property test runs: `PROPTEST_CASES` when set (the long campaign of
/// docs/RELIABILITY.md), else `default` (what CI runs).
#[cfg(test)]
pub(crate) fn proptest_cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
