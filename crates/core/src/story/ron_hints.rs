//! Better help for the RON errors writers make most, which the parser reports where it noticed
//! them rather than where they are: a string left open, a node not closed with `)`, a fraction
//! in `Int(..)`.

use ron::error::Error as RonError;

use super::diagnostic::{Location, SourceText};

/// Node kinds: when one shows up as a "field", the node before it was not closed.
const NODE_KINDS: [&str; 6] = [
    "Line",
    "Generate",
    "Choice",
    "FreeInput",
    "Branch",
    "Ending",
];

/// A better explanation of `error`, found at byte `offset` of `source`, if there is one.
pub(super) fn hint(source: &SourceText, error: &RonError, offset: usize) -> Option<String> {
    if let Some(open) = open_string(&source.text, offset) {
        let Location { line, col } = source.location(open);
        return Some(format!(
            "the string that starts at {line}:{col} runs onto the next line: is its closing `\"` \
             missing?"
        ));
    }
    match error {
        RonError::NoSuchStructField { found, outer, .. }
            if NODE_KINDS.contains(&found.as_str()) =>
        {
            let node = outer.as_deref().unwrap_or("node");
            Some(format!(
                "a `)` is missing before `{found}(`: the `{node}` before it is not closed"
            ))
        }
        RonError::ExpectedStructLikeEnd | RonError::ExpectedOptionEnd
            if int_with_fraction(&source.text, offset) =>
        {
            Some("`Int(..)` holds a whole number; write `Float(0.5)` for a fraction".into())
        }
        _ => None,
    }
}

/// The start of the last string literal before `end` that runs over a line end, if any: a
/// string missing its closing quote swallows the line break and the parser only complains
/// later. Comments are skipped.
fn open_string(text: &str, end: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let end = end.min(bytes.len());
    let mut last = None;
    let mut i = 0;
    while i < end {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |n| i + 2 + n + 2);
            }
            b'"' => {
                let start = i;
                i += 1;
                let mut multiline = false;
                while i < bytes.len() && bytes[i] != b'"' {
                    match bytes[i] {
                        b'\\' => i += 1,
                        b'\n' => multiline = true,
                        _ => {}
                    }
                    i += 1;
                }
                if multiline && start < end {
                    last = Some(start);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    last
}

/// Whether `offset` lies inside `Int(..)` holding a number with a fraction.
fn int_with_fraction(text: &str, offset: usize) -> bool {
    let offset = offset.min(text.len());
    let Some(at) = text[..offset].rfind("Int(") else {
        return false;
    };
    let end = text[offset..].find(')').map_or(text.len(), |n| offset + n);
    let inside = text[at + 4..end].trim();
    !inside.is_empty()
        && inside.contains('.')
        && inside
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_open_string_and_the_fraction() {
        let text = "a: \"ok\", // \"not\nb: \"open,\nc: \"x\"";
        let at = text.find("open").unwrap() - 1;
        assert_eq!(open_string(text, text.len()), Some(at));
        assert_eq!(open_string(text, at), None);
        let t = "\"x\": Int(0.5) }";
        assert!(int_with_fraction(t, t.find('.').unwrap()));
        let t = "\"x\": Int(5) }";
        assert!(!int_with_fraction(t, t.find(')').unwrap()));
        let t = "\"x\": Float(0.5) }";
        assert!(!int_with_fraction(t, t.find('.').unwrap()));
    }
}
