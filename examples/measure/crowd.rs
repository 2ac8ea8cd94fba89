//! A crowd: 8 NPCs talking non-stop for 10 s — six answer the player in free chat, two talk to
//! each other (`TalkBetween`) — on a headless app with a fixed 90 Hz frame clock. Measures
//! whether every NPC gets to speak (lines per NPC), how long a line waits from being queued to
//! its first words, and what the crowd adds to the frame's own work (p99, against the same app
//! idle).
//!
//! `cargo run --release --example crowd [-- --model M.gguf --seconds 10 --max-batch 4]`
//! (default model: the repository's `tests/models/stories260K.gguf`).
//! The last line is
//! `crowd npcs=8 lines_min=… lines_max=… max_wait_ms=… p99_added_ms=… tokens=…`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;

const FRAME: Duration = Duration::from_nanos(11_111_111);
const PERSONAS: [&str; 4] = ["guide", "mara", "tobin", "wren"];
const NPCS: usize = 8;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Per NPC: lines finished, and when its open line was queued.
#[derive(Resource, Default)]
struct Crowd {
    on: bool,
    lines: HashMap<Entity, usize>,
    queued: HashMap<Entity, Instant>,
    waits_ms: Vec<f64>,
    /// Worker timings of the generated lines: (queue, ttft, decode) ms, and tokens.
    timings: Vec<(f64, f64, f64, usize)>,
}

