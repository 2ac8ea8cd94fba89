//! The Bevy-free inference core: GGUF files, the LLaMA tokenizer, the forward pass with our own
//! KV cache, sampling, chat templates and the generation loop.

pub mod config;
pub mod cpu;
pub mod gguf;
pub mod model;
pub mod tokenizer;
