//! `safety.ron`: what characters must not say and what players may not make them say, as a
//! writer or operator authors it, read with `file:line:col` errors and compiled for matching.

use std::path::Path;
use std::sync::Arc;

use serde::Deserialize;

use crate::engine::safety::BannedPhrases;
use crate::story::diagnostic::{Diagnostic, Diagnostics, SourceText};
use crate::story::load::{parse_ron, read_source};

/// The file name looked for next to the stories.
pub const SAFETY_FILE: &str = "safety.ron";

/// The contents of `safety.ron`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename = "Safety")]
pub struct SafetyFile {
    /// Limits on what a player may type.
    #[serde(default)]
    pub input: InputLimit,
    /// What an NPC says when the player's words break a rule (a rule may have its own).
    #[serde(default = "default_deflection")]
    pub deflection: String,
    /// What replaces a generated line that breaks a rule (a rule may have its own; else the
    /// line's authored fallback).
    #[serde(default)]
    pub fallback: Option<String>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

fn default_deflection() -> String {
    "I would rather not talk about that.".into()
}

/// No rules, the default input limit and the default deflection line (as an empty file reads).
impl Default for SafetyFile {
    fn default() -> Self {
        Self {
            input: InputLimit::default(),
            deflection: default_deflection(),
            fallback: None,
            rules: Vec::new(),
        }
    }
}

/// Limits on player text.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputLimit {
    /// Most characters a player's message may have.
    #[serde(default = "default_max_chars")]
    pub max_chars: usize,
    /// What happens to a longer message.
    #[serde(default)]
    pub over_limit: OverLimit,
}

fn default_max_chars() -> usize {
    400
}

impl Default for InputLimit {
    fn default() -> Self {
        Self {
            max_chars: default_max_chars(),
            over_limit: OverLimit::default(),
        }
    }
}

/// What happens to player text over [`InputLimit::max_chars`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum OverLimit {
    /// Cut at the limit (at a word boundary where one is near) and used.
    #[default]
    Cut,
    /// Refused: the NPC does not answer and the game is told.
    Refuse,
}

/// Which way a rule looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Applies {
    /// What players type and what characters say.
    #[default]
    Both,
    /// What players type only.
    Input,
    /// What characters say only.
    Output,
}

/// One rule: phrases (or, for player text, patterns) and where it applies.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable id (flags and the audit log name it).
    pub id: String,
    /// Whole words or phrases (`"ass"` does not match in `"class"`), matched through case,
    /// accents, look-alike letters, digit spellings and punctuation between words.
    #[serde(default)]
    pub words: Vec<String>,
    /// Matched anywhere, even inside a word.
    #[serde(default)]
    pub fragments: Vec<String>,
    /// Regular expressions (Rust `regex` syntax), matched against player text only
    /// (a stream cannot be held back for an unbounded pattern).
    #[serde(default)]
    pub patterns: Vec<String>,
    /// Player text, generated lines, or both.
    #[serde(default)]
    pub applies_to: Applies,
    /// Only for these personas (ids); empty: every character.
    #[serde(default)]
    pub personas: Vec<String>,
    /// Only in these stories (ids); empty: everywhere, free chat included.
    #[serde(default)]
    pub stories: Vec<String>,
    /// The NPC's answer when player text breaks this rule (else the file's `deflection`).
    #[serde(default)]
    pub deflection: Option<String>,
    /// What replaces a generated line that breaks this rule (else the file's `fallback`).
    #[serde(default)]
    pub fallback: Option<String>,
}

impl Rule {
    /// Whether the rule applies to `persona` in `story` (`None`: free chat).
    pub fn covers(&self, persona: Option<&str>, story: Option<&str>) -> bool {
        let persona_ok = self.personas.is_empty()
            || persona.is_some_and(|p| self.personas.iter().any(|x| x == p));
        let story_ok =
            self.stories.is_empty() || story.is_some_and(|s| self.stories.iter().any(|x| x == s));
        persona_ok && story_ok
    }
}

/// A checked `safety.ron`, compiled: the rules' phrases and patterns ready to match.
#[derive(Debug, Clone, Default)]
pub struct SafetyRules {
    /// The file as written.
    pub file: SafetyFile,
    /// Where it came from (for messages).
    pub path: Option<std::path::PathBuf>,
    pub(super) patterns: Vec<Vec<regex::Regex>>,
}

