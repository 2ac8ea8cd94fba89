//! A despawned NPC's line is cancelled; nothing more arrives for it and the game goes on.

use crate::app::*;
use bevy_llama_dialogue::plugin::*;

#[test]
fn despawning_the_speaker_cancels_its_line() {
    let mut app = app(lantern_plugin(), false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    // Wait for the generated line to be mid-way.
    assert!(run_until(&mut app, |a| {
        a.world()
            .get::<SpeechBuffer>(wren)
            .is_some_and(|b| b.speaking && b.text.len() > 10)
    }));
    assert_eq!(
        app.world().resource::<DialogueBackendHandle>().in_flight(),
        1
    );
    let seen = log(&app).0.len();
    app.world_mut().despawn(wren);
    for _ in 0..50 {
        app.update();
    }
    assert_eq!(
        app.world().resource::<DialogueBackendHandle>().in_flight(),
        0
    );
    // The open line ends, cut short, with what had streamed; then nothing more for it.
    let after: Vec<&String> = log(&app).0[seen..]
        .iter()
        .filter(|(e, _)| *e == wren)
        .map(|(_, k)| k)
        .collect();
    assert_eq!(after.len(), 1, "{after:#?}");
    assert!(after[0].starts_with("Finished: ") && after[0].len() > "Finished: ".len() + 10);
    let now = story(&mut app);
    assert_eq!(now.partner(), None);
    assert_eq!(now.wait(), StoryWait::Idle, "the line will be asked again");
    assert_eq!(now.state().unwrap().node, "wren_plea");
}

#[test]
fn walking_away_cancels_and_talking_again_resumes() {
    let mut app = app(lantern_plugin(), false);
    let listener = app
        .world_mut()
        .spawn((DialogueListener, bevy::prelude::Transform::default()))
        .id();
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| {
        a.world()
            .get::<SpeechBuffer>(wren)
            .is_some_and(|b| b.speaking && b.text.len() > 10)
    }));
    // The listener walks 100 m away: the line is cancelled.
    app.world_mut()
        .get_mut::<bevy::prelude::Transform>(listener)
        .unwrap()
        .translation
        .z = 100.0;
    assert!(run_until(&mut app, |a| log(a).0.iter().any(|(_, k)| k
        .starts_with("Finished")
        && a.world().resource::<DialogueBackendHandle>().in_flight()
            == 0)));
    assert_eq!(story(&mut app).wait(), StoryWait::Idle);
    // Back, and talk again: the line is generated anew and the story reaches the hub.
    app.world_mut()
        .get_mut::<bevy::prelude::Transform>(listener)
        .unwrap()
        .translation
        .z = 0.0;
    app.update(); // global transforms follow in PostUpdate
    send(&mut app, TalkTo { npc: wren });
    let ok = run_until(&mut app, |a| log(a).count("Choices") == 1);
    let wait = story(&mut app).wait();
    assert!(
        ok,
        "{:#?} wait={wait:?}",
        log(&app).0.iter().rev().take(12).collect::<Vec<_>>(),
    );
}
