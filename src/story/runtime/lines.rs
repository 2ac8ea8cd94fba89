//! Generated lines: prompt parts and the request for the backend.

use crate::engine::sampler::SamplingParams;

use crate::story::budget::Estimate;
use crate::story::prompt::{PromptParts, fit, state_text};
use crate::story::validate::PLAYER;

use super::{LineRequest, RuntimeError, StoryRuntime};

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
        let parts = self.prompt_parts(node, speaker, directive)?;
        let budget = settings.context_tokens.saturating_sub(answer);
        let prompt = fit(&parts, &Estimate, budget).map_err(|e| RuntimeError::Prompt {
            node: node.to_owned(),
            reason: e.to_string(),
        })?;
        let mut params = SamplingParams {
            max_tokens: answer,
            ..self.sampling.clone()
        };
        if let Some(t) = overrides.temperature {
            params.temperature = t;
        }
        Ok(LineRequest {
            node: node.to_owned(),
            speaker: speaker.to_owned(),
            prompt,
            params,
            fallback: Self::fill(&self.state, node, fallback)?,
        })
    }
}
