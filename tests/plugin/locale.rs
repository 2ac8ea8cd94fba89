//! `LlamaDialoguePlugin::locale`: stories load their translation and play in it; a locale
//! with no translation plays the authored text.

use crate::app::*;
use bevy_llama_dialogue::plugin::*;

fn first_lines(locale: Option<&str>) -> (Vec<String>, String) {
    let mut app = app(
        LlamaDialoguePlugin {
            locale: locale.map(str::to_owned),
            ..lantern_plugin()
        },
        false,
    );
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    let finished = log(&app)
        .kinds_for(wren)
        .into_iter()
        .filter(|k| k.starts_with("Finished: "))
        .collect();
    let choices = log(&app).last("Choices").unwrap().1.clone();
    (finished, choices)
}

#[test]
fn a_story_plays_in_the_plugins_locale() {
    let (lines, choices) = first_lines(Some("fr"));
    assert!(
        lines[0].starts_with("Finished: Le soir tombe sur Millbrook."),
        "{lines:?}"
    );
    assert_eq!(
        lines[1],
        "Finished: Ah, traveller. Vous arrivez par une triste nuit. Quelqu'un a pris la Lanterne de Millbrook."
    );
    assert!(
        choices.starts_with("Choices: Aller au moulin, où travaille Mara. | Aller à la forge."),
        "{choices}"
    );
    // A locale the story has no translation for keeps the authored text.
    let (lines, choices) = first_lines(Some("xx"));
    assert!(lines[1].contains("You come on a sad night."), "{lines:?}");
    assert!(choices.starts_with("Choices: Visit the mill"), "{choices}");
}
