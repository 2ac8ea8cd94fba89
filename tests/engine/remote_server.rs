//! The remote backend against a real OpenAI-compatible server (llama-cpp-python's, started on
//! 127.0.0.1 by the tests, serving stories260K), and against peers that misbehave on purpose:
//! one that never answers, one that sends a broken stream.

use crate::common;

use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, BackendStatus, ConversationId, DialogueBackend, GenerateRequest,
    Prompt, RequestError,
};
use bevy_llama_dialogue::engine::constrain::Constraint;
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::remote::{OpenAiCompatible, RemoteConfig, RemoteError};
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use common::server::{Server, broken_peer, hang_up_on_reuse_peer};
use serde_json::{Value, json};

const MODEL: &str = "stories260K-Q8_0.gguf";

fn request(id: u64, seed: u64, max_tokens: usize) -> GenerateRequest {
    GenerateRequest {
        id,
        conversation: ConversationId(id),
        prompt: Prompt::new(
            "You are Lily, a girl who loves the park.",
            "Once upon a time",
        ),
        params: SamplingParams {
            seed: Some(seed),
            max_tokens,
            ..SamplingParams::greedy()
        },
        priority: 0,
        fallback: None,
        constraint: None,
        banned: None,
    }
}

/// Waits for the backend's start-up check (a bound against hangs, not a speed limit).
#[track_caller]
fn wait_status(backend: &mut OpenAiCompatible) -> BackendStatus {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let status = backend.status();
        if status != BackendStatus::Loading {
            return status;
        }
        assert!(Instant::now() < give_up, "the backend stayed Loading");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls until every id in `ids` has had its final event; returns all events in order.
#[track_caller]
fn until_final(backend: &mut OpenAiCompatible, ids: &[u64]) -> Vec<BackendEvent> {
    let give_up = Instant::now() + Duration::from_secs(600);
    let mut events = Vec::new();
    let mut open: Vec<u64> = ids.to_vec();
    while !open.is_empty() {
        let mut batch = Vec::new();
        backend.poll(64, &mut batch);
        for e in &batch {
            if e.is_final() {
                open.retain(|id| Some(*id) != e.id());
            }
        }
        events.extend(batch);
        assert!(Instant::now() < give_up, "no final event for {open:?}");
        std::thread::sleep(Duration::from_millis(2));
    }
    events
}

fn backend(url: &str) -> OpenAiCompatible {
    let mut b = OpenAiCompatible::spawn(RemoteConfig::new(url));
    assert_eq!(wait_status(&mut b), BackendStatus::Ready);
    b
}

/// The same request, not streamed, straight to the server.
fn plain_answer(url: &str, r: &GenerateRequest) -> String {
    let body = json!({
        "messages": [
            {"role": "system", "content": r.prompt.system},
            {"role": "user", "content": r.prompt.turns[0].content},
        ],
        "max_tokens": r.params.max_tokens,
        "temperature": 0.0, "top_p": 1.0, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0,
        "seed": r.params.seed,
    });
    let answer: Value = ureq::post(&format!("{url}/v1/chat/completions"))
        .send_json(body)
        .expect("the server answers a plain request")
        .into_json()
        .expect("JSON");
    answer["choices"][0]["message"]["content"]
        .as_str()
        .expect("content")
        .to_owned()
}

fn texts_of(events: &[BackendEvent], id: u64) -> (String, Option<(FinishReason, String)>) {
    let mut streamed = String::new();
    let mut finished = None;
    for e in events {
        match e {
            BackendEvent::Text { id: i, text } if *i == id => streamed.push_str(text),
            BackendEvent::Finished {
                id: i,
                reason,
                text,
                ..
            } if *i == id => finished = Some((*reason, text.clone())),
            _ => {}
        }
    }
    (streamed, finished)
}

#[test]
fn a_streamed_line_equals_the_servers_plain_answer_and_eight_npcs_share_one_server() {
    let server = Server::start(MODEL);
    let mut b = backend(&server.url);
    assert!(b.label().contains(&server.url));

    let r = request(1, 42, 48);
    let expected = plain_answer(&server.url, &r);
    assert!(!expected.trim().is_empty(), "the server said nothing");
    b.submit(BackendRequest::Generate(r)).unwrap();
    let events = until_final(&mut b, &[1]);
    assert!(
        matches!(events[0], BackendEvent::Started { id: 1, .. }),
        "{events:?}"
    );
    let (streamed, finished) = texts_of(&events, 1);
    let (reason, text) = finished.unwrap_or_else(|| panic!("no Finished: {events:?}"));
    assert_eq!(streamed, text, "the chunks add up to the line");
    assert_eq!(text, expected, "streamed and plain answers differ");
    assert!(matches!(
        reason,
        FinishReason::Eos | FinishReason::MaxTokens
    ));
    assert!(
        events
            .iter()
            .filter(|e| matches!(e, BackendEvent::Text { .. }))
            .count()
            > 1
    );

    // Eight NPCs at once: every line ends, each equal to the server's own answer for its seed
    // (greedy, so the seeds do not matter, but the prompts do).
    let mut ids = Vec::new();
    let mut wanted = Vec::new();
    for i in 0..8u64 {
        let mut r = request(10 + i, i, 24);
        r.prompt = Prompt::new("You are a villager.", format!("Tell me about day {i}."));
        r.priority = i as i32 % 3;
        wanted.push(plain_answer(&server.url, &r));
        ids.push(r.id);
        b.submit(BackendRequest::Generate(r)).unwrap();
    }
    let events = until_final(&mut b, &ids);
    for (i, id) in ids.iter().enumerate() {
        let (streamed, finished) = texts_of(&events, *id);
        let (_, text) = finished.unwrap_or_else(|| panic!("line {id} did not finish: {events:?}"));
        assert_eq!(streamed, text);
        assert_eq!(text, wanted[i], "line {id}");
    }

    // A JSON schema goes along as `response_format`: the server holds the line to it.
    let schema = json!({
        "type": "object",
        "properties": {"mood": {"enum": ["calm", "angry"]}, "trust": {"type": "integer"}},
        "required": ["mood", "trust"],
    });
    let mut r = request(30, 3, 120);
    r.constraint = Some(Arc::new(Constraint::JsonSchema(schema)));
    b.submit(BackendRequest::Generate(r)).unwrap();
    let events = until_final(&mut b, &[30]);
    let (_, finished) = texts_of(&events, 30);
    let (_, text) = finished.unwrap_or_else(|| panic!("no Finished: {events:?}"));
    let line: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("not JSON under the schema ({e}): {text}"));
    assert!(
        matches!(line["mood"].as_str(), Some("calm" | "angry")),
        "{line}"
    );
    assert!(line["trust"].is_i64(), "{line}");
}

