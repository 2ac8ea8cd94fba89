//! What the language server knows about one open file: its findings (the same as `check`),
//! where a name under the cursor is defined, and the names that fit where the cursor is.

use std::path::{Path, PathBuf};

use bevy_llama_dialogue_core::story::{
    Diagnostic, Estimate, SourceText, Story, StoryBundle, cast_path, parse_persona, parse_story,
};

/// An open file.
pub struct Doc {
    /// Where it lives on disk (persona paths are relative to it).
    pub path: PathBuf,
    /// The editor's text.
    pub text: String,
    /// The last version of it that parsed, for names while the text is mid-edit.
    pub last_good: Option<Story>,
}

/// A place in a file: 0-based line and UTF-16 column, as the protocol counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spot {
    pub path: PathBuf,
    pub line: u32,
    pub character: u32,
}

/// A name to offer, and what it is.
pub struct Offer {
    pub label: String,
    pub what: &'static str,
}

fn is_story(path: &Path) -> bool {
    path.to_string_lossy().ends_with(".story.ron")
}

impl Doc {
    /// The findings `check` would report for this text, every file's (a story's findings may
    /// be in its persona files).
    pub fn diagnostics(&mut self) -> Vec<Diagnostic> {
        let source = SourceText::new(&self.path, self.text.clone());
        if !is_story(&self.path) {
            return parse_persona(&source).err().into_iter().collect();
        }
        if let Ok(story) = parse_story(&source) {
            self.last_good = Some(story);
        }
        match StoryBundle::from_source(source, &Estimate) {
            Ok(b) => b.warnings,
            Err(d) => d.0,
        }
    }

    /// The byte offset of a protocol position in the text.
    fn offset(&self, line: u32, character: u32) -> usize {
        let mut start = 0;
        for _ in 0..line {
            match self.text[start..].find('\n') {
                Some(n) => start += n + 1,
                None => return self.text.len(),
            }
        }
        let mut units = 0u32;
        for (i, c) in self.text[start..].char_indices() {
            if units >= character || c == '\n' {
                return start + i;
            }
            units += c.len_utf16() as u32;
        }
        self.text.len()
    }

    fn spot(&self, offset: usize) -> Spot {
        let loc = SourceText::new(&self.path, self.text.clone()).location(offset);
        Spot {
            path: self.path.clone(),
            line: loc.line as u32 - 1,
            character: loc.col as u32 - 1,
        }
    }

    /// The string literal around `offset`: its start (after the quote), its text, and the
    /// field or call it belongs to (`next`, `Set`, …).
    fn literal_at(&self, offset: usize) -> Option<(usize, &str, String)> {
        let line_start = self.text[..offset].rfind('\n').map_or(0, |n| n + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |n| offset + n);
        let line = &self.text[line_start..line_end];
        let mut open: Option<usize> = None;
        let mut escaped = false;
        for (i, c) in line.char_indices() {
            let at = line_start + i;
            match c {
                _ if escaped => escaped = false,
                '\\' if open.is_some() => escaped = true,
                '"' => match open {
                    None => open = Some(at + 1),
                    Some(s) => {
                        if (s..=at).contains(&offset) {
                            return Some((s, &self.text[s..at], self.context(s - 1)));
                        }
                        open = None;
                    }
                },
                _ => {}
            }
        }
        // An unclosed literal (mid-typing) runs to the cursor.
        open.filter(|s| *s <= offset)
            .map(|s| (s, &self.text[s..offset], self.context(s - 1)))
    }

    /// The field (`next:`) or call (`Set(`) before the quote at `quote`.
    fn context(&self, quote: usize) -> String {
        let before = self.text[..quote].trim_end();
        let before = before
            .strip_suffix(':')
            .or_else(|| before.strip_suffix('('))
            .unwrap_or(before)
            .trim_end();
        let start = before
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |n| n + 1);
        before[start..].to_owned()
    }

    fn story(&self) -> Option<&Story> {
        self.last_good.as_ref()
    }

    /// Where the name under the cursor is defined: a node, a variable, a cast member's file.
    pub fn definition(&self, line: u32, character: u32) -> Option<Spot> {
        let offset = self.offset(line, character);
        let (start, value, _) = self.literal_at(offset)?;
        let story = self.story()?;
        let source = SourceText::new(&self.path, self.text.clone());
        let node_at = |id: &str| {
            let from = source.find_field("nodes", 0).unwrap_or(0);
            source
                .id_fields(from)
                .into_iter()
                .find(|(x, _)| x == id)
                .map(|(_, at)| self.spot(at))
        };
        if story.node(value).is_some() {
            return node_at(value);
        }
        if let Some(file) = story.cast.get(value) {
            return Some(file_start(cast_path(&self.path, file)));
        }
        if story.cast.values().any(|f| f == value) {
            return Some(file_start(cast_path(&self.path, value)));
        }
        // A word inside a condition or text: a variable, or a node in `visits(..)`.
        let rel = offset - start;
        let word_start = value[..rel]
            .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(0, |n| n + 1);
        let word_end = value[rel..]
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .map_or(value.len(), |n| rel + n);
        let word = &value[word_start..word_end];
        if story.variables.contains_key(word) {
            let vars = source.find_field("variables", 0)?;
            return source.find_literal(word, vars).map(|at| self.spot(at));
        }
        if story.node(word).is_some() {
            return node_at(word);
        }
        None
    }

    /// The names that fit the string the cursor is in: node ids after `next:`, cast keys
    /// after `speaker:`, variables in conditions and effects.
    pub fn completions(&self, line: u32, character: u32) -> Vec<Offer> {
        let offset = self.offset(line, character);
        let Some(story) = self.story() else {
            return Vec::new();
        };
        let field = self
            .literal_at(offset)
            .map(|(_, _, f)| f)
            .unwrap_or_default();
        let nodes = || {
            story.nodes.iter().map(|n| Offer {
                label: n.id().to_owned(),
                what: n.kind_name(),
            })
        };
        let cast = || {
            story.cast.keys().map(|k| Offer {
                label: k.clone(),
                what: "cast member",
            })
        };
        let vars = || {
            story.variables.iter().map(|(k, v)| Offer {
                label: k.clone(),
                what: match v.var_type().to_string().as_str() {
                    "bool" => "bool variable",
                    "int" => "int variable",
                    "float" => "float variable",
                    _ => "string variable",
                },
            })
        };
        match field.as_str() {
            "next" | "otherwise" | "start" => nodes().collect(),
            "speaker" | "Relate" | "Remember" => cast().collect(),
            "Set" | "Add" | "Flag" | "Clear" | "store" => vars().collect(),
            "when" => vars().chain(nodes()).collect(),
            _ => nodes().chain(cast()).chain(vars()).collect(),
        }
    }
}

fn file_start(path: PathBuf) -> Spot {
    Spot {
        path,
        line: 0,
        character: 0,
    }
}
