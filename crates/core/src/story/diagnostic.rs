//! What a writer sees when a file is wrong: `file:line:col: error: what — how to fix it`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth a look; the story still loads.
    Warning,
    /// The file is refused.
    Error,
}

/// A 1-based line and column. Columns count UTF-16 code units, as editors (VS Code, the
/// language server protocol) do: the same as characters except for emoji and other characters
/// outside the Basic Multilingual Plane, which count two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize)]
pub struct Location {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub col: usize,
}

/// One finding about one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The file.
    pub file: PathBuf,
    /// Where in it.
    pub location: Location,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is something useful to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error.
    pub fn error(file: &Path, location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            file: file.to_owned(),
            location,
            message: message.into(),
            help: None,
        }
    }

    /// A warning.
    pub fn warning(file: &Path, location: Location, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Warning,
            ..Self::error(file, location, message)
        }
    }

    /// Adds a hint on how to fix it.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Whether it is an error.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(
            f,
            "{}:{}:{}: {kind}: {}",
            self.file.display(),
            self.location.line,
            self.location.col,
            self.message
        )?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

/// All findings about a set of files, errors first within each file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| d.is_error())
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter().filter(|d| !d.is_error())
    }

    /// Sorts by file, then position.
    pub fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.location).cmp(&(&b.file, b.location)));
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// A file's text with helpers that find where a value was written, so that findings made after
/// parsing (RON gives no positions for parsed values) still point at the exact place.
#[derive(Debug, Clone)]
pub struct SourceText {
    /// The file.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
    /// Where each line starts and which byte ranges are comments, found once on first use
    /// (so positions cost a binary search, not a rescan of the file).
    index: std::sync::OnceLock<TextIndex>,
}

#[derive(Debug, Clone, Default)]
struct TextIndex {
    line_starts: Vec<usize>,
    comments: Vec<std::ops::Range<usize>>,
}

impl TextIndex {
    fn of(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        let bytes = text.as_bytes();
        let mut comments = Vec::new();
        let (mut i, mut in_str) = (0, false);
        while i < bytes.len() {
            match bytes[i] {
                b'\\' if in_str => i += 1,
                b'"' => in_str = !in_str,
                b'/' if !in_str && bytes.get(i + 1) == Some(&b'/') => {
                    let end = text[i..].find('\n').map_or(text.len(), |e| i + e);
                    comments.push(i..end);
                    i = end;
                    continue;
                }
                b'/' if !in_str && bytes.get(i + 1) == Some(&b'*') => {
                    let end = text[i + 2..]
                        .find("*/")
                        .map_or(text.len(), |e| i + 2 + e + 2);
                    comments.push(i..end);
                    i = end;
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Self {
            line_starts,
            comments,
        }
    }
}

impl SourceText {
    /// Wraps a file's contents. A UTF-8 byte order mark at the start (which some editors on
    /// Windows write) is dropped: it is not part of the text, and positions count from after it.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let mut text = text.into();
        if text.starts_with('\u{feff}') {
            text.drain(..'\u{feff}'.len_utf8());
        }
        Self {
            path: path.into(),
            text,
            index: std::sync::OnceLock::new(),
        }
    }

    fn index(&self) -> &TextIndex {
        self.index.get_or_init(|| TextIndex::of(&self.text))
    }

    /// The line and column of a byte offset.
    pub fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let starts = &self.index().line_starts;
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let line_start = starts[line - 1];
        Location {
            line,
            col: self.text[line_start..offset]
                .chars()
                .map(char::len_utf16)
                .sum::<usize>()
                + 1,
        }
    }

    /// The byte offset of a 1-based line and a column counted in characters (as ron reports
    /// them); past the end of the line or text, the end.
    pub fn offset_at(&self, line: usize, char_col: usize) -> usize {
        let starts = &self.index().line_starts;
        let Some(&start) = starts.get(line.max(1) - 1) else {
            return self.text.len();
        };
        let rest = &self.text[start..];
        let line_len = rest.find('\n').unwrap_or(rest.len());
        rest[..line_len]
            .char_indices()
            .nth(char_col.max(1) - 1)
            .map_or(start + line_len, |(i, _)| start + i)
    }

    /// The offset of the first `needle` at or after `from` that is not inside a comment.
    pub fn find(&self, needle: &str, from: usize) -> Option<usize> {
        let mut start = from.min(self.text.len());
        while let Some(i) = self.text[start..].find(needle) {
            let at = start + i;
            if !self.in_comment(at) {
                return Some(at);
            }
            start = at + needle.len().max(1);
        }
        None
    }

    /// The offset of the string literal `"value"` at or after `from` (at its opening quote).
    pub fn find_literal(&self, value: &str, from: usize) -> Option<usize> {
        let quoted = format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
        self.find(&quoted, from)
    }

    /// Every `id: "…"` field at or after `from`, in order: the id and the offset of `id`.
    pub fn id_fields(&self, from: usize) -> Vec<(String, usize)> {
        let mut out = Vec::new();
        let mut from = from;
        while let Some(at) = self.find_field("id", from) {
            let rest = self.text[at + 2..].trim_start();
            let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
            if let Some(quoted) = rest.strip_prefix('"')
                && let Some(end) = quoted.find('"')
            {
                out.push((quoted[..end].to_owned(), at));
            }
            from = at + 2;
        }
        out
    }

    /// The offset of `field:` at or after `from`, on a word boundary.
    pub fn find_field(&self, field: &str, from: usize) -> Option<usize> {
        let mut start = from;
        loop {
            let at = self.find(field, start)?;
            let before_ok = at == 0
                || !self.text[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let after = self.text[at + field.len()..].trim_start();
            if before_ok && after.starts_with(':') {
                return Some(at);
            }
            start = at + field.len();
        }
    }

    /// Whether `offset` lies in a `//` line comment or a `/* */` block comment (strings are
    /// taken into account).
    fn in_comment(&self, offset: usize) -> bool {
        let comments = &self.index().comments;
        let i = comments.partition_point(|c| c.start <= offset);
        i > 0 && comments[i - 1].contains(&offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based_and_count_characters() {
        let s = SourceText::new("a.ron", "ab\n  \"é\" x");
        assert_eq!(s.location(0), Location { line: 1, col: 1 });
        let x = s.text.find('x').unwrap();
        assert_eq!(s.location(x), Location { line: 2, col: 7 });
        // An emoji is two UTF-16 units wide, as editors count it.
        let s = SourceText::new("a.ron", "\"🏮\" x");
        let x = s.text.find('x').unwrap();
        assert_eq!(s.location(x), Location { line: 1, col: 6 });
        assert_eq!(s.offset_at(1, 5), x);
        assert_eq!(s.offset_at(9, 1), s.text.len());
    }

    #[test]
    fn finds_skip_comments() {
        let s = SourceText::new("a.ron", "// next: \"a\"\n/* \"a\" */ next: \"a\"");
        let at = s.find_literal("a", 0).unwrap();
        assert_eq!(s.location(at), Location { line: 2, col: 17 });
        let f = s.find_field("next", 0).unwrap();
        assert_eq!(s.location(f), Location { line: 2, col: 11 });
    }
}
