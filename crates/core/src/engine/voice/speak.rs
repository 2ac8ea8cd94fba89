//! Speaking: [`TextToSpeech`] takes lines as they stream in, splits them into sentences and
//! synthesises each on its own thread, so the first sentence plays while the model is still
//! writing the rest. A cancelled line stops before its next sentence.

use std::collections::{HashMap, VecDeque};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::sentences::SentenceSplitter;
use super::tts::{Speech, Voice, VoiceError, VoiceSpec};

/// A line being spoken, named by the caller.
pub type LineId = u64;

enum Command {
    Text(LineId, VoiceSpec, String),
    End(LineId),
    Cancel(LineId),
}

/// What the speaking thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakEvent {
    /// The synthesiser started.
    Ready {
        /// Its name and version.
        label: String,
    },
    /// The synthesiser did not start; nothing will be spoken.
    Failed(VoiceError),
    /// A sentence's audio, in order.
    Audio {
        /// The line.
        line: LineId,
        /// The sentence spoken.
        sentence: String,
        /// Its audio and visemes.
        speech: Speech,
        /// Milliseconds synthesis took.
        synth_ms: f32,
    },
    /// A sentence could not be spoken (the line goes on).
    Error {
        /// The line.
        line: LineId,
        /// Why.
        error: VoiceError,
    },
    /// The line's last sentence was sent.
    Done {
        /// The line.
        line: LineId,
    },
}

/// A synthesiser on its own thread.
pub struct TextToSpeech {
    tx: Option<Sender<Command>>,
    rx: Receiver<SpeakEvent>,
    thread: Option<JoinHandle<()>>,
}

type MakeVoice = Box<dyn FnOnce() -> Result<Box<dyn Voice>, VoiceError> + Send>;

impl TextToSpeech {
    /// Starts a thread that makes its voice with `make` (on that thread).
    pub fn spawn(make: MakeVoice) -> Self {
        let (tx, commands) = unbounded();
        let (events, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("dialogue-speak".into())
            .spawn(move || run(make, commands, events))
            .ok();
        Self {
            tx: Some(tx),
            rx,
            thread,
        }
    }

    /// eSpeak NG on its own thread.
    pub fn espeak() -> Self {
        Self::spawn(Box::new(|| {
            super::espeak::Espeak::new().map(|v| Box::new(v) as Box<dyn Voice>)
        }))
    }

    /// More text of a line (a chunk as it streams in, or the whole line).
    pub fn text(&self, line: LineId, spec: &VoiceSpec, text: &str) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Text(line, spec.clone(), text.to_owned()));
        }
    }

    /// The line is complete: its last words are spoken, then [`SpeakEvent::Done`].
    pub fn end(&self, line: LineId) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::End(line));
        }
    }

    /// Stops a line: nothing more of it is synthesised or reported.
    pub fn cancel(&self, line: LineId) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Cancel(line));
        }
    }

    /// The next report, if any (never waits).
    pub fn try_recv(&self) -> Option<SpeakEvent> {
        self.rx.try_recv().ok()
    }

    /// The next report, waiting up to `timeout` (tools and tests; never on a frame).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<SpeakEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for TextToSpeech {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Job {
    Sentence(LineId, VoiceSpec, String),
    Done(LineId),
}

fn job_line(j: &Job) -> LineId {
    match j {
        Job::Sentence(l, _, _) | Job::Done(l) => *l,
    }
}

fn run(make: MakeVoice, commands: Receiver<Command>, events: Sender<SpeakEvent>) {
    // Synthesis is light, but it must never take a core from the frame loop: CPU time nothing
    // else wants only (with the model busy too, nice +10 cost frames +4 ms at p99).
    crate::engine::pool::idle_this_thread();
    let mut voice = match make() {
        Ok(v) => v,
        Err(e) => {
            let _ = events.send(SpeakEvent::Failed(e));
            return;
        }
    };
    let _ = events.send(SpeakEvent::Ready {
        label: voice.label(),
    });
    let mut lines: HashMap<LineId, (VoiceSpec, SentenceSplitter)> = HashMap::new();
    let mut jobs: VecDeque<Job> = VecDeque::new();
    loop {
        // Take every waiting command before the next sentence (a cancel wins at once).
        let first = if jobs.is_empty() {
            match commands.recv() {
                Ok(c) => Some(c),
                Err(_) => return,
            }
        } else {
            None
        };
        for command in first.into_iter().chain(commands.try_iter()) {
            match command {
                Command::Text(line, spec, text) => {
                    let (spec, splitter) = lines
                        .entry(line)
                        .or_insert_with(|| (spec, SentenceSplitter::new()));
                    for s in splitter.push(&text) {
                        jobs.push_back(Job::Sentence(line, spec.clone(), s));
                    }
                }
                Command::End(line) => {
                    if let Some((spec, mut splitter)) = lines.remove(&line)
                        && let Some(rest) = splitter.finish()
                    {
                        jobs.push_back(Job::Sentence(line, spec, rest));
                    }
                    jobs.push_back(Job::Done(line));
                }
                Command::Cancel(line) => {
                    lines.remove(&line);
                    jobs.retain(|j| job_line(j) != line);
                }
            }
        }
        match jobs.pop_front() {
            Some(Job::Sentence(line, spec, sentence)) => {
                let t0 = std::time::Instant::now();
                // A panic in the voice ends this sentence with an error; the thread goes on.
                let spoken = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    voice.synthesize(&sentence, &spec)
                }))
                .unwrap_or_else(|panic| {
                    Err(VoiceError::Synth(format!(
                        "the voice panicked: {}",
                        crate::engine::panic_message(panic.as_ref())
                    )))
                });
                let event = match spoken {
                    Ok(speech) => SpeakEvent::Audio {
                        line,
                        sentence,
                        speech,
                        synth_ms: t0.elapsed().as_secs_f32() * 1e3,
                    },
                    Err(error) => SpeakEvent::Error { line, error },
                };
                let _ = events.send(event);
            }
            Some(Job::Done(line)) => {
                let _ = events.send(SpeakEvent::Done { line });
            }
            None => {}
        }
    }
}
