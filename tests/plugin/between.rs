//! NPC ↔ NPC exchanges (`TalkBetween`): lines alternate between the two speakers, each is heard
//! by the other, the exchange ends after its lines, on a cancel or when an NPC leaves; with a
//! real model, an exchange and the player's chat with a third NPC are generated together.

use crate::common;

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;

/// Records `LineHeard` and `TalkBetweenEnded` in the log.
fn watch_exchanges(app: &mut App) {
    app.add_observer(|e: On<LineHeard>, mut l: ResMut<Log>| {
        l.0.push((e.entity, format!("Heard: {} {}", e.speaker, e.text)))
    });
    app.add_observer(|e: On<TalkBetweenEnded>, mut l: ResMut<Log>| {
        l.0.push((
            e.entity,
            format!("Ended between: {} {}", e.partner, e.lines),
        ))
    });
}

fn speakers_of_finished(app: &App) -> Vec<Entity> {
    log(app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Finished"))
        .map(|(e, _)| *e)
        .collect()
}

#[test]
fn two_npcs_take_turns_and_hear_each_other() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    watch_exchanges(&mut app);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    // Sent before the personas load: the exchange waits for them.
    send(
        &mut app,
        TalkBetween {
            a: wren,
            b: mara,
            topic: "the missing lantern".into(),
            lines: Some(4),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Ended between") == 1));
    assert_eq!(speakers_of_finished(&app), [wren, mara, wren, mara]);
    // Each line is heard by the other NPC, once, with the speaker and the whole text.
    let heard: Vec<(Entity, String)> = log(&app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Heard"))
        .cloned()
        .collect();
    assert_eq!(heard.len(), 4);
    let finished: Vec<String> = log(&app)
        .0
        .iter()
        .filter_map(|(_, k)| k.strip_prefix("Finished: ").map(str::to_owned))
        .collect();
    for (i, ((listener, k), text)) in heard.iter().zip(&finished).enumerate() {
        let (speaker, want_listener) = if i % 2 == 0 {
            (wren, mara)
        } else {
            (mara, wren)
        };
        assert_eq!(*listener, want_listener);
        assert_eq!(*k, format!("Heard: {speaker} {text}"));
    }
    assert_eq!(
        log(&app).last("Ended between").unwrap(),
        &(wren, format!("Ended between: {mara} 4"))
    );
    // Nothing more is said.
    for _ in 0..20 {
        app.update();
    }
    assert_eq!(log(&app).count("Finished"), 4);
}

#[test]
fn an_exchange_ends_on_cancel_or_when_an_npc_leaves() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    watch_exchanges(&mut app);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let tobin = spawn_npc(&mut app, "tobin", -4.0);
    run_until_loaded(&mut app);
    let endless = |a, b| TalkBetween {
        a,
        b,
        topic: "the weather".into(),
        lines: None,
    };
    send(&mut app, endless(wren, mara));
    assert!(run_until(&mut app, |a| log(a).count("Heard") >= 3));
    send(&mut app, CancelDialogue { npc: mara });
    assert!(run_until(&mut app, |a| log(a).count("Ended between") == 1));
    let (who, what) = log(&app).last("Ended between").unwrap().clone();
    assert_eq!(who, wren);
    assert!(
        what.starts_with(&format!("Ended between: {mara} ")),
        "{what}"
    );
    // Despawning one NPC ends its exchange; the event goes to the one still there.
    send(&mut app, endless(tobin, mara));
    assert!(run_until(&mut app, |a| log(a).count("Heard") >= 5));
    app.world_mut().despawn(tobin);
    assert!(run_until(&mut app, |a| log(a).count("Ended between") == 2));
    assert_eq!(log(&app).last("Ended between").unwrap().0, mara);
    // Talking to oneself is refused with a reason.
    send(&mut app, endless(wren, wren));
    assert!(run_until(&mut app, |a| log(a).count("Error") == 1));
    assert!(log(&app).last("Error").unwrap().1.contains("itself"));
}

#[test]
fn a_real_model_generates_an_exchange_and_a_player_chat_together() {
    let model = common::model("stories260K.gguf");
    let mut app = app(
        LlamaDialoguePlugin {
            model: ModelSource::path(model),
            threads: Some(1),
            sampling: SamplingParams {
                temperature: 0.0,
                max_tokens: 24,
                ..default()
            },
            ..default()
        },
        false,
    );
    watch_exchanges(&mut app);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let guide = spawn_npc(&mut app, "guide", -2.0);
    run_until_loaded(&mut app);
    assert!(run_until(&mut app, |a| *a
        .world()
        .resource::<DialogueBackendStatus>()
        == DialogueBackendStatus::Ready));
    send(
        &mut app,
        TalkBetween {
            a: wren,
            b: mara,
            topic: "the festival".into(),
            lines: Some(2),
        },
    );
    send(
        &mut app,
        PlayerSaid {
            npc: guide,
            text: "Tell me a story.".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Ended between") == 1
        && log(a).count("Finished") == 3));
    assert_eq!(log(&app).count("Error"), 0, "{:#?}", log(&app).0);
    // The guide's line and Wren's opening were generated in the same batch: both had started
    // before either finished.
    let entries = &log(&app).0;
    let first_finished = entries
        .iter()
        .position(|(_, k)| k.starts_with("Finished"))
        .unwrap();
    for npc in [guide, wren] {
        let started = entries
            .iter()
            .position(|(e, k)| *e == npc && k.starts_with("Started"))
            .unwrap();
        assert!(started < first_finished, "{entries:#?}");
    }
    let stats = app.world().resource::<DialogueStats>();
    assert_eq!(stats.lines, 3, "three generated lines: {stats:?}");
}
