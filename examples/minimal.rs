//! One NPC, one question, its answer printed as it streams in (headless).
//!
//! `cargo run --example minimal [-- --model M.gguf]`: without a model the NPC answers with its
//! persona's authored sample line.

use bevy::app::AppExit;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::{LineChunk, LineFinished, LlamaDialoguePlugin, Npc, PlayerSaid};

fn main() -> AppExit {
    let args: Vec<String> = std::env::args().collect();
    let model = args
        .iter()
        .position(|a| a == "--model")
        .and_then(|i| args.get(i + 1))
        .map_or(ModelSource::None, ModelSource::path);
    App::new()
        .add_plugins(LlamaDialoguePlugin { model, ..default() })
        .add_plugins((MinimalPlugins, AssetPlugin::default()))
        .add_systems(Startup, spawn_mara)
        .add_systems(Update, ask_once)
        .add_observer(|chunk: On<LineChunk>| {
            use std::io::Write;
            print!("{}", chunk.text);
            let _ = std::io::stdout().flush();
        })
        .add_observer(|_: On<LineFinished>, mut exit: MessageWriter<AppExit>| {
            println!();
            exit.write(AppExit::Success);
        })
        .run()
}

fn spawn_mara(mut commands: Commands, assets: Res<AssetServer>) {
    commands.spawn(Npc::new(assets.load("stories://personas/mara.persona.ron")));
    println!("You: Busy night at the mill?");
    print!("Mara: ");
}

/// Asks once the persona has loaded.
fn ask_once(
    npc: Single<(Entity, &Npc)>,
    personas: Res<Assets<bevy_llama_dialogue::plugin::PersonaAsset>>,
    mut said: MessageWriter<PlayerSaid>,
    mut asked: Local<bool>,
) {
    let (entity, npc) = *npc;
    if !*asked && personas.contains(&npc.persona) {
        said.write(PlayerSaid {
            npc: entity,
            text: "Busy night at the mill?".into(),
        });
        *asked = true;
    }
}
