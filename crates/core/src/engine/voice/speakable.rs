//! Text made safe to hand to eSpeak NG, which runs in our process: its plain-text parser has
//! overflowed its stack on crafted text (espeak-ng issue #1913, open), and what it reads comes
//! from a model or a server. Bounded in every dimension its parser recurses or loops over:
//! characters it cannot speak are dropped, runs of punctuation collapsed, words and clauses
//! broken, the whole cut.

use unicode_general_category::{GeneralCategory as G, get_general_category};

/// Most characters handed to eSpeak at once (a sentence of a line is far shorter; the rest of
/// a longer one is not spoken).
pub const MAX_CHARS: usize = 500;
/// Longest run of letters without a space: a longer one is broken with a space.
pub const MAX_WORD: usize = 48;
/// Longest clause (characters between `. , ; : ! ?`): a longer one gets a comma at a space.
pub const MAX_CLAUSE: usize = 240;
/// A run of one punctuation or symbol character is kept to this many.
pub const MAX_REPEAT: usize = 3;
/// A run of punctuation and symbols, of any mix, is kept to this many (commas not counted).
pub const MAX_SYMBOLS: usize = 6;

/// Whether eSpeak can speak (or pause at) `c`: letters, marks, digits, punctuation, the usual
/// symbols and spaces; not controls, format characters (zero-width and direction marks),
/// private-use, unassigned or surrogate code points, nor pictographs (emoji).
fn speakable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0xFE00..=0xFE0F) {
        return false;
    }
    !matches!(
        get_general_category(c),
        G::Control
            | G::Format
            | G::PrivateUse
            | G::Unassigned
            | G::Surrogate
            | G::LineSeparator
            | G::ParagraphSeparator
            | G::SpaceSeparator
    )
}

fn is_symbol(c: char) -> bool {
    !c.is_alphanumeric() && !c.is_whitespace() && !is_mark(c)
}

fn is_mark(c: char) -> bool {
    matches!(
        get_general_category(c),
        G::NonspacingMark | G::SpacingMark | G::EnclosingMark
    )
}

fn ends_clause(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '…' | '。' | '、' | '，'
    )
}

