//! Whisper's tokenizer, decoding side: `tokenizer.json`'s byte-level BPE vocabulary and
//! special tokens, enough to turn generated ids back into text.

use std::collections::HashMap;

/// Token ids to text.
#[derive(Debug, Clone)]
pub struct WhisperTokens {
    pieces: HashMap<u32, String>,
    special: HashMap<String, u32>,
    bytes: HashMap<char, u8>,
}

/// GPT-2's printable stand-ins for bytes, reversed.
fn byte_decoder() -> HashMap<char, u8> {
    let mut bytes: Vec<u32> = (u32::from(b'!')..=u32::from(b'~'))
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = bytes.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !bytes.contains(&b) {
            bytes.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    bytes
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| Some((char::from_u32(c)?, b as u8)))
        .collect()
}

impl WhisperTokens {
    /// Reads a Hugging Face `tokenizer.json` (text).
    pub fn from_json(text: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let vocab = v["model"]["vocab"]
            .as_object()
            .ok_or("no model.vocab object")?;
        let mut pieces = HashMap::with_capacity(vocab.len() + 1700);
        for (piece, id) in vocab {
            let id = id.as_u64().ok_or("a vocabulary id is not a number")?;
            pieces.insert(id as u32, piece.clone());
        }
        let mut special = HashMap::new();
        for t in v["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(id), Some(content)) = (t["id"].as_u64(), t["content"].as_str()) {
                pieces.insert(id as u32, content.to_owned());
                special.insert(content.to_owned(), id as u32);
            }
        }
        Ok(Self {
            pieces,
            special,
            bytes: byte_decoder(),
        })
    }

    /// A special token's id (`<|endoftext|>`).
    pub fn special(&self, name: &str) -> Option<u32> {
        self.special.get(name).copied()
    }

    /// Text of ordinary tokens (special ones are left out).
    pub fn decode(&self, ids: &[u32]) -> String {
        let bytes: Vec<u8> = ids
            .iter()
            .filter_map(|id| self.pieces.get(id))
            .filter(|p| !self.special.contains_key(*p))
            .flat_map(|p| p.chars().filter_map(|c| self.bytes.get(&c).copied()))
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}
