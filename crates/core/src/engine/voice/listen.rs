//! Listening: [`Listener`] runs the voice-activity detector and Whisper over a stream of
//! audio; [`SpeechToText`] runs it on its own thread (never the frame thread), loading the
//! model there.

use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::WHISPER_RATE;
use super::audio::resample;
use super::vad::{Vad, VadConfig, VadEvent};
use super::whisper::{Transcript, WhisperError, WhisperModel};
use crate::engine::pool::{ComputePool, idle_this_thread};

/// How listening behaves.
#[derive(Debug, Clone, PartialEq)]
pub struct ListenConfig {
    /// The voice-activity detector.
    pub vad: VadConfig,
    /// While the player speaks, transcribe what is heard so far this often (0: never).
    pub partial_every_ms: u32,
    /// Compute threads for Whisper on the listening thread (default: the physical cores).
    pub threads: Option<usize>,
    /// Run the listening thread and Whisper's threads only on CPU time nothing else wants
    /// (default `true`; Linux: `SCHED_IDLE` for them alone), so that a frame never waits for
    /// a core (with the model's threads also busy, nice +10 was not enough: +4 ms p99).
    pub background_priority: bool,
}

impl Default for ListenConfig {
    fn default() -> Self {
        Self {
            vad: VadConfig::default(),
            partial_every_ms: 1000,
            threads: None,
            background_priority: true,
        }
    }
}

/// What the listener made of the audio.
#[derive(Debug, Clone, PartialEq)]
pub enum Heard {
    /// The player started speaking.
    Started,
    /// What was said so far (the player is still speaking).
    Partial(String),
    /// The player finished an utterance that was speech.
    Final {
        /// Whisper's transcript.
        transcript: Transcript,
        /// Seconds of audio in the utterance.
        audio_seconds: f32,
        /// Milliseconds Whisper took (the end of speech is known `hangover_ms` earlier).
        transcribe_ms: f32,
    },
    /// An utterance Whisper judged not speech (or only a sound like "(water running)").
    NotSpeech(Transcript),
    /// Sound the detector dropped (too short, or noise).
    Dropped,
}

/// Voice-activity detection in front of Whisper, on the caller's thread.
pub struct Listener {
    vad: Vad,
    model: WhisperModel,
    config: ListenConfig,
    since_partial: usize,
    held: Option<Vec<f32>>,
}

impl Listener {
    /// A listener on a loaded model.
    pub fn new(model: WhisperModel, config: ListenConfig) -> Self {
        Self {
            vad: Vad::new(config.vad.clone()),
            model,
            config,
            since_partial: 0,
            held: None,
        }
    }

    /// Feeds 16 kHz mono audio (voice-activity mode).
    pub fn push(&mut self, pcm: &[f32]) -> Result<Vec<Heard>, WhisperError> {
        if let Some(held) = self.held.as_mut() {
            held.extend_from_slice(pcm);
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for event in self.vad.push(pcm) {
            self.since_partial = 0;
            out.push(self.on_event(event)?);
        }
        let every = self.config.partial_every_ms as usize * WHISPER_RATE as usize / 1000;
        if let Some(now) = self.vad.current().filter(|_| every > 0) {
            self.since_partial += pcm.len();
            if self.since_partial >= every {
                self.since_partial = 0;
                let t = self.model.transcribe(now)?;
                if t.is_speech() {
                    out.push(Heard::Partial(t.text));
                }
            }
        }
        Ok(out)
    }

    /// Push-to-talk: `true` starts an utterance that takes all audio until `false`, which
    /// transcribes it.
    pub fn hold(&mut self, pressed: bool) -> Result<Vec<Heard>, WhisperError> {
        match (pressed, self.held.take()) {
            (true, None) => {
                self.vad.flush();
                self.held = Some(Vec::new());
                Ok(vec![Heard::Started])
            }
            (true, Some(h)) => {
                self.held = Some(h);
                Ok(Vec::new())
            }
            (false, Some(audio)) => Ok(vec![self.on_event(VadEvent::Ended(audio))?]),
            (false, None) => Ok(Vec::new()),
        }
    }

    /// Ends an utterance under way (the stream closed).
    pub fn flush(&mut self) -> Result<Vec<Heard>, WhisperError> {
        match self.vad.flush() {
            Some(e) => Ok(vec![self.on_event(e)?]),
            None => Ok(Vec::new()),
        }
    }

    fn on_event(&mut self, event: VadEvent) -> Result<Heard, WhisperError> {
        Ok(match event {
            VadEvent::Started => Heard::Started,
            VadEvent::Dropped => Heard::Dropped,
            VadEvent::Ended(audio) => {
                let t0 = Instant::now();
                let transcript = self.model.transcribe(&audio)?;
                let transcribe_ms = t0.elapsed().as_secs_f32() * 1e3;
                if transcript.is_speech() {
                    Heard::Final {
                        transcript,
                        audio_seconds: audio.len() as f32 / WHISPER_RATE as f32,
                        transcribe_ms,
                    }
                } else {
                    Heard::NotSpeech(transcript)
                }
            }
        })
    }
}

enum Command {
    Audio(Vec<f32>, u32),
    Hold(bool),
    Flush,
}

/// What the listening thread reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ListenEvent {
    /// The model loaded.
    Ready {
        /// The folder it was read from.
        model: PathBuf,
    },
    /// The model did not load; nothing will be heard.
    Failed(String),
    /// Something was heard.
    Heard(Heard),
    /// Whisper failed on one utterance (the next is tried afresh).
    Error(String),
}

