//! The inference worker on stories260K: handshake, streaming, cancellation (running and
//! queued), priority, bounded queue, panic recovery, shutdown, prefix-cache equivalence,
//! conversation follow-ups, context overflow that keeps the persona, and candidate scoring.
//! (Receive timeouts below only guard against a hang; nothing asserts on speed.)

use crate::common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, BackendStatus, ChooseRequest, ConversationId, GenerateRequest,
    Prompt, RequestError, SubmitError,
};
use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::llama::{Llama, LoadError};
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig, WorkerStartError, build_prompt};

const GUARD: Duration = common::HANG_GUARD;

fn model() -> PathBuf {
    common::model("stories260K.gguf")
}

fn start(path: &PathBuf, edit: impl FnOnce(&mut WorkerConfig)) -> Worker {
    let mut config = WorkerConfig::new(ModelSource::path(path));
    config.threads = Some(1);
    edit(&mut config);
    let mut w = Worker::spawn(config);
    w.wait_ready(GUARD).expect("model loads");
    w
}

/// A worker whose model is still loading.
fn start_loading(path: &std::path::Path) -> Worker {
    let mut config = WorkerConfig::new(ModelSource::path(path));
    config.threads = Some(1);
    Worker::spawn(config)
}

fn generate_req(
    id: u64,
    conversation: u64,
    prompt: Prompt,
    max_tokens: usize,
    priority: i32,
) -> BackendRequest {
    BackendRequest::Generate(GenerateRequest {
        id,
        conversation: ConversationId(conversation),
        prompt,
        params: SamplingParams {
            max_tokens,
            ..SamplingParams::greedy()
        },
        priority,
        fallback: None,
        constraint: None,
        banned: None,
    })
}

fn story(text: &str) -> Prompt {
    Prompt {
        system: String::new(),
        turns: vec![ChatMessage::new(Role::User, text)],
    }
}

/// Events until `id`'s final one.
fn until_final(w: &Worker, id: u64) -> Vec<BackendEvent> {
    let mut out = Vec::new();
    loop {
        let e = w
            .events()
            .recv_timeout(GUARD)
            .expect("event before the guard");
        let done = e.id() == Some(id) && e.is_final();
        out.push(e);
        if done {
            return out;
        }
    }
}

