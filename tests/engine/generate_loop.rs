//! The generation loop on stories260K: stop strings across tokens, end tokens, max tokens,
//! cancellation, context full, seeded determinism, and prefix reuse giving identical output.

use crate::common;

use std::ops::ControlFlow;

use bevy_llama_dialogue::engine::generate::{FinishReason, GenerateOptions, Generation, generate};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;

fn stories(max_context: Option<usize>) -> Llama {
    Llama::load(
        common::model("stories260K.gguf"),
        &ModelOptions {
            max_context,
            ..Default::default()
        },
    )
    .unwrap()
}

fn greedy(n: usize) -> SamplingParams {
    SamplingParams {
        max_tokens: n,
        ..SamplingParams::greedy()
    }
}

fn run(llama: &mut Llama, prompt: &str, params: &SamplingParams) -> (Generation, Vec<String>) {
    let mut chunks = Vec::new();
    let g = llama
        .complete(prompt, params, &mut |t| {
            chunks.push(t.to_owned());
            ControlFlow::Continue(())
        })
        .unwrap();
    (g, chunks)
}

const LLAMA_CPP_TEXT: &str =
    ", there was a little girl named Lily. She loved to play outside in the park.";

#[test]
fn streamed_chunks_add_up_to_the_text() {
    let mut l = stories(None);
    let (g, chunks) = run(&mut l, "Once upon a time", &greedy(20));
    assert_eq!(g.finish, FinishReason::MaxTokens);
    assert_eq!(g.tokens.len(), 20);
    assert_eq!(chunks.concat(), g.text);
    assert!(LLAMA_CPP_TEXT.starts_with(&g.text), "{:?}", g.text);
    assert!(chunks.len() >= 15, "text streams token by token");
}

#[test]
fn stop_string_across_tokens_is_not_leaked() {
    let mut l = stories(None);
    let params = SamplingParams {
        stop: vec!["girl named".into()],
        ..greedy(40)
    };
    let (g, chunks) = run(&mut l, "Once upon a time", &params);
    assert_eq!(g.finish, FinishReason::Stop);
    assert_eq!(g.text, ", there was a little ");
    assert!(!chunks.concat().contains("girl"), "{chunks:?}");
}

#[test]
fn end_token_stops_without_being_emitted() {
    let mut l = stories(None);
    let prompt = l.tokenizer.encode("Once upon a time", true);
    // Treat "." (id 426 in this vocabulary) as an end token.
    let opts = GenerateOptions {
        stop_tokens: &[426],
        ..Default::default()
    };
    let g = generate(
        &mut l.model,
        &l.tokenizer,
        &prompt,
        &greedy(64),
        opts,
        &mut |_| ControlFlow::Continue(()),
    )
    .unwrap();
    assert_eq!(g.finish, FinishReason::Eos);
    assert_eq!(g.text, ", there was a little girl named Lily");
    assert!(!g.tokens.contains(&426));
}

#[test]
fn cancel_takes_effect_before_the_next_token() {
    let mut l = stories(None);
    let mut seen = 0;
    let g = l
        .complete("Once upon a time", &greedy(64), &mut |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!(g.finish, FinishReason::Cancelled);
    assert_eq!(g.tokens.len(), 3);
}

#[test]
fn context_full_ends_generation_cleanly() {
    let mut l = stories(Some(20));
    let (g, _) = run(&mut l, "Once upon a time", &greedy(100));
    assert_eq!(g.finish, FinishReason::ContextFull);
    // 5 prompt + 15 generated positions fill the 20; the 16th token is predicted from the last
    // position and returned, but cannot be fed back.
    assert_eq!(g.tokens.len(), 16);
    assert_eq!(l.model.cache().len(), 20);
    // A prompt that cannot fit is an error, not a panic.
    let long = "Once upon a time ".repeat(10);
    assert!(
        l.complete(&long, &greedy(5), &mut |_| ControlFlow::Continue(()))
            .is_err()
    );
}

#[test]
fn seeded_sampling_is_deterministic() {
    let mut l = stories(None);
    let p = |seed| SamplingParams {
        seed: Some(seed),
        max_tokens: 40,
        ..SamplingParams::default()
    };
    let a = run(&mut l, "Once upon a time", &p(11)).0;
    let b = run(&mut l, "Once upon a time", &p(11)).0;
    let c = run(&mut l, "Once upon a time", &p(12)).0;
    assert_eq!(a.tokens, b.tokens);
    assert_ne!(a.tokens, c.tokens);
}

#[test]
fn follow_up_prefills_only_new_tokens_with_identical_output() {
    let mut l = stories(None);
    let first = run(&mut l, "Once upon a time", &greedy(16)).0;
    assert_eq!(first.stats.cached_tokens, 0);
    let follow = format!("Once upon a time{} Then the dog", first.text);
    let reused = run(&mut l, &follow, &greedy(24)).0;
    let prompt_len = l.tokenizer.encode(&follow, true).len();
    assert!(
        reused.stats.cached_tokens >= 5 + 15,
        "cached {} of {prompt_len}",
        reused.stats.cached_tokens
    );
    let mut fresh = stories(None);
    let scratch = run(&mut fresh, &follow, &greedy(24)).0;
    assert_eq!(scratch.stats.cached_tokens, 0);
    assert_eq!(reused.tokens, scratch.tokens);
    // The very same prompt again: everything but the last token comes from the cache.
    let again = run(&mut l, &follow, &greedy(24)).0;
    assert_eq!(again.stats.cached_tokens, prompt_len - 1);
    assert_eq!(again.tokens, scratch.tokens);
}
