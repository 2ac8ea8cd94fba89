//! [`Scripted`]: authored lines streamed word by word, no language model.

use std::collections::VecDeque;

use super::protocol::{BackendEvent, BackendRequest, CandidateScore, Prompt, RequestId};
use super::{BackendKind, BackendStatus, DialogueBackend, SubmitError};
use crate::engine::generate::{FinishReason, GenerationStats};

/// A backend without a model: a generate request speaks its `fallback` line (or the default
/// line), one word per [`poll`](DialogueBackend::poll) call, so views see the same streaming as
/// with a model. Deterministic: the same requests give the same events.
///
/// `choose` scores candidates by keyword overlap with the player's last message: the fraction
/// of a candidate's words (3+ letters, case-insensitive) that the player used, as a natural log
/// (`ln(max(fraction, 1e-6))`).
#[derive(Debug)]
pub struct Scripted {
    queue: Vec<(i32, u64, BackendRequest)>,
    seq: u64,
    active: Option<Active>,
    ready: VecDeque<BackendEvent>,
    /// The line spoken when a request has no fallback.
    pub default_line: String,
    /// Words streamed per `poll` call.
    pub words_per_poll: usize,
    /// Most queued requests before `submit` answers busy.
    pub capacity: usize,
    stopped: bool,
}

#[derive(Debug)]
struct Active {
    id: RequestId,
    words: VecDeque<String>,
    text: String,
    emitted: usize,
    max_tokens: usize,
}

impl Default for Scripted {
    fn default() -> Self {
        Self {
            queue: Vec::new(),
            seq: 0,
            active: None,
            ready: VecDeque::new(),
            default_line: "…".into(),
            words_per_poll: 1,
            capacity: 64,
            stopped: false,
        }
    }
}

impl Scripted {
    /// A scripted backend with the defaults.
    pub fn new() -> Self {
        Self::default()
    }

    fn start_next(&mut self) {
        let Some(best) = self
            .queue
            .iter()
            .enumerate()
            .max_by_key(|(_, (p, s, _))| (*p, std::cmp::Reverse(*s)))
            .map(|(i, _)| i)
        else {
            return;
        };
        let (_, _, request) = self.queue.remove(best);
        match request {
            BackendRequest::Generate(r) => {
                self.ready.push_back(BackendEvent::Started {
                    id: r.id,
                    conversation: Some(r.conversation),
                });
                let line = r.fallback.unwrap_or_else(|| self.default_line.clone());
                let mut words: VecDeque<String> = VecDeque::new();
                for (i, w) in line.split(' ').enumerate() {
                    words.push_back(if i == 0 {
                        w.to_owned()
                    } else {
                        format!(" {w}")
                    });
                }
                self.active = Some(Active {
                    id: r.id,
                    words,
                    text: String::new(),
                    emitted: 0,
                    max_tokens: r.params.max_tokens,
                });
            }
            request @ (BackendRequest::Choose(_) | BackendRequest::Warm { .. }) => {
                answer_without_model(request, true, &mut self.ready);
            }
            BackendRequest::ResetConversation(_) => {}
        }
    }

    fn step_active(&mut self) {
        let Some(a) = self.active.as_mut() else {
            return;
        };
        for _ in 0..self.words_per_poll.max(1) {
            if a.emitted >= a.max_tokens {
                break;
            }
            let Some(w) = a.words.pop_front() else { break };
            a.text.push_str(&w);
            a.emitted += 1;
            self.ready
                .push_back(BackendEvent::Text { id: a.id, text: w });
        }
        if a.words.is_empty() || a.emitted >= a.max_tokens {
            let reason = if a.words.is_empty() {
                FinishReason::Eos
            } else {
                FinishReason::MaxTokens
            };
            let stats = GenerationStats {
                generated_tokens: a.emitted,
                ..Default::default()
            };
            self.ready.push_back(BackendEvent::Finished {
                id: a.id,
                reason,
                text: std::mem::take(&mut a.text),
                stats,
                dropped_turns: 0,
            });
            self.active = None;
        }
    }
}

