//! `Choose` against a server: the candidates asked as a lettered multiple choice, scored by the
//! log-probabilities the server gives its one-token answer (`logprobs`, `top_logprobs`). A
//! server that returns none cannot score: the request fails with a message saying the text is
//! routed by keywords instead (which the story layer then does).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crossbeam_channel::Sender;
use serde_json::{Map, Value, json};

use super::client::Client;
use crate::engine::backend::{BackendEvent, CandidateScore, ChooseRequest, RequestError};
use crate::engine::chat::Role;

/// Most candidates asked at once (one letter each).
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// What a candidate the server did not list among its likeliest answers scores: far below any
/// it did list.
const UNLISTED: f32 = -30.0;

/// A choose request taken from the queue.
pub(crate) struct ChooseJob {
    pub request: ChooseRequest,
    pub queued_at: Instant,
    /// Set by `cancel`: no retry starts, and nothing is sent after.
    pub cancel: Arc<AtomicBool>,
}

/// The body of the scoring request: the route prompt, then the candidates as lettered options
/// and a one-token greedy answer with its top log-probabilities.
pub(crate) fn choose_body(model: Option<&str>, r: &ChooseRequest, cache_prompt: bool) -> Value {
    let mut messages = Vec::with_capacity(r.prompt.turns.len() + 1);
    let system = format!(
        "{} Answer with the letter of one option, nothing else.",
        r.prompt.system
    );
    messages.push(json!({"role": "system", "content": system.trim()}));
    let last_user = r.prompt.turns.iter().rposition(|t| t.role == Role::User);
    for (i, turn) in r.prompt.turns.iter().enumerate() {
        let role = match turn.role {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        let mut content = turn.content.clone();
        if Some(i) == last_user {
            content.push_str("\n\nWhich is it?");
            for (letter, c) in LETTERS.chars().zip(&r.candidates) {
                content.push_str(&format!("\n{letter}) {}", c.trim()));
            }
        }
        messages.push(json!({"role": role, "content": content}));
    }
    let mut body = Map::new();
    if let Some(model) = model {
        body.insert("model".into(), json!(model));
    }
    body.insert("messages".into(), Value::Array(messages));
    body.insert("stream".into(), json!(false));
    body.insert("max_tokens".into(), json!(1));
    body.insert("temperature".into(), json!(0.0));
    body.insert("logprobs".into(), json!(true));
    body.insert("top_logprobs".into(), json!(20));
    if cache_prompt {
        body.insert("cache_prompt".into(), json!(true));
    }
    Value::Object(body)
}

/// The candidates' scores from the answer's first-token log-probabilities: the letter of each
/// (`A`, ` A`, `A)` all count; lower case does not). `None` when the answer carries no log-probabilities or names no
/// option.
pub(crate) fn scores_from(answer: &Value, candidates: usize) -> Option<Vec<CandidateScore>> {
    let top = answer
        .pointer("/choices/0/logprobs/content/0/top_logprobs")?
        .as_array()?;
    let mut best = vec![None::<f32>; candidates.min(LETTERS.len())];
    for entry in top {
        let (Some(token), Some(lp)) = (
            entry.get("token").and_then(Value::as_str),
            entry.get("logprob").and_then(Value::as_f64),
        ) else {
            continue;
        };
        let t = token.trim_matches(|c: char| c.is_whitespace() || c == '▁' || c == ')' || c == '.');
        let mut chars = t.chars();
        let (Some(c), None) = (chars.next(), chars.next()) else {
            continue;
        };
        // Capitals only: a lower-case `a` is an article more often than an answer.
        if let Some(i) = LETTERS.find(c).filter(|_| c.is_ascii_uppercase())
            && i < best.len()
        {
            let lp = lp as f32;
            best[i] = Some(best[i].map_or(lp, |b: f32| b.max(lp)));
        }
    }
    if best.iter().all(Option::is_none) {
        return None;
    }
    Some(
        best.into_iter()
            .map(|lp| CandidateScore {
                log_prob: lp.unwrap_or(UNLISTED),
                tokens: 1,
            })
            .collect(),
    )
}

/// Scores `job` on the server and sends `Started`, then `Scores` or `Error`.
pub(crate) fn run(client: &Client, job: &ChooseJob, out: &Sender<BackendEvent>) {
    let id = job.request.id;
    let _ = out.send(BackendEvent::Started {
        id,
        conversation: None,
    });
    let _ = job.queued_at;
    // A cancelled request's events are dropped by the backend's `poll` (its final one clears
    // the record), so they are sent as usual.
    let event = match score(client, &job.request, &job.cancel) {
        Ok(scores) => BackendEvent::Scores { id, scores },
        Err(error) => BackendEvent::Error {
            id: Some(id),
            error,
        },
    };
    let _ = out.send(event);
}

fn score(
    client: &Client,
    r: &ChooseRequest,
    cancel: &AtomicBool,
) -> Result<Vec<CandidateScore>, RequestError> {
    if r.candidates.len() > LETTERS.len() {
        return Err(RequestError::Unsupported(format!(
            "{} options to score; a server scores at most {}: routed by keywords",
            r.candidates.len(),
            LETTERS.len()
        )));
    }
    let body = choose_body(client.model(), r, client.config().cache_prompt);
    let url = client.endpoint("/v1/chat/completions");
    let response = client
        .post("/v1/chat/completions", &body, cancel)
        .map_err(RequestError::Remote)?;
    let answer = super::client::read_json(response, &url, client.config().max_json_bytes)
        .map_err(RequestError::Remote)?;
    scores_from(&answer, r.candidates.len()).ok_or_else(|| {
        RequestError::Unsupported(format!(
            "{url} returned no log-probabilities for the options: routed by keywords"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letters_in_any_spelling_score_their_option_and_the_rest_score_far_below() {
        let answer = json!({"choices": [{"logprobs": {"content": [{"token": "B", "logprob": -0.1,
        "top_logprobs": [
            {"token": "B", "logprob": -0.1},
            {"token": " A)", "logprob": -2.5},
            {"token": "▁C", "logprob": -3.0},
            {"token": " a", "logprob": -1.0},
            {"token": "Z", "logprob": -4.0},
            {"token": "The", "logprob": -5.0},
        ]}]}}]});
        let s = scores_from(&answer, 3).unwrap();
        let lp: Vec<f32> = s.iter().map(|c| c.log_prob).collect();
        assert_eq!(lp, vec![-2.5, -0.1, -3.0]);
        let s = scores_from(&answer, 2).unwrap();
        assert_eq!(s.len(), 2, "letters past the options are ignored");
        let only_b = json!({"choices": [{"logprobs": {"content": [{"top_logprobs": [
            {"token": "B", "logprob": -0.2}]}]}}]});
        let s = scores_from(&only_b, 2).unwrap();
        assert_eq!((s[0].log_prob, s[1].log_prob), (UNLISTED, -0.2));
        assert!(scores_from(&json!({"choices": [{"message": {"content": "B"}}]}), 3).is_none());
    }
}
