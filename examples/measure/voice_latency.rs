//! Voice latency figures: eSpeak NG speaks game-like sentences; Whisper transcribes each as
//! the listener would (the end of speech is known after the detector's hangover), with the
//! encoder's input trimmed to the audio and with the full 30 s window; and the time from a
//! line's text to its first audio.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release --features voice --example voice_latency -- --model DIR`

use std::path::PathBuf;
use std::time::Instant;

use bevy_llama_dialogue::engine::voice::audio::resample;
use bevy_llama_dialogue::engine::voice::espeak::Espeak;
use bevy_llama_dialogue::engine::voice::vad::VadConfig;
use bevy_llama_dialogue::engine::voice::whisper::WhisperModel;
use bevy_llama_dialogue::engine::voice::{SentenceSplitter, Voice, VoiceSpec, WHISPER_RATE};

const PLAYER: [&str; 5] = [
    "open the gate please",
    "where is the missing lantern",
    "I think Tobin took it to the forge",
    "thank you, how are you tonight",
    "can you help me find the smith before moonrise",
];

const NPC_LINE: &str = "The lantern? I was here all evening, milling. I saw nothing. \
    Come back when I know you mean well.";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let model = args
        .iter()
        .position(|a| a == "--model")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .ok_or("--model DIR (a Whisper folder)")?;
    let rounds: usize = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    let mut voice = Espeak::new()?;
    let t = Instant::now();
    let mut whisper = WhisperModel::load(&model)?;
    println!(
        "whisper {} ({} threads): loaded in {:.0} ms",
        whisper.dir.display(),
        threads,
        t.elapsed().as_secs_f64() * 1e3
    );
    let hangover = VadConfig::default().hangover_ms as f64;
    for trim in [true, false] {
        whisper.trim_context = trim;
        let mut times = Vec::new();
        let mut right = 0;
        for round in 0..rounds {
            for s in PLAYER {
                let speech = voice.synthesize(s, &VoiceSpec::default())?;
                let mut pcm = resample(&speech.samples, speech.sample_rate, WHISPER_RATE);
                pcm.extend(vec![0.0; 4800]);
                let t = Instant::now();
                let tr = whisper.transcribe(&pcm)?;
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let words_ok = s.split_whitespace().filter(|w| w.len() > 3).all(|w| {
                    tr.text
                        .to_lowercase()
                        .contains(&w.trim_matches(',').to_lowercase())
                });
                if round == 0 {
                    println!(
                        "  trim={trim:<5} {:>4.1} s audio {:>6.0} ms  {:<48} {}",
                        pcm.len() as f32 / WHISPER_RATE as f32,
                        ms,
                        format!("{:?}", tr.text),
                        if words_ok { "ok" } else { "MISSED WORDS" }
                    );
                }
                right += words_ok as usize;
                times.push(ms);
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "whisper trim_context={trim}: transcribe median {median:.0} ms, max {:.0} ms; \
             end of speech -> text median {:.0} ms (hangover {hangover:.0} ms + transcribe); \
             {right}/{} sentences with every long word",
            times[times.len() - 1],
            hangover + median,
            times.len()
        );
    }
    // Text to first audio: the line streams in; the first sentence is synthesised as soon as
    // it is complete.
    let mut firsts = Vec::new();
    let mut alls = Vec::new();
    for _ in 0..5 {
        let mut split = SentenceSplitter::new();
        let t = Instant::now();
        let mut first = None;
        let mut seconds = 0.0;
        for word in NPC_LINE.split_inclusive(' ') {
            for sentence in split.push(word) {
                let s = voice.synthesize(&sentence, &VoiceSpec::default())?;
                seconds += s.seconds();
                first.get_or_insert(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        if let Some(rest) = split.finish() {
            seconds += voice.synthesize(&rest, &VoiceSpec::default())?.seconds();
        }
        firsts.push(first.unwrap_or(0.0));
        alls.push((t.elapsed().as_secs_f64() * 1e3, seconds));
    }
    firsts.sort_by(f64::total_cmp);
    let (all_ms, audio_s) = alls[alls.len() / 2];
    println!(
        "espeak {}: text -> first audio median {:.1} ms; whole line {all_ms:.0} ms for {audio_s:.1} s of audio",
        voice.label(),
        firsts[firsts.len() / 2]
    );
    Ok(())
}
