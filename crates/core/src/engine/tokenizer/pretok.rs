//! Pre-tokenizers of byte-level BPE vocabularies: text cut into words before merges, as
//! llama.cpp cuts it for the `tokenizer.ggml.pre` the file names.
//!
//! Each splitter follows the regular expression of its tokenizer (`tokenizer.json`), with
//! llama.cpp's reading of it where the two could differ: classes are Unicode general categories
//! (`\p{L}`, `\p{N}`, `\p{P}`), `\s` is Unicode White_Space, and a pattern applies inside the
//! pieces the previous pattern made.

use unicode_general_category::{GeneralCategory as G, get_general_category};

/// A pre-tokenizer known by name (`tokenizer.ggml.pre`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreTokenizer {
    /// GPT-2's pattern (`gpt-2`, `phi-2`, `mpt`, `olmo`…).
    Gpt2,
    /// Llama 3's pattern: contractions in any case, letters with one leading non-letter,
    /// digits in threes, newlines kept with what precedes them (`llama-bpe`, `llama3`…).
    Llama3,
    /// Qwen2's pattern: Llama 3's with single digits (`qwen2`, Qwen2.5 and Qwen3).
    Qwen2,
    /// Single digits, then GPT-2's pattern (`smollm`, `starcoder`, `refact`, `command-r`…).
    Smollm,
    /// llama.cpp's default: runs of punctuation apart, GPT-2's pattern, runs of numbers,
    /// ASCII digits in threes (`default`, or a file without `tokenizer.ggml.pre`).
    Default,
}

impl PreTokenizer {
    /// The pre-tokenizer llama.cpp uses for `name`, if we have it.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "default" | "" => Self::Default,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => Self::Llama3,
            "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es"
            | "jina-v2-de" | "a.x-4.0" | "mellum" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" => Self::Gpt2,
            "qwen2" | "deepseek-r1-qwen" | "stablelm2" | "hunyuan" => Self::Qwen2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" => Self::Smollm,
            _ => return None,
        })
    }

    /// Whether a word that is a token as a whole skips the merges (llama.cpp's
    /// `ignore_merges`, which Llama 3's tokenizer sets).
    pub fn ignores_merges(self) -> bool {
        self == Self::Llama3
    }

    /// Cuts `text` into words, appending each word's byte range to `out`.
    pub fn split(self, text: &str, out: &mut Vec<std::ops::Range<usize>>) {
        let chars: Vec<(usize, char, Class)> =
            text.char_indices().map(|(i, c)| (i, c, class(c))).collect();
        let mut lens = vec![chars.len()];
        match self {
            Self::Gpt2 => lens = apply(&chars, &lens, gpt2),
            Self::Llama3 => lens = apply(&chars, &lens, |c, o| llama3(c, o, 3)),
            Self::Qwen2 => lens = apply(&chars, &lens, |c, o| llama3(c, o, 1)),
            Self::Smollm => {
                lens = apply(&chars, &lens, |c, o| {
                    isolate_runs(c, o, |k| k.number, 1, false)
                });
                lens = apply(&chars, &lens, gpt2);
            }
            Self::Default => {
                lens = apply(&chars, &lens, |c, o| {
                    isolate_runs(c, o, |k| k.punct_or_operator, usize::MAX, false)
                });
                lens = apply(&chars, &lens, gpt2);
                lens = apply(&chars, &lens, |c, o| {
                    isolate_runs(c, o, |k| k.number, usize::MAX, false)
                });
                lens = apply(&chars, &lens, |c, o| {
                    isolate_runs(c, o, |k| k.ascii_digit, 3, true)
                });
            }
        }
        let mut at = 0;
        for len in lens {
            let start = chars.get(at).map_or(text.len(), |c| c.0);
            at += len;
            let end = chars.get(at).map_or(text.len(), |c| c.0);
            if end > start {
                out.push(start..end);
            }
        }
    }
}

/// What the patterns ask of a character.
#[derive(Debug, Clone, Copy, Default)]
struct Class {
    letter: bool,
    number: bool,
    space: bool,
    /// `\p{P}` or one of `$+<=>^~|` (llama.cpp's default pattern's first class).
    punct_or_operator: bool,
    ascii_digit: bool,
}

