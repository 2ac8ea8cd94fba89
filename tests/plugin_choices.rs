//! Choices: presented on the NPC, picked by index, the story moves on to the right speaker.
#![cfg(feature = "plugin")]

mod common;

use bevy_llama_dialogue::plugin::*;
use common::app::*;

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
    assert_eq!(
        app.world().resource::<DialogueStory>().wait(),
        StoryWait::Choice
    );
    assert_eq!(
        log(&app).last("Error").unwrap().1,
        "Error: option 9 was not presented"
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
    let story = app.world().resource::<DialogueStory>();
    assert_eq!(story.partner(), Some(mara));
    assert_eq!(story.state().unwrap().node, "mara_talk");
}
