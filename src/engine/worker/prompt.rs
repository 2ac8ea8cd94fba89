//! Turning a [`Prompt`] into tokens that fit the context, and finding its persona prefix.

use std::sync::Arc;

use crate::engine::backend::{Prompt, RequestError};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::llama::Llama;

/// Condenses turns dropped for lack of room into a sentence kept with the persona.
pub type SummariseHook = Arc<dyn Fn(&[ChatMessage]) -> Option<String> + Send + Sync>;

/// A prompt ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltPrompt {
    /// All tokens.
    pub tokens: Vec<u32>,
    /// How many leading tokens depend only on the persona (cacheable across turns and NPCs).
    pub persona_len: usize,
    /// Oldest turns dropped to make room.
    pub dropped_turns: usize,
}

fn messages(system: &str, turns: &[ChatMessage]) -> Vec<ChatMessage> {
    let mut out = Vec::with_capacity(turns.len() + 1);
    if !system.is_empty() {
        out.push(ChatMessage::new(Role::System, system));
    }
    out.extend_from_slice(turns);
    out
}

/// The tokens of the persona part: what two renders with different user messages share.
pub fn persona_prefix(llama: &Llama, system: &str) -> Result<Vec<u32>, RequestError> {
    let render = |probe: &str| llama.template.render(&llama.tokenizer, &messages(system, &[ChatMessage::new(Role::User, probe)]));
    let (a, b) = (render("0")?, render("Z")?);
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    Ok(a[..common].to_vec())
}

/// Renders `prompt`, dropping the oldest turns (never the persona, never the last message) until
/// it leaves `reserve` tokens to answer. Dropped turns go to `summarise`, whose summary is kept
/// after the persona.
pub fn build(llama: &Llama, prompt: &Prompt, reserve: usize, summarise: Option<&SummariseHook>) -> Result<BuiltPrompt, RequestError> {
    let context = llama.model.context_length();
    let mut turns: &[ChatMessage] = &prompt.turns;
    let mut dropped = 0;
    let mut tokens = llama.template.render(&llama.tokenizer, &messages(&prompt.system, turns))?;
    while tokens.len() + reserve > context {
        if turns.len() <= 1 {
            return Err(RequestError::ContextFull { needed: tokens.len() + reserve, context });
        }
        // Drop the oldest exchange: a user message and the reply that follows it.
        let n = if turns.len() > 2 && turns[0].role == Role::User && turns[1].role == Role::Assistant { 2 } else { 1 };
        turns = &turns[n..];
        dropped += n;
        tokens = llama.template.render(&llama.tokenizer, &messages(&prompt.system, turns))?;
    }
    let mut system = prompt.system.clone();
    if dropped > 0 {
        if let Some(summary) = summarise.and_then(|hook| hook(&prompt.turns[..dropped])) {
            let with_summary = format!("{system}\n\nEarlier in this conversation: {summary}");
            let t = llama.template.render(&llama.tokenizer, &messages(&with_summary, turns))?;
            if t.len() + reserve <= context {
                system = with_summary;
                tokens = t;
            }
        }
    }
    let persona = persona_prefix(llama, &system)?;
    let persona_len = tokens.iter().zip(&persona).take_while(|(a, b)| a == b).count();
    Ok(BuiltPrompt { tokens, persona_len, dropped_turns: dropped })
}
