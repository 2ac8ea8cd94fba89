//! Chat templates rendered straight to token ids: BOS/EOS and control tokens are ids, never
//! text, and message contents are encoded with special-token parsing off.
//!
//! The token sequence of a conversation is defined as what llama.cpp produces when it tokenizes
//! the template's text with special tokens parsed — for trusted content. Untrusted content
//! differs only where it contains control-token text (`</s>`, `<|im_end|>`): here that stays
//! text.

use serde::{Deserialize, Serialize};

use crate::engine::tokenizer::Tokenizer;

/// Who speaks a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions and persona.
    System,
    /// The player (or the story engine speaking for them).
    User,
    /// The model's character.
    Assistant,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: Role,
    /// What is said.
    pub content: String,
}

impl ChatMessage {
    /// A message.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
        }
    }
}

/// A prompt format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatTemplate {
    /// Meta's LLaMA-2-chat (`chat_completion` in Meta's llama repository):
    /// `<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {answer} </s><s>[INST] {user} [/INST]`.
    Llama2,
    /// Zephyr / TinyLlama-1.1B-Chat: `<|system|>\n{system}</s>\n<|user|>\n{user}</s>\n<|assistant|>\n`.
    Zephyr,
    /// ChatML: `<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n`.
    ChatMl,
    /// No roles, for base models such as stories260K (completion): the system text on its own
    /// line, then each message as a paragraph; the model continues the last one.
    Plain,
    /// The model's own Jinja template (`tokenizer.chat_template`, kept by the
    /// [`Tokenizer`]), rendered with minijinja ([`crate::engine::jinja`]): chosen for byte-level
    /// BPE files whose template compiles (Llama 3.x, SmolLM2, Qwen); thinking is off.
    Jinja,
}

/// A conversation that the template cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChatError {
    /// No message to render.
    #[error("the conversation is empty")]
    Empty,
    /// Roles are out of the order the template requires.
    #[error("{template:?} needs {rule}; message {index} is {role:?}")]
    Order {
        /// The template.
        template: ChatTemplate,
        /// What the template requires.
        rule: &'static str,
        /// The offending message.
        index: usize,
        /// Its role.
        role: Role,
    },
    /// The model's Jinja template is missing, does not compile or failed to render.
    #[error("{0}")]
    Jinja(String),
}

/// A rendered piece: text to encode, or a token id.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Text(String),
    Token(u32),
    /// A control token by its text (`<|im_start|>`): its id when the vocabulary has it, else text.
    Named(&'static str),
}

impl ChatTemplate {
    /// Every template, for tools.
    pub const ALL: [ChatTemplate; 4] = [Self::Llama2, Self::Zephyr, Self::ChatMl, Self::Plain];

    /// Picks the template from a GGUF's `tokenizer.chat_template` (a Jinja string) or, when it
    /// has none, its `general.name`: LLaMA-2 for `*chat*` models, plain completion otherwise.
    pub fn detect(jinja: Option<&str>, model_name: Option<&str>) -> Self {
        match jinja {
            Some(t) if t.contains("<|im_start|>") => Self::ChatMl,
            Some(t) if t.contains("<|user|>") => Self::Zephyr,
            Some(t) if t.contains("[INST]") => Self::Llama2,
            Some(_) => Self::Plain,
            None if model_name.is_some_and(|n| n.to_ascii_lowercase().contains("chat")) => {
                Self::Llama2
            }
            None => Self::Plain,
        }
    }

    /// The template for a loaded vocabulary: its own Jinja template for a byte-level BPE
    /// vocabulary whose template compiled, else [`detect`](Self::detect) from the Jinja text and
    /// the model's name (SentencePiece files keep the hand-written templates, which match
    /// llama.cpp's ids exactly).
    pub fn for_vocabulary(tok: &Tokenizer, jinja: Option<&str>, model_name: Option<&str>) -> Self {
        if tok.pre_tokenizer().is_some() && tok.chat_jinja().is_some() {
            Self::Jinja
        } else {
            Self::detect(jinja, model_name)
        }
    }