/// Answers the requests a backend serves without generating: `Choose` by [`keyword_scores`],
/// `Warm` as done (`already_cached` says what the backend reports). Others are left alone.
pub(crate) fn answer_without_model(
    request: BackendRequest,
    already_cached: bool,
    out: &mut VecDeque<BackendEvent>,
) {
    match request {
        BackendRequest::Choose(r) => {
            out.push_back(BackendEvent::Started {
                id: r.id,
                conversation: None,
            });
            let scores = keyword_scores(&r.prompt, &r.candidates);
            out.push_back(BackendEvent::Scores { id: r.id, scores });
        }
        BackendRequest::Warm { id, .. } => {
            out.push_back(BackendEvent::Started {
                id,
                conversation: None,
            });
            out.push_back(BackendEvent::Warmed {
                id,
                prefix_tokens: 0,
                already_cached,
            });
        }
        BackendRequest::Generate(_) | BackendRequest::ResetConversation(_) => {}
    }
}

/// Scores candidates by the fraction of their words (3+ letters, case-insensitive) that the
/// player's last message used, as a natural log (`ln(max(fraction, 1e-6))`): free-text routing
/// without a model's scores.
pub(crate) fn keyword_scores(prompt: &Prompt, candidates: &[String]) -> Vec<CandidateScore> {
    let said = words(prompt.last_user_text().unwrap_or(""));
    candidates
        .iter()
        .map(|c| {
            let cw = words(c);
            let hits = cw.iter().filter(|w| said.contains(w)).count();
            let fraction = if cw.is_empty() {
                0.0
            } else {
                hits as f32 / cw.len() as f32
            };
            CandidateScore {
                log_prob: fraction.max(1e-6).ln(),
                tokens: cw.len(),
            }
        })
        .collect()
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

impl DialogueBackend for Scripted {
    fn kind(&self) -> BackendKind {
        BackendKind::Scripted
    }

    fn label(&self) -> String {
        "scripted (no language model: authored fallback lines)".into()
    }

    fn status(&mut self) -> BackendStatus {
        if self.stopped {
            BackendStatus::Stopped
        } else {
            BackendStatus::Ready
        }
    }

    fn submit(&mut self, request: BackendRequest) -> Result<(), SubmitError> {
        if self.stopped {
            return Err(SubmitError::NotRunning("shut down".into()));
        }
        if let BackendRequest::ResetConversation(_) = request {
            return Ok(());
        }
        if self.queue.len() >= self.capacity {
            return Err(SubmitError::Busy {
                capacity: self.capacity,
            });
        }
        self.seq += 1;
        self.queue.push((request.priority(), self.seq, request));
        Ok(())
    }

    fn cancel(&mut self, id: RequestId) {
        if let Some(a) = self.active.as_ref().filter(|a| a.id == id) {
            let stats = GenerationStats {
                generated_tokens: a.emitted,
                ..Default::default()
            };
            self.ready.push_back(BackendEvent::Finished {
                id,
                reason: FinishReason::Cancelled,
                text: a.text.clone(),
                stats,
                dropped_turns: 0,
            });
            self.active = None;
        }
        if let Some(i) = self.queue.iter().position(|(_, _, r)| r.id() == Some(id))
            && let (_, _, BackendRequest::Generate(_)) = self.queue.remove(i)
        {
            self.ready.push_back(BackendEvent::Finished {
                id,
                reason: FinishReason::Cancelled,
                text: String::new(),
                stats: GenerationStats::default(),
                dropped_turns: 0,
            });
        }
    }

    fn poll(&mut self, max: usize, out: &mut Vec<BackendEvent>) -> usize {
        if self.ready.is_empty() {
            if self.active.is_none() {
                self.start_next();
            }
            self.step_active();
        }
        let n = self.ready.len().min(max);
        out.extend(self.ready.drain(..n));
        n
    }

    fn shutdown(&mut self) {
        self.stopped = true;
        self.queue.clear();
        self.active = None;
    }
}
