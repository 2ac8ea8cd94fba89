//! Counting tokens for prompt budgets: with a model's tokenizer, or a documented estimate.

use std::path::Path;

use crate::engine::config::LlamaConfig;
use crate::engine::gguf::GgufFile;
use crate::engine::tokenizer::Tokenizer;

/// Counts the tokens a text takes in a prompt.
pub trait TokenCounter {
    /// Tokens of `text` (without BOS).
    fn count(&self, text: &str) -> usize;
    /// The model's context length, when counting for a known model.
    fn context(&self) -> Option<usize> {
        None
    }
    /// What counts ("estimate: 1 token per 3 bytes" or the model file).
    fn describe(&self) -> String;
}

/// Without a model: one token per 3 bytes of UTF-8, rounded up. LLaMA's SentencePiece vocabulary
/// averages about 4 bytes per token on English prose, so this over-counts by about a third: a
/// story that passes the estimate fits the real tokenizer.
#[derive(Debug, Clone, Copy, Default)]
pub struct Estimate;

impl TokenCounter for Estimate {
    fn count(&self, text: &str) -> usize {
        text.len().div_ceil(3)
    }
    fn describe(&self) -> String {
        "estimate (1 token per 3 bytes; pass --model for exact counts)".into()
    }
}

/// A model's tokenizer and context length, read from a GGUF file without loading its weights.
#[derive(Debug, Clone)]
pub struct ModelCounter {
    tokenizer: Tokenizer,
    context: usize,
    name: String,
}

impl ModelCounter {
    /// Reads the tokenizer and context length of a GGUF model.
    pub fn open(path: &Path) -> Result<Self, String> {
        let file = GgufFile::open(path).map_err(|e| e.to_string())?;
        let tokenizer = Tokenizer::from_gguf(&file).map_err(|e| e.to_string())?;
        let config = LlamaConfig::from_gguf(&file).map_err(|e| e.to_string())?;
        Ok(Self {
            tokenizer,
            context: config.context_length,
            name: path.display().to_string(),
        })
    }

    /// A counter from a tokenizer already loaded.
    pub fn new(tokenizer: Tokenizer, context: usize, name: impl Into<String>) -> Self {
        Self {
            tokenizer,
            context,
            name: name.into(),
        }
    }
}

impl TokenCounter for ModelCounter {
    fn count(&self, text: &str) -> usize {
        self.tokenizer.encode_fragment_vec(text, true).len()
    }
    fn context(&self) -> Option<usize> {
        Some(self.context)
    }
    fn describe(&self) -> String {
        format!("tokenizer of {}", self.name)
    }
}

/// Tokens the chat template adds around each message (LLaMA-2-chat: `[INST]`, `[/INST]`, BOS,
/// EOS and spaces come to at most 8).
pub const TEMPLATE_TOKENS_PER_MESSAGE: usize = 8;
/// Tokens the template adds around the system part (`<<SYS>>` markers).
pub const TEMPLATE_TOKENS_SYSTEM: usize = 16;
