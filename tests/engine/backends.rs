//! Both backends behind `Box<dyn DialogueBackend>`: the same caller code drives a model and the
//! scripted fallback. Plus the scripted backend's own contract (word-by-word streaming,
//! priority, cancel, keyword choice, bounded queue).

use crate::common;

use std::time::{Duration, Instant};

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendKind, BackendRequest, BackendStatus, ChooseRequest, ConversationId,
    DialogueBackend, GenerateRequest, LocalLlama, Prompt, Scripted, SubmitError,
};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::WorkerConfig;

fn say(id: u64, text: &str, fallback: &str, priority: i32) -> BackendRequest {
    BackendRequest::Generate(GenerateRequest {
        id,
        conversation: ConversationId(id),
        prompt: Prompt::new("", text),
        params: SamplingParams {
            max_tokens: 8,
            ..SamplingParams::greedy()
        },
        priority,
        fallback: Some(fallback.into()),
        constraint: None,
        banned: None,
    })
}

/// What a game does each frame: poll a few events, never block. Returns (polls, events).
fn run_to_end(backend: &mut dyn DialogueBackend, id: u64) -> (usize, Vec<BackendEvent>) {
    let guard = Instant::now() + Duration::from_secs(120);
    let mut events = Vec::new();
    let mut polls = 0;
    loop {
        let mut frame = Vec::new();
        backend.poll(16, &mut frame);
        polls += 1;
        let done = frame.iter().any(|e| e.id() == Some(id) && e.is_final());
        events.extend(frame);
        if done {
            return (polls, events);
        }
        assert!(Instant::now() < guard, "no final event: {events:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn text_of(events: &[BackendEvent]) -> String {
    events
        .iter()
        .filter_map(|e| {
            if let BackendEvent::Text { text, .. } = e {
                Some(text.as_str())
            } else {
                None
            }
        })
        .collect()
}

#[test]
fn the_same_caller_code_drives_both_backends() {
    let local = LocalLlama::spawn(WorkerConfig::new(ModelSource::path(common::model(
        "stories260K.gguf",
    ))));
    let mut backends: Vec<Box<dyn DialogueBackend>> =
        vec![Box::new(Scripted::new()), Box::new(local)];
    for backend in &mut backends {
        let guard = Instant::now() + Duration::from_secs(120);
        while backend.status() == BackendStatus::Loading {
            assert!(Instant::now() < guard);
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            backend.status(),
            BackendStatus::Ready,
            "{}",
            backend.label()
        );
        backend
            .submit(say(1, "Once upon a time", "The mill is quiet tonight.", 0))
            .unwrap();
        let (_, events) = run_to_end(backend.as_mut(), 1);
        let text = text_of(&events);
        match backend.kind() {
            BackendKind::Scripted => assert_eq!(text, "The mill is quiet tonight."),
            _ => assert_eq!(text, ", there was a little girl"),
        }
        assert!(
            matches!(events.last(), Some(BackendEvent::Finished { text: t, .. }) if *t == text)
        );
        backend.shutdown();
        assert_eq!(backend.status(), BackendStatus::Stopped);
    }
}

#[test]
fn scripted_streams_one_word_per_poll_and_is_labelled() {
    let mut s = Scripted::new();
    assert!(s.label().contains("no language model"));
    s.submit(say(1, "hi", "Good evening, traveller. Tea?", 0))
        .unwrap();
    let (polls, events) = run_to_end(&mut s, 1);
    assert!(matches!(events[0], BackendEvent::Started { id: 1, .. }));
    let words: Vec<&str> = events
        .iter()
        .filter_map(|e| {
            if let BackendEvent::Text { text, .. } = e {
                Some(text.as_str())
            } else {
                None
            }
        })
        .collect();
    assert_eq!(words, vec!["Good", " evening,", " traveller.", " Tea?"]);
    assert_eq!(polls, 4, "one word per poll: a typewriter without a model");
    let mut s = Scripted::new();
    s.submit(say(
        2,
        "hi",
        "one two three four five six seven eight nine ten",
        0,
    ))
    .unwrap();
    let (_, events) = run_to_end(&mut s, 2);
    assert!(
        matches!(
            events.last(),
            Some(BackendEvent::Finished {
                reason: FinishReason::MaxTokens,
                ..
            })
        ),
        "max_tokens (8) applies"
    );
}

#[test]
fn scripted_priority_cancel_and_busy() {
    let mut s = Scripted::new();
    s.capacity = 3;
    s.submit(say(1, "a", "low", 0)).unwrap();
    s.submit(say(2, "b", "high", 9)).unwrap();
    s.submit(say(3, "c", "cancelled", 5)).unwrap();
    assert!(matches!(
        s.submit(say(4, "d", "x", 0)),
        Err(SubmitError::Busy { capacity: 3 })
    ));
    s.cancel(3);
    let mut events = Vec::new();
    for _ in 0..20 {
        s.poll(8, &mut events);
    }
    let started: Vec<u64> = events
        .iter()
        .filter_map(|e| {
            if let BackendEvent::Started { id, .. } = e {
                Some(*id)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(started, vec![2, 1]);
    assert!(events.iter().any(|e| matches!(
        e,
        BackendEvent::Finished {
            id: 3,
            reason: FinishReason::Cancelled,
            ..
        }
    )));
}

#[test]
fn scripted_choice_is_a_keyword_match() {
    let mut s = Scripted::new();
    let candidates = vec![
        "ask about the stolen lantern".to_owned(),
        "say goodbye and leave".to_owned(),
    ];
    s.submit(BackendRequest::Choose(ChooseRequest {
        id: 5,
        prompt: Prompt::new("", "Who stole the LANTERN?"),
        candidates,
        priority: 0,
    }))
    .unwrap();
    let (_, events) = run_to_end(&mut s, 5);
    let Some(BackendEvent::Scores { scores, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert!(scores[0].log_prob > scores[1].log_prob, "{scores:?}");
    assert_eq!(scores[1].log_prob, 1e-6f32.ln());
}
