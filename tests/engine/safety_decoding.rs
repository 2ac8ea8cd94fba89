//! Banned phrases kept out of real stories260K output while decoding: the generation holds back
//! text that could start one, backs off to the token that began one and bans it there, and
//! gives up (`FinishReason::Blocked`) when a phrase keeps coming back; through `generate` and
//! through the worker's batched slots. Nothing banned is ever streamed.

use crate::common;

use std::ops::ControlFlow;
use std::sync::Arc;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, ConversationId, GenerateRequest, Prompt,
};
use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::generate::{FinishReason, GenerateOptions, Generation, generate};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::safety::BannedPhrases;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig};

fn llama() -> Llama {
    Llama::load(common::model("stories260K.gguf"), &ModelOptions::default()).unwrap()
}

/// Greedy continuation of `text` with `banned`; returns the result and the streamed chunks.
fn run(l: &mut Llama, text: &str, banned: Option<BannedPhrases>) -> (Generation, Vec<String>) {
    let prompt = l.tokenizer.encode(text, true);
    let eos = [l.tokenizer.eos_id()];
    let opts = GenerateOptions {
        stop_tokens: &eos,
        banned: banned.map(Arc::new),
        ..Default::default()
    };
    let params = SamplingParams {
        max_tokens: 80,
        ..SamplingParams::greedy()
    };
    l.model.clear_cache();
    let mut chunks = Vec::new();
    let g = generate(
        &mut l.model,
        &l.tokenizer,
        &prompt,
        &params,
        opts,
        &mut |t: &str| {
            chunks.push(t.to_owned());
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    (g, chunks)
}

fn set(phrases: &[&str], words: bool) -> BannedPhrases {
    let mut s = BannedPhrases::new();
    for (i, p) in phrases.iter().enumerate() {
        assert!(s.add(p, i, words));
    }
    s
}

const PROMPT: &str = "Once upon a time, there was a little girl named Lily.";

/// Two words the free output says, well into it (so a prefix is streamed before them).
fn words_said(text: &str) -> (String, String) {
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .collect();
    assert!(words.len() > 8, "a long enough free line: {text:?}");
    (words[4].to_owned(), format!("{} {}", words[6], words[7]))
}

#[test]
fn a_banned_word_or_phrase_never_appears_and_the_text_before_it_is_kept() {
    let mut l = llama();
    let (free, _) = run(&mut l, PROMPT, None);
    let (word, phrase) = words_said(&free.text);
    for (banned, words) in [(word.as_str(), true), (phrase.as_str(), true)] {
        let bans = set(&[banned], words);
        let (g, chunks) = run(&mut l, PROMPT, Some(bans.clone()));
        assert_eq!(chunks.concat(), g.text, "what streamed is the text");
        assert!(
            bans.find(&g.text, 0, true).is_none(),
            "`{banned}` was banned, got {:?}",
            g.text
        );
        assert_ne!(g.text, free.text, "the ban changed the line");
        // Greedy: up to where the free line first said it, the banned line is the same.
        let first = bans.find(&free.text, 0, true).unwrap().start;
        let kept = free.text[..first].trim_end();
        assert!(
            g.text.starts_with(kept),
            "{banned:?}: {:?} does not start with {kept:?}",
            g.text
        );
        assert_ne!(g.finish, FinishReason::Blocked, "{banned:?}: {:?}", g.text);
    }
}

#[test]
fn spellings_and_case_are_banned_too_and_a_phrase_that_keeps_coming_is_blocked() {
    let mut l = llama();
    let (free, _) = run(&mut l, PROMPT, None);
    let (word, _) = words_said(&free.text);
    // The rule is written in upper case with a Cyrillic look-alike where it can be.
    let spelled: String = word
        .to_uppercase()
        .chars()
        .map(|c| if c == 'A' { 'А' } else { c })
        .collect();
    let (g, chunks) = run(&mut l, PROMPT, Some(set(&[&spelled], true)));
    assert!(
        !g.text.contains(&word),
        "{spelled:?} bans {word:?}: {:?}",
        g.text
    );
    assert_eq!(chunks.concat(), g.text);
    // A letter banned anywhere cannot be avoided for long: the line ends before it.
    let (g, chunks) = run(&mut l, PROMPT, Some(set(&["e"], false)));
    assert_eq!(g.finish, FinishReason::Blocked, "{:?}", g.text);
    assert!(!g.text.to_lowercase().contains('e'), "{:?}", g.text);
    assert_eq!(chunks.concat(), g.text);
}

fn worker_request(id: u64, banned: Option<Arc<BannedPhrases>>) -> BackendRequest {
    BackendRequest::Generate(GenerateRequest {
        id,
        conversation: ConversationId(id),
        prompt: Prompt {
            system: String::new(),
            turns: vec![ChatMessage::new(Role::User, PROMPT)],
        },
        params: SamplingParams {
            max_tokens: 80,
            ..SamplingParams::greedy()
        },
        priority: 0,
        fallback: None,
        constraint: None,
        banned,
    })
}

/// Streams of requests `ids` until each has finished: (streamed text, final text) by id.
fn collect(w: &Worker, ids: &[u64]) -> std::collections::HashMap<u64, (String, String)> {
    let mut out: std::collections::HashMap<u64, (String, Option<String>)> =
        ids.iter().map(|&i| (i, (String::new(), None))).collect();
    while out.values().any(|(_, f)| f.is_none()) {
        match w
            .events()
            .recv_timeout(common::HANG_GUARD)
            .expect("an event")
        {
            BackendEvent::Text { id, text } => out.get_mut(&id).unwrap().0.push_str(&text),
            BackendEvent::Finished { id, text, .. } => out.get_mut(&id).unwrap().1 = Some(text),
            BackendEvent::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    out.into_iter()
        .map(|(k, (s, f))| (k, (s, f.unwrap())))
        .collect()
}

#[test]
fn the_worker_bans_phrases_in_batched_slots() {
    let mut config = WorkerConfig::new(ModelSource::path(common::model("stories260K.gguf")));
    config.threads = Some(1);
    let mut w = Worker::spawn(config);
    w.wait_ready(common::HANG_GUARD).expect("model loads");
    w.submit(worker_request(1, None)).unwrap();
    let free = collect(&w, &[1])[&1].1.clone();
    let (word, phrase) = words_said(&free);
    let bans = Arc::new(set(&[&word, &phrase], true));
    assert!(bans.find(&free, 0, true).is_some());
    // Three at once: the banned one backs off in its own slot while the others go on.
    for id in 2..=4u64 {
        w.submit(worker_request(id, (id == 3).then(|| bans.clone())))
            .unwrap();
    }
    let got = collect(&w, &[2, 3, 4]);
    let (streamed, text) = &got[&3];
    assert_eq!(streamed, text);
    assert!(bans.find(streamed, 0, true).is_none(), "{streamed:?}");
    assert_ne!(text, &free);
    assert_eq!(got[&2].1, free, "the free slots are unchanged");
    assert_eq!(got[&4].1, free, "the free slots are unchanged");
    w.shutdown();
}
