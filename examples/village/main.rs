//! The village demo: walk up to the three NPCs of "The Lantern of Millbrook", press `E` to talk,
//! read their lines in speech bubbles and the dialogue panel, answer with numbered choices or
//! typed text.
//!
//! `cargo run --release --example village --features demo [-- --model llama-2-7b-chat.Q4_K_M.gguf]`
//! (or set `LLAMA_DIALOGUE_MODEL`). With `--features demo,voice,microphone`, hold `V` to speak
//! to the NPC in front of you and hear them answer (`--whisper DIR`). Without a model the NPCs speak the story's authored lines.
//! `--script OUT_DIR` plays a scripted walk-and-talk and saves screenshots there (see
//! `scripts/screenshot.sh`).

mod bubble;
mod bubble_layout;
mod face;
mod gifts;
mod panel;
mod player;
mod scene;
mod script;
mod sky;
mod status;
#[cfg(feature = "voice")]
mod voice;
#[cfg(feature = "vr")]
mod vr;
mod world_bubble;

use std::path::PathBuf;

use bevy::asset::io::AssetSourceBuilder;
use bevy::prelude::*;
use bevy::window::WindowResolution;
use bevy_egui::{EguiGlobalSettings, EguiPlugin};
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::LlamaDialoguePlugin;

/// Command-line options.
#[derive(Resource, Debug, Clone, Default)]
pub struct DemoArgs {
    /// The model, if any.
    pub model: Option<PathBuf>,
    /// Scripted run saving screenshots into this folder.
    pub script: Option<PathBuf>,
    /// Run in a headset (feature `vr`).
    pub vr: bool,
    /// The Whisper folder for talking by voice (feature `voice`).
    pub whisper: Option<PathBuf>,
}

fn parse_args() -> DemoArgs {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(PathBuf::from)
    };
    DemoArgs {
        model: value("--model")
            .or_else(|| std::env::var_os("LLAMA_DIALOGUE_MODEL").map(PathBuf::from)),
        script: value("--script"),
        vr: args.iter().any(|a| a == "--vr"),
        whisper: value("--whisper"),
    }
}

fn main() -> AppExit {
    let args = parse_args();
    let model = args
        .model
        .clone()
        .map_or(ModelSource::None, ModelSource::Path);
    let mut app = App::new();
    app.register_asset_source(
        "shaders",
        AssetSourceBuilder::platform_default("shaders", None),
    )
    .add_plugins(LlamaDialoguePlugin {
        model,
        story: Some("stories://lantern.story.ron".into()),
        ..default()
    })
    .add_plugins(default_plugins(&args))
    .add_plugins(EguiPlugin::default())
    .insert_resource(EguiGlobalSettings {
        auto_create_primary_context: false,
        ..default()
    })
    .insert_resource(args.clone())
    .init_resource::<panel::Conversation>()
    .init_resource::<panel::UiFocus>()
    .add_plugins((scene::plugin, player::plugin, face::plugin));
    if args.vr {
        #[cfg(feature = "vr")]
        app.add_plugins(vr::plugin);
        // No screen to clamp to in a headset: the bubbles live in the world.
        app.add_plugins(world_bubble::plugin);
    } else {
        // The desktop panel; in a headset the bubbles carry the dialogue.
        app.add_plugins((panel::plugin, bubble::plugin, status::plugin, gifts::plugin));
    }
    if args.script.is_some() {
        app.add_plugins(script::plugin);
    }
    #[cfg(feature = "voice")]
    app.add_plugins(voice::plugin);
    app.run()
}

fn default_plugins(args: &DemoArgs) -> bevy::app::PluginGroupBuilder {
    let plugins = DefaultPlugins.set(WindowPlugin {
        primary_window: Some(Window {
            title: "bevy_llama_dialogue — The Lantern of Millbrook".into(),
            resolution: WindowResolution::new(1280, 720),
            ..default()
        }),
        ..default()
    });
    #[cfg(feature = "vr")]
    if args.vr {
        return vr::plugins(plugins);
    }
    #[cfg(not(feature = "vr"))]
    if args.vr {
        warn!("--vr needs the `vr` cargo feature; starting on the desktop");
    }
    plugins.build()
}