#[test]
fn cancel_ends_a_line_at_once_and_a_killed_server_is_an_error() {
    // This server wants an API key: the value of $HOME, a variable every test process has
    // (so no test has to set one).
    let key = std::env::var("HOME").expect("HOME is set");
    let mut server = Server::start_with_key(MODEL, Some(&key));
    let mut without_key = OpenAiCompatible::spawn(RemoteConfig::new(&server.url));
    match wait_status(&mut without_key) {
        BackendStatus::Failed(reason) => assert!(reason.contains("HTTP 401"), "{reason}"),
        other => panic!("{other:?}"),
    }
    let mut config = RemoteConfig::new(&server.url);
    config.api_key_env = Some("HOME".into());
    let mut b = OpenAiCompatible::spawn(config);
    assert_eq!(wait_status(&mut b), BackendStatus::Ready);
    assert!(!b.label().contains(&key));
    b.submit(BackendRequest::Generate(request(1, 1, 400)))
        .unwrap();
    // Wait for the first words, then cancel: the next event is the end, nothing follows.
    let give_up = Instant::now() + Duration::from_secs(300);
    loop {
        let mut batch = Vec::new();
        b.poll(1, &mut batch);
        if matches!(batch.first(), Some(BackendEvent::Text { .. })) {
            break;
        }
        assert!(Instant::now() < give_up, "no words");
        std::thread::sleep(Duration::from_millis(1));
    }
    b.cancel(1);
    let mut after = Vec::new();
    b.poll(64, &mut after);
    assert!(
        matches!(
            after.first(),
            Some(BackendEvent::Finished {
                id: 1,
                reason: FinishReason::Cancelled,
                ..
            })
        ),
        "{after:?}"
    );
    assert_eq!(after.len(), 1, "{after:?}");
    // The next line is served (the cancelled one's thread let go) and nothing of line 1 leaks.
    b.submit(BackendRequest::Generate(request(2, 2, 16)))
        .unwrap();
    let events = until_final(&mut b, &[2]);
    assert!(events.iter().all(|e| e.id() == Some(2)), "{events:?}");

    // The server dies mid-line: the line ends with an error naming the server.
    b.submit(BackendRequest::Generate(request(3, 3, 400)))
        .unwrap();
    let give_up = Instant::now() + Duration::from_secs(300);
    let mut events = Vec::new();
    while !events
        .iter()
        .any(|e| matches!(e, BackendEvent::Text { .. }))
    {
        b.poll(64, &mut events);
        assert!(Instant::now() < give_up, "no words");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill();
    let events = until_final(&mut b, &[3]);
    let error = events.iter().find_map(|e| match e {
        BackendEvent::Error { id: Some(3), error } => Some(error.clone()),
        _ => None,
    });
    match error {
        Some(RequestError::Remote(RemoteError::Closed { url, .. })) => {
            assert!(url.starts_with(&server.url), "{url}");
        }
        other => panic!("expected a broken stream, got {other:?} in {events:?}"),
    }
    // And a new line now fails at once with a connection error.
    b.submit(BackendRequest::Generate(request(4, 4, 8)))
        .unwrap();
    let events = until_final(&mut b, &[4]);
    assert!(
        events.iter().any(|e| matches!(
            e,
            BackendEvent::Error {
                id: Some(4),
                error: RequestError::Remote(RemoteError::Connect { .. })
            }
        )),
        "{events:?}"
    );
}

#[test]
fn a_refused_connection_and_a_silent_server_fail_with_clear_errors() {
    // Nothing listens on port 1 (a free port found by binding could be taken by another test
    // before the backend connects).
    let mut b = OpenAiCompatible::spawn(RemoteConfig::new("http://127.0.0.1:1"));
    match wait_status(&mut b) {
        BackendStatus::Failed(reason) => {
            assert!(
                reason.starts_with("cannot connect to http://127.0.0.1:1/v1/models"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    let refused = b.submit(BackendRequest::Generate(request(1, 1, 8)));
    assert!(refused.is_err());

    // A peer that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let mut config = RemoteConfig::new(&url);
    config.connect_timeout = Duration::from_millis(500);
    config.idle_timeout = Duration::from_millis(700);
    let mut b = OpenAiCompatible::spawn(config);
    match wait_status(&mut b) {
        BackendStatus::Failed(reason) => {
            assert!(reason.contains("no answer within 500 ms"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    drop(silent);

    // A missing API key variable is named, and the key is never needed to say so.
    let mut config = RemoteConfig::new(&url);
    config.api_key_env = Some("LLAMA_DIALOGUE_TEST_KEY_THAT_IS_NOT_SET".into());
    let mut b = OpenAiCompatible::spawn(config);
    assert_eq!(
        b.status(),
        BackendStatus::Failed(
            "the API key variable `LLAMA_DIALOGUE_TEST_KEY_THAT_IS_NOT_SET` is not set".into()
        )
    );
}

#[test]
fn a_server_that_closes_idle_connections_never_breaks_the_next_line() {
    // A whole answer with a length and no `Connection: close`: the client keeps the connection
    // for the next request.
    const ANSWER: &str = concat!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: 85\r\n\r\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"},\"finish_reason\":\"stop\"}]}\n\n",
        "data: [DONE]\n\n"
    );
    // One peer closes each connection right after its answer (the close usually arrives before
    // the next request); the other hangs up on every request that reuses a connection (the
    // close always comes as the request goes out).
    for url in [broken_peer(ANSWER), hang_up_on_reuse_peer(ANSWER)] {
        // Line 1 is sent at once, while the backend still checks the server: it waits, then
        // runs (over the connection the check used).
        let mut b = OpenAiCompatible::spawn(RemoteConfig::new(&url));
        for id in 1..=3 {
            b.submit(BackendRequest::Generate(request(id, id, 8)))
                .unwrap();
            let events = until_final(&mut b, &[id]);
            assert!(
                matches!(events.last(), Some(BackendEvent::Finished { text, reason: FinishReason::Eos, .. }) if text == "Hi"),
                "{url} line {id}: {events:?}"
            );
        }
    }
}

#[test]
fn broken_answers_are_clear_errors() {
    let cases: [(&str, &str); 3] = [
        (
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\nConnection: close\r\n\r\nmodel exploded",
            "answered HTTP 500: model exploded",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n: keep-alive\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\ndata: {not json\n\n",
            "a chunk is not JSON",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n",
            "ended without a finish reason",
        ),
    ];
    for (answer, expected) in cases {
        let url = broken_peer(answer);
        let mut b = backend(&url);
        b.submit(BackendRequest::Generate(request(1, 1, 8)))
            .unwrap();
        let events = until_final(&mut b, &[1]);
        let message = events
            .iter()
            .find_map(|e| match e {
                BackendEvent::Error { id: Some(1), error } => Some(error.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no error for {answer:?}: {events:?}"));
        assert!(message.contains(expected), "{message}");
        assert!(message.contains(&url), "{message}");
    }
}

/// `Choose` asks the server a lettered multiple choice with `logprobs`; stories260K, a story
/// model, never answers with an option's capital letter, so the server's log-probabilities name
/// no option and the request says the text is routed by keywords (which the story layer does).
#[test]
fn choose_asks_the_server_for_log_probabilities_and_says_when_they_name_no_option() {
    use bevy_llama_dialogue::engine::backend::ChooseRequest;
    use bevy_llama_dialogue::story::route_prompt;
    let server = Server::start(MODEL);
    let mut b = backend(&server.url);
    assert_eq!(wait_status(&mut b), BackendStatus::Ready);
    let (prompt, candidates) = route_prompt(
        Some("Will you help me find the lantern?"),
        "yes, of course I will help",
        &["agrees to help", "refuses"],
    );
    b.submit(BackendRequest::Choose(ChooseRequest {
        id: 5,
        prompt,
        candidates,
        priority: 0,
    }))
    .unwrap();
    let events = until_final(&mut b, &[5]);
    assert!(
        matches!(events[0], BackendEvent::Started { id: 5, .. }),
        "{events:?}"
    );
    match events.last().unwrap() {
        BackendEvent::Error {
            error: RequestError::Unsupported(why),
            ..
        } => assert!(
            why.ends_with("/v1/chat/completions returned no log-probabilities for the options: routed by keywords"),
            "{why}"
        ),
        other => panic!("stories260K answered a letter? {other:?}"),
    }
}
