//! Several stories at once: the player's story and an NPC ↔ NPC scene that plays by itself
//! (`DialogueStory::autoplay`) run side by side, each with its own state, their events on
//! their own speakers.

use crate::common;

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

/// Spawns the bundled well scene (Mara and Tobin), playing by itself with Mara as partner.
fn well_scene(app: &mut App, partner: Entity) -> Entity {
    let handle = app
        .world()
        .resource::<AssetServer>()
        .load("stories://well.story.ron");
    app.world_mut()
        .spawn(DialogueStory::autoplay(handle, partner))
        .id()
}

fn has(kinds: &[String], prefix: &str) -> bool {
    kinds.iter().any(|k| k.starts_with(prefix))
}

#[test]
fn an_npc_scene_plays_beside_the_players_story() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let tobin = spawn_npc(&mut app, "tobin", -6.0);
    let scene = well_scene(&mut app, mara);
    run_until_loaded(&mut app);
    // The player talks to Wren while Mara and Tobin talk at the well by themselves.
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| {
        log(a).count("Choices") == 1 && log(a).count("Ended: They part ways") == 1
    }));

    // Each story has its own state: the scene ended, the player's story waits at the hub.
    let well = app.world().get::<DialogueStory>(scene).unwrap();
    assert_eq!(well.wait(), StoryWait::Ended);
    let state = well.state().unwrap();
    assert_eq!(state.node, "parted");
    assert_eq!(state.variables["rumours"].to_string(), "1");
    let lantern = story(&mut app);
    assert_eq!(lantern.wait(), StoryWait::Choice);
    assert_eq!(lantern.state().unwrap().node, "hub");
    assert!(!lantern.state().unwrap().variables.contains_key("rumours"));

    // The scene's lines are on their speakers, in the story's order; its ending on Mara.
    let m = log(&app).kinds_for(mara);
    let t = log(&app).kinds_for(tobin);
    assert!(has(&m, "Finished: Tobin! You look like"), "{m:#?}");
    assert!(has(&t, "Finished: Gone? That's"), "{t:#?}");
    assert!(has(&m, "Finished: You're jumpier than a hare"), "{m:#?}");
    assert_eq!(m.last().map(String::as_str), Some("Ended: They part ways"));
    assert!(has(&t, "Node: tobin_answers"));
    // None of it reached Wren, and none of the lantern story reached Tobin.
    let w = log(&app).kinds_for(wren);
    assert!(!has(&w, "Node: mara_opens") && !has(&w, "Ended"), "{w:#?}");
    assert!(!has(&t, "Node: hub") && !has(&t, "Choices"), "{t:#?}");

    // The player's story goes on as before: the first option leads to Mara.
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    );
    assert!(run_until(&mut app, |a| {
        story(a).state().is_some_and(|s| s.node != "hub")
    }));
    assert!(run_until(&mut app, |a| has(
        &log(a).kinds_for(mara),
        "Node: mara_intro"
    )));
    assert_eq!(
        app.world().get::<DialogueStory>(scene).unwrap().wait(),
        StoryWait::Ended
    );
}

/// A scene waits for its whole cast: with Tobin not spawned yet nothing is said, and it
/// starts when he arrives.
#[test]
fn a_scene_starts_when_its_cast_is_there() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let scene = well_scene(&mut app, mara);
    run_until_loaded(&mut app);
    for _ in 0..50 {
        app.update();
    }
    assert_eq!(
        app.world().get::<DialogueStory>(scene).unwrap().wait(),
        StoryWait::Idle
    );
    assert_eq!(log(&app).count("Queued"), 0);
    let tobin = spawn_npc(&mut app, "tobin", -6.0);
    assert!(run_until(&mut app, |a| log(a)
        .count("Ended: They part ways")
        == 1));
    assert!(has(&log(&app).kinds_for(tobin), "Finished: Gone?"));
}

/// Saves name their story: the scene saves and loads on its own, leaving the player's
/// story where it is.
#[test]
fn saves_name_their_story() {
    let dir = common::temp_dir("stories-save");
    let mut app = app(lantern_plugin(), false);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    let _tobin = spawn_npc(&mut app, "tobin", -6.0);
    let scene = well_scene(&mut app, mara);
    run_until_loaded(&mut app);
    assert!(run_until(&mut app, |a| log(a)
        .count("Ended: They part ways")
        == 1));
    let path = dir.join("well.save.ron");
    send(
        &mut app,
        SaveStory {
            path: path.clone(),
            story: Some(scene),
        },
    );
    app.update();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"well\""), "{text}");
    assert!(text.contains("parted"), "{text}");
    // Naming something that is not a story is an error, not a save of another story.
    send(
        &mut app,
        SaveStory {
            path: dir.join("nothing.save.ron"),
            story: Some(mara),
        },
    );
    app.update();
    assert!(!dir.join("nothing.save.ron").exists());
}