/// Whisper and the detector on their own thread.
pub struct SpeechToText {
    tx: Option<Sender<Command>>,
    rx: Receiver<ListenEvent>,
    thread: Option<JoinHandle<()>>,
}

impl SpeechToText {
    /// Starts the thread; it loads the model from `dir` (either layout) and reports
    /// [`ListenEvent::Ready`] or [`ListenEvent::Failed`].
    pub fn spawn(dir: PathBuf, config: ListenConfig) -> Self {
        let (tx, commands) = unbounded::<Command>();
        let (events, rx) = unbounded();
        let thread = std::thread::Builder::new()
            .name("dialogue-listen".into())
            .spawn(move || run(dir, config, commands, events))
            .ok();
        Self {
            tx: Some(tx),
            rx,
            thread,
        }
    }

    /// Sends audio at any rate (mono); it is resampled to 16 kHz on the thread.
    pub fn send_audio(&self, samples: Vec<f32>, sample_rate: u32) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Audio(samples, sample_rate));
        }
    }

    /// Push-to-talk pressed or released.
    pub fn hold(&self, pressed: bool) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Hold(pressed));
        }
    }

    /// Ends an utterance under way.
    pub fn flush(&self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Command::Flush);
        }
    }

    /// The next report, if any (never waits).
    pub fn try_recv(&self) -> Option<ListenEvent> {
        self.rx.try_recv().ok()
    }

    /// The next report, waiting up to `timeout` (tools and tests; never on a frame).
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<ListenEvent> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for SpeechToText {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    dir: PathBuf,
    config: ListenConfig,
    commands: Receiver<Command>,
    events: Sender<ListenEvent>,
) {
    if config.background_priority {
        // Threads this one starts (Whisper's pool, the mel spectrogram's) inherit it.
        idle_this_thread();
    }
    let threads = config.threads.unwrap_or_else(num_cpus::get_physical);
    let pool = match ComputePool::with_priority(threads, config.background_priority) {
        Ok(p) => p,
        Err(e) => {
            let _ = events.send(ListenEvent::Failed(e.to_string()));
            return;
        }
    };
    pool.install(|| serve(dir, config, commands, events));
}

fn serve(
    dir: PathBuf,
    config: ListenConfig,
    commands: Receiver<Command>,
    events: Sender<ListenEvent>,
) {
    let model = match WhisperModel::load(&dir) {
        Ok(m) => m,
        Err(e) => {
            let _ = events.send(ListenEvent::Failed(e.to_string()));
            return;
        }
    };
    let _ = events.send(ListenEvent::Ready {
        model: model.dir.clone(),
    });
    let mut listener = Listener::new(model, config);
    while let Ok(command) = commands.recv() {
        // Audio that queued up while Whisper ran is taken together.
        let mut audio: Vec<f32> = Vec::new();
        let mut next = Some(command);
        while let Some(c) = next.take() {
            // A panic while hearing one utterance is reported like a failed one; the thread
            // goes on with the next.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match c {
                Command::Audio(samples, rate) => {
                    audio.extend(resample(&samples, rate, WHISPER_RATE));
                    Ok(Vec::new())
                }
                other => {
                    let before = listener.push(&std::mem::take(&mut audio));
                    let after = match other {
                        Command::Hold(p) => listener.hold(p),
                        _ => listener.flush(),
                    };
                    before.and_then(|mut b| {
                        b.extend(after?);
                        Ok(b)
                    })
                }
            }));
            match result {
                Ok(result) => report(result, &events),
                Err(panic) => {
                    let _ = events.send(ListenEvent::Error(format!(
                        "speech recognition panicked: {}",
                        crate::engine::panic_message(panic.as_ref())
                    )));
                }
            }
            next = commands.try_recv().ok();
        }
        if !audio.is_empty() {
            report(listener.push(&audio), &events);
        }
    }
}

fn report(result: Result<Vec<Heard>, WhisperError>, events: &Sender<ListenEvent>) {
    match result {
        Ok(heard) => {
            for h in heard {
                let _ = events.send(ListenEvent::Heard(h));
            }
        }
        Err(e) => {
            let _ = events.send(ListenEvent::Error(e.to_string()));
        }
    }
}