fn finished(events: &[BackendEvent], id: u64) -> (FinishReason, String, usize, usize) {
    events
        .iter()
        .find_map(|e| match e {
            BackendEvent::Finished {
                id: i,
                reason,
                text,
                stats,
                dropped_turns,
            } if *i == id => Some((*reason, text.clone(), stats.cached_tokens, *dropped_turns)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no Finished for {id}: {events:?}"))
}

#[test]
fn failed_load_is_a_typed_error_not_a_zombie() {
    let mut w = Worker::spawn(WorkerConfig::new(ModelSource::path(
        "/nonexistent/model.gguf",
    )));
    let err = w.wait_ready(GUARD).unwrap_err();
    assert!(
        matches!(err, WorkerStartError::Load(LoadError::NotFound(_))),
        "{err}"
    );
    assert!(matches!(w.status(), BackendStatus::Failed(_)));
    assert!(matches!(
        w.submit(generate_req(1, 1, story("x"), 4, 0)),
        Err(SubmitError::NotRunning(_))
    ));
    let dir = common::temp_dir("worker-bad");
    let bad = dir.join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\x00\x00\x00 truncated").unwrap();
    let mut w = Worker::spawn(WorkerConfig::new(ModelSource::path(&bad)));
    assert!(matches!(
        w.wait_ready(GUARD).unwrap_err(),
        WorkerStartError::Load(LoadError::Gguf { .. })
    ));
}

/// Offline (CI) the host is unreachable; online the repository does not exist: either way the
/// error comes at once and names the file.
#[test]
fn a_download_that_cannot_happen_fails_clearly() {
    let source = ModelSource::hugging_face("bevy-llama-dialogue/no-such-repo", "missing.gguf");
    let msg = source.resolve().unwrap_err().to_string();
    assert!(
        msg.contains("bevy-llama-dialogue/no-such-repo/missing.gguf"),
        "{msg}"
    );
    assert_eq!(
        ModelSource::default_chat().label(),
        "TheBloke/Llama-2-7B-Chat-GGUF/llama-2-7b-chat.Q4_K_M.gguf"
    );
}

#[test]
fn streams_the_same_text_as_llama_cpp() {
    let path = model();
    let mut w = start(&path, |_| {});
    w.submit(generate_req(1, 1, story("Once upon a time"), 16, 0))
        .unwrap();
    let events = until_final(&w, 1);
    assert!(matches!(
        events[0],
        BackendEvent::Started {
            id: 1,
            conversation: Some(ConversationId(1))
        }
    ));
    let streamed: String = events
        .iter()
        .filter_map(|e| {
            if let BackendEvent::Text { text, .. } = e {
                Some(text.as_str())
            } else {
                None
            }
        })
        .collect();
    let (reason, text, _, _) = finished(&events, 1);
    assert_eq!(reason, FinishReason::MaxTokens);
    assert_eq!(streamed, text);
    assert!(
        ", there was a little girl named Lily. She loved to play outside".starts_with(&text),
        "{text:?}"
    );
}

#[test]
fn cancel_running_and_queued_requests() {
    let path = model();
    // One at a time, so that request 2 is still queued when request 1 streams.
    let mut w = start(&path, |c| c.max_batch = 1);
    w.submit(generate_req(1, 1, story("Once upon a time"), 2000, 0))
        .unwrap();
    w.submit(generate_req(2, 2, story("Tim had a ball"), 20, 0))
        .unwrap();
    // Wait for request 1's first text, then cancel both: 2 is still queued.
    loop {
        if let BackendEvent::Text { id: 1, .. } = w.events().recv_timeout(GUARD).unwrap() {
            break;
        }
    }
    w.cancel(2);
    w.cancel(1);
    // Both end, in either order.
    let mut events = Vec::new();
    let mut finals = 0;
    while finals < 2 {
        let e = w.events().recv_timeout(GUARD).unwrap();
        finals += usize::from(e.is_final() && matches!(e.id(), Some(1 | 2)));
        events.push(e);
    }
    let (reason, _, _, _) = finished(&events, 1);
    assert_eq!(reason, FinishReason::Cancelled);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, BackendEvent::Started { id: 2, .. })),
        "cancelled before it started: {events:?}"
    );
    assert_eq!(finished(&events, 2).0, FinishReason::Cancelled);
}

#[test]
fn higher_priority_is_served_first_and_the_queue_is_bounded() {
    let path = model();
    let mut w = start(&path, |c| {
        c.queue_capacity = 2;
        c.max_batch = 1;
    });
    w.submit(generate_req(1, 1, story("Once upon a time"), 2000, 0))
        .unwrap();
    assert!(matches!(until_started(&w, 1), BackendEvent::Started { .. }));
    w.submit(generate_req(2, 2, story("Lily"), 4, 0)).unwrap();
    w.submit(generate_req(3, 3, story("Ben"), 4, 10)).unwrap();
    // The bound counts every request not yet started, whether the worker has taken it into
    // its own queue or not: the third and later are refused however fast the worker drains.
    for id in 4..40 {
        assert!(matches!(
            w.submit(generate_req(id, id, story("Sue"), 4, 5)),
            Err(SubmitError::Busy { capacity: 2 })
        ));
    }
    w.cancel(1);
    let mut order = Vec::new();
    while order.len() < 2 {
        if let BackendEvent::Started { id, .. } = w.events().recv_timeout(GUARD).unwrap() {
            order.push(id);
        }
    }
    assert_eq!(order, vec![3, 2]);
}

