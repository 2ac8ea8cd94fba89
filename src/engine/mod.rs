//! The Bevy-free inference core: GGUF files, the LLaMA tokenizer, the forward pass with our own
//! KV cache, sampling, chat templates and the generation loop.

pub mod gguf;
pub mod tokenizer;
