//! A model's own chat template (`tokenizer.chat_template`, Jinja) rendered with `minijinja` and
//! its contrib Python-compatibility methods, as llama.cpp's `--jinja` and mistral.rs do.
//!
//! Message texts never pass through the template: each message's content is replaced by a
//! placeholder, the template is rendered, and the result is encoded piece by piece — the
//! template's own text with special tokens parsed (`<|im_start|>` is a control token there),
//! the contents as untrusted text (a player typing `<|im_start|>` gets plain-text ids). Templates
//! that reshape contents (`| trim`, slicing) see only the placeholder.

use std::sync::Arc;

use minijinja::{Environment, ErrorKind, Value, context};

use crate::engine::chat::{ChatMessage, Role};
use crate::engine::tokenizer::Tokenizer;

/// Placeholder brackets (private-use characters no template writes).
const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

/// A compiled chat template from a GGUF file.
#[derive(Clone)]
pub struct JinjaChat {
    env: Arc<Environment<'static>>,
}

impl std::fmt::Debug for JinjaChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JinjaChat").finish_non_exhaustive()
    }
}

/// A chat template that does not compile or does not render.
#[derive(Debug, thiserror::Error)]
#[error("the model's chat template (tokenizer.chat_template): {0}")]
pub struct JinjaError(String);

impl JinjaChat {
    /// Compiles `source`.
    pub fn new(source: &str) -> Result<Self, JinjaError> {
        let mut env = Environment::new();
        // A template comes with a downloaded file: bound its work (a million instructions
        // renders any real chat template many times over).
        env.set_fuel(Some(1_000_000));
        minijinja_contrib::add_to_environment(&mut env);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        // Transformers' helpers that chat templates call.
        env.add_function("raise_exception", |msg: String| -> Result<String, _> {
            Err(minijinja::Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |_format: String| "07 Dec 2026".to_owned());
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| JinjaError(e.to_string()))?;
        Ok(Self { env: Arc::new(env) })
    }

    /// Renders `messages` and the opening of the assistant's answer (thinking off) as text, the
    /// contents as placeholders `\u{F8F0}i\u{F8F1}`.
    fn render_text(&self, tok: &Tokenizer, messages: &[ChatMessage]) -> Result<String, JinjaError> {
        let msgs: Vec<Value> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = match m.role {
                    Role::System => "system",
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                Value::from_pairs([
                    ("role", Value::from(role)),
                    ("content", Value::from(format!("{OPEN}{i}{CLOSE}"))),
                ])
            })
            .collect();
        let special = |id: u32| tok.piece(id).unwrap_or_default().to_owned();
        let template = self
            .env
            .get_template("chat")
            .map_err(|e| JinjaError(e.to_string()))?;
        template
            .render(context! {
                messages => Value::from(msgs),
                add_generation_prompt => true,
                enable_thinking => false,
                bos_token => special(tok.bos_id()),
                eos_token => special(tok.eos_id()),
            })
            .map_err(|e| JinjaError(e.to_string()))
    }

    /// Renders `messages` (see the module documentation) as token ids. BOS is added when the
    /// vocabulary asks for it and the template did not write it.
    pub fn render(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
    ) -> Result<Vec<u32>, JinjaError> {
        let text = self.render_text(tok, messages)?;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        let mut rest = text.as_str();
        while let Some(open) = rest.find(OPEN) {
            out.extend(tok.encode_trusted(&rest[..open], false));
            let after = &rest[open + OPEN.len_utf8()..];
            let Some(close) = after.find(CLOSE) else {
                return Err(JinjaError("a message placeholder was cut".into()));
            };
            let index: usize = after[..close]
                .parse()
                .map_err(|_| JinjaError("a message placeholder was changed".into()))?;
            let content = messages
                .get(index)
                .ok_or_else(|| JinjaError("a message placeholder was changed".into()))?;
            out.extend(tok.encode(&content.content, false));
            rest = &after[close + CLOSE.len_utf8()..];
        }
        out.extend(tok.encode_trusted(rest, false));
        if tok.adds_bos() && out.first() != Some(&tok.bos_id()) {
            out.insert(0, tok.bos_id());
        }
        Ok(out)
    }

    /// The rendered text with the contents written in, for logs and debugging.
    pub fn render_string(
        &self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
    ) -> Result<String, JinjaError> {
        let mut text = self.render_text(tok, messages)?;
        for (i, m) in messages.iter().enumerate() {
            text = text.replace(&format!("{OPEN}{i}{CLOSE}"), &m.content);
        }
        Ok(text)
    }
}