/// `text` as eSpeak gets it: whitespace (any kind) becomes one space; unspeakable characters
/// are dropped; a run of one symbol is cut to [`MAX_REPEAT`], of mixed symbols to
/// [`MAX_SYMBOLS`]; a word is broken after [`MAX_WORD`] characters, a clause gets a comma
/// after [`MAX_CLAUSE`]; at most [`MAX_CHARS`] characters. Plain sentences pass unchanged.
pub fn for_espeak(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(MAX_CHARS * 4));
    let (mut chars, mut word, mut clause, mut symbols, mut repeat) = (0, 0, 0, 0, 0);
    let mut last: Option<char> = None;
    let mut last_space: Option<usize> = None;
    for c in text.chars() {
        if chars >= MAX_CHARS {
            break;
        }
        let c = if c.is_whitespace() { ' ' } else { c };
        if !speakable(c) || (c == ' ' && matches!(last, None | Some(' '))) {
            continue;
        }
        if c == ' ' {
            word = 0;
            symbols = 0;
        } else if is_symbol(c) {
            repeat = if last == Some(c) { repeat + 1 } else { 1 };
            // A comma is a pause, not noise: it is not counted in a mixed run (a run of commas
            // is still cut by `MAX_REPEAT`), so the comma a long clause gets never exceeds it.
            if c != ',' {
                symbols += 1;
            }
            if repeat > MAX_REPEAT || symbols > MAX_SYMBOLS {
                continue;
            }
        } else {
            symbols = 0;
            word += 1;
            if word > MAX_WORD {
                last_space = Some(out.len());
                out.push(' ');
                chars += 1;
                word = 1;
                clause += 1;
            }
        }
        if c == ' ' {
            last_space = Some(out.len());
        }
        out.push(c);
        chars += 1;
        clause = if ends_clause(c) { 0 } else { clause + 1 };
        if clause > MAX_CLAUSE {
            // A pause at the last space (or here): a comma there.
            match last_space.filter(|&at| out.len() - at < MAX_CLAUSE) {
                Some(at) => {
                    out.insert(at, ',');
                    clause = out[at + 1..].chars().count();
                }
                None => {
                    out.push_str(", ");
                    chars += 1;
                    clause = 0;
                }
            }
            chars += 1;
            last_space = None;
        }
        last = Some(c);
    }
    // A break added on the last character may pass the limit by one or two.
    if let Some((at, _)) = out.char_indices().nth(MAX_CHARS) {
        out.truncate(at);
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plain_sentences_pass_unchanged() {
        for s in [
            "Hello, traveller! The lanterns are lit tonight.",
            "Ça va? J'ai 3,5 kilos de pommes — très bien.",
            "Wait... what?! It costs $5 (or 4 €).",
        ] {
            assert_eq!(for_espeak(s), s);
        }
    }

    /// Found by the long campaign (a million cases): a clause whose 241st character is a space
    /// after six symbols got its comma there, a seventh symbol that the next pass dropped.
    #[test]
    fn campaign_case_a_long_word_then_symbols() {
        let text = format!(
            "{}AA{}-\"[\u{FDFC}\u{FDFC}\u{FDFC} ",
            "a".repeat(41),
            "a".repeat(187)
        );
        if let Err(e) = bounds_hold(&text) {
            panic!("{e}");
        }
    }

    #[test]
    fn hostile_text_is_bounded() {
        assert_eq!(for_espeak("no!!!!!!!!!!!!!!!!!!!!! way"), "no!!! way");
        assert_eq!(
            for_espeak("a\u{200B}b\u{202E}c\u{E000}d\u{1F600}e\0"),
            "abcde"
        );
        assert_eq!(for_espeak("x\t\n\r  y"), "x y");
        let word = for_espeak(&"a".repeat(200));
        assert!(
            word.split(' ').all(|w| w.chars().count() <= MAX_WORD),
            "{word}"
        );
        let long = for_espeak(&"la ".repeat(2000));
        assert!(long.chars().count() <= MAX_CHARS, "{}", long.len());
        assert!(long.split(',').all(|c| c.chars().count() <= MAX_CLAUSE + 1));
        assert_eq!(for_espeak("?!?!?!?!?!?!?!?!"), "?!?!?!");
    }

    fn hostile() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            prop::sample::select(vec![
                "!",
                "?",
                ".",
                ",",
                "-",
                "'",
                "\"",
                "(",
                ")",
                "[",
                "#",
                "*",
                "…",
                " ",
                "\n",
                "\u{200B}",
                "\u{202E}",
                "\u{0301}",
                "\u{1F600}",
                "\u{FE0F}",
                "\0",
                "é",
                "ß",
                "1",
                "a",
                "Z",
                "語",
                "\u{E000}",
                "\u{FFFF}",
            ])
            .prop_map(str::to_owned),
            "[a-z]{1,80}",
            any::<char>().prop_map(String::from),
            (any::<char>(), 1usize..300).prop_map(|(c, n)| c.to_string().repeat(n)),
        ];
        prop::collection::vec(piece, 0..64).prop_map(|p| p.concat())
    }

    /// Every bound of [`for_espeak`]'s output, and that it is stable.
    fn bounds_hold(text: &str) -> Result<(), TestCaseError> {
        let out = for_espeak(text);
        prop_assert!(out.chars().count() <= MAX_CHARS);
        prop_assert!(out.chars().all(|c| c == ' ' || speakable(c)));
        prop_assert!(!out.contains("  "));
        for word in out.split(' ') {
            prop_assert!(
                word.chars().filter(|c| !is_symbol(*c)).count() <= MAX_WORD + 1,
                "{word:?}"
            );
        }
        let mut run = (None, 0);
        let mut mixed = 0;
        for c in out.chars() {
            run = if Some(c) == run.0 {
                (run.0, run.1 + 1)
            } else {
                (Some(c), 1)
            };
            mixed = match c {
                ',' => mixed,
                c if is_symbol(c) => mixed + 1,
                _ => 0,
            };
            if is_symbol(c) {
                prop_assert!(run.1 <= MAX_REPEAT, "{out:?}");
            }
            prop_assert!(mixed <= MAX_SYMBOLS + 1, "{out:?}");
        }
        let mut clause = 0;
        for c in out.chars() {
            clause = if ends_clause(c) { 0 } else { clause + 1 };
            prop_assert!(clause <= MAX_CLAUSE + 1, "{out:?}");
        }
        prop_assert_eq!(for_espeak(&out), out.clone(), "stable");
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(2048)))]

        #[test]
        fn any_text_comes_out_within_every_bound(text in hostile()) {
            bounds_hold(&text)?;
        }
    }
}
