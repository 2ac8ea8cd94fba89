//! Our SentencePiece vocabulary as llguidance's token trie: each token as the bytes it adds to
//! the output text, control tokens as special tokens (never produced by a grammar's text).

use std::sync::Arc;

use llguidance::toktrie::{ApproximateTokEnv, TokEnv, TokRxInfo, TokTrie};

use super::ConstraintError;
use crate::engine::tokenizer::{TokenKind, Tokenizer};

/// The token environment for `vocab_size` logits (the model's; ids past the tokenizer's
/// vocabulary are never allowed).
pub(super) fn token_env(tok: &Tokenizer, vocab_size: usize) -> Result<TokEnv, ConstraintError> {
    if tok.vocab_size() > vocab_size {
        return Err(ConstraintError::Vocabulary(format!(
            "the tokenizer has {} tokens but the model only {vocab_size} logits",
            tok.vocab_size()
        )));
    }
    let words: Vec<Vec<u8>> = (0..vocab_size as u32).map(|id| word(tok, id)).collect();
    let mut info = TokRxInfo::new(vocab_size as u32, tok.eos_id());
    info.tok_bos = Some(tok.bos_id());
    let trie = TokTrie::from(&info, &words);
    // Not canonical: llguidance tokenizes forced text greedily from the trie and never assumes
    // it matches what our encoder would produce.
    Ok(Arc::new(ApproximateTokEnv::new(trie)))
}

/// The bytes `id` stands for; control, unknown and unused tokens become special tokens
/// (`\xff` + piece) so that no grammar text can produce them.
fn word(tok: &Tokenizer, id: u32) -> Vec<u8> {
    match (tok.kind(id), tok.piece(id)) {
        (Some(TokenKind::Normal | TokenKind::UserDefined | TokenKind::Byte), _) => {
            tok.piece_bytes(id)
        }
        (Some(_), Some(piece)) => {
            let mut w = vec![TokTrie::SPECIAL_TOKEN_MARKER];
            w.extend_from_slice(piece.as_bytes());
            w
        }
        _ => Vec::new(),
    }
}
