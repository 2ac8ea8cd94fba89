//! `--script OUT_DIR`: a scripted walk up to Elder Wren, a talk, and three screenshots (the
//! approach with its hint, a bubble streaming mid-line, the panel with choices), then exit.
//! Also logs frame times while an NPC speaks against the rest.

use std::path::PathBuf;

use bevy::prelude::*;
use bevy::render::view::screenshot::{Screenshot, save_to_disk};
use bevy_llama_dialogue::plugin::{SpeechBuffer, TalkTo};

use crate::DemoArgs;
use crate::panel::Conversation;
use crate::player::Nearby;
use crate::scene::PlayerCamera;

#[derive(Resource, Default)]
struct Script {
    step: Step,
    frames_in_step: u32,
    frames: u32,
    shots: Vec<PathBuf>,
    idle_ms: Vec<f32>,
    speaking_ms: Vec<f32>,
}

#[derive(Default, PartialEq, Eq, Debug, Clone, Copy)]
enum Step {
    #[default]
    Walk,
    Approach,
    Talk,
    Choices,
    Save,
}

/// Most frames before the script gives up (a broken demo must not hang CI).
const MAX_FRAMES: u32 = 4000;

pub fn plugin(app: &mut App) {
    app.init_resource::<Script>()
        .add_systems(Update, run_script);
}

fn shoot(commands: &mut Commands, s: &mut Script, dir: &std::path::Path, name: &str) {
    let path = dir.join(name);
    commands
        .spawn(Screenshot::primary_window())
        .observe(save_to_disk(path.clone()));
    s.shots.push(path);
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
    mut talk: MessageWriter<TalkTo>,
    mut exit: MessageWriter<AppExit>,
) {
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
                exit.write(AppExit::Success);
            }
        }
    }
}