    /// Parses `llama2`, `zephyr`, `chatml`, `plain` or `jinja` (the file's own template).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().replace(['-', '_'], "").as_str() {
            "jinja" => Some(Self::Jinja),
            "llama2" | "llama2chat" => Some(Self::Llama2),
            "zephyr" | "tinyllama" => Some(Self::Zephyr),
            "chatml" => Some(Self::ChatMl),
            "plain" | "completion" | "none" => Some(Self::Plain),
            _ => None,
        }
    }

    /// Strings that mean the model started a new turn by itself: generation stops there.
    pub fn stop_strings(self) -> &'static [&'static str] {
        match self {
            Self::Llama2 => &["[INST]"],
            Self::Zephyr => &["<|user|>", "<|system|>"],
            Self::ChatMl => &["<|im_end|>", "<|im_start|>"],
            Self::Plain | Self::Jinja => &[],
        }
    }

    /// Token ids that end the answer: every end-of-generation token of the vocabulary
    /// ([`Tokenizer::eog_ids`]: EOS, `<|eot_id|>`, `<|im_end|>`…), and `<|im_end|>` for ChatML
    /// whenever the vocabulary has it.
    pub fn stop_tokens(self, tok: &Tokenizer) -> Vec<u32> {
        let mut out = tok.eog_ids().to_vec();
        if self == Self::ChatMl {
            out.extend(tok.token_id("<|im_end|>"));
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the answer's first space is template spacing, not text (it follows `[/INST]`).
    pub fn strips_leading_space(self) -> bool {
        self == Self::Llama2
    }

    /// Renders `messages` and the opening of the assistant's answer as token ids.
    pub fn render(self, tok: &Tokenizer, messages: &[ChatMessage]) -> Result<Vec<u32>, ChatError> {
        if self == Self::Jinja {
            if messages.is_empty() {
                return Err(ChatError::Empty);
            }
            return jinja(tok)?
                .render(tok, messages)
                .map_err(|e| ChatError::Jinja(e.to_string()));
        }
        let segments = self.segments(tok, messages)?;
        let mut out = Vec::new();
        let mut prev_special = true;
        let mut text = String::new();
        let flush = |text: &mut String, prev_special: &mut bool, out: &mut Vec<u32>| {
            if !text.is_empty() {
                tok.encode_fragment(text, *prev_special, out);
                text.clear();
                *prev_special = false;
            }
        };
        for seg in segments {
            let id = match seg {
                Segment::Text(t) => {
                    text.push_str(&t);
                    continue;
                }
                Segment::Token(id) => id,
                Segment::Named(name) => match tok.token_id(name) {
                    Some(id) => id,
                    None => {
                        text.push_str(name);
                        continue;
                    }
                },
            };
            flush(&mut text, &mut prev_special, &mut out);
            out.push(id);
            prev_special = true;
        }
        flush(&mut text, &mut prev_special, &mut out);
        Ok(out)
    }

    /// The same conversation as text, control tokens written out (`<s>`, `</s>`), for logs and
    /// debugging; [`render`](Self::render) is what the model sees.
    pub fn render_text(
        self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
    ) -> Result<String, ChatError> {
        if self == Self::Jinja {
            return jinja(tok)?
                .render_string(tok, messages)
                .map_err(|e| ChatError::Jinja(e.to_string()));
        }
        let piece = |id: u32| tok.piece(id).unwrap_or("").to_owned();
        Ok(self
            .segments(tok, messages)?
            .into_iter()
            .map(|s| match s {
                Segment::Text(t) => t,
                Segment::Token(id) => piece(id),
                Segment::Named(n) => n.to_owned(),
            })
            .collect())
    }

    fn segments(
        self,
        tok: &Tokenizer,
        messages: &[ChatMessage],
    ) -> Result<Vec<Segment>, ChatError> {
        if messages.is_empty() {
            return Err(ChatError::Empty);
        }
        let order = |rule, index: usize| ChatError::Order {
            template: self,
            rule,
            index,
            role: messages[index].role,
        };
        if let Some(i) = messages.iter().skip(1).position(|m| m.role == Role::System) {
            return Err(order("the system message first, and only once", i + 1));
        }
        let (bos, eos) = (Segment::Token(tok.bos_id()), Segment::Token(tok.eos_id()));
        let mut out = Vec::new();
        match self {
            Self::Llama2 => {
                let (system, turns) = match messages[0].role {
                    Role::System => (Some(messages[0].content.trim()), &messages[1..]),
                    _ => (None, messages),
                };
                let offset = messages.len() - turns.len();
                for (i, m) in turns.iter().enumerate() {
                    let want = if i % 2 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    if m.role != want {
                        return Err(order(
                            "alternating user/assistant messages starting with the user",
                            offset + i,
                        ));
                    }
                }
                if turns.len() % 2 == 0 {
                    return Err(order(
                        "the conversation to end with a user message",
                        messages.len() - 1,
                    ));
                }
                for (i, pair) in turns.chunks(2).enumerate() {
                    let mut user = pair[0].content.trim().to_owned();
                    if i == 0
                        && let Some(sys) = system
                    {
                        user = format!("<<SYS>>\n{sys}\n<</SYS>>\n\n{user}");
                    }
                    out.push(bos.clone());
                    match pair.get(1) {
                        Some(answer) => {
                            out.push(Segment::Text(format!(
                                "[INST] {user} [/INST] {} ",
                                answer.content.trim()
                            )));
                            out.push(eos.clone());
                        }
                        None => out.push(Segment::Text(format!("[INST] {user} [/INST]"))),
                    }
                }
            }
            Self::Zephyr => {
                if tok.adds_bos() {
                    out.push(bos);
                }
                for (i, m) in messages.iter().enumerate() {
                    let newline = if i == 0 { "" } else { "\n" };
                    out.push(Segment::Text(format!(
                        "{newline}<|{}|>\n{}",
                        role_name(m.role),
                        m.content
                    )));
                    out.push(eos.clone());
                }
                out.push(Segment::Text("\n<|assistant|>\n".into()));
            }
            Self::ChatMl => {
                if tok.adds_bos() {
                    out.push(bos);
                }
                for (i, m) in messages.iter().enumerate() {
                    if i > 0 {
                        out.push(Segment::Text("\n".into()));
                    }
                    out.push(Segment::Named("<|im_start|>"));
                    out.push(Segment::Text(format!(
                        "{}\n{}",
                        role_name(m.role),
                        m.content
                    )));
                    out.push(Segment::Named("<|im_end|>"));
                }
                out.push(Segment::Text("\n".into()));
                out.push(Segment::Named("<|im_start|>"));
                out.push(Segment::Text("assistant\n".into()));
            }
            Self::Plain => {
                if tok.adds_bos() {
                    out.push(bos);
                }
                // The system text on its own line, then each turn as a paragraph.
                let mut text = String::new();
                for (i, m) in messages.iter().enumerate() {
                    if i > 0 {
                        text.push_str(if messages[i - 1].role == Role::System {
                            "\n"
                        } else {
                            "\n\n"
                        });
                    }
                    text.push_str(&m.content);
                }
                out.push(Segment::Text(text));
            }
            // Rendered by `render` and `render_text` before they ask for segments.
            Self::Jinja => return Err(jinja(tok).err().unwrap_or(ChatError::Empty)),
        }
        Ok(out)
    }
}

/// The vocabulary's compiled Jinja template, or the error that there is none.
fn jinja(tok: &Tokenizer) -> Result<&crate::engine::jinja::JinjaChat, ChatError> {
    tok.chat_jinja().ok_or_else(|| {
        ChatError::Jinja(
            "the model has no usable chat template (tokenizer.chat_template): pick llama2, \
             zephyr, chatml or plain"
                .into(),
        )
    })
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}
