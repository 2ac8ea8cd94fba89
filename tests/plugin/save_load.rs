//! Save and load the running story through messages (atomic files).

use crate::common;

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

#[derive(Resource, Default)]
struct Outcomes(Vec<StorySaved>);

#[test]
fn save_then_load_restores_the_place_in_the_story() {
    let mut app = app(lantern_plugin(), false);
    app.init_resource::<Outcomes>();
    app.add_systems(
        Update,
        (|mut r: MessageReader<StorySaved>, mut o: ResMut<Outcomes>| o.0.extend(r.read().cloned()))
            .after(DialogueSystems::Input),
    );
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    let dir = common::temp_dir("plugin-save");
    let path = dir.join("slot.ron");
    send(&mut app, SaveStory::new(path.clone()));
    app.update();
    // Move on: to the mill.
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Input") == 1));
    assert_eq!(story(&mut app).state().unwrap().node, "mara_talk");
    // Load: back at the hub; talking to Wren presents the hub again.
    send(&mut app, LoadStory::new(path.clone()));
    app.update();
    let now = story(&mut app);
    assert_eq!(now.state().unwrap().node, "hub");
    assert_eq!(now.wait(), StoryWait::Idle);
    // Mara's free-text prompt belonged to the replaced state: withdrawn, on her.
    assert_eq!(log(&app).kinds_for(mara).last().unwrap(), "Withdrawn");
    assert_eq!(log(&app).count("Withdrawn"), 1);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 2));
    // A missing file is an error message, and the state is kept.
    send(&mut app, LoadStory::new(dir.join("missing.ron")));
    app.update();
    let outcomes = &app.world().resource::<Outcomes>().0;
    assert_eq!(outcomes.len(), 3);
    assert!(outcomes[0].result.is_ok() && !outcomes[0].loaded);
    assert!(outcomes[1].result.is_ok() && outcomes[1].loaded);
    assert!(
        outcomes[2]
            .result
            .as_ref()
            .unwrap_err()
            .contains("missing.ron")
    );
    assert_eq!(story(&mut app).state().unwrap().node, "hub");
    let _ = mara;
}