/// Priority ageing: a low request queued behind a stream of higher ones, each submitted as the
/// one before it starts (an NPC that talks non-stop), is served after a bounded number of them:
/// each turn it waits adds `ageing` to its priority. Without ageing it starves.
#[test]
fn a_low_priority_request_does_not_starve() {
    let path = model();
    for (ageing, expected) in [
        (1_000_000, vec![3, 4, 5, 2]),
        (0, vec![3, 4, 5, 6, 7, 8, 2]),
    ] {
        let mut w = start(&path, |c| {
            c.ageing = ageing;
            c.max_batch = 1;
        });
        w.submit(generate_req(1, 1, story("Once upon a time"), 2000, 0))
            .unwrap();
        until_started(&w, 1);
        w.submit(generate_req(2, 2, story("Lily"), 2, 0)).unwrap();
        w.submit(generate_req(3, 3, story("Ben"), 2000, 3_000_000))
            .unwrap();
        w.cancel(1);
        let mut order = Vec::new();
        while order.last() != Some(&2) {
            let BackendEvent::Started { id, .. } = w.events().recv_timeout(GUARD).unwrap() else {
                continue;
            };
            order.push(id);
            if id != 2 {
                // The next line of the high-priority stream is queued before this one ends.
                if id < 8 {
                    w.submit(generate_req(id + 1, id + 1, story("Ben"), 2000, 3_000_000))
                        .unwrap();
                }
                w.cancel(id);
            }
        }
        assert_eq!(order, expected, "ageing {ageing}");
        // The low request's stats say how long it waited in the queue (behind 1 and the others).
        let waited = loop {
            if let BackendEvent::Finished { id: 2, stats, .. } =
                w.events().recv_timeout(GUARD).unwrap()
            {
                break stats.queue_ms;
            }
        };
        assert!(waited > 0.0, "{waited}");
    }
}

fn until_started(w: &Worker, id: u64) -> BackendEvent {
    loop {
        let e = w.events().recv_timeout(GUARD).unwrap();
        if matches!(e, BackendEvent::Started { id: i, .. } if i == id) {
            return e;
        }
    }
}

#[test]
fn a_panic_is_reported_and_the_worker_keeps_serving() {
    let path = model();
    let mut w = start(&path, |c| c.panic_on_message = Some("boom".into()));
    w.submit(generate_req(1, 1, story("boom"), 10, 0)).unwrap();
    let events = until_final(&w, 1);
    assert!(
        matches!(events.last(), Some(BackendEvent::Error { id: Some(1), error: RequestError::Panicked(m) }) if m.contains("injected")),
        "{events:?}"
    );
    w.submit(generate_req(2, 2, story("Once upon a time"), 8, 0))
        .unwrap();
    let (reason, text, _, _) = finished(&until_final(&w, 2), 2);
    assert_eq!(
        (reason, text.as_str()),
        (FinishReason::MaxTokens, ", there was a little girl")
    );
}

/// A model that takes as long as it likes to load (here a named pipe nobody writes: opening it
/// blocks): dropping the handle returns without waiting for the load, and the thread stops
/// once the load ends.
#[test]
fn dropping_the_handle_during_a_load_does_not_wait_for_it() {
    let dir = common::temp_dir("worker-fifo");
    let fifo = dir.join("slow.gguf");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let mut w = start_loading(&fifo);
    assert_eq!(w.status(), BackendStatus::Loading);
    drops_within_the_guard(w, "dropping a loading worker returns");
    // The load ends (a writer opens and closes the pipe: an empty file) and the thread stops.
    drop(std::fs::OpenOptions::new().write(true).open(&fifo).unwrap());
}

#[test]
fn dropping_the_handle_stops_a_generating_worker() {
    let path = model();
    let mut w = start(&path, |_| {});
    w.submit(generate_req(1, 1, story("Once upon a time"), 2000, 0))
        .unwrap();
    until_started(&w, 1);
    drops_within_the_guard(w, "the worker stops when its handle is dropped");
}

/// Drops `w` on a helper thread, so that a drop that never returns fails the test (`expect`)
/// instead of hanging it.
fn drops_within_the_guard(w: Worker, expect: &str) {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(w);
        let _ = done_tx.send(());
    });
    done_rx.recv_timeout(GUARD).expect(expect);
}

const PERSONA: &str = "Mara is the miller of Oakvale. She is kind, she speaks softly, and she knows where the lantern is.";

