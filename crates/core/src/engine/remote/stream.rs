//! One generate request against the server: POST with `stream: true`, the server-sent events
//! read as they arrive (parsed by `sse-parse`), each chunk's words sent on as
//! [`BackendEvent::Text`]. Runs on one of the backend's threads.

use crate::engine::think::ThinkFilter;
use std::io::{ErrorKind, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use serde_json::Value;
use sse_parse::SseParser;

use super::client::Client;
use super::error::RemoteError;
use super::wire::{chat_body, parse_chunk};
use crate::engine::backend::{BackendEvent, GenerateRequest, RequestError};
use crate::engine::generate::{FinishReason, GenerationStats};

/// A generate request taken from the queue.
pub(crate) struct Job {
    /// The request.
    pub request: GenerateRequest,
    /// Set by `cancel`: the stream is dropped (its connection closed) at the next read.
    pub cancel: Arc<AtomicBool>,
    /// When it was submitted.
    pub queued_at: Instant,
}

/// Streams `job` and sends its events; always ends with one final event (`Finished`, or
/// `Error`). A cancelled job ends with `Finished { Cancelled }`, which the caller's side has
/// already reported and drops.
pub(crate) fn run(client: &Client, job: &Job, out: &Sender<BackendEvent>) {
    let id = job.request.id;
    let _ = out.send(BackendEvent::Started {
        id,
        conversation: Some(job.request.conversation),
    });
    let mut line = Line {
        text: String::new(),
        stats: GenerationStats {
            queue_ms: job.queued_at.elapsed().as_secs_f64() * 1e3,
            ..GenerationStats::default()
        },
        first: None,
        think: ThinkFilter::new(),
    };
    let result = stream(client, job, &mut line, out);
    let event = match result {
        Ok(reason) => {
            let rest = line.think.finish();
            if !rest.is_empty() && reason != FinishReason::Cancelled {
                line.text.push_str(&rest);
                let _ = out.send(BackendEvent::Text { id, text: rest });
            }
            let started = line.first.unwrap_or_else(Instant::now);
            line.stats.decode_ms = started.elapsed().as_secs_f64() * 1e3;
            BackendEvent::Finished {
                id,
                reason,
                text: line.text,
                stats: line.stats,
                dropped_turns: 0,
            }
        }
        Err(error) => BackendEvent::Error {
            id: Some(id),
            error: RequestError::Remote(error),
        },
    };
    let _ = out.send(event);
}

struct Line {
    text: String,
    stats: GenerationStats,
    first: Option<Instant>,
    /// A server that passes `<think>` blocks through as text: they are not shown.
    think: ThinkFilter,
}

fn stream(
    client: &Client,
    job: &Job,
    line: &mut Line,
    out: &Sender<BackendEvent>,
) -> Result<FinishReason, RemoteError> {
    let sent = Instant::now();
    let body = chat_body(
        client.model(),
        &job.request,
        client.config().cache_prompt,
        client.config().slots,
        true,
    );
    let cancelled = || job.cancel.load(Ordering::Relaxed);
    if cancelled() {
        return Ok(FinishReason::Cancelled);
    }
    let response = client.post("/v1/chat/completions", &body, &job.cancel)?;
    let url = client.endpoint("/v1/chat/completions");
    let mut reader = response.into_reader();
    let mut parser = SseParser::new().max_buffer(1 << 20);
    let mut buf = [0u8; 4096];
    let mut finish = None;
    let first_token = client.config().first_token_timeout;
    let line_timeout = client.config().line_timeout;
    let caps = LineCaps::for_max_tokens(job.request.params.max_tokens);
    let mut streamed = 0usize;
    loop {
        if cancelled() {
            // Dropping the reader closes the connection: the server stops generating.
            return Ok(FinishReason::Cancelled);
        }
        if line.first.is_none() && sent.elapsed() > first_token {
            return Err(timeout(&url, "first token", first_token));
        }
        if sent.elapsed() > line_timeout {
            return Err(timeout(&url, "end of the line", line_timeout));
        }
        let n = match reader.read(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
                return Err(timeout(&url, "data", client.config().idle_timeout));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(closed(url, e.to_string(), line)),
        };
        streamed += n;
        if streamed > caps.stream_bytes {
            return Err(RemoteError::BadResponse {
                url,
                reason: format!(
                    "more than {} bytes of stream for a line of at most {} tokens",
                    caps.stream_bytes, job.request.params.max_tokens
                ),
            });
        }
        if n == 0 {
            parser.finish();
        } else {
            parser.feed(&buf[..n]);
        }
        while let Some(event) = parser.next_event() {
            if event.data.trim() == "[DONE]" {
                return Ok(finish.unwrap_or(FinishReason::Eos));
            }
            let chunk = parse_chunk(&event.data).map_err(|reason| RemoteError::BadResponse {
                url: url.clone(),
                reason,
            })?;
            if let Some(n) = chunk.prompt_tokens {
                line.stats.prompt_tokens = n;
            }
            if let Some(text) = chunk.text {
                if line.first.is_none() {
                    line.first = Some(Instant::now());
                    line.stats.ttft_ms = sent.elapsed().as_secs_f64() * 1e3;
                }
                // A server that ignores `max_tokens` (or streams huge chunks) is cut off here:
                // the line ends as if it had reached its length, and the connection is dropped.
                if line.stats.generated_tokens >= caps.chunks {
                    return Ok(cut_off(&url, job));
                }
                line.stats.generated_tokens += 1;
                let mut text = line.think.push(&text);
                let room = caps.text_bytes.saturating_sub(line.text.len());
                let over = text.len() > room;
                if over {
                    text.truncate(text.floor_char_boundary(room));
                }
                line.text.push_str(&text);
                if cancelled() {
                    return Ok(FinishReason::Cancelled);
                }
                if !text.is_empty() {
                    let _ = out.send(BackendEvent::Text {
                        id: job.request.id,
                        text,
                    });
                }
                if over {
                    return Ok(cut_off(&url, job));
                }
            }
            if chunk.finish.is_some() {
                finish = chunk.finish;
            }
        }
        if n == 0 {
            // Some servers end the body right after the last chunk without `[DONE]`.
            return match finish {
                Some(reason) => Ok(reason),
                None => Err(closed(
                    url,
                    "the stream ended without a finish reason or [DONE]".into(),
                    line,
                )),
            };
        }
    }
}

/// The end of a line that went past its caps.
fn cut_off(url: &str, job: &Job) -> FinishReason {
    tracing::warn!(
        "{url}: the line went past what {} tokens may take; cut off",
        job.request.params.max_tokens
    );
    FinishReason::MaxTokens
}

/// A broken stream; before the first words, most likely the server failed on the prompt.
fn closed(url: String, reason: String, line: &Line) -> RemoteError {
    let reason = if line.first.is_none() {
        format!(
            "{reason} (before the first words: the server may have failed on the prompt, e.g. \
             one longer than its context window; its log says why)"
        )
    } else {
        reason
    };
    RemoteError::Closed { url, reason }
}

fn timeout(url: &str, what: &str, after: Duration) -> RemoteError {
    RemoteError::Timeout {
        url: url.to_owned(),
        what: what.to_owned(),
        after_ms: after.as_millis() as u64,
    }
}

/// A non-streamed request's answer as JSON (the health check and the tests' comparisons).
pub(crate) fn get_json(client: &Client, path: &str) -> Result<Value, RemoteError> {
    let url = client.endpoint(path);
    let response = client.get(path)?;
    super::client::read_json(response, &url, client.config().max_json_bytes)
}

/// What one line may take from a server, whatever it streams: its `max_tokens` plus a margin
/// in chunks (a chunk holds at least one token), 64 bytes of text per such token, and 1 MiB
/// plus 4 KiB per token of stream (JSON and keep-alives included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LineCaps {
    pub chunks: usize,
    pub text_bytes: usize,
    pub stream_bytes: usize,
}

impl LineCaps {
    /// Chunks allowed past `max_tokens` (servers count a few tokens differently).
    const MARGIN: usize = 16;

    pub fn for_max_tokens(max_tokens: usize) -> Self {
        let tokens = max_tokens.saturating_add(Self::MARGIN);
        Self {
            chunks: tokens,
            text_bytes: tokens.saturating_mul(64),
            stream_bytes: (1usize << 20).saturating_add(tokens.saturating_mul(4 << 10)),
        }
    }
}
