//! Folding text into the form banned phrases are matched in.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Text folded for matching: lower case, accents and compatibility forms (full-width,
/// mathematical letters) reduced to plain letters, look-alike letters and digit spellings mapped
/// to the Latin letter they imitate, invisible characters dropped, and every run of anything
/// else (spaces, punctuation) one space.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Folded {
    /// The folded text.
    pub text: String,
    /// For each byte of `text`, the byte offset in the original of the character it came
    /// from; one more entry at the end: the original's length.
    pub origin: Vec<usize>,
}

/// Folds `text` (see [`Folded`]).
pub fn fold(text: &str) -> Folded {
    let mut out = Folded {
        text: String::with_capacity(text.len()),
        origin: Vec::with_capacity(text.len() + 1),
    };
    for (at, c) in text.char_indices() {
        if invisible(c) {
            continue;
        }
        for d in std::iter::once(c).nfkd() {
            if is_combining_mark(d) {
                continue;
            }
            for l in d.to_lowercase() {
                let m = look_alike(l);
                if m.is_alphanumeric() {
                    push(&mut out, m, at);
                } else if !out.text.is_empty() && !out.text.ends_with(' ') {
                    push(&mut out, ' ', at);
                }
            }
        }
    }
    out.origin.push(text.len());
    out
}

fn push(out: &mut Folded, c: char, at: usize) {
    out.text.push(c);
    out.origin.extend(std::iter::repeat_n(at, c.len_utf8()));
}

/// Characters that render as nothing (zero-width spaces and joiners, soft hyphens, word
/// joiners, variation selectors, the byte order mark).
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}'
        | '\u{FFA0}' | '\u{E0000}'..='\u{E007F}')
}

/// The Latin letter a lower-case look-alike or a digit spelling stands for (Unicode's
/// confusables for Cyrillic and Greek letters that look Latin; the usual digit and symbol
/// substitutions).
fn look_alike(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' => 'e',
        'һ' | 'н' => 'h',
        'і' | 'ї' | 'ӏ' => 'i',
        'ј' => 'j',
        'к' => 'k',
        'м' => 'm',
        'о' => 'o',
        'р' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' => 't',
        'у' | 'ү' => 'y',
        'х' => 'x',
        'ԝ' => 'w',
        // Greek
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'η' => 'n',
        'ι' => 'i',
        'κ' => 'k',
        'ν' => 'v',
        'ο' => 'o',
        'ρ' => 'p',
        'τ' => 't',
        'υ' => 'u',
        'χ' => 'x',
        'ω' => 'w',
        // Digits and symbols written for letters
        '0' => 'o',
        '1' => 'i',
        '3' => 'e',
        '4' | '@' => 'a',
        '5' | '$' => 's',
        '7' => 't',
        '8' => 'b',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alikes_fold_to_plain_letters() {
        for spelled in [
            "Bad Word",
            "BAD-WORD",
            "bаd wоrd",        // Cyrillic а and о
            "ｂａｄ ｗｏｒｄ", // full-width
            "𝐛𝐚𝐝 𝐰𝐨𝐫𝐝",        // mathematical bold
            "bád wörd",
            "b\u{200B}ad w\u{00AD}ord",
            "8@d w0rd",
            "bad...   word",
        ] {
            assert_eq!(fold(spelled).text, "bad word", "{spelled:?}");
        }
    }

    #[test]
    fn origins_point_at_the_source_characters() {
        let s = "Ｏk, bé";
        let f = fold(s);
        assert_eq!(f.text, "ok be");
        assert_eq!(f.origin.len(), f.text.len() + 1);
        let b = f.text.find('b').unwrap();
        assert_eq!(&s[f.origin[b]..], "bé");
        assert_eq!(*f.origin.last().unwrap(), s.len());
    }
}