fn main() {
    let model = arg("--model")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/stories260K.gguf")
        });
    let seconds: f64 = arg("--seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let max_batch: usize = arg("--max-batch").and_then(|s| s.parse().ok()).unwrap_or(4);
    let frames = (seconds * 90.0).round().max(100.0) as usize;
    let mut app = App::new();
    app.add_plugins(LlamaDialoguePlugin {
        model: ModelSource::path(&model),
        max_batch,
        // The repository's personas, wherever the example is run from.
        stories_dir: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stories"),
        sampling: SamplingParams {
            temperature: 0.8,
            max_tokens: 32,
            seed: Some(1),
            ..default()
        },
        ..default()
    })
    .add_plugins((MinimalPlugins, AssetPlugin::default(), TransformPlugin))
    .init_resource::<Crowd>()
    .add_systems(Update, keep_talking.before(DialogueSystems::Input))
    .add_observer(|e: On<LineQueued>, mut c: ResMut<Crowd>| {
        c.queued.insert(e.entity, Instant::now());
    })
    .add_observer(|e: On<LineStarted>, mut c: ResMut<Crowd>| {
        if let Some(t) = c.queued.remove(&e.entity)
            && c.on
        {
            c.waits_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    })
    .add_observer(|e: On<LineFinished>, mut c: ResMut<Crowd>| {
        c.queued.remove(&e.entity);
        if c.on && !e.cancelled {
            *c.lines.entry(e.entity).or_default() += 1;
            if let Some(s) = &e.stats {
                c.timings
                    .push((s.queue_ms, s.ttft_ms, s.decode_ms, s.generated_tokens));
            }
        }
    });
    app.finish();
    app.cleanup();
    app.world_mut()
        .spawn((DialogueListener, Transform::default()));
    let mut npcs = Vec::new();
    for i in 0..NPCS {
        let persona = app.world().resource::<AssetServer>().load(format!(
            "stories://personas/{}.persona.ron",
            PERSONAS[i % 4]
        ));
        // In a half circle in front of the listener, 2 to 9 m away.
        let angle = (i as f32 / (NPCS - 1) as f32 - 0.5) * std::f32::consts::PI;
        let distance = 2.0 + i as f32;
        let at = Vec3::new(angle.sin() * distance, 0.0, -angle.cos() * distance);
        npcs.push(
            app.world_mut()
                .spawn((Npc::new(persona), Transform::from_translation(at)))
                .id(),
        );
    }

    // Load the model and the personas first (not measured).
    let loading = Instant::now();
    while *app.world().resource::<DialogueBackendStatus>() != DialogueBackendStatus::Ready
        || app.world().resource::<Assets<PersonaAsset>>().len() < PERSONAS.len()
    {
        app.update();
        std::thread::sleep(Duration::from_millis(5));
        if let DialogueBackendStatus::Failed(why) = app.world().resource::<DialogueBackendStatus>()
        {
            eprintln!("the model did not load: {why}");
            std::process::exit(1);
        }
        if loading.elapsed()
            > Duration::from_secs(
                arg("--load-timeout")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(600),
            )
        {
            eprintln!(
                "still loading after 10 minutes: {:?}, {} personas",
                app.world().resource::<DialogueBackendStatus>(),
                app.world().resource::<Assets<PersonaAsset>>().len()
            );
            std::process::exit(1);
        }
    }
    for _ in 0..30 {
        app.update();
    }
    let idle = run(&mut app, frames);

    // Two of them talk to each other; the six others answer the player (`keep_talking`).
    app.world_mut().write_message(TalkBetween {
        a: npcs[0],
        b: npcs[1],
        topic: "the festival tonight".into(),
        lines: None,
    });
    app.world_mut().resource_mut::<Crowd>().on = true;
    let tokens_before = app.world().resource::<DialogueStats>().tokens;
    let busy = run(&mut app, frames);
    let tokens = app.world().resource::<DialogueStats>().tokens - tokens_before;
    let now = Instant::now();
    let crowd = app.world().resource::<Crowd>();
    // A line still waiting at the end has waited at least this long.
    let waits = crowd.waits_ms.iter().copied().chain(
        crowd
            .queued
            .values()
            .map(|t| (now - *t).as_secs_f64() * 1000.0),
    );
    let max_wait = waits.fold(0.0, f64::max);
    let lines: Vec<usize> = npcs
        .iter()
        .map(|e| crowd.lines.get(e).copied().unwrap_or(0))
        .collect();
    let (i50, i99, _) = summary(idle);
    let (b50, b99, bmax) = summary(busy);
    println!(
        "model: {} ({frames} frames at 90 Hz each, idle then crowd; max_batch {max_batch})",
        model.display()
    );
    println!("lines per NPC (0 and 1 talk to each other): {lines:?}");
    let n = crowd.timings.len().max(1) as f64;
    let mean = |f: fn(&(f64, f64, f64, usize)) -> f64| crowd.timings.iter().map(f).sum::<f64>() / n;
    println!(
        "per generated line (mean of {}): queue {:.1} ms, ttft {:.1} ms, decode {:.1} ms, {:.1} tokens",
        crowd.timings.len(),
        mean(|t| t.0),
        mean(|t| t.1),
        mean(|t| t.2),
        mean(|t| t.3 as f64)
    );
    println!("idle:  p50 {i50:.3} ms  p99 {i99:.3} ms");
    println!("crowd: p50 {b50:.3} ms  p99 {b99:.3} ms  max {bmax:.3} ms  ({tokens} tokens)");
    println!(
        "crowd npcs={NPCS} lines_min={} lines_max={} max_wait_ms={max_wait:.0} p99_added_ms={:.3} tokens={tokens}",
        lines.iter().min().unwrap_or(&0),
        lines.iter().max().unwrap_or(&0),
        b99 - i99
    );
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

const ASK: [&str; 3] = [
    "What news from the village?",
    "Tell me about the festival.",
    "Have you seen the lantern?",
];

/// Every NPC but the two in their exchange is asked something new as soon as its line is done.
fn keep_talking(
    crowd: Res<Crowd>,
    npcs: Query<(Entity, &SpeechBuffer), With<Npc>>,
    mut asked: Local<HashMap<Entity, usize>>,
    mut said: MessageWriter<PlayerSaid>,
) {
    if !crowd.on {
        return;
    }
    for (i, (entity, buffer)) in npcs.iter().enumerate() {
        let n = asked.entry(entity).or_default();
        // The first two spawned talk to each other.
        if i < 2 || buffer.speaking || crowd.queued.contains_key(&entity) {
            continue;
        }
        said.write(PlayerSaid {
            npc: entity,
            text: ASK[*n % ASK.len()].into(),
        });
        *n += 1;
    }
}
