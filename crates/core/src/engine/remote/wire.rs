//! The OpenAI chat-completions wire format: the request body built from our
//! [`GenerateRequest`], and the streamed chunks read back.

use serde_json::{Map, Value, json};

use crate::engine::backend::GenerateRequest;
use crate::engine::chat::Role;
use crate::engine::constrain::Constraint;
use crate::engine::generate::FinishReason;

/// The body of a `/v1/chat/completions` request: the persona as the system message, the turns
/// as user/assistant messages, the sampling parameters under their OpenAI names (and llama.cpp's
/// `top_k`, `min_p`, `repeat_penalty`, `cache_prompt`, which other servers ignore).
pub(crate) fn chat_body(
    model: Option<&str>,
    request: &GenerateRequest,
    cache_prompt: bool,
    slots: Option<usize>,
    stream: bool,
) -> Value {
    let mut messages = Vec::with_capacity(request.prompt.turns.len() + 1);
    if !request.prompt.system.is_empty() {
        messages.push(json!({"role": "system", "content": request.prompt.system}));
    }
    for turn in &request.prompt.turns {
        let role = match turn.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        messages.push(json!({"role": role, "content": turn.content}));
    }
    let p = &request.params;
    let mut body = Map::new();
    if let Some(model) = model {
        body.insert("model".into(), json!(model));
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(stream));
    body.insert("max_tokens".into(), json!(p.max_tokens));
    body.insert("temperature".into(), json!(p.temperature.max(0.0)));
    body.insert("top_p".into(), json!(p.top_p));
    body.insert("top_k".into(), json!(p.top_k));
    body.insert("min_p".into(), json!(p.min_p));
    body.insert("repeat_penalty".into(), json!(p.repeat_penalty));
    body.insert("presence_penalty".into(), json!(p.presence_penalty));
    body.insert("frequency_penalty".into(), json!(p.frequency_penalty));
    if let Some(seed) = p.seed {
        // OpenAI's seed is a signed 64-bit integer.
        body.insert("seed".into(), json!(seed & (i64::MAX as u64)));
    }
    if !p.stop.is_empty() {
        body.insert("stop".into(), json!(p.stop));
    }
    if cache_prompt {
        body.insert("cache_prompt".into(), json!(true));
    }
    if let Some(n) = slots.filter(|&n| n > 0) {
        body.insert("id_slot".into(), json!(request.conversation.0 % n as u64));
    }
    if let Some(Constraint::JsonSchema(schema)) = request.constraint.as_deref() {
        // The form llama.cpp's server and llama-cpp-python's both take (the latter refuses
        // OpenAI's `json_schema` type), plus llama.cpp's and vLLM's own fields, which other
        // servers ignore.
        body.insert(
            "response_format".into(),
            json!({"type": "json_object", "schema": schema}),
        );
        body.insert("json_schema".into(), schema.clone());
        body.insert("guided_json".into(), schema.clone());
    }
    Value::Object(body)
}

/// What one streamed chunk says.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Chunk {
    /// New text (`choices[0].delta.content`).
    pub text: Option<String>,
    /// Why the line ended, on its last chunk.
    pub finish: Option<FinishReason>,
    /// `usage.prompt_tokens`, where the server sends it.
    pub prompt_tokens: Option<usize>,
}

/// Reads one `data:` payload of the stream (not `[DONE]`).
pub(crate) fn parse_chunk(data: &str) -> Result<Chunk, String> {
    let value: Value =
        serde_json::from_str(data).map_err(|e| format!("a chunk is not JSON ({e}): {data:.80}"))?;
    if let Some(error) = value.get("error") {
        let message = error
            .get("message")
            .and_then(Value::as_str)
            .map_or_else(|| error.to_string(), str::to_owned);
        return Err(format!("the server reported an error: {message}"));
    }
    let mut chunk = Chunk {
        prompt_tokens: value
            .pointer("/usage/prompt_tokens")
            .and_then(Value::as_u64)
            .map(|n| n as usize),
        ..Chunk::default()
    };
    let Some(choices) = value.get("choices").and_then(Value::as_array) else {
        return Err(format!("a chunk has no `choices`: {data:.80}"));
    };
    let Some(choice) = choices.first() else {
        // Usage-only chunks have an empty `choices`.
        return Ok(chunk);
    };
    chunk.text = choice
        .pointer("/delta/content")
        .or_else(|| choice.get("text"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    chunk.finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(finish_reason);
    Ok(chunk)
}

/// OpenAI's `finish_reason` in our terms (`stop` covers both an end token and a stop string:
/// the API does not tell them apart).
fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "length" => FinishReason::MaxTokens,
        _ => FinishReason::Eos,
    }
}

