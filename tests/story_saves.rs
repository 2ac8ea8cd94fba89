//! Saves: round trip, atomic replacement, and clear errors for other stories and versions.

mod common;

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
            Beat::Generate(r) => rt.finish_line(&r.fallback).unwrap(),
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
fn another_story_or_version_is_refused() {
    let lantern = bundle("stories/lantern.story.ron");
    let tutorial = bundle("stories/tutorial.story.ron");
    let save = StoryRuntime::new(lantern.clone()).unwrap().save();
    let err = StoryRuntime::restore(tutorial, save.clone()).unwrap_err();
    assert!(matches!(err, SaveError::WrongStory { .. }));
    assert_eq!(
        err.to_string(),
        "this save is for story `lantern`, not `tutorial`"
    );
    // The same story with one line edited has another content hash.
    let mut edited = (*lantern).clone();
    if let bevy_llama_dialogue::story::Node::Line { text, .. } = &mut edited.story.nodes[0] {
        text.push_str(" Edited.");
    }
    let err = StoryRuntime::restore(Arc::new(edited), save.clone()).unwrap_err();
    assert!(
        err.to_string()
            .contains("another version of story `lantern`"),
        "{err}"
    );
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
    let future = save.to_ron().replace("format: 1", "format: 9");
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
