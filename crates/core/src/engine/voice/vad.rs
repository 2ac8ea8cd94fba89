//! Voice-activity detection: finds where the player speaks in a stream of 16 kHz audio, so
//! only speech reaches Whisper (which, given silence or noise, invents words: " you",
//! "(water running)").
//!
//! An energy detector with an adaptive noise floor and a voicing check: a 30 ms frame is
//! *voiced* when it is louder than the floor by `threshold_db`, above `min_level_db`, and
//! crosses zero rarely (voiced speech is periodic; hiss and broadband noise cross zero on about
//! half the samples). An utterance starts at a voiced frame (with `pre_roll_ms` of audio kept
//! from before), ends after `hangover_ms` without one, and counts only with `min_voiced_ms` of
//! voiced frames.

use std::collections::VecDeque;

use super::WHISPER_RATE;

/// Samples per analysis frame (30 ms at 16 kHz).
const FRAME: usize = 480;

/// How the detector decides.
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// How far above the noise floor a voiced frame is, in dB.
    pub threshold_db: f32,
    /// The quietest a voiced frame can be, in dB below full scale.
    pub min_level_db: f32,
    /// Zero crossings per sample above which a frame is noise, not voice.
    pub max_zero_crossings: f32,
    /// Voiced audio an utterance needs to count.
    pub min_voiced_ms: u32,
    /// Silence that ends an utterance.
    pub hangover_ms: u32,
    /// Audio kept from before the first voiced frame.
    pub pre_roll_ms: u32,
    /// An utterance is cut here (Whisper reads at most 30 s).
    pub max_utterance_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        Self {
            threshold_db: 12.0,
            min_level_db: -45.0,
            max_zero_crossings: 0.25,
            min_voiced_ms: 180,
            hangover_ms: 600,
            pre_roll_ms: 240,
            max_utterance_ms: 20_000,
        }
    }
}

/// What a chunk of audio did.
#[derive(Debug, Clone, PartialEq)]
pub enum VadEvent {
    /// The player started speaking.
    Started,
    /// The player stopped: the utterance's audio (16 kHz).
    Ended(Vec<f32>),
    /// What sounded like a start was too short or not voice: dropped.
    Dropped,
}

#[derive(Debug)]
struct Utterance {
    samples: Vec<f32>,
    voiced_frames: usize,
    quiet_frames: usize,
}

/// The detector. Feed it 16 kHz audio with [`Vad::push`].
#[derive(Debug)]
pub struct Vad {
    config: VadConfig,
    floor_db: Option<f32>,
    carry: Vec<f32>,
    pre: VecDeque<f32>,
    utterance: Option<Utterance>,
}

fn ms_to_frames(ms: u32) -> usize {
    (ms as usize * WHISPER_RATE as usize / 1000).div_ceil(FRAME)
}

impl Vad {
    /// A detector with nothing heard yet.
    pub fn new(config: VadConfig) -> Self {
        Self {
            config,
            floor_db: None,
            carry: Vec::new(),
            pre: VecDeque::new(),
            utterance: None,
        }
    }

    /// Whether an utterance is under way.
    pub fn speaking(&self) -> bool {
        self.utterance.is_some()
    }

    /// The audio of the utterance under way (for partial transcripts).
    pub fn current(&self) -> Option<&[f32]> {
        self.utterance.as_ref().map(|u| u.samples.as_slice())
    }

    /// The noise floor, dB below full scale.
    pub fn floor_db(&self) -> Option<f32> {
        self.floor_db
    }

    /// Feeds 16 kHz mono audio.
    pub fn push(&mut self, samples: &[f32]) -> Vec<VadEvent> {
        let mut events = Vec::new();
        self.carry.extend_from_slice(samples);
        let frames = self.carry.len() / FRAME;
        let data: Vec<f32> = self.carry.drain(..frames * FRAME).collect();
        for frame in data.chunks_exact(FRAME) {
            self.frame(frame, &mut events);
        }
        events
    }

