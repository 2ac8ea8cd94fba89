//! A model behind an OpenAI-compatible HTTP API (llama.cpp's server, llama-cpp-python, vLLM,
//! Ollama): [`OpenAiCompatible`], a [`DialogueBackend`](crate::engine::backend::DialogueBackend)
//! that streams lines over server-sent events on its own threads (cargo feature `remote`).
//!
//! ```no_run
//! # #[cfg(feature = "remote")] {
//! use bevy_llama_dialogue_core::engine::remote::{OpenAiCompatible, RemoteConfig};
//!
//! let mut config = RemoteConfig::new("http://127.0.0.1:8080");
//! config.api_key_env = Some("LLAMA_API_KEY".into());
//! let backend = OpenAiCompatible::spawn(config);
//! # }
//! ```

mod error;
pub use error::RemoteError;

#[cfg(feature = "remote")]
mod backend;
#[cfg(feature = "remote")]
mod choose;
#[cfg(feature = "remote")]
mod client;
#[cfg(feature = "remote")]
mod config;
#[cfg(feature = "remote")]
mod stream;
#[cfg(feature = "remote")]
mod wire;

#[cfg(feature = "remote")]
pub use backend::OpenAiCompatible;
#[cfg(feature = "remote")]
pub use config::RemoteConfig;
