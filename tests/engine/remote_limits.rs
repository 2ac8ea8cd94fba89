//! What a misbehaving server can make the remote backend do (issue 30): a line is capped in
//! chunks (its `max_tokens` plus a margin), text bytes, stream bytes and total time, whatever
//! the server streams; a JSON answer is capped in size; a `Choose` can be cancelled; an API key
//! never goes over plain `http://` to another machine unless the game opts in. Each peer is a
//! real HTTP server on 127.0.0.1 that misbehaves on purpose.

use std::time::{Duration, Instant};

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, BackendStatus, ChooseRequest, ConversationId, DialogueBackend,
    GenerateRequest, Prompt,
};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::remote::{OpenAiCompatible, RemoteConfig};
use bevy_llama_dialogue::engine::sampler::SamplingParams;

use crate::common::server::{endless_peer, huge_list_peer, late_peer};

fn line(max_tokens: usize) -> BackendRequest {
    BackendRequest::Generate(GenerateRequest {
        id: 1,
        conversation: ConversationId(1),
        prompt: Prompt::new("You are Mara.", "Hello"),
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

fn ready(config: RemoteConfig) -> OpenAiCompatible {
    let mut b = OpenAiCompatible::spawn(config);
    let give_up = Instant::now() + crate::common::HANG_GUARD;
    while b.status() == BackendStatus::Loading {
        assert!(Instant::now() < give_up, "still loading");
        std::thread::sleep(Duration::from_millis(5));
    }
    b
}

/// The text streamed and the final event of request 1 (an event of another request fails).
fn finish(b: &mut OpenAiCompatible) -> (String, BackendEvent) {
    let give_up = Instant::now() + crate::common::HANG_GUARD;
    let mut text = String::new();
    loop {
        let mut events = Vec::new();
        b.poll(64, &mut events);
        for e in events {
            assert_eq!(e.id(), Some(1), "an event of another request: {e:?}");
            match e {
                BackendEvent::Text { text: t, .. } => text.push_str(&t),
                e if e.is_final() => return (text, e),
                _ => {}
            }
        }
        assert!(Instant::now() < give_up, "no final event");
        std::thread::sleep(Duration::from_millis(2));
    }
}

const WORD: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"la \"}}]}\n\n";

#[test]
fn a_server_that_ignores_max_tokens_is_cut_off() {
    let mut b = ready(RemoteConfig::new(endless_peer(WORD, Duration::ZERO)));
    b.submit(line(8)).unwrap();
    let (text, end) = finish(&mut b);
    match end {
        BackendEvent::Finished {
            reason,
            text: all,
            stats,
            ..
        } => {
            assert_eq!(reason, FinishReason::MaxTokens);
            assert_eq!(all, text);
            // 8 tokens asked, 16 more allowed: 24 chunks of "la ".
            assert_eq!(stats.generated_tokens, 24, "{stats:?}");
            assert_eq!(text, "la ".repeat(24));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn huge_chunks_are_cut_to_the_lines_text_limit() {
    let chunk: &'static str = Box::leak(
        format!(
            "data: {{\"choices\":[{{\"delta\":{{\"content\":\"{}\"}}}}]}}\n\n",
            "é".repeat(5000)
        )
        .into_boxed_str(),
    );
    let mut b = ready(RemoteConfig::new(endless_peer(chunk, Duration::ZERO)));
    b.submit(line(8)).unwrap();
    let (text, end) = finish(&mut b);
    assert!(
        matches!(
            end,
            BackendEvent::Finished {
                reason: FinishReason::MaxTokens,
                ..
            }
        ),
        "{end:?}"
    );
    // (8 + 16) tokens x 64 bytes, cut on a character boundary.
    assert!(
        text.len() <= 24 * 64 && text.len() >= 24 * 64 - 1,
        "{}",
        text.len()
    );
}

#[test]
fn a_padded_stream_and_a_trickle_end_with_errors() {
    // Keep-alive comments and nothing else: the stream's byte limit.
    let pad: &'static str = Box::leak(format!(": {}\n\n", "z".repeat(4000)).into_boxed_str());
    let mut b = ready(RemoteConfig::new(endless_peer(pad, Duration::ZERO)));
    b.submit(line(8)).unwrap();
    let (_, end) = finish(&mut b);
    let message = format!("{end:?}");
    assert!(
        message.contains("bytes of stream for a line of at most 8 tokens"),
        "{message}"
    );

    // A word every 50 ms for a line that may be long: the line's own time limit.
    let url = endless_peer(WORD, Duration::from_millis(50));
    let mut config = RemoteConfig::new(url);
    config.line_timeout = Duration::from_millis(500);
    let mut b = ready(config);
    b.submit(line(10_000)).unwrap();
    let (text, end) = finish(&mut b);
    let message = format!("{end:?}");
    assert!(message.contains("end of the line"), "{message}");
    assert!(text.starts_with("la la"), "{text}");
}

#[test]
fn an_oversized_json_answer_is_refused() {
    let mut b = ready(RemoteConfig::new(huge_list_peer(5 << 20)));
    match b.status() {
        BackendStatus::Failed(why) => {
            assert!(why.contains("an answer larger than 4194304 bytes"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    let mut small = ready(RemoteConfig::new(huge_list_peer(64 << 10)));
    assert_eq!(small.status(), BackendStatus::Ready);
}

#[test]
fn a_cancelled_choose_sends_nothing_more() {
    // Each answer comes 150 ms late (and names no option: without the cancel, each would end
    // in an error event).
    let answer = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let mut config = RemoteConfig::new(late_peer(answer, Duration::from_millis(150)));
    config.max_concurrent = 1;
    let mut b = ready(config);
    let choose = |id| {
        BackendRequest::Choose(ChooseRequest {
            id,
            prompt: Prompt::new("Pick.", "the well"),
            candidates: vec!["the well".into(), "the mill".into()],
            priority: 0,
        })
    };
    // The first is sent and waits on the server; the second waits in the queue.
    b.submit(choose(7)).unwrap();
    b.submit(choose(8)).unwrap();
    b.cancel(7);
    b.cancel(8);
    // The line after them is served once the first answer came (and was dropped).
    b.submit(line(4)).unwrap();
    let (_, end) = finish(&mut b);
    assert!(
        matches!(end, BackendEvent::Error { id: Some(1), .. }),
        "{end:?}"
    );
    let mut events = Vec::new();
    for _ in 0..100 {
        b.poll(64, &mut events);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        events.iter().all(|e| !matches!(e.id(), Some(7 | 8))),
        "{events:?}"
    );
}

#[test]
fn an_api_key_never_goes_over_plain_http_to_another_machine() {
    // `PATH` stands for a key variable that is set.
    let keyed = |url: &str, allow: bool| {
        let mut c = RemoteConfig::new(url);
        c.api_key_env = Some("PATH".into());
        c.allow_key_over_http = allow;
        c.connect_timeout = Duration::from_millis(200);
        c.connect_retries = 0;
        OpenAiCompatible::spawn(c).status()
    };
    match keyed("http://192.0.2.7:8080", false) {
        BackendStatus::Failed(why) => {
            assert!(why.contains("refusing to send the API key"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    for (url, allow) in [
        ("http://192.0.2.7:8080", true),
        ("https://192.0.2.7:8080", false),
        ("http://127.0.0.1:9", false),
        ("http://localhost:9", false),
    ] {
        let status = keyed(url, allow);
        assert!(
            !matches!(&status, BackendStatus::Failed(w) if w.contains("refusing")),
            "{url}: {status:?}"
        );
    }
}
