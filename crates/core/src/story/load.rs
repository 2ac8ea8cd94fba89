//! Reading persona and story files: RON syntax errors with their positions, then validation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ron::extensions::Extensions;
use serde::de::DeserializeOwned;

use super::budget::TokenCounter;
use super::diagnostic::{Diagnostic, Diagnostics, Location, SourceText};
use super::model::Story;
use super::persona::Persona;
use super::ron_hints;
use super::validate;

/// RON as writers use it here: `Some(..)` may be left out around optional values.
fn ron_options() -> ron::Options {
    ron::Options::default().with_default_extension(Extensions::IMPLICIT_SOME)
}

/// Parses RON text into `T`, turning ron's error into a diagnostic at its position.
pub fn parse_ron<T: DeserializeOwned>(source: &SourceText) -> Result<T, Diagnostic> {
    ron_options().from_str::<T>(&source.text).map_err(|e| {
        // ron counts columns in characters; ours count UTF-16 units.
        let offset = source.offset_at(e.span.start.line, e.span.start.col);
        let at = source.location(offset);
        let message = e.code.to_string();
        let help = ron_hints::hint(source, &e.code, offset)
            .or_else(|| ron_help(&message).map(str::to_owned));
        let d = Diagnostic::error(&source.path, at, message);
        match help {
            Some(h) => d.with_help(h),
            None => d,
        }
    })
}

fn ron_help(message: &str) -> Option<&'static str> {
    if message.contains("missing field") {
        Some("add the field; docs/AUTHORING.md lists each kind's fields")
    } else if message.contains("Unexpected field") || message.contains("unknown field") {
        Some("check the spelling; docs/AUTHORING.md lists each kind's fields")
    } else if message.contains("variant") {
        Some("node kinds are Line, Generate, Choice, FreeInput, Branch and Ending")
    } else {
        None
    }
}

/// Parses a persona file's text.
pub fn parse_persona(source: &SourceText) -> Result<Persona, Diagnostic> {
    parse_ron(source)
}

/// Parses a story file's text (no validation).
pub fn parse_story(source: &SourceText) -> Result<Story, Diagnostic> {
    parse_ron(source)
}

/// A persona as loaded for a story: its file and contents.
#[derive(Debug, Clone)]
pub struct CastMember {
    /// The persona file's text.
    pub source: SourceText,
    /// The persona.
    pub persona: Persona,
}

/// A validated story with its cast, ready for a [`StoryRuntime`](super::StoryRuntime).
#[derive(Debug, Clone)]
pub struct StoryBundle {
    /// The story file's text.
    pub source: SourceText,
    /// The story.
    pub story: Story,
    /// Personas by cast key.
    pub cast: BTreeMap<String, CastMember>,
    /// Warnings found while validating (errors refuse the bundle).
    pub warnings: Vec<Diagnostic>,
}

impl StoryBundle {
    /// A persona by cast key.
    pub fn persona(&self, key: &str) -> Option<&Persona> {
        self.cast.get(key).map(|c| &c.persona)
    }

    /// Validates a parsed story and its cast (already read) into a bundle.
    pub fn from_parts(
        source: SourceText,
        story: Story,
        cast: BTreeMap<String, CastMember>,
        counter: &dyn TokenCounter,
    ) -> Result<Self, Diagnostics> {
        let mut found = validate::validate(&source, &story, &cast, counter);
        found.sort();
        if found.has_errors() {
            return Err(found);
        }
        Ok(Self {
            source,
            story,
            cast,
            warnings: found.0,
        })
    }

    /// Reads a story file, its cast's persona files (relative to the story) and validates all.
    pub fn load(path: &Path, counter: &dyn TokenCounter) -> Result<Self, Diagnostics> {
        let source = read_source(path).map_err(|d| Diagnostics(vec![d]))?;
        Self::from_source(source, counter)
    }

    /// Parses a story's text (an editor's unsaved buffer, say), reads its cast's persona files
    /// (relative to `source.path`) and validates all.
    pub fn from_source(
        source: SourceText,
        counter: &dyn TokenCounter,
    ) -> Result<Self, Diagnostics> {
        let story = parse_story(&source).map_err(|d| Diagnostics(vec![d]))?;
        let (cast, mut problems) = read_cast(&source, &story);
        if !problems.0.is_empty() {
            problems.sort();
            return Err(problems);
        }
        Self::from_parts(source, story, cast, counter)
    }
}

/// Reads a file into a [`SourceText`], or a diagnostic saying why not.
pub fn read_source(path: &Path) -> Result<SourceText, Diagnostic> {
    std::fs::read_to_string(path)
        .map(|text| SourceText::new(path, text))
        .map_err(|e| {
            Diagnostic::error(
                path,
                Location { line: 1, col: 1 },
                format!("cannot read: {e}"),
            )
        })
}

/// Where a cast member's persona file is, relative to the story file.
pub fn cast_path(story_path: &Path, file: &str) -> PathBuf {
    story_path
        .parent()
        .map_or_else(|| PathBuf::from(file), |d| d.join(file))
}

/// Reads every persona of a story's cast; problems point at the cast entry or the persona file.
pub fn read_cast(
    source: &SourceText,
    story: &Story,
) -> (BTreeMap<String, CastMember>, Diagnostics) {
    let mut cast = BTreeMap::new();
    let mut problems = Diagnostics::default();
    let cast_field = source.find_field("cast", 0).unwrap_or(0);
    for (key, file) in &story.cast {
        let path = cast_path(&source.path, file);
        let at = source
            .find_literal(file, cast_field)
            .map_or(Location { line: 1, col: 1 }, |o| source.location(o));
        let persona_source = match std::fs::read_to_string(&path) {
            Ok(text) => SourceText::new(&path, text),
            Err(e) => {
                problems.0.push(
                    Diagnostic::error(
                        &source.path,
                        at,
                        format!("cast member `{key}`: cannot read `{}`: {e}", path.display()),
                    )
                    .with_help("cast paths are relative to the story file"),
                );
                continue;
            }
        };
        match parse_persona(&persona_source) {
            Ok(persona) => {
                cast.insert(
                    key.clone(),
                    CastMember {
                        source: persona_source,
                        persona,
                    },
                );
            }
            Err(d) => problems.0.push(d),
        }
    }
    (cast, problems)
}
