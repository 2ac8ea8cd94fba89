//! What dialogue costs a frame: a headless app on a fixed 90 Hz schedule, idle and then while a
//! real model generates lines non-stop, with p50/p99/max of the frame's own work (`app.update()`).
//!
//! `cargo run --release --example frame_budget [-- --model M.gguf --frames 1000]`
//! (default model: the repository's `tests/models/stories260K.gguf`).
//! The last line is `frame_budget p99_idle_ms=… p99_generating_ms=… p99_added_ms=… tokens=…`.
//!
//! With `--features voice` and `--voice WHISPER_DIR`, the voice plugin runs too: while the
//! model generates, every frame sends 1/90 s of microphone audio (eSpeak NG sentences with
//! pauses, heard by Whisper on its thread) and every line is spoken (eSpeak NG on its thread,
//! mouths animated), so the figure includes voice's cost on the frame thread.

use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;

const FRAME: Duration = Duration::from_nanos(11_111_111);

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[derive(Resource, Default)]
struct Generating(bool);

/// Microphone audio looped while generating (voice runs only).
#[cfg_attr(not(feature = "voice"), allow(dead_code))]
#[derive(Resource, Default)]
struct Mic {
    samples: Vec<f32>,
    at: usize,
}

fn main() {
    let model = arg("--model")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/stories260K.gguf")
        });
    let frames: usize = arg("--frames")
        .and_then(|f| f.parse().ok())
        .unwrap_or(1000)
        .max(1000);
    let mut app = App::new();
    app.add_plugins(LlamaDialoguePlugin {
        model: ModelSource::path(&model),
        sampling: SamplingParams {
            temperature: 0.8,
            max_tokens: 64,
            seed: Some(1),
            ..default()
        },
        ..default()
    })
    .add_plugins((MinimalPlugins, AssetPlugin::default(), TransformPlugin))
    .init_resource::<Generating>()
    .add_systems(Update, keep_talking.before(DialogueSystems::Input));
    let voice = arg("--voice");
    #[cfg(feature = "voice")]
    if let Some(dir) = &voice {
        add_voice(&mut app, dir);
    }
    #[cfg(not(feature = "voice"))]
    if voice.is_some() {
        eprintln!("--voice needs --features voice");
        std::process::exit(2);
    }
    app.finish();
    app.cleanup();
    app.world_mut()
        .spawn((DialogueListener, Transform::default()));
    let persona = app
        .world()
        .resource::<AssetServer>()
        .load("stories://personas/guide.persona.ron");
    app.world_mut()
        .spawn((Npc::new(persona), Transform::from_xyz(0.0, 0.0, -2.0)));

    // Load the model and the persona first (not measured).
    while app.world().resource::<Assets<PersonaAsset>>().is_empty() {
        app.update();
        std::thread::sleep(Duration::from_millis(5));
        if let Some(why) = app
            .world()
            .resource::<DialogueBackendHandle>()
            .fallback_reason()
        {
            eprintln!("the model did not load: {why}");
            std::process::exit(1);
        }
    }
    for _ in 0..30 {
        app.update();
    }
    let idle = run(&mut app, frames);
    app.world_mut().resource_mut::<Generating>().0 = true;
    let tokens_before = app.world().resource::<DialogueStats>().tokens;
    let generating = run(&mut app, frames);
    let tokens = app.world().resource::<DialogueStats>().tokens - tokens_before;
    let (i50, i99, imax) = summary(idle);
    let (g50, g99, gmax) = summary(generating);
    println!(
        "model: {} ({} frames each at 90 Hz)",
        model.display(),
        frames
    );
    println!("idle:       p50 {i50:.3} ms  p99 {i99:.3} ms  max {imax:.3} ms");
    println!("generating: p50 {g50:.3} ms  p99 {g99:.3} ms  max {gmax:.3} ms  ({tokens} tokens)");
    println!(
        "frame_budget p99_idle_ms={i99:.3} p99_generating_ms={g99:.3} p99_added_ms={:.3} tokens={tokens} voice={}",
        g99 - i99,
        if voice.is_some() { "on" } else { "off" }
    );
}

#[cfg(feature = "voice")]
fn add_voice(app: &mut App, dir: &str) {
    use bevy_llama_dialogue::engine::voice::audio::resample;
    use bevy_llama_dialogue::engine::voice::espeak::Espeak;
    use bevy_llama_dialogue::engine::voice::{Voice, VoiceSpec, WHISPER_RATE};
    let mut voice = Espeak::new().expect("eSpeak NG");
    let mut samples = Vec::new();
    for line in [
        "where is the lantern",
        "tell me about the mill",
        "thank you, goodbye",
    ] {
        let s = voice
            .synthesize(line, &VoiceSpec::default())
            .expect("speech");
        samples.extend(resample(&s.samples, s.sample_rate, WHISPER_RATE));
        samples.extend(vec![0.0; WHISPER_RATE as usize]);
    }
    app.add_plugins(DialogueVoicePlugin {
        whisper: Some(dir.into()),
        ..default()
    })
    .insert_resource(Mic { samples, at: 0 })
    .add_systems(Update, speak_into_mic.before(DialogueSystems::Input));
}

#[cfg(feature = "voice")]
fn speak_into_mic(
    on: Res<Generating>,
    mut mic: ResMut<Mic>,
    mut out: MessageWriter<MicrophoneAudio>,
) {
    if !on.0 || mic.samples.is_empty() {
        return;
    }
    let n = 16_000 / 90;
    let start = mic.at;
    let chunk: Vec<f32> = (0..n)
        .map(|i| mic.samples[(start + i) % mic.samples.len()])
        .collect();
    mic.at = (start + n) % mic.samples.len();
    out.write(MicrophoneAudio {
        samples: chunk,
        sample_rate: 16_000,
    });
}

/// Runs `n` frames on a 90 Hz clock; returns each frame's `app.update()` time in ms.
fn run(app: &mut App, n: usize) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    let mut next = Instant::now();
    for _ in 0..n {
        let start = Instant::now();
        app.update();
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        next += FRAME;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    times
}

fn summary(mut t: Vec<f64>) -> (f64, f64, f64) {
    t.sort_by(f64::total_cmp);
    let at = |q: f64| t[((t.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), t[t.len() - 1])
}

/// While generating, asks the NPC something new as soon as its last line is done.
fn keep_talking(
    on: Res<Generating>,
    npc: Single<(Entity, &SpeechBuffer), With<Npc>>,
    backend: Res<DialogueBackendHandle>,
    mut said: MessageWriter<PlayerSaid>,
) {
    let (entity, buffer) = *npc;
    if on.0 && !buffer.speaking && backend.in_flight() == 0 {
        said.write(PlayerSaid {
            npc: entity,
            text: "Tell me a story about a lantern.".into(),
        });
    }
}
