//! [`Llama`]: a model, its tokenizer and its chat template, loaded from one GGUF file.

use std::ops::ControlFlow;
use std::path::Path;

use crate::engine::chat::{ChatError, ChatMessage, ChatTemplate};
use crate::engine::constrain::{Compiler, ConstraintError, Guide};
use crate::engine::generate::{GenerateError, GenerateOptions, Generation, generate};
use crate::engine::gguf::{GgufError, GgufFile, MetadataExt};
use crate::engine::model::{LlamaModel, ModelError, ModelOptions};
use crate::engine::sampler::SamplingParams;
use crate::engine::tokenizer::{Tokenizer, TokenizerError};

/// Errors loading a [`Llama`].
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The model file does not exist.
    #[error("model file {0} not found")]
    NotFound(std::path::PathBuf),
    /// The file is not a usable GGUF.
    #[error("{path}: {source}")]
    Gguf {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        source: GgufError,
    },
    /// The weights or hyper-parameters are unusable.
    #[error("{path}: {source}")]
    Model {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        source: ModelError,
    },
    /// The vocabulary is unusable.
    #[error("{path}: {source}")]
    Tokenizer {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        source: TokenizerError,
    },
    /// The tokenizer has more tokens than the output head has rows.
    #[error(
        "{path}: the vocabulary has {tokenizer} tokens but the model's embedding has {model} rows"
    )]
    VocabMismatch {
        /// The file.
        path: std::path::PathBuf,
        /// Tokenizer size.
        tokenizer: usize,
        /// Model vocabulary rows.
        model: usize,
    },
}

/// Errors of a chat turn.
#[derive(Debug, thiserror::Error)]
pub enum ChatTurnError {
    /// The conversation cannot be rendered.
    #[error(transparent)]
    Chat(#[from] ChatError),
    /// Generation failed.
    #[error(transparent)]
    Generate(#[from] GenerateError),
}

/// A loaded model ready to talk.
#[derive(Debug)]
pub struct Llama {
    /// The network and its KV cache.
    pub model: LlamaModel,
    /// The vocabulary.
    pub tokenizer: Tokenizer,
    /// The prompt format (detected from the file, may be changed).
    pub template: ChatTemplate,
}

impl Llama {
    /// Loads `path`: checks the CPU, reads the GGUF, builds tokenizer and model, detects the
    /// chat template.
    pub fn load(path: impl AsRef<Path>, options: &ModelOptions) -> Result<Self, LoadError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            return Err(LoadError::NotFound(path));
        }
        let gguf = GgufFile::open(&path).map_err(|source| LoadError::Gguf {
            path: path.clone(),
            source,
        })?;
        // Hyper-parameters first: a foreign architecture is reported as such, not as a tokenizer error.
        let model = LlamaModel::load(&gguf, options).map_err(|source| LoadError::Model {
            path: path.clone(),
            source,
        })?;
        let tokenizer = Tokenizer::from_gguf(&gguf).map_err(|source| LoadError::Tokenizer {
            path: path.clone(),
            source,
        })?;
        if tokenizer.vocab_size() > model.vocab_size() {
            return Err(LoadError::VocabMismatch {
                path,
                tokenizer: tokenizer.vocab_size(),
                model: model.vocab_size(),
            });
        }
        let jinja = gguf.opt_str("tokenizer.chat_template").ok().flatten();
        let template =
            ChatTemplate::for_vocabulary(&tokenizer, jinja, model.config().name.as_deref());
        Ok(Self {
            model,
            tokenizer,
            template,
        })
    }

    /// Renders `messages` with the template and generates the assistant's answer, streaming
    /// text to `on_text`.
    pub fn chat(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ChatTurnError> {
        self.chat_guided(messages, params, None, on_text)
    }

    /// [`chat`](Self::chat) with the answer held to a grammar
    /// ([`Grammar::guide`](crate::engine::constrain::Grammar::guide)); `None` leaves it free.
    pub fn chat_guided(
        &mut self,
        messages: &[ChatMessage],
        params: &SamplingParams,
        constraint: Option<Guide>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, ChatTurnError> {
        let prompt = self.template.render(&self.tokenizer, messages)?;
        let stop_tokens = self.template.stop_tokens(&self.tokenizer);
        let opts = GenerateOptions {
            stop_tokens: &stop_tokens,
            extra_stops: self.template.stop_strings(),
            strip_leading_space: self.template.strips_leading_space(),
            mask: None,
            constraint,
            banned: None,
        };
        Ok(generate(
            &mut self.model,
            &self.tokenizer,
            &prompt,
            params,
            opts,
            on_text,
        )?)
    }

    /// A compiler of grammars, JSON schemas and regexes for this model's vocabulary (it
    /// indexes the whole vocabulary: make one and keep it).
    pub fn constraint_compiler(&self) -> Result<Compiler, ConstraintError> {
        Compiler::new(&self.tokenizer, self.model.vocab_size())
    }

    /// Continues `text` (plain completion, BOS added as the vocabulary asks).
    pub fn complete(
        &mut self,
        text: &str,
        params: &SamplingParams,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, GenerateError> {
        self.complete_guided(text, params, None, on_text)
    }

    /// [`complete`](Self::complete) with the continuation held to a grammar; `None` leaves it
    /// free.
    pub fn complete_guided(
        &mut self,
        text: &str,
        params: &SamplingParams,
        constraint: Option<Guide>,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation, GenerateError> {
        let prompt = self.tokenizer.encode(text, true);
        let stop_tokens = self.tokenizer.eog_ids().to_vec();
        let opts = GenerateOptions {
            stop_tokens: &stop_tokens,
            constraint,
            ..Default::default()
        };
        generate(
            &mut self.model,
            &self.tokenizer,
            &prompt,
            params,
            opts,
            on_text,
        )
    }
}
