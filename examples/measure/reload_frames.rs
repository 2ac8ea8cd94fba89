//! What a story hot reload costs a frame: a headless app on a fixed 90 Hz schedule running the
//! bundled story from a copy of `stories/`, with the file watcher on. The story file is then
//! broken (an undeclared variable) and fixed again; the frames around each edit are timed
//! (`app.update()`, the frame's own work) against the same app idle. Run it with and without
//! `RUST_BACKTRACE=1` to see whether Bevy's backtrace capture for asset errors reaches the
//! frame thread.
//!
//! `cargo run --release --example reload_frames [-- --edits 5]`
//! The last line is
//! `reload_frames p99_idle_ms=… max_idle_ms=… max_broken_ms=… max_fixed_ms=… refused=… reloaded=…`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

const FRAME: Duration = Duration::from_nanos(11_111_111);

/// Story loads refused, and story reloads put in place, as seen by the game.
#[derive(Resource, Default)]
struct Seen {
    refused: usize,
    reloaded: usize,
}

fn count(
    mut seen: ResMut<Seen>,
    mut failed: MessageReader<bevy::asset::AssetLoadFailedEvent<StoryAsset>>,
    mut changed: MessageReader<AssetEvent<StoryAsset>>,
) {
    seen.refused += failed.read().count();
    seen.reloaded += changed
        .read()
        .filter(|e| matches!(e, AssetEvent::Modified { .. }))
        .count();
}

fn copy_stories(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("stories");
    std::fs::create_dir_all(to.join("personas")).expect("temp dir");
    for dir in ["", "personas"] {
        for e in std::fs::read_dir(from.join(dir))
            .expect("stories/")
            .flatten()
        {
            if e.path().is_file() {
                std::fs::copy(e.path(), to.join(dir).join(e.file_name())).expect("copy");
            }
        }
    }
}

/// Runs `n` frames at 90 Hz; returns each frame's own time in ms.
fn frames(app: &mut App, n: usize, mut until: impl FnMut(&App) -> bool) -> Vec<f64> {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        app.update();
        let took = start.elapsed();
        times.push(took.as_secs_f64() * 1000.0);
        std::thread::sleep(FRAME.saturating_sub(took));
        if until(app) {
            break;
        }
    }
    times
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 * 0.99) as usize).min(v.len() - 1)]
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

fn main() {
    let edits: usize = std::env::args()
        .skip_while(|a| a != "--edits")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(5);
    let dir: PathBuf = std::env::temp_dir().join(format!("reload-frames-{}", std::process::id()));
    copy_stories(&dir);
    let story = dir.join("lantern.story.ron");
    let good = std::fs::read_to_string(&story).expect("story");
    let broken = good.replace("trust_mara >= 1", "trsut_mara >= 1");

    let mut app = App::new();
    app.add_plugins(LlamaDialoguePlugin {
        stories_dir: dir.clone(),
        story: Some("stories://lantern.story.ron".into()),
        ..default()
    })
    .add_plugins((
        MinimalPlugins,
        AssetPlugin {
            watch_for_changes_override: Some(true),
            ..default()
        },
        TransformPlugin,
    ))
    .init_resource::<Seen>()
    .add_systems(Update, count);
    app.finish();
    app.cleanup();
    // Loaded, then idle.
    frames(&mut app, 2000, |a| {
        let mut q = a.world().try_query::<&DialogueStory>();
        q.as_mut()
            .is_some_and(|q| q.iter(a.world()).all(|s| s.runtime().is_some()))
    });
    let idle = frames(&mut app, 900, |_| false);
    let (mut broken_times, mut fixed_times) = (Vec::new(), Vec::new());
    for _ in 0..edits {
        let refused = app.world().resource::<Seen>().refused;
        std::fs::write(&story, &broken).expect("write");
        // The frames until the refusal is seen, then one more second.
        broken_times.extend(frames(&mut app, 1800, |a| {
            a.world().resource::<Seen>().refused > refused
        }));
        broken_times.extend(frames(&mut app, 90, |_| false));
        let reloaded = app.world().resource::<Seen>().reloaded;
        std::fs::write(&story, &good).expect("write");
        fixed_times.extend(frames(&mut app, 1800, |a| {
            a.world().resource::<Seen>().reloaded > reloaded
        }));
        fixed_times.extend(frames(&mut app, 90, |_| false));
    }
    let seen = app.world().resource::<Seen>();
    println!(
        "RUST_BACKTRACE={} RUST_LIB_BACKTRACE={}",
        std::env::var("RUST_BACKTRACE").unwrap_or_default(),
        std::env::var("RUST_LIB_BACKTRACE").unwrap_or_default()
    );
    println!(
        "reload_frames p99_idle_ms={:.3} max_idle_ms={:.3} max_broken_ms={:.3} max_fixed_ms={:.3} refused={} reloaded={}",
        p99(idle.clone()),
        max(&idle),
        max(&broken_times),
        max(&fixed_times),
        seen.refused,
        seen.reloaded
    );
    let _ = std::fs::remove_dir_all(&dir);
}
