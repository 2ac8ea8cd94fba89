//! Byte-level BPE (GPT-2 style; Llama 3, SmolLM2, Qwen2.5/Qwen3): text is cut into words by the
//! vocabulary's [`PreTokenizer`], each byte of a word becomes a printable stand-in character,
//! and adjacent symbols merge by the rank of their pair in `tokenizer.ggml.merges`, lowest rank
//! first (leftmost on ties), as llama.cpp merges them.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use super::pretok::PreTokenizer;

/// The merge rules and byte alphabet of a byte-level BPE vocabulary.
#[derive(Debug, Clone)]
pub(crate) struct Bpe {
    pub(crate) pre: PreTokenizer,
    /// `(left id, right id)` → `(rank, merged id)`, for the merges whose three strings are
    /// tokens (in a well-formed vocabulary, all of them).
    ranks: HashMap<(u32, u32), (u32, u32)>,
    /// The stand-in character of each byte.
    byte_char: [char; 256],
    /// The token of each byte's stand-in character, if the vocabulary has it.
    byte_token: [Option<u32>; 256],
    /// The byte of each stand-in character (indexed by code point, all below U+0144).
    char_byte: Vec<Option<u8>>,
    /// The tokens of the single ASCII characters, for symbols that are no token (llama.cpp's
    /// fallback).
    ascii_token: [Option<u32>; 128],
}

