//! Free text typed to an NPC is routed onto the story's authored edge.

use crate::app::*;
use bevy_llama_dialogue::plugin::*;
use bevy_llama_dialogue::story::VarValue;

#[test]
fn typed_text_takes_the_matching_edge() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Input") == 1));
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "Thanks for seeing me. How are you?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 2));
    let now = story(&mut app);
    let state = now.state().unwrap();
    assert_eq!(state.variables["trust_mara"], VarValue::Int(1));
    assert_eq!(state.node, "mara_confides");
    assert!(log(&app).0.iter().any(|(_, k)| k == "Node: mara_warm"));
    let said = &state.memories["mara"].turns;
    assert!(
        said.iter()
            .any(|t| t.content == "Thanks for seeing me. How are you?")
    );
}