#[test]
fn prefix_cache_gives_identical_greedy_output_and_skips_the_persona() {
    let path = model();
    let prompt = Prompt::new(PERSONA, "Once upon a time");
    let mut without = start(&path, |c| c.prefix_cache_mb = 0);
    without
        .submit(generate_req(1, 1, prompt.clone(), 24, 0))
        .unwrap();
    let (_, cold, cold_cached, _) = finished(&until_final(&without, 1), 1);
    assert_eq!(cold_cached, 0);
    let mut with = start(&path, |_| {});
    with.submit(BackendRequest::Warm {
        id: 7,
        system: PERSONA.into(),
        priority: 0,
    })
    .unwrap();
    let warmed = until_final(&with, 7);
    let prefix = match warmed.last() {
        Some(BackendEvent::Warmed {
            prefix_tokens,
            already_cached: false,
            ..
        }) => *prefix_tokens,
        other => panic!("{other:?}"),
    };
    assert!(prefix > 20);
    // Another conversation runs in between, so the persona must come from the prefix cache.
    with.submit(generate_req(2, 9, story("Tim and Sam"), 8, 0))
        .unwrap();
    until_final(&with, 2);
    with.submit(generate_req(3, 1, prompt, 24, 0)).unwrap();
    let (_, warm, warm_cached, _) = finished(&until_final(&with, 3), 3);
    assert_eq!(warm, cold);
    assert!(
        warm_cached >= prefix,
        "cached {warm_cached} of a {prefix}-token persona"
    );
}

#[test]
fn follow_up_turn_prefills_only_the_new_tokens() {
    let path = model();
    let mut w = start(&path, |_| {});
    let first = Prompt::new(PERSONA, "Once upon a time");
    w.submit(generate_req(1, 1, first.clone(), 12, 0)).unwrap();
    let (_, answer, _, _) = finished(&until_final(&w, 1), 1);
    // Another NPC speaks in between.
    w.submit(generate_req(
        2,
        2,
        Prompt::new("Tom is a fisherman.", "Hello"),
        8,
        0,
    ))
    .unwrap();
    until_final(&w, 2);
    let mut second = first.clone();
    second
        .turns
        .push(ChatMessage::new(Role::Assistant, answer.clone()));
    second
        .turns
        .push(ChatMessage::new(Role::User, "Then the dog"));
    w.submit(generate_req(3, 1, second.clone(), 8, 0)).unwrap();
    let (_, _, cached, _) = finished(&until_final(&w, 3), 3);
    let llama = Llama::load(&path, &ModelOptions::default()).unwrap();
    let first_len = build_prompt(&llama, &first, 1, None).unwrap().tokens.len();
    let second_len = build_prompt(&llama, &second, 1, None).unwrap().tokens.len();
    assert!(
        cached >= first_len,
        "cached {cached}, the first turn's prompt alone is {first_len} of {second_len}"
    );
}

#[test]
fn context_overflow_drops_oldest_turns_never_the_persona() {
    let path = model();
    let options = ModelOptions {
        max_context: Some(128),
        ..Default::default()
    };
    let llama = Llama::load(&path, &options).unwrap();
    let mut turns = Vec::new();
    for i in 0..8 {
        turns.push(ChatMessage::new(
            Role::User,
            format!("Question number {i} about the big red ball?"),
        ));
        turns.push(ChatMessage::new(
            Role::Assistant,
            format!("Answer number {i}: the ball was in the park."),
        ));
    }
    turns.push(ChatMessage::new(Role::User, "Where is it now?"));
    let prompt = Prompt {
        system: PERSONA.into(),
        turns,
    };
    let summaries = Arc::new(Mutex::new(Vec::new()));
    let seen = summaries.clone();
    let hook: bevy_llama_dialogue::engine::worker::SummariseHook =
        Arc::new(move |dropped: &[ChatMessage]| {
            seen.lock().unwrap().push(dropped.len());
            Some("they talked about a ball.".into())
        });
    let built = build_prompt(&llama, &prompt, 16, Some(&hook)).unwrap();
    assert!(
        built.dropped_turns >= 2 && built.dropped_turns.is_multiple_of(2),
        "{}",
        built.dropped_turns
    );
    assert!(built.tokens.len() + 16 <= 128);
    let text = llama.tokenizer.decode(&built.tokens);
    assert!(text.starts_with(PERSONA), "the persona stays: {text:?}");
    assert!(
        text.contains("they talked about a ball.") && text.ends_with("Where is it now?"),
        "{text:?}"
    );
    assert_eq!(
        summaries.lock().unwrap().last(),
        Some(&built.dropped_turns),
        "the hook saw every dropped turn"
    );
    // Through the worker: the turn is answered, with the drop reported.
    let mut w = start(&path, |c| c.model_options = options.clone());
    w.submit(generate_req(1, 1, prompt, 16, 0)).unwrap();
    let (reason, _, _, dropped) = finished(&until_final(&w, 1), 1);
    assert!(dropped >= 2 && reason != FinishReason::Cancelled);
    // A persona that cannot fit at all is an error event, not a panic.
    w.submit(generate_req(
        2,
        2,
        Prompt::new(PERSONA.repeat(5), "Hi"),
        16,
        0,
    ))
    .unwrap();
    assert!(matches!(
        until_final(&w, 2).last(),
        Some(BackendEvent::Error {
            id: Some(2),
            error: RequestError::ContextFull { .. }
        })
    ));
}

