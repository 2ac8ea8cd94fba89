//! Continuous batching in the worker on stories260K: generations that run together give the
//! same greedy text as each run alone; a request joins a running batch at the next step and
//! waits for a free slot when the batch is full; a long prompt is fed in shares of a step while
//! the others keep streaming; cancelling one generation leaves the others untouched.
//! (Receive timeouts only guard against a hang; nothing asserts on speed.)

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, ConversationId, GenerateRequest, Prompt,
};
use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig};

fn start(max_batch: usize) -> Worker {
    let path: PathBuf = common::model("stories260K.gguf");
    let mut config = WorkerConfig::new(ModelSource::path(path));
    config.threads = Some(1);
    config.max_batch = max_batch;
    let mut w = Worker::spawn(config);
    w.wait_ready(common::HANG_GUARD).expect("model loads");
    w
}

fn request(id: u64, text: &str, max_tokens: usize) -> BackendRequest {
    BackendRequest::Generate(GenerateRequest {
        id,
        conversation: ConversationId(id),
        prompt: Prompt {
            system: String::new(),
            turns: vec![ChatMessage::new(Role::User, text)],
        },
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::greedy()
        },
        priority: 0,
        fallback: None,
        constraint: None,
        banned: None,
    })
}

fn next(w: &Worker) -> BackendEvent {
    w.events()
        .recv_timeout(common::HANG_GUARD)
        .expect("an event before the guard")
}

/// Every event until all of `ids` have had their final event.
fn until_all_final(w: &Worker, ids: &[u64]) -> Vec<BackendEvent> {
    let mut left: Vec<u64> = ids.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        let e = next(w);
        if e.is_final() {
            left.retain(|&id| Some(id) != e.id());
        }
        out.push(e);
    }
    out
}

fn texts(events: &[BackendEvent]) -> HashMap<u64, (FinishReason, String)> {
    let mut streamed: HashMap<u64, String> = HashMap::new();
    let mut out = HashMap::new();
    for e in events {
        match e {
            BackendEvent::Text { id, text } => streamed.entry(*id).or_default().push_str(text),
            BackendEvent::Finished {
                id, reason, text, ..
            } => {
                assert_eq!(
                    streamed.get(id).map(String::as_str).unwrap_or(""),
                    text,
                    "request {id}: the streamed pieces add up to the final text"
                );
                out.insert(*id, (*reason, text.clone()));
            }
            BackendEvent::Error { id, error } => panic!("request {id:?} failed: {error}"),
            _ => {}
        }
    }
    out
}

const PROMPTS: [&str; 5] = [
    "Once upon a time",
    "Lily had a red ball",
    "Tim and Sue went to the park",
    "The sun",
    "A little dog",
];

#[test]
fn batched_generations_equal_each_run_alone() {
    let ids: Vec<u64> = (1..=PROMPTS.len() as u64).collect();
    let mut alone = start(1);
    for (&id, p) in ids.iter().zip(PROMPTS) {
        alone.submit(request(id, p, 24)).unwrap();
    }
    let expected = texts(&until_all_final(&alone, &ids));
    drop(alone);

    let mut batched = start(4);
    for (&id, p) in ids.iter().zip(PROMPTS) {
        batched.submit(request(id, p, 24)).unwrap();
    }
    let events = until_all_final(&batched, &ids);
    assert_eq!(texts(&events), expected);
    // The first four ran together: all started before any finished; the fifth waited for a
    // free slot.
    let position = |f: &dyn Fn(&BackendEvent) -> bool| events.iter().position(f).unwrap();
    let first_finished = position(&|e| matches!(e, BackendEvent::Finished { .. }));
    for id in 1..=4 {
        let started = position(&|e| matches!(e, BackendEvent::Started { id: i, .. } if *i == id));
        assert!(
            started < first_finished,
            "{id} joined the batch: {events:?}"
        );
    }
    let fifth = position(&|e| matches!(e, BackendEvent::Started { id: 5, .. }));
    assert!(fifth > first_finished, "5 waited for a slot: {events:?}");
    // Interleaved streaming: some other request's text comes between request 1's first and
    // last pieces.
    let of_1: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, BackendEvent::Text { id: 1, .. }))
        .map(|(i, _)| i)
        .collect();
    assert!(
        events[of_1[0]..*of_1.last().unwrap()]
            .iter()
            .any(|e| matches!(e, BackendEvent::Text { id, .. } if *id != 1)),
        "{events:?}"
    );
}

