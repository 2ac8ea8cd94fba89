//! Building a [`Tokenizer`] from a GGUF file's `tokenizer.ggml.*` metadata, with llama.cpp's
//! defaults for each vocabulary type.

use std::collections::HashMap;

use super::bpe::Bpe;
use super::pretok::PreTokenizer;
use super::{TokenKind, Tokenizer, TokenizerError, parse_byte_piece};
use crate::engine::gguf::{MetadataExt, Value};

/// Token texts that end a turn in the chat formats of common models (llama.cpp's list):
/// generation stops at them even when the file names another EOS.
const END_OF_GENERATION: [&str; 9] = [
    "<|eot_id|>",
    "<|eom_id|>",
    "<|im_end|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
    "<EOT>",
    "<end_of_utterance>",
];

impl Tokenizer {
    /// Builds the tokenizer from GGUF metadata (a [`GgufFile`](crate::engine::gguf::GgufFile) or
    /// its header): `tokenizer.ggml.model` `llama` (SentencePiece) or `gpt2` (byte-level BPE
    /// with one of the pre-tokenizers of [`PreTokenizer`], named by `tokenizer.ggml.pre`).
    pub fn from_gguf(md: &impl MetadataExt) -> Result<Self, TokenizerError> {
        let model = md
            .opt_str("tokenizer.ggml.model")?
            .ok_or(TokenizerError::MissingKey("tokenizer.ggml.model"))?;
        let pre = match model {
            "llama" => None,
            "gpt2" => {
                let name = match md.opt_str("tokenizer.ggml.pre")? {
                    Some(name) => name,
                    None => {
                        // As llama.cpp: an old conversion; its words may be cut differently
                        // from the model's own tokenizer.
                        tracing::warn!(
                            "the GGUF file names no pre-tokenizer (tokenizer.ggml.pre): using \
                             llama.cpp's `default`; ids may differ from the model's own \
                             tokenizer, reconvert the model if answers look wrong"
                        );
                        "default"
                    }
                };
                Some(
                    PreTokenizer::from_name(name)
                        .ok_or_else(|| TokenizerError::UnsupportedPreTokenizer(name.to_owned()))?,
                )
            }
            other => return Err(TokenizerError::UnsupportedModel(other.to_owned())),
        };
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
        let mut kinds = per_token(
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
        // llama.cpp's defaults: SentencePiece <s>=1 </s>=2 <unk>=0; BPE (GPT-2) <|endoftext|>=11
        // for both ends, clamped here to the vocabulary.
        let bpe_default = 11.min(n as u64 - 1);
        let (bos, eos) = match pre {
            None => (
                id("tokenizer.ggml.bos_token_id", 1)?,
                id("tokenizer.ggml.eos_token_id", 2)?,
            ),
            Some(_) => (
                id("tokenizer.ggml.bos_token_id", bpe_default)?,
                id("tokenizer.ggml.eos_token_id", bpe_default)?,
            ),
        };
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
        let mut eog = vec![eos];
        for key in ["tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"] {
            if let Some(v) = md.opt_u64(key)?
                && v < n as u64
            {
                eog.push(v as u32);
            }
        }
        for (i, piece) in pieces.iter().enumerate() {
            if END_OF_GENERATION.contains(&piece.as_str()) {
                eog.push(i as u32);
            }
        }
        eog.sort_unstable();
        eog.dedup();
        // An end-of-generation token is a control token, whatever the file says (llama.cpp
        // overrides the type too): text never produces it, output never shows it.
        for &e in &eog {
            if let Some(k) = kinds.get_mut(e as usize)
                && matches!(k, TokenKind::Normal | TokenKind::UserDefined)
            {
                *k = TokenKind::Control;
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
        let bpe = match pre {
            None => None,
            Some(pre) => {
                let merges = md
                    .opt_array("tokenizer.ggml.merges")?
                    .ok_or(TokenizerError::MissingKey("tokenizer.ggml.merges"))?;
                let merges = merges
                    .iter()
                    .map(|v| {
                        v.as_str().ok_or_else(|| {
                            crate::engine::gguf::value_error(
                                "tokenizer.ggml.merges",
                                "an array of strings",
                                v,
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Box::new(Bpe::new(pre, merges.into_iter(), |s| {
                    exact.get(s).copied()
                })))
            }
        };
        let is_bpe = bpe.is_some();
        let chat_jinja = match md.opt_str("tokenizer.chat_template")? {
            Some(source) => match crate::engine::jinja::JinjaChat::new(source) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("{e}; the hand-written templates will be used");
                    None
                }
            },
            None => None,
        };
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
            eog,
            add_bos: md.opt_bool("tokenizer.ggml.add_bos_token")?.unwrap_or(
                // llama.cpp adds BOS for SentencePiece and Llama 3's BPE, not for other BPE.
                pre.is_none_or(|p| p == PreTokenizer::Llama3),
            ),
            add_eos: md
                .opt_bool("tokenizer.ggml.add_eos_token")?
                .unwrap_or(false),
            add_space_prefix: md
                .opt_bool("tokenizer.ggml.add_space_prefix")?
                .unwrap_or(!is_bpe),
            bpe,
            chat_jinja,
        })
    }
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
