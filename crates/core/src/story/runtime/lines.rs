//! Generated lines: prompt parts and the request for the backend.

use crate::engine::sampler::SamplingParams;

use crate::story::budget::Estimate;
use crate::story::prompt::{PromptParts, fit, state_text};
use crate::story::validate::PLAYER;

use super::{LineOutcome, LineRequest, RuntimeError, StoryRuntime};
use crate::story::acts::{LineFormat, ReadLine};

/// Tokens a formatted line may spend on its emotion and action call, besides its words.
pub const MARKUP_TOKENS: usize = 96;

impl StoryRuntime {
    /// The prompt parts of a generated line (facts unlocked now, memories, feelings).
    pub fn prompt_parts(
        &mut self,
        node: &str,
        speaker: &str,
        directive: &str,
    ) -> Result<PromptParts, RuntimeError> {
        let state = self.state.clone();
        let mut facts = Vec::new();
        if let Some(p) = self.bundle.persona(speaker).cloned() {
            for f in &p.knowledge {
                if self.holds(&state, node, f.when.as_deref())? {
                    facts.push(Self::fill(&state, node, &f.text)?);
                }
            }
        }
        let memory = state.memories.get(speaker).cloned().unwrap_or_default();
        facts.extend(memory.facts.iter().cloned());
        let feelings: Vec<(String, i64)> = state
            .relationships
            .get(speaker)
            .map(|m| {
                m.iter()
                    .filter(|(who, _)| *who == PLAYER || self.bundle.cast.contains_key(*who))
                    .map(|(who, v)| {
                        let name = if who == PLAYER {
                            "the player".to_owned()
                        } else {
                            self.display_name(who)
                        };
                        (name, *v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let window = self.bundle.story.settings.history_turns;
        let start = memory.turns.len().saturating_sub(window);
        Ok(PromptParts {
            persona: self
                .bundle
                .persona(speaker)
                .map(|p| p.system_text())
                .unwrap_or_default(),
            facts,
            state: state_text(&self.bundle.story.description, &feelings),
            directive: Self::fill(&state, node, directive)?,
            history: memory.turns[start..].to_vec(),
        })
    }

    pub(super) fn line_request(
        &mut self,
        node: &str,
        speaker: &str,
        directive: &str,
        max_tokens: Option<u32>,
        fallback: &str,
        actions: &[String],
    ) -> Result<LineRequest, RuntimeError> {
        let settings = self.bundle.story.settings.clone();
        let overrides = self
            .bundle
            .persona(speaker)
            .map(|p| p.generation.clone())
            .unwrap_or_default();
        let answer = max_tokens
            .or(overrides.max_tokens)
            .unwrap_or(settings.max_tokens) as usize;
        let mut format = self
            .bundle
            .persona(speaker)
            .and_then(|p| p.line_format(actions));
        if let Some(f) = &mut format {
            // The words are held to about `answer` tokens (two characters each: small
            // vocabularies spell words out) so that the
            // grammar ends the line, markup included, within the tokens allowed below.
            f.max_chars = (answer * 2).clamp(24, LineFormat::DEFAULT_MAX_CHARS as usize) as u32;
        }
        let mut parts = self.prompt_parts(node, speaker, directive)?;
        if let Some(f) = &format {
            parts.directive = format!("{} {}", parts.directive, f.instructions());
        }
        let budget = settings.context_tokens.saturating_sub(answer);
        let prompt = fit(&parts, &Estimate, budget).map_err(|e| RuntimeError::Prompt {
            node: node.to_owned(),
            reason: e.to_string(),
        })?;
        let mut params = SamplingParams {
            // Room for the emotion and an action call besides the words.
            max_tokens: answer + if format.is_some() { MARKUP_TOKENS } else { 0 },
            ..self.sampling.clone()
        };
        if let Some(t) = overrides.temperature {
            params.temperature = t;
        }
        // A character's line is one paragraph: past a line break small models go on with the
        // prompt's own headings or other speakers' turns (`docs/QUALITY.md`).
        if !params.stop.iter().any(|s| s == "\n") {
            params.stop.push("\n".to_owned());
        }
        Ok(LineRequest {
            node: node.to_owned(),
            speaker: speaker.to_owned(),
            prompt,
            params,
            fallback: Self::fill(&self.state, node, fallback)?,
            format,
        })
    }
}

/// Reads a finished line under `format` (`None`: plain words). The `next` of the result is
/// left empty for the caller.
pub(super) fn read_line(format: Option<&LineFormat>, text: &str) -> LineOutcome {
    let read = match format {
        Some(f) => f.read(text),
        None => ReadLine {
            words: text.trim().to_owned(),
            ..ReadLine::default()
        },
    };
    LineOutcome {
        words: read.words,
        emotion: read.emotion,
        action: read.action,
        refused: read.refused,
        next: String::new(),
    }
}
