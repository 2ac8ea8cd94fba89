//! Compiling constraints once and guiding each generation with a copy of the compiled grammar.

use llguidance::api::TopLevelGrammar;
use llguidance::toktrie::TokEnv;
use llguidance::{Matcher, ParserFactory};
use serde_json::{Value, json};

use super::{Constraint, ConstraintError, located, vocab};
use crate::engine::tokenizer::Tokenizer;

/// Compiles constraints for one vocabulary. Build it once per model (it indexes the whole
/// vocabulary) and share it; [`compile`](Self::compile) each grammar once and keep the
/// [`Grammar`].
pub struct Compiler {
    factory: ParserFactory,
    vocab_size: usize,
}

impl std::fmt::Debug for Compiler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compiler")
            .field("vocab_size", &self.vocab_size)
            .finish_non_exhaustive()
    }
}

impl Compiler {
    /// A compiler for `tok`'s vocabulary and a model with `vocab_size` logits.
    pub fn new(tok: &Tokenizer, vocab_size: usize) -> Result<Self, ConstraintError> {
        let env: TokEnv = vocab::token_env(tok, vocab_size)?;
        let mut factory = ParserFactory::new_simple(&env)
            .map_err(|e| ConstraintError::Vocabulary(e.to_string()))?;
        // Errors come back as values; nothing is printed to stderr.
        factory.quiet();
        Ok(Self {
            factory,
            vocab_size,
        })
    }

    /// Compiles `constraint`; `source_name` (a file path, or the flag it came from) names it
    /// in errors, with the line and column where llguidance gives them.
    pub fn compile(
        &self,
        constraint: &Constraint,
        source_name: &str,
    ) -> Result<Grammar, ConstraintError> {
        let top = match constraint {
            Constraint::Lark(text) => TopLevelGrammar::from_lark(text.clone()),
            Constraint::JsonSchema(schema) => TopLevelGrammar::from_json_schema(compact(schema)),
            Constraint::Regex(rx) => TopLevelGrammar::from_regex(rx),
        };
        let parser = self.factory.create_parser(top).map_err(|e| {
            let (line, column, message) = located(&e.to_string());
            // Only a Lark grammar is the author's text; the others are wrapped in one whose
            // places mean nothing to them.
            let (line, column) = match constraint {
                Constraint::Lark(_) => (line, column),
                _ => (None, None),
            };
            ConstraintError::Invalid {
                source_name: source_name.to_owned(),
                line,
                column,
                message,
            }
        })?;
        let matcher = Matcher::new(Ok(parser));
        if let Some(e) = matcher.get_error() {
            return Err(ConstraintError::Invalid {
                source_name: source_name.to_owned(),
                line: None,
                column: None,
                message: e,
            });
        }
        Ok(Grammar {
            start: matcher,
            vocab_size: self.vocab_size,
        })
    }
}

/// `schema` with compact output asked for (no whitespace between tokens), unless the schema
/// sets its own `x-guidance` options.
fn compact(schema: &Value) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(map) = &mut schema {
        map.entry("x-guidance")
            .or_insert_with(|| json!({"whitespace_flexible": false}));
    }
    schema
}

/// A compiled constraint in its start state. Cloning it or taking a [`Guide`] is cheap (the
/// compiled grammar and the lexer's caches are shared).
#[derive(Clone)]
pub struct Grammar {
    start: Matcher,
    vocab_size: usize,
}

impl std::fmt::Debug for Grammar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammar").finish_non_exhaustive()
    }
}

impl Grammar {
    /// A guide for one generation.
    pub fn guide(&self) -> Guide {
        Guide {
            matcher: self.start.clone(),
            vocab_size: self.vocab_size,
        }
    }

    /// Whether `tokens` (end token excluded) form a complete output under this grammar.
    pub fn accepts(&self, tokens: &[u32]) -> bool {
        let mut m = self.start.clone();
        m.consume_tokens(tokens).is_ok() && m.is_accepting().unwrap_or(false)
    }
}

/// One generation's position in a [`Grammar`]: masks the logits of each step and follows the
/// token sampled.
pub struct Guide {
    matcher: Matcher,
    vocab_size: usize,
}

impl std::fmt::Debug for Guide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guide").finish_non_exhaustive()
    }
}

impl Guide {
    /// Sets every logit the grammar does not allow next to `-inf` (the end token is allowed
    /// only where the output is complete; once nothing else can follow, only it).
    pub fn mask(&mut self, logits: &mut [f32]) -> Result<(), ConstraintError> {
        let allowed = self
            .matcher
            .compute_mask_or_eos()
            .map_err(|e| ConstraintError::Runtime(e.to_string()))?;
        let n = logits.len().min(self.vocab_size).min(allowed.len());
        allowed.iter_unset_entries(|i| {
            if i < n {
                logits[i] = f32::NEG_INFINITY;
            }
        });
        for l in logits.iter_mut().skip(n) {
            *l = f32::NEG_INFINITY;
        }
        Ok(())
    }

    /// Follows the sampled `token` (not the end token).
    pub fn commit(&mut self, token: u32) -> Result<(), ConstraintError> {
        self.matcher
            .consume_token(token)
            .map_err(|e| ConstraintError::Runtime(e.to_string()))
    }

    /// Takes back the last `tokens` committed (a generation backing off a banned phrase).
    pub fn rollback(&mut self, tokens: usize) -> Result<(), ConstraintError> {
        self.matcher
            .rollback(tokens)
            .map_err(|e| ConstraintError::Runtime(e.to_string()))
    }

    /// Whether the output so far is complete under the grammar.
    pub fn is_complete(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }
}
