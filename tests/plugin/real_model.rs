//! The plugin with a real model (stories260K): warm-up near the listener, streamed tokens,
//! stats and diagnostics.

use crate::common;

use crate::app::*;
use bevy::diagnostic::DiagnosticsStore;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::backend::BackendKind;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;

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
        app.world().resource::<DialogueBackendHandle>().kind(),
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

/// The market story's trader on stories260K: her emotion is on her entity before her line
/// ends, the chunks never show markup, and an action arrives as `NpcAction` with typed,
/// validated arguments, after which the story has taken its `on_action` edge.
#[test]
fn a_real_model_npc_shows_its_emotion_and_acts() {
    #[derive(Resource, Default)]
    struct Seen {
        emotion_before_end: Vec<Option<String>>,
        actions: Vec<bevy_llama_dialogue::story::acts::Action>,
    }
    let model = common::model("stories260K.gguf");
    let (mut sales, mut lines) = (0, 0);
    for seed in [1u64, 5] {
        let mut app = app(
            LlamaDialoguePlugin {
                model: ModelSource::path(&model),
                threads: Some(1),
                stories_dir: concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/acts").into(),
                story: Some("stories://market.story.ron".into()),
                sampling: bevy_llama_dialogue::engine::sampler::SamplingParams {
                    seed: Some(seed),
                    ..default()
                },
                ..default()
            },
            false,
        );
        app.init_resource::<Seen>();
        app.add_observer(
            |e: On<LineFinished>, emotions: Query<&NpcEmotion>, mut seen: ResMut<Seen>| {
                let emotion = emotions.get(e.entity).ok().map(|m| m.0.clone());
                seen.emotion_before_end.push(emotion);
            },
        );
        app.add_observer(|e: On<NpcAction>, mut seen: ResMut<Seen>| {
            seen.actions.push(e.action.clone());
        });
        app.world_mut()
            .spawn((DialogueListener, Transform::default()));
        let trader = spawn_npc(&mut app, "trader", -2.0);
        run_until_loaded(&mut app);
        send(&mut app, TalkTo { npc: trader });
        assert!(
            run_until(&mut app, |a| log(a).count("Ended") == 1),
            "seed {seed}: the story never ended: {:?}",
            log(&app).kinds_for(trader)
        );
        let kinds = log(&app).kinds_for(trader);
        let chunks: String = kinds
            .iter()
            .filter_map(|k| k.strip_prefix("Chunk: "))
            .collect();
        assert!(!chunks.is_empty(), "seed {seed}: {kinds:?}");
        assert!(
            !chunks.contains(['[', ']', '<', '>', '{', '}']),
            "seed {seed}: {chunks:?}"
        );
        let finished = kinds
            .iter()
            .find_map(|k| k.strip_prefix("Finished: "))
            .unwrap();
        assert_eq!(
            finished,
            chunks.trim(),
            "seed {seed}: the line shown is its words"
        );
        let seen = app.world().resource::<Seen>();
        lines += seen.emotion_before_end.len();
        for emotion in &seen.emotion_before_end {
            let emotion = emotion
                .as_deref()
                .expect("the emotion is set before the line ends");
            assert!(["calm", "glad", "worried"].contains(&emotion), "{emotion}");
        }
        let ended = log(&app).last("Ended").unwrap().1.clone();
        match seen.actions.first() {
            Some(a) if a.name == "give_item" => {
                sales += 1;
                let count = a.arg::<i64>("count").unwrap();
                let price = a.arg::<f64>("price").unwrap();
                let item = a.arg::<String>("item").unwrap();
                assert!(
                    (1..=3).contains(&count) && (0.0..=9.5).contains(&price),
                    "{a}"
                );
                assert!(item == "bread" || item == "oil", "{a}");
                assert_eq!(ended, "Ended: A Sale", "seed {seed}");
            }
            _ => assert_eq!(ended, "Ended: Just Looking", "seed {seed}"),
        }
    }
    assert_eq!(lines, 2);
    assert!(sales > 0, "no seed sold anything");
}

/// The plugin with a real instruct model: SmolLM2-135M-Instruct (byte-level BPE, ChatML) answers
/// the player in Mara's persona; the line streams, ends by itself (not at the token limit), and
/// no chunk shows template markup.
#[test]
fn smollm2_answers_the_player_through_the_plugin() {
    let mut app = app(
        LlamaDialoguePlugin {
            model: ModelSource::path(common::smollm2()),
            threads: Some(1),
            sampling: bevy_llama_dialogue::engine::sampler::SamplingParams {
                max_tokens: 120,
                ..bevy_llama_dialogue::engine::sampler::SamplingParams::greedy()
            },
            ..default()
        },
        false,
    );
    app.world_mut()
        .spawn((DialogueListener, Transform::default()));
    let mara = spawn_npc(&mut app, "mara", -2.0);
    run_until_loaded(&mut app);
    assert_eq!(
        app.world().resource::<DialogueBackendHandle>().kind(),
        BackendKind::LocalModel
    );
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "Good evening! What is your name, and what do you do here?".into(),
        },
    );
    // A frame bound, not a clock: SmolLM2 in a debug build needs a few thousand frames.
    let mut finished = false;
    for _ in 0..20 {
        if run_until(&mut app, |a| log(a).count("Finished") == 1) {
            finished = true;
            break;
        }
    }
    assert!(finished, "{:?}", log(&app).kinds_for(mara));
    let kinds = log(&app).kinds_for(mara);
    let chunks: Vec<&str> = kinds
        .iter()
        .filter_map(|k| k.strip_prefix("Chunk: "))
        .collect();
    assert!(chunks.len() >= 3, "streamed in pieces: {kinds:?}");
    let text = app.world().get::<SpeechBuffer>(mara).unwrap().text.clone();
    eprintln!("Mara (SmolLM2-135M-Instruct, greedy): {text:?}");
    assert_eq!(chunks.concat(), text);
    assert!(text.split_whitespace().count() >= 5, "{text:?}");
    assert!(!text.contains("<|") && !text.contains("|>"), "{text:?}");
    let last = app
        .world()
        .resource::<DialogueStats>()
        .last
        .clone()
        .unwrap();
    assert!(
        last.generated_tokens < 120,
        "the line ended by itself: {last:?}"
    );
}
