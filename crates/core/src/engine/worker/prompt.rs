//! Turning a [`Prompt`] into tokens that fit the context, and finding its persona prefix.

use crate::engine::common_prefix;
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
    let render = |probe: &str| {
        llama.template.render(
            &llama.tokenizer,
            &messages(system, &[ChatMessage::new(Role::User, probe)]),
        )
    };
    let (a, b) = (render("0")?, render("Z")?);
    let common = common_prefix(&a, &b);
    Ok(a[..common].to_vec())
}

/// Renders `prompt`, dropping the oldest turns (never the persona, never the last message) until
/// it leaves `reserve` tokens to answer. Turns are dropped in a block: once anything must go,
/// down to three quarters of the context, so that the next turns have room again and the cache
/// can be shifted once instead of at every turn. Each time turns are dropped, `summarise` is
/// called with all dropped turns and its summary is kept after the persona (left out if even
/// alone it does not fit).
pub fn build(
    llama: &Llama,
    prompt: &Prompt,
    reserve: usize,
    summarise: Option<&SummariseHook>,
) -> Result<BuiltPrompt, RequestError> {
    build_from(llama, prompt, reserve, summarise, 0)
}

/// [`build`], with the first `start` turns already dropped (where the conversation's previous
/// turn started after its last block drop): the kept window only moves on when the prompt no
/// longer fits the whole context, so the turns between two drops reuse the cache as a plain
/// prefix.
pub fn build_from(
    llama: &Llama,
    prompt: &Prompt,
    reserve: usize,
    summarise: Option<&SummariseHook>,
    start: usize,
) -> Result<BuiltPrompt, RequestError> {
    let context = llama.model.context_length();
    let render = |system: &str, turns: &[ChatMessage]| {
        llama
            .template
            .render(&llama.tokenizer, &messages(system, turns))
    };
    let mut dropped = start.min(prompt.turns.len().saturating_sub(1));
    let mut limit = context;
    let mut summary: Option<String> = match (dropped, summarise) {
        (1.., Some(hook)) => hook(&prompt.turns[..dropped]),
        _ => None,
    };
    let (tokens, system) = loop {
        let turns = &prompt.turns[dropped..];
        let system = match &summary {
            Some(s) => format!("{}\n\nEarlier in this conversation: {s}", prompt.system),
            None => prompt.system.clone(),
        };
        let tokens = render(&system, turns)?;
        if tokens.len() + reserve <= limit {
            break (tokens, system);
        }
        if turns.len() <= 1 {
            if tokens.len() + reserve <= context {
                break (tokens, system); // short of the block's target, but it fits
            }
            if summary.take().is_some() {
                continue; // retry without the summary
            }
            return Err(RequestError::ContextFull {
                needed: tokens.len() + reserve,
                context,
            });
        }
        limit = context - context / 4;
        // Drop the oldest exchange: a user message and the reply that follows it.
        dropped +=
            if turns.len() > 2 && turns[0].role == Role::User && turns[1].role == Role::Assistant {
                2
            } else {
                1
            };
        summary = summarise.and_then(|hook| hook(&prompt.turns[..dropped]));
    };
    let persona = persona_prefix(llama, &system)?;
    let persona_len = common_prefix(&tokens, &persona);
    Ok(BuiltPrompt {
        tokens,
        persona_len,
        dropped_turns: dropped,
    })
}