#[test]
fn choose_scores_continuations_by_log_probability() {
    let path = model();
    let mut w = start(&path, |_| {});
    let candidates = vec![
        ", there was a little girl".to_owned(),
        ", purple engines argued loudly".to_owned(),
    ];
    w.submit(BackendRequest::Choose(ChooseRequest {
        id: 1,
        prompt: story("Once upon a time"),
        candidates,
        priority: 0,
    }))
    .unwrap();
    let events = until_final(&w, 1);
    let Some(BackendEvent::Scores { scores, .. }) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(scores.len(), 2);
    assert!(scores[0].log_prob > scores[1].log_prob + 5.0, "{scores:?}");
    // Cross-check the first score against a direct computation.
    let mut llama = Llama::load(&path, &ModelOptions::default()).unwrap();
    let prompt = llama.tokenizer.encode("Once upon a time", true);
    let cand = llama
        .tokenizer
        .encode_fragment_vec(", there was a little girl", false);
    let all: Vec<u32> = prompt.iter().chain(&cand).copied().collect();
    let rows: Vec<Vec<f32>> = llama
        .model
        .forward(&all, bevy_llama_dialogue::engine::model::LogitsFor::All)
        .unwrap()
        .to_vec2()
        .unwrap();
    let mut direct = 0.0;
    for (i, &t) in cand.iter().enumerate() {
        let row = &rows[prompt.len() - 1 + i];
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let lse = max + row.iter().map(|l| (l - max).exp()).sum::<f32>().ln();
        direct += row[t as usize] - lse;
    }
    assert!(
        (scores[0].log_prob - direct).abs() < 1e-3,
        "{} vs {direct}",
        scores[0].log_prob
    );
}

/// A conversation that outgrows the context: the turn that drops its oldest exchanges reuses
/// the cached turns that remain (context shift), instead of recomputing all but the persona.
#[test]
fn a_turn_at_the_full_context_shifts_the_cache_instead_of_recomputing() {
    let path = model();
    let options = ModelOptions {
        max_context: Some(256),
        ..Default::default()
    };
    let mut reused = Vec::new();
    for shift in [true, false] {
        let mut w = start(&path, |c| {
            c.model_options = options.clone();
            c.context_shift = shift;
        });
        let mut turns = Vec::new();
        let mut at_limit = None;
        for id in 1..60 {
            turns.push(ChatMessage::new(
                Role::User,
                format!("Question {id}: where did the red ball go?"),
            ));
            let prompt = Prompt {
                system: PERSONA.into(),
                turns: turns.clone(),
            };
            w.submit(generate_req(id, 7, prompt, 12, 0)).unwrap();
            let (reason, text, cached, dropped) = finished(&until_final(&w, id), id);
            assert_ne!(reason, FinishReason::Cancelled);
            turns.push(ChatMessage::new(Role::Assistant, text));
            if dropped > 0 {
                at_limit = Some((cached, dropped));
                break;
            }
        }
        let (cached, dropped) = at_limit.expect("the conversation outgrew the context");
        assert!(dropped >= 2, "{dropped}");
        reused.push(cached);
    }
    eprintln!("prompt tokens from the cache at the limit: shift {reused:?} (with, without)");
    let persona = 40; // the persona alone is cached either way (it is longer than this)
    assert!(
        reused[0] > reused[1] + 16 && reused[1] >= persona,
        "with the shift {} prompt tokens came from the cache, without {}",
        reused[0],
        reused[1]
    );
}
