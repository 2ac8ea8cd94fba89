//! Constrained decoding: the model's output is held to a grammar (Lark), a JSON schema or a
//! regular expression, token by token, with [`llguidance`] computing which tokens may come next.
//!
//! A [`Compiler`] is made once per vocabulary; it compiles a [`Constraint`] into a [`Grammar`]
//! once, and each generation under that grammar takes a cheap [`Guide`] (a copy in its start
//! state) that masks the logits before sampling and follows the tokens sampled. When the grammar
//! is complete only the end token is allowed, so a constrained generation ends by itself with
//! text the grammar accepts, whatever the weights say.
//!
//! ```no_run
//! # use bevy_llama_dialogue_core::engine::constrain::{Compiler, Constraint};
//! # use bevy_llama_dialogue_core::engine::llama::Llama;
//! # fn demo(llama: &Llama) -> Result<(), Box<dyn std::error::Error>> {
//! let compiler = Compiler::new(&llama.tokenizer, llama.model.vocab_size())?;
//! let schema = serde_json::json!({"type": "object", "properties": {"mood": {"enum": ["glad", "cross"]}},
//!                                 "required": ["mood"]});
//! let grammar = compiler.compile(&Constraint::JsonSchema(schema), "mood.json")?;
//! let guide = grammar.guide(); // one per generation: `GenerateOptions::constraint`
//! # let _ = guide; Ok(()) }
//! ```

mod guide;
mod vocab;

use std::path::Path;

pub use guide::{Compiler, Grammar, Guide};

/// What the output must match.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// A grammar in llguidance's Lark dialect (`start: ...`), with `%json {..}` and regex
    /// terminals (`/[a-z]+/`).
    Lark(String),
    /// A JSON schema (draft 2020-12 subset: objects, arrays, enums, `const`, numbers with
    /// ranges, strings with lengths and patterns, `$ref`, `anyOf`…); the output is compact JSON
    /// unless the schema's own `"x-guidance"` options say otherwise (llguidance's
    /// `whitespace_flexible`, `item_separator`, `key_separator`).
    JsonSchema(serde_json::Value),
    /// A regular expression the whole output must match.
    Regex(String),
}

impl Constraint {
    /// The kind, as the CLI flag names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Lark(_) => "grammar",
            Self::JsonSchema(_) => "JSON schema",
            Self::Regex(_) => "regex",
        }
    }

    /// A key that tells constraints apart (the worker's cache of compiled grammars).
    pub fn key(&self) -> String {
        match self {
            Self::Lark(t) => format!("lark:{t}"),
            Self::JsonSchema(v) => format!("json:{v}"),
            Self::Regex(r) => format!("regex:{r}"),
        }
    }

    /// Reads a Lark grammar file.
    pub fn lark_file(path: &Path) -> Result<Self, ConstraintError> {
        read(path).map(Self::Lark)
    }

    /// Reads a JSON schema file; JSON syntax errors name the file, line and column.
    pub fn json_schema_file(path: &Path) -> Result<Self, ConstraintError> {
        let text = read(path)?;
        serde_json::from_str(&text)
            .map(Self::JsonSchema)
            .map_err(|e| ConstraintError::Invalid {
                source_name: path.display().to_string(),
                line: Some(e.line()),
                column: Some(e.column()),
                message: format!("not JSON: {e}"),
            })
    }
}

fn read(path: &Path) -> Result<String, ConstraintError> {
    std::fs::read_to_string(path).map_err(|e| ConstraintError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    })
}

/// Errors of constrained decoding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// The constraint file could not be read.
    #[error("cannot read {path}: {message}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// The grammar, schema or regex does not compile. `source_name` is the file (or `--regex`).
    #[error("{}: {message}", place(source_name, *line, *column))]
    Invalid {
        /// Where it came from: a file path or the flag.
        source_name: String,
        /// 1-based line, where known.
        line: Option<usize>,
        /// 1-based column, where known.
        column: Option<usize>,
        /// What is wrong (llguidance's message, with the lines around the place).
        message: String,
    },
    /// The vocabulary cannot be handed to the grammar engine.
    #[error("the vocabulary cannot be used for constrained decoding: {0}")]
    Vocabulary(String),
    /// The grammar engine failed while generating (e.g. a token outside the mask was forced).
    #[error("constrained decoding failed: {0}")]
    Runtime(String),
}

fn place(source: &str, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{source}:{l}:{c}"),
        (Some(l), None) => format!("{source}:{l}"),
        _ => source.to_owned(),
    }
}

/// Splits llguidance's `at 3(7): msg` or `3(7): msg` into (line, column, msg).
fn located(message: &str) -> (Option<usize>, Option<usize>, String) {
    let rest = message.strip_prefix("at ").unwrap_or(message);
    let parsed = rest.split_once("): ").and_then(|(head, msg)| {
        let (l, c) = head.split_once('(')?;
        Some((l.trim().parse().ok()?, c.parse().ok()?, msg))
    });
    match parsed {
        Some((l, c, msg)) => (Some(l), Some(c), msg.to_owned()),
        None => (None, None, message.to_owned()),
    }
}

#[cfg(test)]
mod tests;
