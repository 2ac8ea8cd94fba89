//! The plugin with a real model (stories260K): warm-up near the listener, streamed tokens,
//! stats and diagnostics.
#![cfg(feature = "plugin")]

mod common;

use bevy::diagnostic::DiagnosticsStore;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::backend::BackendKind;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;
use common::app::*;

#[test]
fn a_real_model_streams_a_free_chat_line() {
    let model = common::model("stories260K.gguf");
    let mut app = app(
        LlamaDialoguePlugin {
            model: ModelSource::path(model),
            threads: Some(1),
            sampling: bevy_llama_dialogue::engine::sampler::SamplingParams {
                temperature: 0.0,
                max_tokens: 24,
                ..default()
            },
            ..default()
        },
        false,
    );
    app.world_mut()
        .spawn((DialogueListener, Transform::default()));
    let guide = spawn_npc(&mut app, "guide", -2.0);
    run_until_loaded(&mut app);
    assert_eq!(
        app.world().resource::<DialogueBackendRes>().kind(),
        BackendKind::LocalModel
    );
    // Near the listener: the persona is warmed ahead of time.
    assert!(run_until(&mut app, |a| a
        .world()
        .resource::<DialogueStats>()
        .warmed
        == 1));
    // The model loaded: the status says so and `ModelReady` came once.
    assert_eq!(
        *app.world().resource::<DialogueBackendStatus>(),
        DialogueBackendStatus::Ready
    );
    assert_eq!(log(&app).count("ModelReady"), 1);
    assert_eq!(log(&app).count("ModelFailed"), 0);
    send(
        &mut app,
        PlayerSaid {
            npc: guide,
            text: "Tell me a story.".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 1));
    let kinds = log(&app).kinds_for(guide);
    let chunks = kinds.iter().filter(|k| k.starts_with("Chunk")).count();
    assert!(chunks >= 2, "streamed in pieces: {kinds:?}");
    // Queued when accepted; started with the model's first words, just before the first chunk.
    let at = |p: &str| kinds.iter().position(|k| k.starts_with(p)).unwrap();
    assert!(at("Queued") < at("Started"), "{kinds:?}");
    assert_eq!(at("Started") + 1, at("Chunk"), "{kinds:?}");
    let buffer = app.world().get::<SpeechBuffer>(guide).unwrap();
    assert!(buffer.generated && !buffer.text.is_empty() && !buffer.speaking);
    let npc_stats = app.world().get::<NpcStats>(guide).unwrap();
    assert_eq!(npc_stats.lines, 1);
    assert!(npc_stats.last_ttft_ms.unwrap() > 0.0, "{npc_stats:?}");
    assert!(npc_stats.last_queue_ms.unwrap() >= 0.0, "{npc_stats:?}");
    let stats = app.world().resource::<DialogueStats>();
    assert_eq!(stats.lines, 1);
    let last = stats.last.clone().unwrap();
    assert!(last.generated_tokens > 0 && last.generated_tokens <= 24);
    assert!(
        last.cached_tokens > 0,
        "the warmed persona prefix was reused"
    );
    for _ in 0..3 {
        app.update();
    }
    let diagnostics = app.world().resource::<DiagnosticsStore>();
    let tps = diagnostics
        .get(&TOKENS_PER_SECOND)
        .and_then(|d| d.value())
        .unwrap();
    assert!(tps > 0.0);
    let hit = diagnostics
        .get(&PREFIX_CACHE_HIT_RATE)
        .and_then(|d| d.value())
        .unwrap();
    // Token-weighted: the cached persona prefix over the whole prompt.
    let expected = last.cached_tokens as f64 / last.prompt_tokens as f64;
    assert!(hit > 0.0 && hit < 1.0, "{hit}");
    assert!((hit - expected).abs() < 1e-9, "{hit} vs {expected}");
}
