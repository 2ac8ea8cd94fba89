//! Game messages that cannot be served at once: a `TalkTo` sent before the NPC's persona has
//! loaded waits for it; messages for a dead entity, a non-NPC, a persona that failed to load, or
//! a choice that is not pending each get their own error, never silence.

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

fn errors(app: &App) -> Vec<(Entity, String)> {
    log(app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Error"))
        .cloned()
        .collect()
}

#[test]
fn talk_to_before_the_persona_loads_waits_for_it() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    let tobin = spawn_npc(&mut app, "tobin", -2.0);
    // Sent before the first frame: the persona file has not even been read.
    send(&mut app, TalkTo { npc: tobin });
    assert!(app.world().resource::<Assets<PersonaAsset>>().is_empty());
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 1));
    assert_eq!(errors(&app), vec![]);
    let kinds = log(&app).kinds_for(tobin);
    assert!(kinds[0].starts_with("Queued"), "{kinds:?}");
    // The same for PlayerSaid.
    let wren = spawn_npc(&mut app, "wren", -3.0);
    send(
        &mut app,
        PlayerSaid {
            npc: wren,
            text: "Hello?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 2));
    assert_eq!(errors(&app), vec![]);
    assert!(!log(&app).kinds_for(wren).is_empty());
}

#[test]
fn messages_that_cannot_be_served_say_why() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    let broken = {
        let handle = app
            .world()
            .resource::<AssetServer>()
            .load("stories://personas/no-such.persona.ron");
        app.world_mut().spawn(Npc::new(handle)).id()
    };
    let rock = app.world_mut().spawn(Transform::default()).id();
    let gone = app.world_mut().spawn(Transform::default()).id();
    app.world_mut().despawn(gone);

    // No choice is pending yet.
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 99,
        },
    );
    send(&mut app, TalkTo { npc: rock });
    send(&mut app, TalkTo { npc: gone });
    send(&mut app, TalkTo { npc: broken });
    assert!(run_until(&mut app, |a| errors(a).len() == 4));
    let errs = errors(&app);
    let on = |e: Entity| {
        errs.iter()
            .find(|(x, _)| *x == e)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    };
    assert!(on(wren).contains("no choice is pending"), "{errs:?}");
    assert!(on(rock).contains("is not an NPC"), "{errs:?}");
    assert!(on(gone).contains("does not exist"), "{errs:?}");
    assert!(on(broken).contains("failed to load"), "{errs:?}");

    // A choice out of range, once choices are pending.
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 99,
        },
    );
    assert!(run_until(&mut app, |a| errors(a).len() == 5));
    let (_, last) = errors(&app).pop().unwrap();
    assert!(last.contains("option 99 was not presented"), "{last}");
    assert_eq!(
        story(&mut app).wait(),
        StoryWait::Choice,
        "the story still waits for a valid pick"
    );
}
