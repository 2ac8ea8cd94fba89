//! Saves: round trip, atomic replacement, and clear errors for other stories and versions.

use crate::common;

use std::path::Path;
use std::sync::Arc;

use bevy_llama_dialogue::story::{
    Beat, Estimate, SaveError, SaveGame, StoryBundle, StoryRuntime, write_atomic,
};

fn bundle(path: &str) -> Arc<StoryBundle> {
    Arc::new(StoryBundle::load(Path::new(path), &Estimate).unwrap())
}

fn advance_to_choice(rt: &mut StoryRuntime) {
    // Bounded, so that a story that loops on lines fails the test instead of hanging it.
    for _ in 0..10_000 {
        match rt.beat().unwrap() {
            Beat::Line { .. } => rt.advance().unwrap(),
            Beat::Generate(r) => {
                rt.finish_line(&r.fallback).unwrap();
            }
            _ => return,
        }
    }
    panic!("10000 lines without a choice, an input or an ending");
}

#[test]
fn save_and_restore_round_trip() {
    let b = bundle("stories/lantern.story.ron");
    let mut rt = StoryRuntime::new(b.clone()).unwrap();
    advance_to_choice(&mut rt);
    rt.choose(0).unwrap();
    advance_to_choice(&mut rt);
    rt.say("sorry, you look worried", None).unwrap();
    let dir = common::temp_dir("saves");
    let path = dir.join("slot1.ron");
    rt.save().write(&path).unwrap();
    let restored = StoryRuntime::restore(b, SaveGame::read(&path).unwrap()).unwrap();
    assert_eq!(restored.state(), rt.state());
    assert_eq!(restored.state().node, "mara_warm");
    assert_eq!(restored.state().visits["hub"], 1);
    assert!(!restored.state().memories["mara"].turns.is_empty());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("format: 1") && text.contains("story_id: \"lantern\""));
}

#[test]
fn another_story_or_a_save_that_no_longer_fits_is_refused() {
    let lantern = bundle("stories/lantern.story.ron");
    let tutorial = bundle("stories/tutorial.story.ron");
    let save = StoryRuntime::new(lantern.clone()).unwrap().save();
    let err = StoryRuntime::restore(tutorial, save.clone()).unwrap_err();
    assert!(matches!(err, SaveError::WrongStory { .. }));
    assert_eq!(
        err.to_string(),
        "this save is for story `lantern`, not `tutorial`"
    );
    // A text edit (a typo fixed) keeps the save loadable.
    let mut edited = (*lantern).clone();
    if let bevy_llama_dialogue::story::Node::Line { text, .. } = &mut edited.story.nodes[0] {
        text.push_str(" Edited.");
    }
    StoryRuntime::restore(Arc::new(edited), save.clone()).unwrap();
    // Comments and whitespace do not change the hash.
    let reformatted = lantern.source.text.replace("    ", "  ");
    let dir = common::temp_dir("saves-format");
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for p in ["mara", "tobin", "wren"] {
        std::fs::copy(
            format!("stories/personas/{p}.persona.ron"),
            dir.join(format!("personas/{p}.persona.ron")),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("lantern.story.ron"),
        format!("// new comment\n{reformatted}"),
    )
    .unwrap();
    let again = StoryBundle::load(&dir.join("lantern.story.ron"), &Estimate).unwrap();
    StoryRuntime::restore(Arc::new(again), save.clone()).unwrap();
    // A future format is refused by number.
    let future = save.to_ron().unwrap().replace("format: 1", "format: 9");
    let err = SaveGame::from_ron(Path::new("s.ron"), &future).unwrap_err();
    assert!(matches!(err, SaveError::Format { found: 9 }));
    let err = SaveGame::from_ron(Path::new("s.ron"), "not a save").unwrap_err();
    assert!(
        err.to_string().starts_with("s.ron: not a save file"),
        "{err}"
    );
}

#[test]
fn a_failed_write_leaves_the_previous_save_intact() {
    let dir = common::temp_dir("atomic");
    let path = dir.join("slot.ron");
    write_atomic(&path, b"first").unwrap();
    write_atomic(&path, b"second").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
    // Make the rename fail: the target is now a non-empty directory.
    let blocked = dir.join("blocked.ron");
    std::fs::create_dir_all(blocked.join("x")).unwrap();
    assert!(write_atomic(&blocked, b"new").is_err());
    assert!(blocked.join("x").is_dir());
    // No temporary files are left behind, and the good save is untouched.
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(std::fs::read(&path).unwrap(), b"second");
}

/// Saves survive edits: text changes, new variables (initial values) and removed variables
/// (dropped) are fine; a removed current node or a variable whose type changed is an error
/// naming it; a hand-edited save with a wrong type is refused at load, not later.
#[test]
fn saves_survive_edits_and_name_what_no_longer_fits() {
    use bevy_llama_dialogue::story::{Node, VarValue};
    let lantern = bundle("stories/lantern.story.ron");
    let mut rt = StoryRuntime::new(lantern.clone()).unwrap();
    advance_to_choice(&mut rt);
    let save = rt.save();
    assert_eq!(save.state.node, "hub");

    let mut edited = (*lantern).clone();
    edited
        .story
        .variables
        .insert("lanterns_lit".into(), VarValue::Int(2));
    edited.story.variables.remove("patience");
    let restored = StoryRuntime::restore(Arc::new(edited), save.clone()).unwrap();
    assert_eq!(restored.state().node, "hub");
    assert_eq!(restored.state().variables["lanterns_lit"], VarValue::Int(2));
    assert!(!restored.state().variables.contains_key("patience"));

    let mut renamed = (*lantern).clone();
    for n in &mut renamed.story.nodes {
        if let Node::Choice { id, .. } = n
            && id == "hub"
        {
            *id = "square".into();
        }
    }
    let err = StoryRuntime::restore(Arc::new(renamed), save.clone()).unwrap_err();
    assert!(matches!(err, SaveError::Invalid { .. }));
    assert!(
        err.to_string()
            .contains("node `hub` is no longer in the story"),
        "{err}"
    );

    let mut retyped = (*lantern).clone();
    retyped
        .story
        .variables
        .insert("clues".into(), VarValue::Bool(false));
    let err = StoryRuntime::restore(Arc::new(retyped), save.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("variable `clues` is saved as int but the story declares it bool"),
        "{err}"
    );

    let hand_edited = save
        .to_ron()
        .unwrap()
        .replace("\"clues\": Int(0)", "\"clues\": String(\"0\")");
    assert_ne!(hand_edited, save.to_ron().unwrap(), "the edit applies");
    let bad = SaveGame::from_ron(Path::new("s.ron"), &hand_edited).unwrap();
    let err = StoryRuntime::restore(lantern, bad).unwrap_err();
    assert!(err.to_string().contains("variable `clues`"), "{err}");
}
