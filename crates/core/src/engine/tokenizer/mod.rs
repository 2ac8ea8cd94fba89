//! Tokenizers built from a GGUF file's `tokenizer.ggml.*` metadata: SentencePiece (LLaMA-2,
//! TinyLlama) and byte-level BPE (Llama 3.x, SmolLM2, Qwen2.5/Qwen3, GPT-2).
//!
//! They reproduce llama.cpp's token ids exactly. Text from players or story files is encoded with
//! [`Tokenizer::encode`], which never produces control tokens: typing `</s>`, `<s>`, `[INST]`,
//! `<|im_start|>` or `<|eot_id|>` gives ordinary text tokens. Only
//! [`Tokenizer::encode_trusted`] parses special tokens.

mod bpe;
mod load;
mod pretok;
mod spm;
mod stream;

use std::collections::HashMap;

use crate::engine::gguf::GgufError;

pub use pretok::PreTokenizer;
pub use stream::StreamDecoder;

/// What a vocabulary entry is (`tokenizer.ggml.token_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An ordinary piece of text.
    Normal,
    /// The unknown token.
    Unknown,
    /// A control token such as `<s>` or `</s>`: never produced from text.
    Control,
    /// A piece always matched as a whole, even in untrusted text.
    UserDefined,
    /// A reserved slot.
    Unused,
    /// A byte-fallback token `<0xNN>`.
    Byte,
}

impl TokenKind {
    fn from_gguf(v: i64) -> Self {
        match v {
            2 => Self::Unknown,
            3 => Self::Control,
            4 => Self::UserDefined,
            5 => Self::Unused,
            6 => Self::Byte,
            _ => Self::Normal,
        }
    }
}

/// Errors building a tokenizer from GGUF metadata.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A required key is missing.
    #[error("tokenizer metadata `{0}` is missing from the GGUF file")]
    MissingKey(&'static str),
    /// The file's tokenizer is neither SentencePiece nor byte-level BPE.
    #[error(
        "tokenizer model `{0}` is not supported: only `llama` (SentencePiece) and `gpt2` \
         (byte-level BPE) vocabularies are"
    )]
    UnsupportedModel(String),
    /// A byte-level BPE vocabulary names a pre-tokenizer we do not have: its words would be
    /// cut differently from llama.cpp's, so its ids would be silently wrong.
    #[error(
        "pre-tokenizer `{0}` (`tokenizer.ggml.pre`) is not supported: known are llama-bpe \
         (Llama 3), qwen2, smollm, gpt-2, default and their aliases"
    )]
    UnsupportedPreTokenizer(String),
    /// A metadata value has the wrong type.
    #[error(transparent)]
    Metadata(#[from] GgufError),
    /// A per-token array does not have one entry per token.
    #[error("`{key}` has {len} entries but the vocabulary has {vocab} tokens")]
    LengthMismatch {
        /// The array's key.
        key: &'static str,
        /// Its length.
        len: usize,
        /// The number of tokens.
        vocab: usize,
    },
    /// A special token id points outside the vocabulary.
    #[error("`{key}` is token id {id}, but the vocabulary has only {vocab} tokens")]
    IdOutOfRange {
        /// The key naming the id.
        key: &'static str,
        /// The id.
        id: u64,
        /// The number of tokens.
        vocab: usize,
    },
    /// The vocabulary is empty.
    #[error("the vocabulary (`tokenizer.ggml.tokens`) is empty")]
    EmptyVocab,
}

/// A SentencePiece or byte-level BPE tokenizer.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    pieces: Vec<String>,
    scores: Vec<f32>,
    kinds: Vec<TokenKind>,
    /// Text → id, for every token (later duplicates win, as in llama.cpp).
    exact: HashMap<String, u32>,
    /// Text → id for the pieces segmentation may produce (no control/unknown/byte tokens).
    mergeable: HashMap<String, u32>,
    byte_tokens: [Option<u32>; 256],
    /// User-defined pieces and control tokens, longest first, for partitioning text.
    specials: Vec<(String, u32, TokenKind)>,
    bos: u32,
    eos: u32,
    unk: u32,
    /// Every token that ends generation (EOS, end of turn, end of message), sorted.
    eog: Vec<u32>,
    /// The merges of a byte-level BPE vocabulary (`None`: SentencePiece).
    bpe: Option<Box<bpe::Bpe>>,
    /// The file's chat template (`tokenizer.chat_template`), when it compiled.
    chat_jinja: Option<crate::engine::jinja::JinjaChat>,
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