    /// Ends the utterance under way, if any (push-to-talk released, the stream closed).
    pub fn flush(&mut self) -> Option<VadEvent> {
        let tail = std::mem::take(&mut self.carry);
        if let Some(u) = self.utterance.as_mut() {
            u.samples.extend_from_slice(&tail);
        }
        self.finish()
    }

    fn finish(&mut self) -> Option<VadEvent> {
        let u = self.utterance.take()?;
        self.pre.clear();
        if u.voiced_frames >= ms_to_frames(self.config.min_voiced_ms) {
            Some(VadEvent::Ended(u.samples))
        } else {
            Some(VadEvent::Dropped)
        }
    }

    fn frame(&mut self, frame: &[f32], events: &mut Vec<VadEvent>) {
        let power = frame.iter().map(|s| s * s).sum::<f32>() / FRAME as f32;
        let level = 10.0 * (power + 1e-10).log10();
        let crossings = frame
            .windows(2)
            .filter(|w| (w[0] >= 0.0) != (w[1] >= 0.0))
            .count() as f32
            / FRAME as f32;
        let c = &self.config;
        let floor = *self
            .floor_db
            .get_or_insert(level.min(c.min_level_db - c.threshold_db));
        let voiced = level > floor + c.threshold_db
            && level > c.min_level_db
            && crossings < c.max_zero_crossings;
        if !voiced {
            // The floor follows quiet at once and noise slowly.
            let next = if level < floor {
                level
            } else {
                floor + 0.05 * (level - floor)
            };
            self.floor_db = Some(next);
        }
        let hangover = ms_to_frames(c.hangover_ms);
        let max_frames = ms_to_frames(c.max_utterance_ms);
        let pre_roll = ms_to_frames(c.pre_roll_ms) * FRAME;
        match self.utterance.as_mut() {
            None if voiced => {
                let mut samples: Vec<f32> = self.pre.drain(..).collect();
                samples.extend_from_slice(frame);
                self.utterance = Some(Utterance {
                    samples,
                    voiced_frames: 1,
                    quiet_frames: 0,
                });
                events.push(VadEvent::Started);
            }
            None => {
                self.pre.extend(frame.iter().copied());
                while self.pre.len() > pre_roll {
                    self.pre.pop_front();
                }
            }
            Some(u) => {
                u.samples.extend_from_slice(frame);
                if voiced {
                    u.voiced_frames += 1;
                    u.quiet_frames = 0;
                } else {
                    u.quiet_frames += 1;
                }
                if u.quiet_frames >= hangover || u.samples.len() >= max_frames * FRAME {
                    events.extend(self.finish());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f32, hz: f32, amp: f32) -> Vec<f32> {
        (0..(seconds * 16000.0) as usize)
            .map(|i| (i as f32 * hz * std::f32::consts::TAU / 16000.0).sin() * amp)
            .collect()
    }

    fn noise(seconds: f32, amp: f32) -> Vec<f32> {
        let mut x = 0x2545_f491_u32;
        (0..(seconds * 16000.0) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp
            })
            .collect()
    }

    #[test]
    fn a_voiced_stretch_between_silences_is_one_utterance() {
        let mut vad = Vad::new(VadConfig::default());
        let mut audio = vec![0.0; 8000];
        audio.extend(tone(1.0, 180.0, 0.3));
        audio.extend(vec![0.0; 16000]);
        let events = vad.push(&audio);
        assert_eq!(events.first(), Some(&VadEvent::Started));
        let Some(VadEvent::Ended(u)) = events.last() else {
            panic!("{events:?}")
        };
        assert!(u.len() >= 16000 && u.len() < 16000 + 16000, "{}", u.len());
        assert!(!vad.speaking());
    }

    #[test]
    fn silence_noise_and_clicks_are_not_speech() {
        let mut vad = Vad::new(VadConfig::default());
        let mut audio = vec![0.0; 16000];
        audio.extend(noise(2.0, 0.3));
        audio.extend(vec![0.0; 8000]);
        audio.extend(tone(0.06, 200.0, 0.5));
        audio.extend(vec![0.0; 16000]);
        let events = vad.push(&audio);
        assert!(
            events.iter().all(|e| !matches!(e, VadEvent::Ended(_))),
            "{events:?}"
        );
    }
}
