//! Choices: presented on the NPC, picked by index, the story moves on to the right speaker.

use crate::app::*;
use bevy_llama_dialogue::plugin::*;

#[test]
fn picking_a_choice_moves_the_story_to_the_chosen_npc() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    // A pick on the wrong NPC, or of an option not presented, changes nothing.
    send(
        &mut app,
        ChoicePicked {
            npc: mara,
            index: 0,
        },
    );
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 9,
        },
    );
    app.update();
    assert_eq!(story(&mut app).wait(), StoryWait::Choice);
    // Each gets its own error: the wrong NPC, then the option out of range.
    let errors: Vec<(bevy::prelude::Entity, String)> = log(&app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Error"))
        .cloned()
        .collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[0].0, mara);
    assert!(errors[0].1.contains("not this NPC's"), "{errors:?}");
    assert_eq!(
        errors[1],
        (
            wren,
            "Error: option 9 was not presented (there are 5 options, numbered from 0)".into()
        )
    );
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    ); // visit the mill
    assert!(run_until(&mut app, |a| log(a).count("Input") == 1));
    let (on, _) = log(&app).last("Input").unwrap().clone();
    assert_eq!(on, mara, "Mara asks; the input is requested on her");
    assert!(
        log(&app)
            .kinds_for(mara)
            .contains(&"Finished: Mind the flour. You're the one Wren sent?".to_string())
    );
    let now = story(&mut app);
    assert_eq!(now.partner(), Some(mara));
    assert_eq!(now.state().unwrap().node, "mara_talk");
    // Story events go to the node's speaker: Mara's nodes on Mara, not on Wren.
    let on_mara = log(&app).kinds_for(mara);
    assert!(
        on_mara.contains(&"Node: mara_intro".to_string()),
        "{on_mara:?}"
    );
    assert!(
        on_mara.contains(&"Node: mara_talk".to_string()),
        "{on_mara:?}"
    );
    assert!(
        !log(&app)
            .kinds_for(wren)
            .contains(&"Node: mara_intro".to_string())
    );
}

/// Branch nodes are passed through without a beat, but a journal still sees them entered.
#[test]
fn branch_nodes_are_reported_entered() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let tobin = spawn_npc(&mut app, "tobin", -4.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 1,
        },
    ); // the forge: `tobin_intro` is a Branch
    assert!(run_until(&mut app, |a| log(a)
        .0
        .iter()
        .any(|(_, k)| k == "Node: tobin_busy")));
    let nodes: Vec<&str> = log(&app)
        .0
        .iter()
        .filter_map(|(_, k)| k.strip_prefix("Node: "))
        .collect();
    let at = |n: &str| nodes.iter().position(|x| *x == n);
    assert!(
        at("tobin_intro").unwrap() + 1 == at("tobin_busy").unwrap(),
        "{nodes:?}"
    );
    assert!(
        log(&app)
            .kinds_for(tobin)
            .contains(&"Node: tobin_busy".to_string())
    );
}
