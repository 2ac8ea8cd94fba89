//! The Bevy-free inference core: GGUF files, the LLaMA tokenizer, the forward pass with our own
//! KV cache, sampling, chat templates and the generation loop.

pub mod backend;
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
pub mod synth;
pub mod tokenizer;
pub mod voice;
pub mod worker;
