//! Editing a persona or story file updates the running game; a broken edit is reported with
//! its file:line:col and the last good version stays.

use crate::common;

use std::path::Path;

use crate::app::*;
use bevy::asset::AssetLoadFailedEvent;
use bevy::prelude::*;
use bevy_llama_dialogue::plugin::*;

#[derive(Resource, Default)]
struct Failures(Vec<String>);

fn copy_stories(dir: &Path) {
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for p in ["mara", "tobin", "wren"] {
        let name = format!("personas/{p}.persona.ron");
        std::fs::copy(Path::new("stories").join(&name), dir.join(&name)).unwrap();
    }
    std::fs::copy("stories/lantern.story.ron", dir.join("lantern.story.ron")).unwrap();
}

fn watched_app(dir: &Path) -> App {
    watched_app_in(dir, None)
}

/// A watched app running the lantern story from `dir`, in `locale` if given, recording failed
/// loads in `Failures`.
fn watched_app_in(dir: &Path, locale: Option<&str>) -> App {
    let mut app = app(
        LlamaDialoguePlugin {
            stories_dir: dir.to_owned(),
            story: Some("stories://lantern.story.ron".into()),
            locale: locale.map(str::to_owned),
            ..default()
        },
        true,
    );
    app.init_resource::<Failures>();
    app.add_systems(
        Update,
        |mut p: MessageReader<AssetLoadFailedEvent<PersonaAsset>>,
         mut s: MessageReader<AssetLoadFailedEvent<StoryAsset>>,
         mut f: ResMut<Failures>| {
            f.0.extend(p.read().map(|e| e.error.to_string()));
            f.0.extend(s.read().map(|e| e.error.to_string()));
        },
    );
    app
}

/// Writes a file the way editors do (temp file + rename), so the watcher never sees it half written.
fn save(path: &Path, text: String) {
    let tmp = path.with_extension("tmp-edit");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn failed_with(app: &App, needle: &str) -> bool {
    app.world()
        .resource::<Failures>()
        .0
        .iter()
        .any(|f| f.contains(needle))
}

fn name_of(app: &App, h: &Handle<PersonaAsset>) -> Option<String> {
    app.world()
        .resource::<Assets<PersonaAsset>>()
        .get(h)
        .map(|p| p.0.name.clone())
}

#[test]
fn persona_edits_reload_and_broken_edits_keep_the_last_good_version() {
    let dir = common::temp_dir("hot-reload-persona");
    copy_stories(&dir);
    let mut app = watched_app(&dir);
    let handle: Handle<PersonaAsset> = app
        .world()
        .resource::<AssetServer>()
        .load("stories://personas/mara.persona.ron");
    assert!(run_until(&mut app, |a| name_of(a, &handle).is_some()));
    let file = dir.join("personas/mara.persona.ron");
    let good = std::fs::read_to_string(&file).unwrap();
    save(&file, good.replace("name: \"Mara\"", "name: \"Marra\""));
    assert!(run_until(&mut app, |a| name_of(a, &handle).as_deref()
        == Some("Marra")));

    // A broken edit (missing comma on line 4) is reported and the last good version stays.
    let broken = good.replace("name: \"Mara\",", "name: \"Mara\"");
    save(&file, broken);
    let want = "personas/mara.persona.ron:5:5: error: Expected comma";
    let seen = run_until(&mut app, |a| failed_with(a, want));
    assert!(seen, "{:?}", app.world().resource::<Failures>().0);
    assert_eq!(name_of(&app, &handle).as_deref(), Some("Marra"));
}

#[test]
fn story_edits_reload_keeping_the_players_place() {
    let dir = common::temp_dir("hot-reload-story");
    copy_stories(&dir);
    let mut app = watched_app(&dir);
    let wren = {
        let h = app
            .world()
            .resource::<AssetServer>()
            .load("stories://personas/wren.persona.ron");
        app.world_mut()
            .spawn((Npc::new(h), Transform::default()))
            .id()
    };
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    let file = dir.join("lantern.story.ron");
    let good = std::fs::read_to_string(&file).unwrap();
    // Broken: an undeclared variable in a condition. Refused, the story keeps running.
    save(
        &file,
        good.replace("when: \"trust_mara >= 1\"", "when: \"trsut_mara >= 1\""),
    );
    let want = "lantern.story.ron:130:28: error: condition: `trsut_mara` is not a declared variable (help: did you mean `trust_mara`?)";
    let seen = run_until(&mut app, |a| failed_with(a, want));
    assert!(seen, "{:?}", app.world().resource::<Failures>().0);
    assert_eq!(story(&mut app).state().unwrap().node, "hub");
    // A good edit: the hub's first option is reworded; the player stays at the hub.
    save(
        &file,
        good.replace("Visit the mill, where Mara works.", "Walk to the mill."),
    );
    assert!(run_until(&mut app, |a| {
        story(a)
            .runtime()
            .is_some_and(|rt| rt.bundle().source.text.contains("Walk to the mill."))
    }));
    assert_eq!(story(&mut app).state().unwrap().node, "hub");
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 2));
    assert!(
        log(&app)
            .last("Choices")
            .unwrap()
            .1
            .starts_with("Choices: Walk to the mill.")
    );
    // Once each: the old choices withdrawn, the new ones presented; nothing repeats after.
    for _ in 0..30 {
        app.update();
    }
    assert_eq!(log(&app).count("Withdrawn"), 1);
    assert_eq!(log(&app).count("Choices"), 2);
    assert_eq!(log(&app).count("Input"), 0);
}

/// The story's translation is part of the story asset: editing the table reloads the story in
/// the new wording, and a broken table is refused like a broken story.
#[test]
fn translation_edits_reload_the_story() {
    let dir = common::temp_dir("hot-reload-locale");
    copy_stories(&dir);
    let table = dir.join("lantern.fr.strings.csv");
    std::fs::copy("stories/lantern.fr.strings.csv", &table).unwrap();
    let mut app = watched_app_in(&dir, Some("fr"));
    let title = |a: &mut App| story(a).runtime().map(|rt| rt.bundle().story.title.clone());
    assert!(run_until(&mut app, |a| title(a).as_deref()
        == Some("La Lanterne de Millbrook")));
    let good = std::fs::read_to_string(&table).unwrap();
    save(
        &table,
        good.replace(",La Lanterne de Millbrook\n", ",La Lanterne perdue\n"),
    );
    assert!(run_until(&mut app, |a| title(a).as_deref()
        == Some("La Lanterne perdue")));
    // A translated line with an undeclared variable: refused, the last good wording stays.
    save(
        &table,
        good.replace(",La Lanterne de Millbrook\n", ",{or}\n"),
    );
    let want = "lantern.fr.strings.csv:2: `story:title`: `{or}` is not a declared variable";
    assert!(
        run_until(&mut app, |a| failed_with(a, want)),
        "{:?}",
        app.world().resource::<Failures>().0
    );
    assert_eq!(title(&mut app).as_deref(), Some("La Lanterne perdue"));
}
