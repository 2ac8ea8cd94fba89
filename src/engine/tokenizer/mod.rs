//! The LLaMA (SentencePiece) tokenizer, built from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! It reproduces llama.cpp's token ids exactly. Text from players or story files is encoded with
//! [`Tokenizer::encode`], which never produces control tokens: typing `</s>`, `<s>`, `[INST]` or
//! `<<SYS>>` gives ordinary text tokens. Only [`Tokenizer::encode_trusted`] parses special tokens.

mod spm;
mod stream;

use std::collections::HashMap;

use crate::engine::gguf::{GgufError, MetadataExt, Value};

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
    /// The file's tokenizer is not SentencePiece/LLaMA.
    #[error(
        "tokenizer model `{0}` is not supported: only `llama` (SentencePiece) vocabularies are"
    )]
    UnsupportedModel(String),
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

/// A SentencePiece/LLaMA tokenizer.
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
    add_bos: bool,
    add_eos: bool,
    add_space_prefix: bool,
}

const SPACE: &str = "\u{2581}";

impl Tokenizer {
    /// Builds the tokenizer from GGUF metadata (a [`GgufFile`](crate::engine::gguf::GgufFile) or
    /// its header).
    pub fn from_gguf(md: &impl MetadataExt) -> Result<Self, TokenizerError> {
        let model = md
            .opt_str("tokenizer.ggml.model")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        if model != "llama" {
            return Err(TokenizerError::UnsupportedModel(model.to_owned()));
        }
        let tokens = md
            .opt_array("tokenizer.ggml.tokens")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.tokens"))?;
        let n = tokens.len();
        if n == 0 {
            return Err(TokenizerError::EmptyVocab);
        }
        let pieces = tokens
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    crate::engine::gguf::value_error(
                        "tokenizer.ggml.tokens",
                        "an array of strings",
                        v,
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let scores = per_token(md, "tokenizer.ggml.scores", n, |v| v.as_f32(), 0.0)?;
        let kinds = per_token(
            md,
            "tokenizer.ggml.token_type",
            n,
            |v| v.as_i64().map(TokenKind::from_gguf),
            TokenKind::Normal,
        )?;
        let id = |key: &'static str, default: u64| -> Result<u32, TokenizerError> {
            let id = md.opt_u64(key)?.unwrap_or(default);
            if id >= n as u64 {
                return Err(TokenizerError::IdOutOfRange { key, id, vocab: n });
            }
            Ok(id as u32)
        };
        let bos = id("tokenizer.ggml.bos_token_id", 1)?;
        let eos = id("tokenizer.ggml.eos_token_id", 2)?;
        let unk = id("tokenizer.ggml.unknown_token_id", 0)?;
        if let Some(pad) = md.opt_u64("tokenizer.ggml.padding_token_id")? {
            // u32::MAX (-1) means "no padding token", as llama.cpp's LLAMA_TOKEN_NULL.
            if pad >= n as u64 && pad != u64::from(u32::MAX) {
                return Err(TokenizerError::IdOutOfRange {
                    key: "tokenizer.ggml.padding_token_id",
                    id: pad,
                    vocab: n,
                });
            }
        }
        let mut exact = HashMap::with_capacity(n);
        let mut mergeable = HashMap::with_capacity(n);
        let mut byte_tokens = [None; 256];
        let mut specials = Vec::new();
        for (i, (piece, kind)) in pieces.iter().zip(&kinds).enumerate() {
            let i = i as u32;
            exact.insert(piece.clone(), i);
            match kind {
                TokenKind::Byte => {
                    if let Some(b) = parse_byte_piece(piece) {
                        byte_tokens[b as usize] = Some(i);
                    }
                }
                TokenKind::Control | TokenKind::Unknown => {}
                _ => {
                    mergeable.insert(piece.clone(), i);
                }
            }
            if matches!(kind, TokenKind::UserDefined | TokenKind::Control) && !piece.is_empty() {
                specials.push((piece.clone(), i, *kind));
            }
        }
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        Ok(Self {
            pieces,
            scores,
            kinds,
            exact,
            mergeable,
            byte_tokens,
            specials,
            bos,
            eos,
            unk,
            add_bos: md.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(true),
            add_eos: md
                .opt_bool("tokenizer.ggml.add_eos_token")?
                .unwrap_or(false),
            add_space_prefix: md
                .opt_bool("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(true),
        })
    }

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

    /// Splits text at user-defined pieces (always) and control tokens (when `parse_special`).
    fn partition<'t>(&self, text: &'t str, parse_special: bool) -> Vec<Fragment<'t>> {
        let mut fragments = vec![Fragment::Text(text)];
        for (piece, id, kind) in &self.specials {
            if *kind == TokenKind::Control && !parse_special {
                continue;
            }
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
            TokenKind::Normal | TokenKind::Unused => piece.replace(SPACE, " ").into_bytes(),
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

fn per_token<T: Clone>(
    md: &impl MetadataExt,
    key: &'static str,
    n: usize,
    get: impl Fn(&Value) -> Option<T>,
    default: T,
) -> Result<Vec<T>, TokenizerError> {
    let Some(values) = md.opt_array(key)? else {
        return Ok(vec![default; n]);
    };
    if values.len() != n {
        return Err(TokenizerError::LengthMismatch {
            key,
            len: values.len(),
            vocab: n,
        });
    }
    values
        .iter()
        .map(|v| {
            get(v).ok_or_else(|| {
                TokenizerError::Metadata(crate::engine::gguf::value_error(
                    key,
                    "a per-token array of numbers",
                    v,
                ))
            })
        })
        .collect()
}
