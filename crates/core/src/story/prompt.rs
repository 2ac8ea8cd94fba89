//! Prompt assembly: persona, facts, story state, directive and history, fitted to a budget.
//!
//! Priorities when the budget is short: the persona and the directive are always kept (a story
//! where they alone do not fit is refused at load by the budget lint); then older turns go first,
//! then recent turns, then the story-state line, then facts (last listed first). The persona is
//! the prompt's system part and never changes during a story, so the worker's prefix cache hits
//! across turns; everything that changes goes into the last user message.

use crate::engine::backend::Prompt;
use crate::engine::chat::{ChatMessage, Role};

use super::budget::{TEMPLATE_TOKENS_PER_MESSAGE, TEMPLATE_TOKENS_SYSTEM, TokenCounter};

/// What a generated line's prompt is made of, before fitting.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PromptParts {
    /// The persona (system part, stable).
    pub persona: String,
    /// Facts the NPC knows now, most important first.
    pub facts: Vec<String>,
    /// The story state: premise, feelings, anything that changes.
    pub state: String,
    /// What the line must do.
    pub directive: String,
    /// The conversation so far, oldest first (`User` = the player, `Assistant` = this NPC).
    pub history: Vec<ChatMessage>,
}

/// A prompt fitted to a budget.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPrompt {
    /// The prompt for the backend.
    pub prompt: Prompt,
    /// Its estimated size in tokens (with the template's markers).
    pub tokens: usize,
    /// History turns left out.
    pub dropped_turns: usize,
    /// Facts left out.
    pub dropped_facts: usize,
    /// Whether the story-state line was left out.
    pub dropped_state: bool,
}

/// Why no prompt could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("persona and directive alone take {needed} tokens; the budget is {budget}")]
pub struct PromptTooLong {
    /// Tokens the persona and directive need.
    pub needed: usize,
    /// The budget.
    pub budget: usize,
}

/// What the player approaching says when the NPC speaks first (the template needs a user turn).
pub const OPENING_TURN: &str = "(The player walks up to you.)";

/// The story-state line of a prompt: the premise and how the NPC feels about others
/// (`feelings`: who, by display name, and the relationship value).
pub fn state_text(premise: &str, feelings: &[(String, i64)]) -> String {
    let mut out = String::new();
    if !premise.is_empty() {
        out.push_str("The story so far: ");
        out.push_str(premise);
    }
    if !feelings.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str("How you feel: ");
        let parts: Vec<String> = feelings
            .iter()
            .map(|(who, v)| format!("toward {who}: {}", super::persona::relationship_words(*v)))
            .collect();
        out.push_str(&parts.join("; "));
        out.push('.');
    }
    out
}

/// Merges consecutive messages of one role and makes the conversation open with a user turn.
fn normalise(history: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(history.len() + 1);
    for m in history.iter().filter(|m| m.role != Role::System) {
        match out.last_mut() {
            Some(last) if last.role == m.role => {
                last.content.push('\n');
                last.content.push_str(&m.content);
            }
            _ => out.push(m.clone()),
        }
    }
    if out.first().is_some_and(|m| m.role == Role::Assistant) {
        out.insert(0, ChatMessage::new(Role::User, OPENING_TURN));
    }
    out
}

/// The last user message: what the player just said (if the history ends with it), then the
/// notes for this line.
fn final_message(
    player: Option<&str>,
    facts: &[String],
    state: Option<&str>,
    directive: &str,
) -> String {
    let mut out = String::new();
    if let Some(p) = player {
        out.push_str(&format!("The player says: \"{p}\"\n\n"));
    }
    out.push_str("[Notes for your next line, not said aloud]");
    if !facts.is_empty() {
        out.push_str("\nWhat you know now:");
        for f in facts {
            out.push_str("\n- ");
            out.push_str(f);
        }
    }
    if let Some(s) = state.filter(|s| !s.is_empty()) {
        out.push('\n');
        out.push_str(s);
    }
    out.push_str("\nYour next line: ");
    out.push_str(directive);
    out
}

