//! The token-budget lint: each generated node's worst-case prompt against the context.

use super::super::budget::{TEMPLATE_TOKENS_PER_MESSAGE, TokenCounter};
use super::super::model::{Effect, Node};
use super::super::prompt::{PromptParts, assemble, measure, state_text};
use super::{Check, PLAYER};

impl Check<'_> {
    /// Worst-case prompt of each generated node against the context.
    pub(super) fn budget(&mut self, counter: &dyn TokenCounter) {
        let context = counter
            .context()
            .unwrap_or(self.story.settings.context_tokens);
        let s = &self.story.settings;
        let longest_line = self
            .story
            .nodes
            .iter()
            .map(|n| match n {
                Node::Line { text, .. } => counter.count(text),
                Node::Generate {
                    max_tokens,
                    fallback,
                    ..
                } => (max_tokens.unwrap_or(s.max_tokens) as usize).max(counter.count(fallback)),
                Node::Choice { options, .. } => options
                    .iter()
                    .map(|o| counter.count(&o.text))
                    .max()
                    .unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(s.max_player_tokens);
        for n in self.story.nodes.clone() {
            let Node::Generate {
                id,
                speaker,
                directive,
                max_tokens,
                actions,
                ..
            } = &n
            else {
                continue;
            };
            let Some(member) = self.cast.get(speaker) else {
                continue;
            };
            let persona = &member.persona;
            // The emotions and the actions allowed here are described in the directive.
            let instructions = persona
                .line_format(actions)
                .map(|f| f.instructions())
                .unwrap_or_default();
            let mut facts: Vec<String> = persona.knowledge.iter().map(|f| f.text.clone()).collect();
            for node in &self.story.nodes {
                let option_effects = match node {
                    Node::Choice { options, .. } => options
                        .iter()
                        .flat_map(|o| o.effects.iter())
                        .collect::<Vec<_>>(),
                    Node::FreeInput { edges, .. } => {
                        edges.iter().flat_map(|e| e.effects.iter()).collect()
                    }
                    _ => Vec::new(),
                };
                for e in node.effects().iter().chain(option_effects) {
                    if let Effect::Remember(who, fact) = e
                        && who == speaker
                    {
                        facts.push(fact.clone());
                    }
                }
            }
            let feelings: Vec<(String, i64)> = self
                .story
                .cast
                .keys()
                .filter(|k| *k != speaker)
                .map(|k| (k.clone(), 0))
                .chain([(PLAYER.to_owned(), 0)])
                .collect();
            let parts = PromptParts {
                persona: persona.system_text(),
                facts,
                state: state_text(&self.story.description, &feelings),
                directive: format!("{directive} {instructions}").trim_end().to_owned(),
                history: Vec::new(),
            };
            // History is counted as numbers: each turn as long as the longest line the story
            // can produce (authored, generated or typed), plus the template's markers.
            let history = s.history_turns * (longest_line + TEMPLATE_TOKENS_PER_MESSAGE);
            let prompt = assemble(&parts, &[], &parts.facts, true);
            let answer = max_tokens
                .or(persona.generation.max_tokens)
                .unwrap_or(s.max_tokens) as usize;
            let total = measure(&prompt, counter) + history + answer;
            if total > context {
                let persona_tokens = counter.count(&parts.persona);
                let acts = if instructions.is_empty() {
                    String::new()
                } else {
                    format!(", emotions and actions {}", counter.count(&instructions))
                };
                let at = self.in_node(id, directive);
                self.error(
                    at,
                    format!(
                        "the worst-case prompt of `{id}` takes {total} tokens but the context holds {context} \
                         (persona {persona_tokens}, {} facts{acts}, {} history turns of up to {longest_line}, answer {answer}; counted by {})",
                        parts.facts.len(),
                        s.history_turns,
                        counter.describe()
                    ),
                    Some("shorten the persona or its facts, or lower settings.history_turns / max_tokens".into()),
                );
            }
        }
    }
}
