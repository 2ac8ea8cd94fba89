//! Text to speech, engine side: what a voice is asked for ([`VoiceSpec`]), what it gives back
//! ([`Speech`]: PCM with [`Viseme`]s for lip-sync) and the [`Voice`] trait a synthesiser
//! implements.

use serde::{Deserialize, Serialize};

/// How a character sounds, authored per persona in RON
/// (`voice: (name: "en-us", pitch: 40, rate: 160)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VoiceSpec {
    /// The synthesiser's voice name (eSpeak NG: `en`, `en-us`, `en-gb-scotland`, a language
    /// code, optionally with a variant: `en+f3`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Pitch, 0 (low) to 100 (high); 50 is the voice's own.
    #[serde(default = "default_pitch")]
    pub pitch: u8,
    /// Speed in words per minute (80 to 450; 175 is eSpeak's default).
    #[serde(default = "default_rate")]
    pub rate: u16,
}

fn default_name() -> String {
    "en".into()
}
fn default_pitch() -> u8 {
    50
}
fn default_rate() -> u16 {
    175
}

impl Default for VoiceSpec {
    fn default() -> Self {
        Self {
            name: default_name(),
            pitch: default_pitch(),
            rate: default_rate(),
        }
    }
}

/// How open the mouth is from one sample on (0 closed, 1 wide open).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viseme {
    /// The first sample it applies to.
    pub at: usize,
    /// Mouth opening, 0 to 1.
    pub open: f32,
}

/// Synthesised speech: mono PCM and the mouth shapes over it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Speech {
    /// Samples per second.
    pub sample_rate: u32,
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
    /// Mouth openings in sample order (the first at 0).
    pub visemes: Vec<Viseme>,
}

impl Speech {
    /// Length in seconds.
    pub fn seconds(&self) -> f32 {
        if self.sample_rate == 0 {
            0.0
        } else {
            self.samples.len() as f32 / self.sample_rate as f32
        }
    }

    /// The mouth opening at a sample (the last viseme at or before it; 0 before the first and
    /// after the end).
    pub fn mouth_at(&self, sample: usize) -> f32 {
        if sample >= self.samples.len() {
            return 0.0;
        }
        let i = self.visemes.partition_point(|v| v.at <= sample);
        if i == 0 {
            0.0
        } else {
            self.visemes[i - 1].open
        }
    }
}

/// Why speech could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VoiceError {
    /// The synthesiser could not start (its data files missing, say).
    #[error("the speech synthesiser did not start: {0}")]
    Init(String),
    /// No such voice.
    #[error("no voice named `{0}`")]
    UnknownVoice(String),
    /// Synthesis failed.
    #[error("speech synthesis failed: {0}")]
    Synth(String),
}

/// A text-to-speech engine. Runs on the voice worker thread, one sentence at a time.
pub trait Voice: Send {
    /// A short name for logs ("eSpeak NG 1.51").
    fn label(&self) -> String;
    /// Speaks `text` (a sentence or a few) as `spec` asks.
    fn synthesize(&mut self, text: &str, spec: &VoiceSpec) -> Result<Speech, VoiceError>;
}

/// How open the mouth is for a phoneme, from its eSpeak NG mnemonic (`a`, `@`, `p`, `_:`).
/// Open vowels are widest, rounded and close vowels narrower, lip consonants shut, pauses rest.
pub fn mouth_for_phoneme(name: &str) -> f32 {
    let Some(c) = name.chars().next() else {
        return 0.0;
    };
    match c {
        'a' | 'A' | 'V' | '&' => 1.0,
        'O' | 'o' | '0' | 'Q' => 0.8,
        'e' | 'E' | '@' | '3' => 0.6,
        'i' | 'I' | 'y' | 'Y' => 0.4,
        'u' | 'U' | 'w' | 'W' => 0.35,
        'p' | 'b' | 'm' => 0.0,
        'f' | 'v' => 0.15,
        '_' | ' ' | '\'' | ',' => 0.0,
        _ => 0.25,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mouth_follows_the_visemes_and_rests_outside() {
        let s = Speech {
            sample_rate: 10,
            samples: vec![0.0; 30],
            visemes: vec![
                Viseme { at: 0, open: 0.2 },
                Viseme { at: 10, open: 1.0 },
                Viseme { at: 20, open: 0.0 },
            ],
        };
        assert_eq!(s.mouth_at(5), 0.2);
        assert_eq!(s.mouth_at(10), 1.0);
        assert_eq!(s.mouth_at(25), 0.0);
        assert_eq!(s.mouth_at(40), 0.0);
        assert_eq!(s.seconds(), 3.0);
        assert_eq!(mouth_for_phoneme("a:"), 1.0);
        assert_eq!(mouth_for_phoneme("m"), 0.0);
        assert!(mouth_for_phoneme("t") > 0.0);
    }

    #[test]
    fn a_spec_reads_from_ron_with_defaults() {
        let v: VoiceSpec = ron::from_str("(name: \"en-us\", pitch: 30)").unwrap();
        assert_eq!(v.rate, 175);
        assert_eq!(v.pitch, 30);
        assert!(ron::from_str::<VoiceSpec>("(nmae: \"x\")").is_err());
    }
}