/// The printable character GPT-2's byte encoder gives byte `b`: printable Latin-1 bytes stand
/// for themselves, the others (controls, space, NBSP, soft hyphen) take U+0100 onwards in order.
fn byte_chars() -> [char; 256] {
    let mut out = ['\0'; 256];
    let mut next = 256u32;
    for (b, slot) in out.iter_mut().enumerate() {
        let printable = matches!(b, 0x21..=0x7E | 0xA1..=0xAC | 0xAE..=0xFF);
        let code = if printable {
            b as u32
        } else {
            next += 1;
            next - 1
        };
        *slot = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    out
}

impl Bpe {
    /// Builds the merge table from the `merges` strings (`"left right"`, rank = index), with
    /// `token` looking a string up in the vocabulary.
    pub(crate) fn new<'m>(
        pre: PreTokenizer,
        merges: impl Iterator<Item = &'m str>,
        token: impl Fn(&str) -> Option<u32>,
    ) -> Self {
        let byte_char = byte_chars();
        let mut byte_token = [None; 256];
        for (b, c) in byte_char.iter().enumerate() {
            byte_token[b] = token(c.encode_utf8(&mut [0; 4]));
        }
        let mut ascii_token = [None; 128];
        for (b, slot) in ascii_token.iter_mut().enumerate() {
            *slot = token(char::from(b as u8).encode_utf8(&mut [0; 4]));
        }
        let mut char_byte = vec![None; 0x144];
        for (b, c) in byte_char.iter().enumerate() {
            if let Some(slot) = char_byte.get_mut(*c as usize) {
                *slot = u8::try_from(b).ok();
            }
        }
        let mut ranks = HashMap::new();
        let mut joined = String::new();
        for (rank, m) in merges.enumerate() {
            // The separator is the first space after the first character (llama.cpp).
            let Some(first_len) = m.chars().next().map(char::len_utf8) else {
                continue;
            };
            let Some(at) = m[first_len..].find(' ').map(|i| i + first_len) else {
                continue;
            };
            let (left, right) = (&m[..at], &m[at + 1..]);
            joined.clear();
            joined.push_str(left);
            joined.push_str(right);
            if let (Some(l), Some(r), Some(j)) = (token(left), token(right), token(&joined)) {
                // The first (lowest) rank of a pair wins, as in llama.cpp's map.
                ranks.entry((l, r)).or_insert((rank as u32, j));
            }
        }
        Self {
            pre,
            ranks,
            byte_char,
            byte_token,
            char_byte,
            ascii_token,
        }
    }

    /// The byte a stand-in character encodes, if it is one.
    pub(crate) fn char_byte(&self, c: char) -> Option<u8> {
        self.char_byte.get(c as usize).copied().flatten()
    }

    /// Appends the bytes a normal token's text stands for (characters that are no stand-in are
    /// kept as they are).
    pub(crate) fn decode_piece(&self, piece: &str, out: &mut Vec<u8>) {
        for c in piece.chars() {
            match self.char_byte(c) {
                Some(b) => out.push(b),
                None => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }

    /// Encodes plain text (no special tokens) with `whole` looking up a word's stand-in
    /// string as one token (for pre-tokenizers that skip merges on whole tokens).
    pub(crate) fn encode(
        &self,
        text: &str,
        whole: impl Fn(&str) -> Option<u32>,
        out: &mut Vec<u32>,
    ) {
        let mut words = Vec::with_capacity(text.len() / 4 + 1);
        self.pre.split(text, &mut words);
        let mut scratch = Scratch::default();
        for range in words {
            let word = &text.as_bytes()[range];
            if self.pre.ignores_merges() {
                scratch.encoded.clear();
                scratch
                    .encoded
                    .extend(word.iter().map(|&b| self.byte_char[b as usize]));
                if let Some(id) = whole(&scratch.encoded) {
                    out.push(id);
                    continue;
                }
            }
            self.merge_word(word, &mut scratch, out);
        }
    }

    fn merge_word(&self, word: &[u8], s: &mut Scratch, out: &mut Vec<u32>) {
        s.syms.clear();
        s.syms.extend(word.iter().enumerate().map(|(i, &b)| Sym {
            id: self.byte_token[b as usize],
            start: i,
            end: i + 1,
            prev: i.checked_sub(1),
            next: (i + 1 < word.len()).then_some(i + 1),
        }));
        s.queue.clear();
        for i in 1..s.syms.len() {
            self.push_pair(&s.syms, i - 1, i, &mut s.queue);
        }
        while let Some(Reverse((_, left, right, left_id, right_id, merged))) = s.queue.pop() {
            let (l, r) = (&s.syms[left], &s.syms[right]);
            // A pair is stale once either side has merged with something else.
            if l.end == l.start
                || r.end == r.start
                || l.id != Some(left_id)
                || r.id != Some(right_id)
            {
                continue;
            }
            let (r_end, r_next) = (r.end, r.next);
            let l = &mut s.syms[left];
            l.id = Some(merged);
            l.end = r_end;
            l.next = r_next;
            let prev = l.prev;
            let r = &mut s.syms[right];
            r.start = r.end;
            if let Some(n) = r_next {
                s.syms[n].prev = Some(left);
            }
            if let Some(p) = prev {
                self.push_pair(&s.syms, p, left, &mut s.queue);
            }
            if let Some(n) = r_next {
                self.push_pair(&s.syms, left, n, &mut s.queue);
            }
        }
        for sym in s.syms.iter().filter(|s| s.end > s.start) {
            match sym.id {
                Some(id) => out.push(id),
                // No token for this symbol: the single ASCII characters of its stand-in text
                // that are tokens, as llama.cpp falls back.
                None => {
                    for &b in &word[sym.start..sym.end] {
                        let mut buf = [0; 4];
                        let stand_in = self.byte_char[b as usize].encode_utf8(&mut buf);
                        for &u in stand_in.as_bytes() {
                            if let Some(id) =
                                self.ascii_token.get(usize::from(u)).copied().flatten()
                            {
                                out.push(id);
                            }
                        }
                    }
                }
            }
        }
    }

    fn push_pair(&self, syms: &[Sym], left: usize, right: usize, queue: &mut Queue) {
        let (Some(l), Some(r)) = (syms[left].id, syms[right].id) else {
            return;
        };
        if let Some(&(rank, merged)) = self.ranks.get(&(l, r)) {
            queue.push(Reverse((rank, left, right, l, r, merged)));
        }
    }
}

/// A symbol of a word being merged: bytes `start..end` of the word (empty once merged into
/// its left neighbour), its token, and its neighbours.
#[derive(Debug, Clone, Copy)]
struct Sym {
    id: Option<u32>,
    start: usize,
    end: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

/// Pairs by rank, then by left position: `(rank, left, right, left id, right id, merged id)`.
type Queue = BinaryHeap<Reverse<(u32, usize, usize, u32, u32, u32)>>;

/// Buffers reused across the words of one text.
#[derive(Debug, Default)]
struct Scratch {
    syms: Vec<Sym>,
    queue: Queue,
    encoded: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_round_trips() {
        let bpe = Bpe::new(PreTokenizer::Gpt2, std::iter::empty(), |_| None);
        for b in 0..=255u8 {
            assert_eq!(bpe.char_byte(bpe.byte_char[b as usize]), Some(b));
        }
        assert_eq!(bpe.byte_char[b' ' as usize], '\u{120}');
        assert_eq!(bpe.byte_char[b'\n' as usize], '\u{10A}');
    }

    #[test]
    fn merges_go_by_rank_then_leftmost() {
        let vocab = ["a", "b", "c", "ab", "bc", "abc"];
        let id = |s: &str| vocab.iter().position(|v| *v == s).map(|i| i as u32);
        let bpe = Bpe::new(PreTokenizer::Gpt2, ["b c", "a b", "a bc"].into_iter(), id);
        let mut out = Vec::new();
        bpe.encode("abc", |_| None, &mut out);
        assert_eq!(out, [5]);
        let bpe = Bpe::new(PreTokenizer::Gpt2, ["a b"].into_iter(), id);
        out.clear();
        bpe.encode("ababc", |_| None, &mut out);
        assert_eq!(out, [3, 3, 2]);
    }
}