#[test]
fn a_long_prompt_joins_in_shares_while_the_others_stream() {
    let mut w = start(2);
    w.submit(request(1, "Once upon a time", 400)).unwrap();
    while !matches!(next(&w), BackendEvent::Text { id: 1, .. }) {}
    let long = "Lily and Ben played in the park with a big red ball. ".repeat(20);
    w.submit(request(2, &long, 4)).unwrap();
    let mut during = 0;
    let mut started = false;
    loop {
        match next(&w) {
            BackendEvent::Started { id: 2, .. } => started = true,
            BackendEvent::Text { id: 1, .. } if started => during += 1,
            BackendEvent::Text { id: 2, .. } | BackendEvent::Finished { id: 2, .. } => break,
            BackendEvent::Finished { id: 1, .. } => panic!("request 1 ended before 2 began"),
            BackendEvent::Error { error, .. } => panic!("{error}"),
            _ => {}
        }
    }
    // The prompt is over 200 tokens and a step gives it 64 of them next to request 1's
    // token: request 1 streamed on while it was fed.
    assert!(during >= 3, "request 1 streamed {during} pieces meanwhile");
    w.cancel(1);
}

#[test]
fn cancelling_one_generation_leaves_the_others_as_they_were() {
    let ids = [1, 2, 3];
    let mut alone = start(1);
    for (&id, p) in ids.iter().zip(PROMPTS) {
        alone.submit(request(id, p, 30)).unwrap();
    }
    let expected = texts(&until_all_final(&alone, &ids));
    drop(alone);

    let mut w = start(4);
    for (&id, p) in ids.iter().zip(PROMPTS) {
        w.submit(request(id, p, 30)).unwrap();
    }
    let mut events = Vec::new();
    loop {
        let e = next(&w);
        let first_of_2 = matches!(e, BackendEvent::Text { id: 2, .. });
        events.push(e);
        if first_of_2 {
            break;
        }
    }
    w.cancel(2);
    events.extend(until_all_final(&w, &ids));
    let got = texts(&events);
    assert_eq!(got[&2].0, FinishReason::Cancelled);
    assert_eq!(got[&1], expected[&1]);
    assert_eq!(got[&3], expected[&3]);
}

/// 64 NPCs ask at once, with priorities from 1 to 64, four generating at a time: every one is
/// answered, none starved by the higher ones.
#[test]
fn sixty_four_npcs_asking_at_once_are_all_answered() {
    let path: PathBuf = common::model("stories260K.gguf");
    let mut config = WorkerConfig::new(ModelSource::path(path));
    config.threads = Some(1);
    config.max_batch = 4;
    config.queue_capacity = 64;
    let mut w = Worker::spawn(config);
    w.wait_ready(common::HANG_GUARD).expect("model loads");
    let ids: Vec<u64> = (1..=64).collect();
    for &id in &ids {
        let BackendRequest::Generate(mut r) = request(id, "Lily and Ben went to the park", 24)
        else {
            unreachable!()
        };
        r.priority = id as i32;
        w.submit(BackendRequest::Generate(r)).unwrap();
    }
    let events = until_all_final(&w, &ids);
    let done = texts(&events);
    assert_eq!(done.len(), 64, "every NPC answered");
    for id in &ids {
        let (reason, text) = &done[id];
        assert!(
            matches!(reason, FinishReason::MaxTokens | FinishReason::Eos),
            "{id}: {reason:?}"
        );
        assert!(!text.is_empty(), "{id} said nothing");
    }
    let started: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            BackendEvent::Started { id, .. } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(started.len(), 64);
    // Highest priority first: the first four to start are among the last submitted.
    assert!(started[..4].iter().all(|&id| id > 56), "{started:?}");
    eprintln!(
        "start order of the lowest priority (1): {} of 64",
        started.iter().position(|&id| id == 1).unwrap() + 1
    );
}
