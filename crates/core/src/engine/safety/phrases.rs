//! A compiled set of banned phrases and the two questions asked of streamed text: is a banned
//! phrase complete in it, and from where must it be held back.

use super::fold::{Folded, fold};

/// Banned phrases, folded (see [`fold`]), each tagged with the rule that bans it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BannedPhrases {
    phrases: Vec<Banned>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Banned {
    folded: String,
    rule: usize,
    /// Whole words only (`"ass"` does not match in `"class"`); otherwise anywhere.
    words: bool,
}

/// A banned phrase found in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BanHit {
    /// Where it starts (byte offset in the text searched).
    pub start: usize,
    /// Where it ends (byte offset).
    pub end: usize,
    /// The rule number given to [`BannedPhrases::add`].
    pub rule: usize,
}

impl BannedPhrases {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bans `phrase` for rule number `rule`: as whole words (`words`) or anywhere, even inside
    /// a word. Returns false (and bans nothing) when the phrase folds to nothing (punctuation
    /// only).
    pub fn add(&mut self, phrase: &str, rule: usize, words: bool) -> bool {
        let folded = fold(phrase).text.trim().to_owned();
        if folded.is_empty() {
            return false;
        }
        self.phrases.push(Banned {
            folded,
            rule,
            words,
        });
        true
    }

    /// Whether nothing is banned.
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The longest banned phrase, in folded bytes: the most text a stream ever holds back.
    pub fn longest(&self) -> usize {
        self.phrases
            .iter()
            .map(|p| p.folded.len())
            .max()
            .unwrap_or(0)
    }

    /// The earliest banned phrase in `text` that starts at or after byte `from` (the text before
    /// it is context: whether `from` starts a word). `complete`: no more text follows, so a
    /// whole-word phrase at the very end counts; otherwise it waits for the next character.
    pub fn find(&self, text: &str, from: usize, complete: bool) -> Option<BanHit> {
        let f = fold(text);
        self.find_folded(&f, from, complete)
    }

    fn find_folded(&self, f: &Folded, from: usize, complete: bool) -> Option<BanHit> {
        let t = f.text.as_str();
        let mut best: Option<BanHit> = None;
        for p in &self.phrases {
            for (s, _) in t.match_indices(p.folded.as_str()) {
                let e = s + p.folded.len();
                if f.origin[s] < from || best.is_some_and(|b| b.start <= f.origin[s]) {
                    continue;
                }
                if p.words {
                    let starts_word = s == 0 || t.as_bytes()[s - 1] == b' ';
                    let ends_word = if e == t.len() {
                        complete
                    } else {
                        t.as_bytes()[e] == b' '
                    };
                    if !starts_word || !ends_word {
                        continue;
                    }
                }
                best = Some(BanHit {
                    start: f.origin[s],
                    end: f.origin[e],
                    rule: p.rule,
                });
                break;
            }
        }
        best
    }

    /// The first byte offset at or after `from` from which `text` could still become a banned
    /// phrase as more text arrives: what follows must be held back. `text.len()` when nothing
    /// needs holding.
    pub fn hold_from(&self, text: &str, from: usize) -> usize {
        let f = fold(text);
        let t = f.text.as_str();
        for (s, _) in t.char_indices() {
            if f.origin[s] < from {
                continue;
            }
            let rest = &t[s..];
            let starts_word = s == 0 || t.as_bytes()[s - 1] == b' ';
            if self
                .phrases
                .iter()
                .any(|p| (starts_word || !p.words) && p.folded.starts_with(rest))
            {
                return f.origin[s];
            }
        }
        // Invisible characters at the end fold to nothing; they may still precede a phrase.
        text.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set() -> BannedPhrases {
        let mut s = BannedPhrases::new();
        s.add("bad word", 0, true);
        s.add("ass", 1, true);
        s.add("heck", 2, false);
        s
    }

    #[test]
    fn whole_words_and_fragments() {
        let s = set();
        assert_eq!(s.find("a class act", 0, true), None);
        assert_eq!(s.find("you ass.", 0, true).map(|h| h.rule), Some(1));
        assert_eq!(s.find("what the h3ck", 0, true).map(|h| h.rule), Some(2));
        assert_eq!(s.find("oheckno", 0, true).map(|h| h.rule), Some(2));
        let h = s.find("say the BАD  Word!", 0, true).unwrap();
        assert_eq!(
            (h.start, &"say the BАD  Word!"[h.start..h.end]),
            (8, "BАD  Word")
        );
    }

    #[test]
    fn a_word_at_the_end_waits_unless_complete() {
        let s = set();
        assert_eq!(s.find("you ass", 0, false), None);
        assert!(s.find("you ass", 0, true).is_some());
        assert!(s.find("you ass ", 0, false).is_some());
    }

    #[test]
    fn from_skips_earlier_text_but_keeps_it_as_context() {
        let s = set();
        assert_eq!(s.find("glass", 2, true), None, "`ass` inside a word");
        assert!(s.find("the ass", 3, true).is_some());
    }

    #[test]
    fn held_back_text_is_what_could_still_become_a_phrase() {
        let s = set();
        assert_eq!(s.hold_from("Hello ba", 0), 6);
        assert_eq!(s.hold_from("Hello bad w", 0), 6);
        assert_eq!(s.hold_from("Hello bat", 0), 9);
        assert_eq!(
            s.hold_from("a cl", 0),
            4,
            "`cl` cannot start `ass` mid-word"
        );
        assert_eq!(s.hold_from("oh", 0), 1, "`h` may start the fragment `heck`");
        assert_eq!(s.hold_from("x", 0), 1);
    }
}
