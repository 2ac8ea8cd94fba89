//! `--script OUT_DIR`: a scripted walk up to Elder Wren, a talk, and five screenshots (the
//! approach with its hint, a bubble streaming mid-line, the panel with choices, Mara and Tobin
//! talking to each other, the model picker loading the repository's tiny test model with its
//! overlay), then exit. Writes `bubbles.json`: for every shot, the window and the screen
//! rectangles of the bubbles drawn in it, for the script to check. Also logs frame times while
//! an NPC speaks against the rest.

use std::path::PathBuf;

use bevy::ecs::system::SystemParam;
use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy_llama_dialogue::plugin::{
    DialogueBackendStatus, SpeechBuffer, TalkBetween, TalkBetweenEnded, TalkTo,
};

use crate::DemoArgs;
use crate::bubble::BubbleRects;
use crate::face::ChatPartner;
use crate::panel::Conversation;
use crate::player::Nearby;
use crate::scene::NpcLabel;
use crate::scene::PlayerCamera;
use crate::status::{Loading, ModelPicker};

#[derive(Resource, Default)]
struct Script {
    step: Step,
    frames_in_step: u32,
    frames: u32,
    shots: Vec<PathBuf>,
    idle_ms: Vec<f32>,
    speaking_ms: Vec<f32>,
    /// A shot was requested this frame: its bubbles are recorded after layout.
    pending: Option<String>,
    /// Per shot: its name and the drawn bubbles.
    report: Vec<serde_json::Value>,
    /// Mara and Tobin finished their exchange.
    chat_over: bool,
}

#[derive(Default, PartialEq, Eq, Debug, Clone, Copy)]
enum Step {
    #[default]
    Walk,
    Approach,
    Talk,
    Choices,
    Chat,
    Load,
    Save,
}

/// The repository's tiny real model (stories260K, Q8_0 weights), picked in the panel for the
/// loading shot.
const TINY_MODEL: &str = "tests/models/stories260K.gguf";

/// Most frames before the script gives up (a broken demo must not hang CI).
const MAX_FRAMES: u32 = 4000;

pub fn plugin(app: &mut App) {
    app.init_resource::<Script>()
        .add_systems(Update, run_script)
        .add_systems(
            PostUpdate,
            record_bubbles.after(bevy::ui::UiSystems::Layout),
        )
        .add_observer(|_: On<TalkBetweenEnded>, mut s: ResMut<Script>| s.chat_over = true);
}

/// The bubbles drawn in the frame a shot was taken.
fn record_bubbles(mut s: ResMut<Script>, rects: Res<BubbleRects>) {
    let Some(shot) = s.pending.take() else {
        return;
    };
    let r = |r: Rect| serde_json::json!([r.min.x, r.min.y, r.max.x, r.max.y]);
    let bubbles: Vec<_> = rects
        .drawn
        .iter()
        .map(|(name, rect)| serde_json::json!({ "npc": name, "rect": r(*rect) }))
        .collect();
    s.report.push(serde_json::json!({
        "shot": shot,
        "window": [rects.window.x, rects.window.y],
        "area": r(rects.area),
        "bubbles": bubbles,
    }));
}

fn shoot(commands: &mut Commands, s: &mut Script, dir: &std::path::Path, name: &str) {
    let path = dir.join(name);
    commands
        .spawn(Screenshot::primary_window())
        .observe(save_to_disk(path.clone()));
    s.shots.push(path);
    s.pending = Some(name.to_owned());
}

/// What the script reads of the demo besides the basics.
#[derive(SystemParam)]
struct Seen<'w, 's> {
    labels: Query<'w, 's, (Entity, &'static NpcLabel)>,
    rects: Res<'w, BubbleRects>,
    loading: Res<'w, Loading>,
    status: Res<'w, DialogueBackendStatus>,
}

/// What the script sends, as a player would.
#[derive(SystemParam)]
struct Acts<'w> {
    between: MessageWriter<'w, TalkBetween>,
    talk: MessageWriter<'w, TalkTo>,
    exit: MessageWriter<'w, AppExit>,
}

