//! Several NPCs at once: the one in front of the listener and nearest is served first.

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

#[test]
fn nearer_npcs_in_view_are_served_first() {
    let mut app = app(LlamaDialoguePlugin::default(), false);
    app.world_mut()
        .spawn((DialogueListener, Transform::default()));
    // The listener looks down -Z. `behind` is the closest but behind it.
    let far = spawn_npc(&mut app, "wren", -10.0);
    let behind = spawn_npc(&mut app, "guide", 1.0);
    let near = spawn_npc(&mut app, "mara", -2.0);
    let mid = spawn_npc(&mut app, "tobin", -6.0);
    run_until_loaded(&mut app);
    app.update(); // global transforms
    for npc in [far, behind, near, mid] {
        send(
            &mut app,
            PlayerSaid {
                npc,
                text: "Hello".into(),
            },
        );
    }
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 4));
    let order: Vec<Entity> = log(&app)
        .0
        .iter()
        .filter(|(_, k)| k.starts_with("Finished"))
        .map(|(e, _)| *e)
        .collect();
    assert_eq!(order, [near, mid, far, behind]);
}