pub(crate) fn assemble(
    parts: &PromptParts,
    history: &[ChatMessage],
    facts: &[String],
    state: bool,
) -> Prompt {
    let mut turns = normalise(history);
    let player = match turns.last() {
        Some(m) if m.role == Role::User => turns.pop().map(|m| m.content),
        _ => None,
    };
    let state = state.then_some(parts.state.as_str());
    turns.push(ChatMessage::new(
        Role::User,
        final_message(player.as_deref(), facts, state, &parts.directive),
    ));
    Prompt {
        system: parts.persona.clone(),
        turns,
    }
}

/// Tokens of a prompt as the template will lay it out (estimated with `counter`).
pub fn measure(prompt: &Prompt, counter: &dyn TokenCounter) -> usize {
    let system = if prompt.system.is_empty() {
        0
    } else {
        counter.count(&prompt.system) + TEMPLATE_TOKENS_SYSTEM
    };
    system
        + prompt
            .turns
            .iter()
            .map(|t| counter.count(&t.content) + TEMPLATE_TOKENS_PER_MESSAGE)
            .sum::<usize>()
}

/// Assembles the prompt, leaving things out in priority order until it fits `budget` tokens.
pub fn fit(
    parts: &PromptParts,
    counter: &dyn TokenCounter,
    budget: usize,
) -> Result<FittedPrompt, PromptTooLong> {
    let n = parts.history.len();
    let done = |prompt: Prompt, dropped_turns, dropped_facts, dropped_state| {
        let tokens = measure(&prompt, counter);
        (tokens <= budget).then_some(FittedPrompt {
            prompt,
            tokens,
            dropped_turns,
            dropped_facts,
            dropped_state,
        })
    };
    // Older turns first (keeping the newest ones).
    for drop in 0..=n {
        let prompt = assemble(parts, &parts.history[drop..], &parts.facts, true);
        if let Some(f) = done(prompt, drop, 0, false) {
            return Ok(f);
        }
    }
    // Then the state line, then facts from the last.
    for keep in (0..=parts.facts.len()).rev() {
        let prompt = assemble(parts, &[], &parts.facts[..keep], false);
        if let Some(f) = done(prompt, n, parts.facts.len() - keep, true) {
            return Ok(f);
        }
    }
    let bare = assemble(parts, &[], &[], false);
    Err(PromptTooLong {
        needed: measure(&bare, counter),
        budget,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::story::budget::Estimate;

    fn parts(turns: usize) -> PromptParts {
        let mut history = Vec::new();
        for i in 0..turns {
            let role = if i % 2 == 0 {
                Role::Assistant
            } else {
                Role::User
            };
            history.push(ChatMessage::new(
                role,
                format!("turn {i} {}", "word ".repeat(20)),
            ));
        }
        PromptParts {
            persona: "You are Mara.".into(),
            facts: vec!["fact one".into(), "fact two".into()],
            state: "The lantern is missing.".into(),
            directive: "Greet the player.".into(),
            history,
        }
    }

    #[test]
    fn everything_fits_in_a_big_budget_and_alternates() {
        let f = fit(&parts(4), &Estimate, 10_000).unwrap();
        assert_eq!(f.dropped_turns, 0);
        let roles: Vec<Role> = f.prompt.turns.iter().map(|t| t.role).collect();
        assert_eq!(roles[0], Role::User, "opens with a user turn");
        assert!(roles.windows(2).all(|w| w[0] != w[1]), "{roles:?}");
        let last = &f.prompt.turns.last().unwrap().content;
        assert!(last.contains("The player says: \"turn 3"), "{last}");
        assert!(last.contains("fact two") && last.ends_with("Greet the player."));
        assert_eq!(f.prompt.system, "You are Mara.");
    }

    #[test]
    fn drops_oldest_turns_then_state_then_facts() {
        let full = fit(&parts(6), &Estimate, 10_000).unwrap().tokens;
        let f = fit(&parts(6), &Estimate, full - 1).unwrap();
        assert!(f.dropped_turns >= 1 && f.dropped_facts == 0 && !f.dropped_state);
        assert!(f.prompt.turns.iter().any(|t| t.content.contains("turn 5")));
        let bare = fit(&parts(6), &Estimate, 0).unwrap_err();
        let f = fit(&parts(6), &Estimate, bare.needed + 4).unwrap();
        assert!(f.dropped_state && f.dropped_turns == 6);
        assert!(f.tokens <= bare.needed + 4);
        assert_eq!(
            f.prompt.system, "You are Mara.",
            "the persona is never dropped"
        );
    }
}
