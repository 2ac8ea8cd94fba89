//! Incremental detokenisation: text comes out as soon as it is valid UTF-8.

use super::Tokenizer;

/// Turns a stream of token ids into text chunks that never split a character.
///
/// Byte-fallback tokens (`<0xE6>` `<0x97>` `<0xA5>`) are buffered until they form a whole UTF-8
/// character; a byte sequence that can never become valid is emitted as U+FFFD. With
/// `strip_leading_space`, the single space SentencePiece puts before the first word is dropped.
#[derive(Debug, Clone)]
pub struct StreamDecoder {
    pending: Vec<u8>,
    strip_leading_space: bool,
    emitted_any: bool,
}

impl StreamDecoder {
    /// A decoder; `strip_leading_space` drops one leading space from the first text emitted.
    pub fn new(strip_leading_space: bool) -> Self {
        Self {
            pending: Vec::new(),
            strip_leading_space,
            emitted_any: false,
        }
    }

    /// Feeds one token and returns the text that became complete (possibly empty).
    pub fn push(&mut self, tokenizer: &Tokenizer, id: u32) -> String {
        self.pending.extend_from_slice(&tokenizer.piece_bytes(id));
        self.drain(false)
    }

    /// Flushes what is left; incomplete characters become U+FFFD.
    pub fn finish(&mut self) -> String {
        self.drain(true)
    }

    /// Bytes held back, waiting for the rest of a character.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    fn drain(&mut self, flush: bool) -> String {
        let mut out = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    out.push_str(s);
                    rest = &[];
                    break;
                }
                Err(e) => {
                    let (valid, tail) = rest.split_at(e.valid_up_to());
                    // SAFETY-free: `valid` was just checked by from_utf8.
                    out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match e.error_len() {
                        Some(n) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &tail[n..];
                        }
                        None if flush => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = &[];
                            break;
                        }
                        None => {
                            rest = tail;
                            break;
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        if !self.emitted_any && !out.is_empty() {
            self.emitted_any = true;
            if self.strip_leading_space && out.starts_with(' ') {
                out.remove(0);
            }
        }
        out
    }
}