impl SafetyRules {
    /// No rules and the default input limit.
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads and checks `path`.
    pub fn load(path: &Path) -> Result<Self, Diagnostics> {
        let source = read_source(path).map_err(|d| Diagnostics(vec![d]))?;
        Self::from_source(&source)
    }

    /// Parses and checks a file's text: RON errors and every bad rule, each at its
    /// `file:line:col`.
    pub fn from_source(source: &SourceText) -> Result<Self, Diagnostics> {
        let file: SafetyFile = parse_ron(source).map_err(|d| Diagnostics(vec![d]))?;
        let mut errors = Vec::new();
        let mut patterns = Vec::new();
        let ids = source.id_fields(0);
        for (i, rule) in file.rules.iter().enumerate() {
            let at = ids
                .iter()
                .filter(|(id, _)| id == &rule.id)
                .nth(file.rules[..i].iter().filter(|r| r.id == rule.id).count())
                .map_or(0, |(_, at)| *at);
            let here = |what: &str| {
                source
                    .find_literal(what, at)
                    .map_or_else(|| source.location(at), |o| source.location(o))
            };
            if rule.id.trim().is_empty() {
                errors.push(Diagnostic::error(
                    &source.path,
                    here(""),
                    "a rule needs an id",
                ));
            }
            if file.rules[..i].iter().any(|r| r.id == rule.id) {
                errors.push(
                    Diagnostic::error(
                        &source.path,
                        source.location(at),
                        format!("rule `{}` is defined twice", rule.id),
                    )
                    .with_help("give each rule its own id"),
                );
            }
            if rule.words.is_empty() && rule.fragments.is_empty() && rule.patterns.is_empty() {
                errors.push(
                    Diagnostic::error(
                        &source.path,
                        source.location(at),
                        format!("rule `{}` bans nothing", rule.id),
                    )
                    .with_help("give it `words`, `fragments` or `patterns`"),
                );
            }
            for phrase in rule.words.iter().chain(&rule.fragments) {
                if !BannedPhrases::new().add(phrase, 0, true) {
                    errors.push(
                        Diagnostic::error(
                            &source.path,
                            here(phrase),
                            format!("rule `{}`: {phrase:?} has no letters or digits", rule.id),
                        )
                        .with_help("punctuation alone is ignored when matching; remove it"),
                    );
                }
            }
            if !rule.patterns.is_empty() && rule.applies_to == Applies::Output {
                errors.push(
                    Diagnostic::error(
                        &source.path,
                        source.location(at),
                        format!("rule `{}`: `patterns` apply to player text only", rule.id),
                    )
                    .with_help("use `words` or `fragments` for what characters say"),
                );
            }
            let mut compiled = Vec::new();
            for p in &rule.patterns {
                match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                    Ok(r) => compiled.push(r),
                    Err(e) => {
                        let message = e.to_string();
                        let why = message.lines().last().unwrap_or(&message).trim();
                        let why = why.strip_prefix("error: ").unwrap_or(why);
                        errors.push(Diagnostic::error(
                            &source.path,
                            here(p),
                            format!("rule `{}`: bad pattern: {why}", rule.id),
                        ))
                    }
                }
            }
            patterns.push(compiled);
        }
        if errors.is_empty() {
            Ok(Self {
                file,
                path: Some(source.path.clone()),
                patterns,
            })
        } else {
            Err(Diagnostics(errors))
        }
    }

    /// The phrases a character must not say as `persona` in `story` (`None`: free chat),
    /// compiled for the generation loop and the stream guard; `None` when there are none.
    pub fn banned_output(
        &self,
        persona: Option<&str>,
        story: Option<&str>,
    ) -> Option<Arc<BannedPhrases>> {
        let mut set = BannedPhrases::new();
        for (i, rule) in self.file.rules.iter().enumerate() {
            if rule.applies_to == Applies::Input || !rule.covers(persona, story) {
                continue;
            }
            for w in &rule.words {
                set.add(w, i, true);
            }
            for f in &rule.fragments {
                set.add(f, i, false);
            }
        }
        (!set.is_empty()).then(|| Arc::new(set))
    }

    /// The rule with number `i` (as [`BannedPhrases`] tags them).
    pub fn rule(&self, i: usize) -> Option<&Rule> {
        self.file.rules.get(i)
    }

    /// What replaces a line that broke rule `i`, if the rule or the file says.
    pub fn replacement(&self, i: usize) -> Option<&str> {
        self.rule(i)
            .and_then(|r| r.fallback.as_deref())
            .or(self.file.fallback.as_deref())
    }
}
