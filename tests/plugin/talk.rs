//! Spawn → talk → line events arrive in order on the right entity; choices are presented.

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

#[test]
fn talking_streams_lines_in_order_on_the_speaker() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    let kinds = log(&app).kinds_for(wren);
    // Narration and Wren's authored line, then her generated line (fallback, word by word).
    let starts: Vec<&String> = kinds.iter().filter(|k| k.starts_with("Started")).collect();
    assert_eq!(starts.len(), 3, "{kinds:#?}");
    assert_eq!(kinds[0], "Node: arrival");
    assert_eq!(kinds[1], "Queued: None");
    assert_eq!(kinds[2], "Started: None");
    // Every line: queued (accepted), started (first words), then finished, in that order.
    let mut open = 0;
    for k in &kinds {
        if k.starts_with("Queued") {
            assert_eq!(open, 0, "a line queued while another is open: {kinds:#?}");
            open = 1;
        } else if k.starts_with("Started") {
            assert_eq!(open, 1, "started without being queued: {kinds:#?}");
            open = 2;
        } else if k.starts_with("Chunk") {
            assert_eq!(open, 2, "a chunk before its line started: {kinds:#?}");
        } else if k.starts_with("Finished") {
            assert_eq!(open, 2, "finished without starting: {kinds:#?}");
            open = 0;
        }
    }
    assert_eq!(open, 0);
    assert_eq!(log(&app).count("Queued"), 3);
    let plea = kinds
        .iter()
        .position(|k| k == "Started: Some(\"wren\")")
        .unwrap();
    assert!(kinds[plea + 1].starts_with("Chunk: Ah, traveller."));
    // The generated line streams word by word, then finishes with the whole text.
    let last_start = kinds
        .iter()
        .rposition(|k| k.starts_with("Started"))
        .unwrap();
    let chunks: String = kinds[last_start + 1..]
        .iter()
        .take_while(|k| k.starts_with("Chunk: "))
        .map(|k| k.trim_start_matches("Chunk: "))
        .collect();
    let want = "Find it before moonrise, I beg you. The festival cannot begin in darkness.";
    assert_eq!(chunks, want);
    assert!(
        kinds[last_start + 1..]
            .iter()
            .filter(|k| k.starts_with("Chunk"))
            .count()
            > 5
    );
    assert!(kinds.contains(&format!("Finished: {want}")));
    assert!(kinds.last().unwrap().starts_with("Choices: Visit the mill"));
    // Nothing was said on Mara.
    assert!(log(&app).kinds_for(mara).is_empty());
    let buffer = app.world().get::<SpeechBuffer>(wren).unwrap();
    assert_eq!(buffer.text, want);
    assert!(!buffer.speaking && !buffer.generated);
    assert_eq!(story(&mut app).wait(), StoryWait::Choice);
}

#[test]
fn an_npc_outside_the_story_answers_in_free_chat() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    let tobin = spawn_npc(&mut app, "tobin", -2.0);
    run_until_loaded(&mut app);
    send(
        &mut app,
        PlayerSaid {
            npc: tobin,
            text: "What are you making?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 1));
    // Without a model, the persona's first sample line.
    let (e, k) = log(&app).last("Finished").unwrap().clone();
    assert_eq!(e, tobin);
    assert_eq!(k, "Finished: Hinges. I mean, mostly hinges. Why?");
    let memory = app.world().get::<FreeChatMemory>(tobin).unwrap();
    assert_eq!(memory.turns.len(), 2, "the exchange is remembered");
}