/// The model ids a `/v1/models` answer lists.
pub(crate) fn model_ids(value: &Value) -> Vec<String> {
    value
        .get("data")
        .and_then(Value::as_array)
        .map(|models| {
            models
                .iter()
                .filter_map(|m| m.get("id").and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::backend::{ConversationId, Prompt};
    use crate::engine::chat::ChatMessage;
    use crate::engine::sampler::SamplingParams;

    fn request() -> GenerateRequest {
        GenerateRequest {
            id: 1,
            conversation: ConversationId(1),
            prompt: Prompt {
                system: "You are Mara.".into(),
                turns: vec![
                    ChatMessage::new(Role::User, "Hello"),
                    ChatMessage::new(Role::Assistant, "Mind the flour."),
                    ChatMessage::new(Role::User, "[INST] </s>"),
                ],
            },
            params: SamplingParams {
                seed: Some(7),
                stop: vec!["\n".into()],
                ..SamplingParams::greedy()
            },
            priority: 0,
            fallback: None,
            constraint: None,
            banned: None,
        }
    }

    #[test]
    fn the_body_carries_persona_turns_and_sampling() {
        let body = chat_body(Some("m"), &request(), true, Some(4), true);
        assert_eq!(body["model"], "m");
        assert_eq!(body["messages"][0]["role"], "system");
        assert_eq!(body["messages"][3]["content"], "[INST] </s>");
        assert_eq!(body["messages"][2]["role"], "assistant");
        assert_eq!(body["stream"], true);
        assert_eq!(body["temperature"], 0.0);
        assert_eq!(body["seed"], 7);
        assert_eq!(body["stop"][0], "\n");
        assert_eq!(body["cache_prompt"], true);
        let conversation = request().conversation.0;
        assert_eq!(body["id_slot"], conversation % 4, "pinned to a slot");
        assert!(body.get("response_format").is_none());
        let mut with_schema = request();
        with_schema.constraint = Some(std::sync::Arc::new(Constraint::JsonSchema(
            json!({"type": "object"}),
        )));
        let body = chat_body(None, &with_schema, false, None, false);
        assert!(body.get("model").is_none() && body.get("cache_prompt").is_none());
        assert!(body.get("id_slot").is_none(), "the server chooses");
        assert_eq!(body["response_format"]["type"], "json_object");
        assert_eq!(body["response_format"]["schema"]["type"], "object");
        assert_eq!(body["guided_json"]["type"], "object");
    }

    #[test]
    fn chunks_give_text_finish_and_errors() {
        let c = parse_chunk(r#"{"choices":[{"delta":{"content":" Hi"},"finish_reason":null}]}"#)
            .unwrap();
        assert_eq!(c.text.as_deref(), Some(" Hi"));
        assert_eq!(c.finish, None);
        let c = parse_chunk(r#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#).unwrap();
        assert_eq!((c.text, c.finish), (None, Some(FinishReason::MaxTokens)));
        let c = parse_chunk(r#"{"choices":[],"usage":{"prompt_tokens":12}}"#).unwrap();
        assert_eq!(c.prompt_tokens, Some(12));
        let e = parse_chunk(r#"{"error":{"message":"context full"}}"#).unwrap_err();
        assert!(e.contains("context full"), "{e}");
        assert!(parse_chunk("not json").unwrap_err().contains("not JSON"));
        assert!(parse_chunk(r#"{"id":1}"#).unwrap_err().contains("choices"));
    }

    use proptest::prelude::*;

    /// JSON of any shape, weighted towards the fields a chunk has.
    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>().prop_map(serde_json::Value::from),
            ".{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(6, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "choices",
                            "delta",
                            "content",
                            "text",
                            "finish_reason",
                            "usage",
                            "prompt_tokens",
                            "error",
                            "message",
                            "logprobs",
                            "top_logprobs",
                            "token",
                            "logprob",
                            "x",
                        ]),
                        inner
                    ),
                    0..5
                )
                .prop_map(|kv| serde_json::Value::Object(
                    kv.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(4096)))]

        /// Whatever a server puts in an event's data: a chunk or an error, never a panic; the
        /// same for the log-probabilities `Choose` reads.
        #[test]
        fn any_chunk_gives_a_chunk_or_an_error(value in json(), raw in ".{0,64}") {
            let _ = parse_chunk(&value.to_string());
            let _ = parse_chunk(&raw);
            let _ = super::super::choose::scores_from(&value, 3);
            let _ = model_ids(&value);
        }

        /// Any byte stream cut anywhere, through the event parser the stream reader uses (1 MiB
        /// per event) and the chunk parser: events or errors, never a panic, and the parser never
        /// holds more than its limit.
        #[test]
        fn any_event_stream_is_read_to_its_end(
            pieces in prop::collection::vec(
                prop_oneof![
                    prop::sample::select(vec![
                        "data: ", "data:", ": keep-alive", "\n", "\r\n", "\r", "\n\n",
                        "event: x", "id: 7", "retry: 99999999999999", "[DONE]",
                        "{\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}", "{", "\u{0}",
                    ]).prop_map(|s| s.as_bytes().to_vec()),
                    prop::collection::vec(any::<u8>(), 0..48),
                    (1usize..5000).prop_map(|n| vec![b'x'; n]),
                ],
                0..32,
            ),
        ) {
            let mut parser = sse_parse::SseParser::new().max_buffer(1 << 20);
            for p in &pieces {
                parser.feed(p);
                while let Some(event) = parser.next_event() {
                    prop_assert!(event.data.len() <= 1 << 20);
                    let _ = parse_chunk(&event.data);
                }
            }
            parser.finish();
            while let Some(event) = parser.next_event() {
                let _ = parse_chunk(&event.data);
            }
        }
    }
}
