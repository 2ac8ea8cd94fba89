//! A translation table on disk: CSV with the columns `id,speaker,source,translation`, one row
//! per authored line (spreadsheets and translation tools read it as is).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::AuthoredLine;

/// Why a translation table cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StringsError {
    /// The file cannot be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// It is not a table of the expected shape.
    #[error("{}:{row}: {reason}", path.display())]
    Csv {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the file.
        row: u64,
        /// What is wrong.
        reason: String,
    },
}

/// One translated line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslatedLine {
    /// The authored text it was translated from (to spot stale translations).
    pub source: String,
    /// The translation (empty: not translated yet).
    pub text: String,
    /// The 1-based line of the file it was read from (0 if it was not read from a file).
    pub row: u64,
}

/// A story's lines in one language.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Translation {
    /// The file it was read from (in messages).
    pub path: PathBuf,
    /// Lines by id.
    pub lines: BTreeMap<String, TranslatedLine>,
}

const HEADER: [&str; 4] = ["id", "speaker", "source", "translation"];

/// Where a story's translation for `locale` lives: next to the story, `lantern.story.ron` →
/// `lantern.fr.strings.csv`.
pub fn translation_path(story: &Path, locale: &str) -> PathBuf {
    let name = story
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = name.strip_suffix(".story.ron").unwrap_or(&name);
    story.with_file_name(format!("{stem}.{locale}.strings.csv"))
}

impl Translation {
    /// Parses a table's text; `path` is only used in messages.
    pub fn from_csv(path: &Path, text: &str) -> Result<Self, StringsError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let bad = |row: u64, reason: String| StringsError::Csv {
            path: path.to_owned(),
            row,
            reason,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(text.as_bytes());
        let header = reader.headers().map_err(|e| bad(1, e.to_string()))?.clone();
        let column = |name: &str| {
            header.iter().position(|h| h.trim() == name).ok_or_else(|| {
                bad(
                    1,
                    format!("no `{name}` column; the header is `{}`", HEADER.join(",")),
                )
            })
        };
        let (id_col, source_col, text_col) =
            (column("id")?, column("source")?, column("translation")?);
        let mut lines = BTreeMap::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let row = e.position().map_or(0, csv::Position::line);
                bad(row, e.to_string())
            })?;
            let row = record.position().map_or(0, csv::Position::line);
            let field = |i: usize| record.get(i).unwrap_or("").to_owned();
            let id = field(id_col).trim().to_owned();
            if id.is_empty() {
                return Err(bad(row, "a row with no id".into()));
            }
            let line = TranslatedLine {
                source: field(source_col),
                text: field(text_col),
                row,
            };
            if let Some(first) = lines.insert(id.clone(), line) {
                return Err(bad(
                    row,
                    format!("`{id}` is translated twice (first on line {})", first.row),
                ));
            }
        }
        Ok(Self {
            path: path.to_owned(),
            lines,
        })
    }

    /// Reads a table.
    pub fn read(path: &Path) -> Result<Self, StringsError> {
        let text = std::fs::read_to_string(path).map_err(|source| StringsError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_csv(path, &text)
    }

    /// The table for `lines` (in their order), with this translation's texts where it has them:
    /// new lines get an empty translation, lines no longer in the story are left out.
    pub fn to_csv(&self, lines: &[AuthoredLine]) -> String {
        let mut writer = csv::WriterBuilder::new().from_writer(Vec::new());
        let mut rows = vec![HEADER.map(str::to_owned)];
        for l in lines {
            let (source, text) = match self.lines.get(&l.id) {
                Some(t) => (t.source.clone(), t.text.clone()),
                None => (l.text.clone(), String::new()),
            };
            rows.push([
                l.id.clone(),
                l.speaker.clone().unwrap_or_default(),
                source,
                text,
            ]);
        }
        for r in rows {
            // Writing to a Vec cannot fail.
            let _ = writer.write_record(&r);
        }
        let bytes = writer.into_inner().unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_round_trip_and_bad_ones_say_where() {
        let lines = vec![AuthoredLine {
            id: "a".into(),
            node: "a".into(),
            speaker: Some("wren".into()),
            text: "Hello, \"friend\", {name}.".into(),
        }];
        let mut t = Translation::default();
        let csv = t.to_csv(&lines);
        let back = Translation::from_csv(Path::new("x.csv"), &csv).unwrap();
        assert_eq!(back.lines["a"].source, lines[0].text);
        assert_eq!(back.lines["a"].text, "");
        assert_eq!(back.lines["a"].row, 2);
        t.lines.insert(
            "a".into(),
            TranslatedLine {
                source: "old".into(),
                text: "Bonjour.".into(),
                row: 0,
            },
        );
        let kept = Translation::from_csv(Path::new("x.csv"), &t.to_csv(&lines)).unwrap();
        assert_eq!(kept.lines["a"].text, "Bonjour.");
        assert_eq!(kept.lines["a"].source, "old", "stale sources stay visible");
        let e = Translation::from_csv(Path::new("x.csv"), "id,text\na,b\n").unwrap_err();
        assert!(
            e.to_string().starts_with("x.csv:1: no `source` column"),
            "{e}"
        );
        let e = Translation::from_csv(
            Path::new("x.csv"),
            "id,speaker,source,translation\na,,x,y\na,,x,z\n",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "x.csv:3: `a` is translated twice (first on line 2)"
        );
        assert_eq!(
            translation_path(Path::new("stories/lantern.story.ron"), "fr"),
            Path::new("stories/lantern.fr.strings.csv")
        );
    }
}