const SPACE: &str = "\u{2581}";

impl Tokenizer {
    /// Number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.pieces.len()
    }

    /// The beginning-of-sequence token.
    pub fn bos_id(&self) -> u32 {
        self.bos
    }

    /// The end-of-sequence token.
    pub fn eos_id(&self) -> u32 {
        self.eos
    }

    /// Every token that ends generation, sorted: EOS and the vocabulary's end-of-turn and
    /// end-of-message tokens (`<|eot_id|>`, `<|eom_id|>`, `<|im_end|>`, `<|end_of_text|>`…).
    pub fn eog_ids(&self) -> &[u32] {
        &self.eog
    }

    /// Whether `id` ends generation (see [`eog_ids`](Self::eog_ids)).
    pub fn is_eog(&self, id: u32) -> bool {
        self.eog.binary_search(&id).is_ok()
    }

    /// The file's own chat template (`tokenizer.chat_template`), compiled; `None` when the file
    /// has none or it does not compile (a warning is logged).
    pub fn chat_jinja(&self) -> Option<&crate::engine::jinja::JinjaChat> {
        self.chat_jinja.as_ref()
    }

    /// The pre-tokenizer of a byte-level BPE vocabulary (`None`: SentencePiece).
    pub fn pre_tokenizer(&self) -> Option<PreTokenizer> {
        self.bpe.as_ref().map(|b| b.pre)
    }

    /// The texts of the control and user-defined tokens (`<|im_start|>`, `</s>`…): what a
    /// player must not be able to spell into a prompt.
    pub fn special_texts(&self) -> impl Iterator<Item = &str> {
        self.specials.iter().map(|(text, _, _)| text.as_str())
    }

    /// Whether [`encode`](Self::encode) with `add_special` starts with BOS.
    pub fn adds_bos(&self) -> bool {
        self.add_bos
    }

    /// The raw vocabulary entry of `id` (with `▁` for spaces), if in range.
    pub fn piece(&self, id: u32) -> Option<&str> {
        self.pieces.get(id as usize).map(String::as_str)
    }

    /// The kind of `id`, if in range.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// The id whose vocabulary entry is exactly `piece` (any kind, e.g. `<|im_start|>`).
    pub fn token_id(&self, piece: &str) -> Option<u32> {
        self.exact.get(piece).copied()
    }

    fn score(&self, id: u32) -> f32 {
        self.scores.get(id as usize).copied().unwrap_or(0.0)
    }

    fn merge_lookup(&self, text: &str) -> Option<u32> {
        self.mergeable.get(text).copied()
    }

    fn byte_token(&self, b: u8) -> u32 {
        self.byte_tokens[b as usize]
            .or_else(|| {
                (b as char)
                    .is_ascii()
                    .then(|| self.merge_lookup(&(b as char).to_string()))
                    .flatten()
            })
            .unwrap_or(self.unk)
    }

    /// Encodes untrusted text: special tokens are **not** parsed, so `</s>` or `<s>` in the text
    /// become ordinary pieces. With `add_special`, BOS (and EOS) are added as the vocabulary asks.
    pub fn encode(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.encode_impl(text, add_special, false)
    }

    /// Encodes trusted text (templates, tools): control tokens written as text (`</s>`) become
    /// their ids, as llama.cpp's `parse_special = true`.
    pub fn encode_trusted(&self, text: &str, add_special: bool) -> Vec<u32> {
        self.encode_impl(text, add_special, true)
    }

    /// Encodes one piece of plain text with no BOS; `space_prefix` adds SentencePiece's leading
    /// space (as at the start of a sequence or after a control token).
    pub fn encode_fragment(&self, text: &str, space_prefix: bool, out: &mut Vec<u32>) {
        if text.is_empty() {
            return;
        }
        if let Some(bpe) = &self.bpe {
            bpe.encode(text, |w| self.exact.get(w).copied(), out);
            return;
        }
        let mut escaped = String::with_capacity(text.len() * 2 + 3);
        if space_prefix && self.add_space_prefix {
            escaped.push_str(SPACE);
        }
        for ch in text.chars() {
            if ch == ' ' {
                escaped.push_str(SPACE);
            } else {
                escaped.push(ch);
            }
        }
        spm::segment(self, &escaped, out);
    }

    /// [`encode_fragment`](Self::encode_fragment) into a new vector.
    pub fn encode_fragment_vec(&self, text: &str, space_prefix: bool) -> Vec<u32> {
        let mut out = Vec::new();
        self.encode_fragment(text, space_prefix, &mut out);
        out
    }

    fn encode_impl(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && self.add_bos {
            out.push(self.bos);
        }
        let mut prev_special = true;
        for fragment in self.partition(text, parse_special) {
            match fragment {
                Fragment::Text(t) => {
                    self.encode_fragment(t, prev_special, &mut out);
                    prev_special = false;
                }
                Fragment::Token(id) => {
                    out.push(id);
                    prev_special = true;
                }
            }
        }
        if add_special && self.add_eos {
            out.push(self.eos);
        }
        out
    }

    /// Splits trusted text (`parse_special`) at its control tokens and user-defined pieces.
    /// Untrusted text is one fragment: unlike llama.cpp, which matches user-defined pieces even
    /// then, no special token can be spelled by a player (Qwen's `<think>` and `<tool_call>`
    /// are user-defined).
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        if !parse_special {
            return vec![Fragment::Text(text)];
        }
        let mut fragments = vec![Fragment::Text(text)];
        for (piece, id, _) in &self.specials {
            let mut next = Vec::with_capacity(fragments.len());
            for f in fragments {
                match f {
                    Fragment::Text(t) if t.contains(piece.as_str()) => {
                        let mut rest = t;
                        while let Some(at) = rest.find(piece.as_str()) {
                            if at > 0 {
                                next.push(Fragment::Text(&rest[..at]));
                            }
                            next.push(Fragment::Token(*id));
                            rest = &rest[at + piece.len()..];
                        }
                        if !rest.is_empty() {
                            next.push(Fragment::Text(rest));
                        }
                    }
                    other => next.push(other),
                }
            }
            fragments = next;
        }
        fragments.retain(|f| !matches!(f, Fragment::Text("")));
        fragments
    }

    /// The bytes token `id` stands for in output text: spaces for `▁`, the byte of a `<0xNN>`
    /// token, nothing for control tokens, `▅` for the unknown token. Out-of-range ids give
    /// nothing.
    pub fn piece_bytes(&self, id: u32) -> Vec<u8> {
        let (Some(piece), Some(kind)) = (self.pieces.get(id as usize), self.kinds.get(id as usize))
        else {
            return Vec::new();
        };
        match kind {
            TokenKind::Normal | TokenKind::Unused => match &self.bpe {
                Some(bpe) => {
                    let mut out = Vec::with_capacity(piece.len());
                    bpe.decode_piece(piece, &mut out);
                    out
                }
                None => piece.replace(SPACE, " ").into_bytes(),
            },
            TokenKind::UserDefined => piece.clone().into_bytes(),
            TokenKind::Control => Vec::new(),
            TokenKind::Unknown => "\u{2585}".as_bytes().to_vec(),
            TokenKind::Byte => parse_byte_piece(piece).map(|b| vec![b]).unwrap_or_default(),
        }
    }

    /// Decodes ids to text as SentencePiece does: control tokens are skipped and the leading
    /// space of the first piece is removed; invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut stream = StreamDecoder::new(self.add_space_prefix);
        let mut text: String = ids.iter().map(|&id| stream.push(self, id)).collect();
        text.push_str(&stream.finish());
        text
    }

    /// Concatenates the pieces of `ids` without removing the leading space (llama.cpp's
    /// `token_to_piece` for each id, joined).
    pub fn decode_pieces(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids.iter().flat_map(|&id| self.piece_bytes(id)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fragment<'t> {
    Text(&'t str),
    Token(u32),
}

fn parse_byte_piece(piece: &str) -> Option<u8> {
    let hex = piece.strip_prefix("<0x")?.strip_suffix('>')?;
    if hex.len() != 2 {
        return None;
    }
    u8::from_str_radix(hex, 16).ok()
}