#[allow(clippy::too_many_arguments)]
fn run_script(
    mut commands: Commands,
    args: Res<DemoArgs>,
    time: Res<Time<Real>>,
    mut s: ResMut<Script>,
    mut camera: Single<&mut Transform, With<PlayerCamera>>,
    nearby: Res<Nearby>,
    conversation: Res<Conversation>,
    buffers: Query<&SpeechBuffer>,
    world: Seen,
    mut picker: ResMut<ModelPicker>,
    send: Acts,
) {
    let Seen {
        labels,
        rects,
        loading,
        status,
    } = world;
    let Acts {
        mut between,
        mut talk,
        mut exit,
    } = send;
    let Some(dir) = args.script.clone() else {
        return;
    };
    s.frames += 1;
    s.frames_in_step += 1;
    let dt = time.delta_secs() * 1000.0;
    if s.frames > 10 {
        if buffers.iter().any(|b| b.speaking) {
            s.speaking_ms.push(dt);
        } else {
            s.idle_ms.push(dt);
        }
    }
    if s.frames > MAX_FRAMES {
        error!(
            "demo script stuck at {:?} after {MAX_FRAMES} frames",
            s.step
        );
        exit.write(AppExit::error());
        return;
    }
    let next = |s: &mut Script, step| {
        s.step = step;
        s.frames_in_step = 0;
    };
    match s.step {
        Step::Walk => {
            // Walk toward Elder Wren (a fixed distance per frame, so slow renderers still arrive)
            // and stop where her bubble is in view.
            let target = Vec3::new(0.9, 1.7, 2.8);
            let to = target - camera.translation;
            if to.length() > 0.1 {
                let step = to.normalize() * to.length().min(0.25);
                camera.translation += step;
                camera.look_at(Vec3::new(2.9, 2.0, -0.5), Vec3::Y);
            } else if s.frames > 30 && nearby.0.is_some() {
                next(&mut s, Step::Approach);
            }
        }
        Step::Approach => {
            if s.frames_in_step == 5 {
                shoot(&mut commands, &mut s, &dir, "01_approach.png");
            }
            if s.frames_in_step == 10
                && let Some(npc) = nearby.0
            {
                talk.write(TalkTo { npc });
                next(&mut s, Step::Talk);
            }
        }
        Step::Talk => {
            let mid_line = buffers
                .iter()
                .any(|b| b.speaking && !b.thinking && b.text.split_whitespace().count() >= 5);
            if mid_line {
                shoot(&mut commands, &mut s, &dir, "02_bubble.png");
                next(&mut s, Step::Choices);
            }
        }
        Step::Choices => {
            if conversation.choices.is_some() && s.frames_in_step > 3 {
                shoot(&mut commands, &mut s, &dir, "03_choices.png");
                next(&mut s, Step::Chat);
            }
        }
        Step::Chat => {
            // Step back to the middle of the square and let Mara and Tobin talk.
            if s.frames_in_step == 1 {
                let npc = |name: &str| labels.iter().find(|(_, l)| l.name == name).map(|x| x.0);
                if let (Some(a), Some(b)) = (npc("Mara"), npc("Tobin")) {
                    // Tobin has come over to the mill (lines of NPCs far from the player are
                    // cancelled, so the two must be near the player and each other).
                    commands
                        .entity(b)
                        .insert(Transform::from_xyz(-5.2, 0.0, -6.2));
                    commands.entity(a).insert(ChatPartner(b));
                    commands.entity(b).insert(ChatPartner(a));
                    between.write(TalkBetween {
                        a,
                        b,
                        topic: "the festival tonight".into(),
                        lines: Some(2),
                    });
                }
                camera.translation = Vec3::new(-3.0, 1.8, -0.6);
                camera.look_at(Vec3::new(-6.6, 1.7, -7.0), Vec3::Y);
            }
            let both = rects.drawn.iter().any(|(n, _)| n == "Mara")
                && rects.drawn.iter().any(|(n, _)| n == "Tobin");
            if both
                && s.frames_in_step > 10
                && s.pending.is_none()
                && !s.shots.iter().any(|p| p.ends_with("04_npc_chat.png"))
            {
                shoot(&mut commands, &mut s, &dir, "04_npc_chat.png");
            }
            if s.chat_over && s.shots.iter().any(|p| p.ends_with("04_npc_chat.png")) {
                next(&mut s, Step::Load);
            }
        }
        Step::Load => {
            // Pick the tiny model in the panel's picker, as a player would.
            if s.frames_in_step == 1 {
                let root = std::env::var_os("BEVY_ASSET_ROOT")
                    .map_or_else(|| PathBuf::from("."), PathBuf::from);
                picker.requested = Some(root.join(TINY_MODEL));
            }
            let picked = loading
                .file
                .as_ref()
                .is_some_and(|f| f.ends_with(TINY_MODEL));
            if picked && loading.ended_after.is_some() && s.frames_in_step > 5 {
                if let DialogueBackendStatus::Failed(why) = &*status {
                    error!("the tiny model failed to load: {why}");
                }
                shoot(&mut commands, &mut s, &dir, "05_loading.png");
                next(&mut s, Step::Save);
            }
        }
        Step::Save => {
            if s.shots.iter().all(|p| p.is_file()) {
                let p50 = |v: &mut Vec<f32>| {
                    v.sort_by(f32::total_cmp);
                    v.get(v.len() / 2).copied().unwrap_or(0.0)
                };
                let (mut idle, mut speaking) = (s.idle_ms.clone(), s.speaking_ms.clone());
                info!(
                    "frame time p50: {:.1} ms without speech ({} frames), {:.1} ms while an NPC speaks ({} frames)",
                    p50(&mut idle),
                    idle.len(),
                    p50(&mut speaking),
                    speaking.len()
                );
                for p in &s.shots {
                    info!("screenshot saved: {}", p.display());
                }
                let report = serde_json::Value::Array(s.report.clone());
                let path = dir.join("bubbles.json");
                if let Err(e) = std::fs::write(&path, report.to_string()) {
                    error!("cannot write {}: {e}", path.display());
                    exit.write(AppExit::error());
                    return;
                }
                exit.write(AppExit::Success);
            }
        }
    }
}
