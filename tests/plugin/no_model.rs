//! A model that fails to load: one global `ModelFailed` event and a `Failed` status, then the
//! authored lines keep the story going.

use crate::app::*;
use bevy_llama_dialogue::engine::backend::BackendKind;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;

#[test]
fn a_missing_model_falls_back_to_authored_lines() {
    let (app, wren) = fallen_back(
        ModelSource::path("/nonexistent/llama-2-7b-chat.Q4_K_M.gguf"),
        "/nonexistent/llama-2-7b-chat.Q4_K_M.gguf",
    );
    // Reported once, globally: not on whichever NPC happened to talk first.
    let failed: Vec<String> = log(&app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("ModelFailed") || k.starts_with("ModelReady"))
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("/nonexistent/llama-2-7b-chat.Q4_K_M.gguf"),
        "{failed:?}"
    );
    assert_eq!(log(&app).count("Error"), 0);
    assert!(matches!(
        app.world().resource::<DialogueBackendStatus>(),
        DialogueBackendStatus::Failed(r) if r.contains("/nonexistent/")
    ));
    assert!(
        log(&app).kinds_for(wren).contains(
            &"Finished: Find it before moonrise, I beg you. The festival cannot begin in darkness."
                .to_string()
        )
    );
}

/// A remote server that refuses connections: the same fallback, with the server named.
#[cfg(feature = "remote")]
#[test]
fn an_unreachable_remote_server_falls_back_to_authored_lines() {
    // Nothing listens on port 1.
    let url = "http://127.0.0.1:1".to_owned();
    let model = ModelSource::Remote {
        url: url.clone(),
        model: None,
        api_key_env: None,
    };
    let (app, wren) = fallen_back(model, &format!("cannot connect to {url}"));
    assert!(
        log(&app).kinds_for(wren).contains(
            &"Finished: Find it before moonrise, I beg you. The festival cannot begin in darkness."
                .to_string()
        )
    );
}

/// An app whose `model` fails: waits for the switch to authored lines (its reason containing
/// `reason`), then talks to Wren until her choices come.
fn fallen_back(model: ModelSource, reason: &str) -> (bevy::app::App, bevy::ecs::entity::Entity) {
    let mut app = app(
        LlamaDialoguePlugin {
            model,
            ..lantern_plugin()
        },
        false,
    );
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    assert!(run_until(&mut app, |a| {
        a.world().resource::<DialogueBackendHandle>().kind() == BackendKind::Scripted
    }));
    let why = app
        .world()
        .resource::<DialogueBackendHandle>()
        .fallback_reason()
        .unwrap_or_default()
        .to_owned();
    assert!(why.contains(reason), "{why}");
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    (app, wren)
}
