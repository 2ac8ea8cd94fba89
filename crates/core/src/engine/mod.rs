//! The Bevy-free inference core: GGUF files, the LLaMA tokenizer, the forward pass with our own
//! KV cache, sampling, chat templates and the generation loop.

pub mod backend;
#[doc(hidden)] // the CLI's `bench`, not API
pub mod bench;
pub mod chat;
pub mod config;
pub mod constrain;
pub mod cpu;
pub mod generate;
pub mod gguf;
pub mod jinja;
pub mod llama;
pub mod model;
pub mod pool;
pub mod remote;
pub mod safety;
pub mod sampler;
pub mod source;
pub mod stop;
#[doc(hidden)] // random-weight models for the CLI and the tests, not API
pub mod synth;
pub mod think;
pub mod tokenizer;
pub mod voice;
pub mod worker;

/// How many leading tokens `a` and `b` share: the part of a KV cache (or of a cached prompt) that
/// a new token sequence can reuse. The one place this comparison is written.
pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// The text of a panic's payload (`&str` or `String`; else "unknown panic").
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}
