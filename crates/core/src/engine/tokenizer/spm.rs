//! The SentencePiece (SPM) segmentation llama.cpp uses for `tokenizer.ggml.model = "llama"`:
//! start from single UTF-8 characters, repeatedly merge the adjacent pair whose concatenation is
//! the highest-scoring vocabulary entry (ties: the leftmost pair), then fall back to byte tokens
//! for any piece the vocabulary does not hold.

use std::collections::BinaryHeap;

use super::Tokenizer;

#[derive(Clone, Copy)]
struct Symbol {
    start: usize,
    len: usize,
    prev: Option<usize>,
    next: Option<usize>,
}

struct Bigram {
    score: f32,
    left: usize,
    right: usize,
    size: usize,
}

impl PartialEq for Bigram {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}
impl Eq for Bigram {}
impl PartialOrd for Bigram {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Bigram {
    /// Higher score first; on a tie the pair further left first (llama.cpp's order).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.score
            .total_cmp(&other.score)
            .then_with(|| other.left.cmp(&self.left))
            .then_with(|| other.size.cmp(&self.size))
    }
}

struct Session<'a> {
    tok: &'a Tokenizer,
    text: &'a str,
    symbols: Vec<Symbol>,
    queue: BinaryHeap<Bigram>,
}

/// Appends the tokens of `text` (spaces already escaped to `▁`) to `out`.
pub(super) fn segment(tok: &Tokenizer, text: &str, out: &mut Vec<u32>) {
    let mut symbols = Vec::with_capacity(text.len());
    let mut iter = text.char_indices().peekable();
    while let Some((start, ch)) = iter.next() {
        let index = symbols.len();
        symbols.push(Symbol {
            start,
            len: ch.len_utf8(),
            prev: index.checked_sub(1),
            next: iter.peek().map(|_| index + 1),
        });
    }
    let mut s = Session {
        tok,
        text,
        symbols,
        queue: BinaryHeap::new(),
    };
    for i in 1..s.symbols.len() {
        s.try_add_bigram(Some(i - 1), Some(i));
    }
    while let Some(b) = s.queue.pop() {
        let (l, r) = (s.symbols[b.left], s.symbols[b.right]);
        // Skip pairs made stale by an earlier merge.
        if l.len == 0 || r.len == 0 || l.len + r.len != b.size {
            continue;
        }
        s.symbols[b.left].len += r.len;
        s.symbols[b.right].len = 0;
        s.symbols[b.left].next = r.next;
        if let Some(n) = r.next {
            s.symbols[n].prev = Some(b.left);
        }
        s.try_add_bigram(l.prev, Some(b.left));
        s.try_add_bigram(Some(b.left), r.next);
    }
    let mut cur = if s.symbols.is_empty() { None } else { Some(0) };
    while let Some(i) = cur {
        s.resegment(i, out);
        cur = s.symbols[i].next;
    }
}

impl<'a> Session<'a> {
    fn piece(&self, i: usize) -> &'a str {
        let sym = self.symbols[i];
        &self.text[sym.start..sym.start + sym.len]
    }

    fn try_add_bigram(&mut self, left: Option<usize>, right: Option<usize>) {
        let (Some(left), Some(right)) = (left, right) else {
            return;
        };
        let start = self.symbols[left].start;
        let size = self.symbols[left].len + self.symbols[right].len;
        let text = &self.text[start..start + size];
        let Some(id) = self.tok.merge_lookup(text) else {
            return;
        };
        self.queue.push(Bigram {
            score: self.tok.score(id),
            left,
            right,
            size,
        });
    }

    /// Emits the token of symbol `i`. A merged symbol is always a vocabulary piece (merges only
    /// form pieces the vocabulary holds), so only single characters can be missing: those fall
    /// back to byte tokens.
    fn resegment(&self, i: usize, out: &mut Vec<u32>) {
        let text = self.piece(i);
        match self.tok.merge_lookup(text) {
            Some(id) => out.push(id),
            None => out.extend(text.bytes().map(|b| self.tok.byte_token(b))),
        }
    }
}
