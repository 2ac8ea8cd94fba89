//! A model that fails to load: one error event, then the authored lines keep the story going.
#![cfg(feature = "plugin")]

mod common;

use bevy_llama_dialogue::engine::backend::BackendKind;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;
use common::app::*;

#[test]
fn a_missing_model_falls_back_to_authored_lines() {
    let mut app = app(
        LlamaDialoguePlugin {
            model: ModelSource::path("/nonexistent/llama-2-7b-chat.Q4_K_M.gguf"),
            ..lantern_plugin()
        },
        false,
    );
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    assert!(run_until(&mut app, |a| {
        a.world().resource::<DialogueBackendRes>().kind() == BackendKind::Scripted
    }));
    let backend = app.world().resource::<DialogueBackendRes>();
    assert!(
        backend
            .fallback_reason()
            .unwrap()
            .contains("/nonexistent/llama-2-7b-chat.Q4_K_M.gguf")
    );
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    let errors: Vec<String> = log(&app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Error"))
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("no model"), "{errors:?}");
    assert!(
        log(&app).kinds_for(wren).contains(
            &"Finished: Find it before moonrise, I beg you. The festival cannot begin in darkness."
                .to_string()
        )
    );
}
