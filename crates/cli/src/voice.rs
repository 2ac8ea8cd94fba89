//! `llama-dialogue transcribe` and `say`: Whisper on a WAV file (to check a microphone setup
//! or a model), and an NPC's voice written to a WAV file (for writers).

use std::path::PathBuf;

use crate::CliResult;

#[derive(clap::Args)]
pub struct TranscribeArgs {
    /// The recording (WAV: 8/16/24/32-bit integer or 32-bit float, any rate, any channels).
    file: PathBuf,
    /// The Whisper folder: Hugging Face layout (config.json, model.safetensors,
    /// tokenizer.json) or CTranslate2 (model.bin, tokenizer.json; converted on first use and
    /// cached); `hf://owner/name` fetches one from the Hugging Face hub
    /// (`hf://openai/whisper-tiny.en`).
    #[arg(long, short)]
    model: PathBuf,
    /// Transcribe the whole file (its first 30 s) as one utterance instead of the stretches
    /// the voice-activity detector finds.
    #[arg(long)]
    no_vad: bool,
}

#[derive(clap::Args)]
pub struct SayArgs {
    /// What to say.
    text: String,
    /// Speak as this persona (its `voice`); the id or a `.persona.ron` file.
    #[arg(long, short)]
    persona: Option<String>,
    /// Where persona ids are looked up.
    #[arg(long, default_value = "stories")]
    stories: PathBuf,
    /// The WAV file to write.
    #[arg(long, short)]
    out: PathBuf,
    /// Voice name instead of the persona's (eSpeak NG: `en-gb`, `en-us+f3`, ...).
    #[arg(long)]
    voice: Option<String>,
    /// Pitch 0-100 instead of the persona's.
    #[arg(long)]
    pitch: Option<u8>,
    /// Words per minute instead of the persona's.
    #[arg(long)]
    rate: Option<u16>,
    /// Print the viseme timeline (milliseconds, mouth opening).
    #[arg(long)]
    visemes: bool,
}

#[cfg(not(feature = "voice"))]
fn unavailable() -> CliResult {
    Err("this llama-dialogue was built without the `voice` feature: \
         cargo install bevy_llama_dialogue_cli --features voice (needs libespeak-ng-dev and libclang-dev)"
        .into())
}

#[cfg(not(feature = "voice"))]
pub fn transcribe(_: TranscribeArgs) -> CliResult {
    unavailable()
}

#[cfg(not(feature = "voice"))]
pub fn say(_: SayArgs) -> CliResult {
    unavailable()
}

#[cfg(feature = "voice")]
pub fn transcribe(args: TranscribeArgs) -> CliResult {
    use bevy_llama_dialogue_core::engine::voice::WHISPER_RATE;
    use bevy_llama_dialogue_core::engine::voice::audio::{read_wav, resample};
    use bevy_llama_dialogue_core::engine::voice::listen::{Heard, ListenConfig, Listener};
    use bevy_llama_dialogue_core::engine::voice::whisper::WhisperModel;
    use std::time::Instant;

    let pcm = read_wav(&args.file)?;
    let audio = resample(&pcm.samples, pcm.sample_rate, WHISPER_RATE);
    let t0 = Instant::now();
    let mut model = WhisperModel::load(&args.model)?;
    eprintln!(
        "whisper: {} loaded in {:.0} ms; {:.1} s of audio ({} Hz)",
        model.dir.display(),
        t0.elapsed().as_secs_f64() * 1e3,
        audio.len() as f32 / WHISPER_RATE as f32,
        pcm.sample_rate
    );
    if args.no_vad {
        let t = Instant::now();
        let tr = model.transcribe(&audio)?;
        eprintln!(
            "{:.0} ms, no-speech {:.2}, mean log-prob {:.2}{}",
            t.elapsed().as_secs_f64() * 1e3,
            tr.no_speech_prob,
            tr.avg_logprob,
            if tr.is_speech() { "" } else { " (not speech)" }
        );
        println!("{}", tr.text);
        return Ok(());
    }
    let mut listener = Listener::new(
        model,
        ListenConfig {
            partial_every_ms: 0,
            ..ListenConfig::default()
        },
    );
    let mut heard = listener.push(&audio)?;
    heard.extend(listener.flush()?);
    let mut said = 0;
    for h in heard {
        match h {
            Heard::Final {
                transcript,
                audio_seconds,
                transcribe_ms,
            } => {
                eprintln!("({audio_seconds:.1} s of speech, {transcribe_ms:.0} ms)");
                println!("{}", transcript.text);
                said += 1;
            }
            Heard::NotSpeech(t) => eprintln!("(not speech: {:?})", t.text),
            _ => {}
        }
    }
    if said == 0 {
        eprintln!("no speech heard");
    }
    Ok(())
}

#[cfg(feature = "voice")]
pub fn say(args: SayArgs) -> CliResult {
    use bevy_llama_dialogue_core::engine::voice::audio::{Pcm, write_wav};
    use bevy_llama_dialogue_core::engine::voice::espeak::Espeak;
    use bevy_llama_dialogue_core::engine::voice::{Voice, VoiceSpec};
    use bevy_llama_dialogue_core::story::{parse_persona, read_source};

    let mut spec = match &args.persona {
        None => VoiceSpec::default(),
        Some(p) => {
            let path = if p.ends_with(".ron") {
                PathBuf::from(p)
            } else {
                args.stories
                    .join("personas")
                    .join(format!("{p}.persona.ron"))
            };
            let source = read_source(&path).map_err(|d| d.to_string())?;
            let persona = parse_persona(&source).map_err(|d| d.to_string())?;
            persona.voice.unwrap_or_else(|| {
                eprintln!("{}: no `voice`; the default voice speaks", path.display());
                VoiceSpec::default()
            })
        }
    };
    if let Some(v) = args.voice {
        spec.name = v;
    }
    if let Some(p) = args.pitch {
        spec.pitch = p;
    }
    if let Some(r) = args.rate {
        spec.rate = r;
    }
    let mut voice = Espeak::new()?;
    let t = std::time::Instant::now();
    let speech = voice.synthesize(&args.text, &spec)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    write_wav(
        &args.out,
        &Pcm {
            sample_rate: speech.sample_rate,
            samples: speech.samples.clone(),
        },
    )?;
    eprintln!(
        "{}: {:.2} s at {} Hz, {} visemes, voice {} (pitch {}, {} wpm), {}; synthesised in {ms:.0} ms",
        args.out.display(),
        speech.seconds(),
        speech.sample_rate,
        speech.visemes.len(),
        spec.name,
        spec.pitch,
        spec.rate,
        voice.label()
    );
    if args.visemes {
        for v in &speech.visemes {
            println!(
                "{:>6} ms  {:.2}",
                v.at as u64 * 1000 / speech.sample_rate.max(1) as u64,
                v.open
            );
        }
    }
    Ok(())
}