fn class(c: char) -> Class {
    let ascii_digit = c.is_ascii_digit();
    if c.is_ascii() {
        let punct = c.is_ascii_punctuation()
            && !matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '`' | '|' | '~');
        return Class {
            letter: c.is_ascii_alphabetic(),
            number: ascii_digit,
            space: c.is_whitespace(),
            punct_or_operator: punct || matches!(c, '$' | '+' | '<' | '=' | '>' | '^' | '~' | '|'),
            ascii_digit,
        };
    }
    let cat = get_general_category(c);
    Class {
        letter: matches!(
            cat,
            G::UppercaseLetter
                | G::LowercaseLetter
                | G::TitlecaseLetter
                | G::ModifierLetter
                | G::OtherLetter
        ),
        number: matches!(cat, G::DecimalNumber | G::LetterNumber | G::OtherNumber),
        space: c.is_whitespace(),
        punct_or_operator: matches!(
            cat,
            G::ConnectorPunctuation
                | G::DashPunctuation
                | G::OpenPunctuation
                | G::ClosePunctuation
                | G::InitialPunctuation
                | G::FinalPunctuation
                | G::OtherPunctuation
        ),
        ascii_digit,
    }
}

type Chars = [(usize, char, Class)];

/// Runs `split` inside each piece of `lens` (lengths in characters) and returns the new pieces.
fn apply(chars: &Chars, lens: &[usize], split: impl Fn(&Chars, &mut Vec<usize>)) -> Vec<usize> {
    let mut out = Vec::with_capacity(lens.len() * 2);
    let mut at = 0;
    for &len in lens {
        split(&chars[at..at + len], &mut out);
        at += len;
    }
    out
}

/// Pieces of `chars` cut at the runs of `is` characters, each run cut into pieces of at most
/// `max` characters, left to right; what lies between the runs stays one piece. With
/// `exactly`, a pattern of exactly `max` characters (`[0-9][0-9][0-9]`): a shorter rest of a
/// run is no match and stays with what lies between.
fn isolate_runs(
    chars: &Chars,
    out: &mut Vec<usize>,
    is: impl Fn(Class) -> bool,
    max: usize,
    exactly: bool,
) {
    let mut gap = 0;
    let mut i = 0;
    while i < chars.len() {
        if !is(chars[i].2) {
            gap += 1;
            i += 1;
            continue;
        }
        let run = chars[i..].iter().take_while(|c| is(c.2)).count();
        let whole = if exactly { run - run % max } else { run };
        if whole == 0 {
            gap += run;
            i += run;
            continue;
        }
        if gap > 0 {
            out.push(gap);
        }
        push_pieces(out, whole, max);
        gap = run - whole;
        i += run;
    }
    if gap > 0 {
        out.push(gap);
    }
}

/// Pushes `len` characters as pieces of `max`, left to right (the last may be shorter).
fn push_pieces(out: &mut Vec<usize>, len: usize, max: usize) {
    let mut left = len;
    while left > 0 {
        let n = left.min(max);
        out.push(n);
        left -= n;
    }
}

/// The characters of a piece, read with a "nothing" class beyond its ends.
struct Piece<'a> {
    chars: &'a Chars,
}

impl Piece<'_> {
    fn c(&self, i: usize) -> Option<char> {
        self.chars.get(i).map(|c| c.1)
    }

    fn k(&self, i: usize) -> Option<Class> {
        self.chars.get(i).map(|c| c.2)
    }

    fn letter(&self, i: usize) -> bool {
        self.k(i).is_some_and(|k| k.letter)
    }

    fn number(&self, i: usize) -> bool {
        self.k(i).is_some_and(|k| k.number)
    }

    fn space(&self, i: usize) -> bool {
        self.k(i).is_some_and(|k| k.space)
    }

    /// `[^\s\p{L}\p{N}]`: inside the piece and none of the three.
    fn other(&self, i: usize) -> bool {
        self.k(i)
            .is_some_and(|k| !(k.space || k.letter || k.number))
    }

    /// The length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`.
    fn contraction(&self, i: usize, any_case: bool) -> usize {
        if self.c(i) != Some('\'') {
            return 0;
        }
        let at = |j: usize| {
            self.c(j)
                .map(|c| if any_case { c.to_ascii_lowercase() } else { c })
        };
        match (at(i + 1), at(i + 2)) {
            (Some('s' | 't' | 'm' | 'd'), _) => 2,
            (Some('r' | 'v'), Some('e')) | (Some('l'), Some('l')) => 3,
            _ => 0,
        }
    }

    /// The length of the whitespace run at `i`, and where its last `\r` or `\n` ends.
    fn spaces(&self, i: usize) -> (usize, Option<usize>) {
        let mut n = 0;
        let mut newline_end = None;
        while self.space(i + n) {
            if matches!(self.c(i + n), Some('\r' | '\n')) {
                newline_end = Some(i + n + 1);
            }
            n += 1;
        }
        (n, newline_end)
    }

    /// `\s+(?!\S)|\s+` at `i`, a run of `n` spaces: a run followed by more text leaves its last
    /// space to that text.
    fn space_run(&self, i: usize, n: usize) -> usize {
        if n > 1 && i + n < self.chars.len() {
            n - 1
        } else {
            n.max(1)
        }
    }
}

/// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
fn gpt2(chars: &Chars, out: &mut Vec<usize>) {
    let p = Piece { chars };
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let n = p.contraction(i, false);
        if n > 0 {
            out.push(n);
            i += n;
            continue;
        }
        let lead = usize::from(p.c(i) == Some(' '));
        let j = i + lead;
        if p.letter(j) {
            i = j;
            while p.letter(i) {
                i += 1;
            }
        } else if p.number(j) {
            i = j;
            while p.number(i) {
                i += 1;
            }
        } else if p.other(j) {
            i = j;
            while p.other(i) {
                i += 1;
            }
        } else {
            let (n, _) = p.spaces(i);
            i += p.space_run(i, n);
        }
        out.push(i - start);
    }
}

/// Llama 3's pattern (`digits` = 3) and Qwen2's (`digits` = 1):
/// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
fn llama3(chars: &Chars, out: &mut Vec<usize>, digits: usize) {
    let p = Piece { chars };
    let mut i = 0;
    while i < chars.len() {
        let start = i;
        let n = p.contraction(i, true);
        if n > 0 {
            out.push(n);
            i += n;
            continue;
        }
        let c = p.c(i);
        if !matches!(c, Some('\r' | '\n')) && !p.number(i) && (p.letter(i) || p.letter(i + 1)) {
            i += 1;
            while p.letter(i) {
                i += 1;
            }
            out.push(i - start);
            continue;
        }
        if p.number(i) {
            let mut run = 0;
            while p.number(i + run) {
                run += 1;
            }
            push_pieces(out, run, digits);
            i += run;
            continue;
        }
        let lead = usize::from(c == Some(' '));
        if p.other(i + lead) || (lead == 1 && p.k(i + 1).is_none()) {
            i += lead;
            while p.other(i) {
                i += 1;
            }
            while matches!(p.c(i), Some('\r' | '\n')) {
                i += 1;
            }
            out.push(i - start);
            continue;
        }
        let (n, newline_end) = p.spaces(i);
        i = match newline_end {
            Some(end) => end,
            None => i + p.space_run(i, n),
        };
        out.push(i - start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(pre: PreTokenizer, text: &str) -> Vec<&str> {
        let mut r = Vec::new();
        pre.split(text, &mut r);
        r.into_iter().map(|r| &text[r]).collect()
    }

    #[test]
    fn gpt2_keeps_a_space_with_the_next_word() {
        assert_eq!(
            words(PreTokenizer::Gpt2, "Hello world's  end 123!!"),
            ["Hello", " world", "'s", " ", " end", " 123", "!!"]
        );
    }

    #[test]
    fn llama3_groups_digits_in_threes_and_keeps_newlines() {
        assert_eq!(
            words(PreTokenizer::Llama3, "I'M 1234567 ok\n\n  x"),
            ["I", "'M", " ", "123", "456", "7", " ok", "\n\n", " ", " x"]
        );
        assert_eq!(
            words(PreTokenizer::Qwen2, "a 123"),
            ["a", " ", "1", "2", "3"]
        );
    }

    #[test]
    fn smollm_and_default_cut_digits() {
        assert_eq!(
            words(PreTokenizer::Smollm, "ab12 c"),
            ["ab", "1", "2", " c"]
        );
        assert_eq!(
            words(PreTokenizer::Default, "x 12345"),
            ["x", " ", "123", "45"]
        );
    }
}
