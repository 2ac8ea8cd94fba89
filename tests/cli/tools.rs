//! The writer's tools in the CLI: saves while playing (`--save`, `:save`, `--load`),
//! coverage over several play-throughs, and the translation round trip (`strings export`,
//! `strings import`, `--locale`).

use crate::common;

use std::path::Path;

const STORY: &str = "stories/lantern.story.ron";

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = common::output(crate::cli_command().args(args));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// A copy of the bundled story and its personas (no translation) in a fresh folder: the folder
/// and the story's path.
fn story_copy(tag: &str) -> (std::path::PathBuf, String) {
    let dir = common::temp_dir(tag);
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for e in std::fs::read_dir(common::repo().join("stories/personas")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("personas").join(p.file_name().unwrap())).unwrap();
    }
    let story = dir.join("lantern.story.ron");
    std::fs::copy(common::repo().join(STORY), &story).unwrap();
    (dir, story.to_string_lossy().into_owned())
}

#[test]
fn saves_while_playing_and_carries_on_from_them() {
    let dir = common::temp_dir("cli-saves");
    let mid = dir.join("mid.save.ron").to_string_lossy().into_owned();
    // Ask at the well (a once-only option), save by command mid-way, then stop.
    let inputs = write(&dir, "a.inputs", &format!("5\n:save {mid}\n:quit\n"));
    let (ok, out, err) = cli(&["transcript", STORY, "--inputs", &inputs]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("[saved to {mid}]")), "{out}");
    assert!(out.contains("== (quit) =="), "{out}");
    // Carry on from the save: the hub is visited again and the used option is gone.
    let rest = write(&dir, "b.inputs", "4\n");
    let end = dir.join("end.save.ron").to_string_lossy().into_owned();
    let (ok, out, err) = cli(&[
        "transcript",
        STORY,
        "--load",
        &mid,
        "--inputs",
        &rest,
        "--save",
        &end,
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("You are back in the square."), "{out}");
    assert!(!out.contains("Ask the women at the well"), "{out}");
    assert!(out.contains("== Ending: The Road Goes On =="), "{out}");
    assert!(
        std::fs::read_to_string(&end)
            .unwrap()
            .contains("ending_road")
    );
    // `play` saves at exit (here stdin is closed at once) what it loaded.
    let again = dir.join("again.save.ron").to_string_lossy().into_owned();
    let (ok, out, err) = cli(&["play", STORY, "--load", &mid, "--save", &again]);
    assert!(ok, "{err}");
    assert!(out.contains("[saved to"), "{out}");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(&mid).unwrap()
    );
    // A save of another story is refused with a clear message.
    let (ok, _, err) = cli(&["play", "stories/tutorial.story.ron", "--load", &mid]);
    assert!(!ok);
    assert!(err.contains("this save is for story `lantern`"), "{err}");
}

#[test]
fn coverage_lists_what_no_input_reached_with_positions() {
    let (ok, out, err) = cli(&[
        "transcript",
        STORY,
        "--inputs",
        "tests/golden/lantern_festival.inputs",
        "--inputs",
        "tests/golden/lantern_dark.inputs",
        "--coverage",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.contains("## tests/golden/lantern_dark.inputs (2 of 2)"),
        "{out}"
    );
    let summary = out
        .lines()
        .find(|l| l.starts_with("== coverage: "))
        .unwrap_or_else(|| panic!("{out}"));
    let never = out.split("never reached:\n").nth(1).unwrap_or("");
    assert!(never.contains("Ending `ending_truth`"), "{out}");
    assert!(!never.contains("`ending_festival`"), "{out}");
    assert!(!never.contains("`ending_dark`"), "{out}");
    let story = std::fs::read_to_string(common::repo().join(STORY)).unwrap();
    let line = story
        .lines()
        .position(|l| l.contains("id: \"ending_road\""))
        .unwrap()
        + 1;
    assert!(
        never.contains(&format!("{STORY}:{line}:13: Ending `ending_road`")),
        "{never}"
    );
    let missed = never.lines().count();
    let total = bevy_llama_dialogue_core::story::StoryBundle::load(
        &common::repo().join(STORY),
        &bevy_llama_dialogue_core::story::Estimate,
    )
    .unwrap()
    .story
    .nodes
    .len();
    assert_eq!(
        summary,
        format!(
            "== coverage: {} of {total} nodes reached ==",
            total - missed
        )
    );
}

#[test]
fn strings_round_trip_through_a_translation() {
    // A copy of the story with no translation next to it.
    let (dir, story) = story_copy("cli-strings");
    let table = dir.join("lines.csv").to_string_lossy().into_owned();
    let (ok, _, err) = cli(&["strings", "export", &story, "--out", &table]);
    assert!(ok, "{err}");
    let exported = std::fs::read_to_string(&table).unwrap();
    assert!(
        exported.starts_with("id,speaker,source,translation\n"),
        "{exported}"
    );
    assert!(
        exported.contains("\nwren_greets,wren,\"Ah, {player_name}."),
        "{exported}"
    );
    // Without a translation, `--locale` says how to make one.
    let (ok, _, err) = cli(&["transcript", &story, "--locale", "de", "--inputs", &table]);
    assert!(!ok);
    assert!(err.contains("no `de` translation"), "{err}");
    // A translator fills one line, and breaks another: nothing is imported.
    let filled = exported
        .replace(
            "Give up and take the road out of Millbrook.,",
            "Give up and take the road out of Millbrook.,Aufgeben und gehen.",
        )
        .replace("Go to the forge.,", "Go to the forge.,Zur Schmiede {gold}.");
    assert_ne!(filled, exported);
    let bad = write(&dir, "bad.csv", &filled);
    let (ok, out, err) = cli(&["strings", "import", &story, "--locale", "de", &bad]);
    assert!(!ok);
    assert!(
        out.contains("`hub.to.tobin_intro`: `{gold}` is not a declared variable"),
        "{out}"
    );
    assert!(
        err.contains("1 error (above); nothing was imported"),
        "{err}"
    );
    let installed = dir.join("lantern.de.strings.csv");
    assert!(!installed.exists());
    let good = write(&dir, "good.csv", &filled.replace(" {gold}", ""));
    let (ok, out, err) = cli(&["strings", "import", &story, "--locale", "de", &good]);
    assert!(ok, "{out}{err}");
    assert!(out.contains("de: 2 of 48 lines translated"), "{out}");
    assert!(installed.exists());
    // Played in German: translated lines replace the authored ones, the rest fall back.
    let inputs = write(&dir, "road.inputs", "4\n");
    let (ok, out, err) = cli(&["transcript", &story, "--locale", "de", "--inputs", &inputs]);
    assert!(ok, "{err}");
    assert!(out.contains("  2) Zur Schmiede."), "{out}");
    assert!(out.contains("  4) Aufgeben und gehen."), "{out}");
    assert!(
        out.contains("  1) Visit the mill, where Mara works."),
        "{out}"
    );
    // Re-exporting for the locale keeps its translations.
    let (ok, again, err) = cli(&["strings", "export", &story, "--locale", "de"]);
    assert!(ok, "{err}");
    assert!(again.contains(",Zur Schmiede.\n"), "{again}");
}

#[test]
fn a_generated_line_is_promoted_to_an_authored_one() {
    let (dir, story) = story_copy("cli-promote");
    let before = std::fs::read_to_string(&story).unwrap();
    // Refused, the file untouched: not a Generate node, and a line that would not check.
    let (ok, _, err) = cli(&["strings", "promote", &story, "hub", "--text", "x"]);
    assert!(!ok);
    assert!(
        err.contains("`hub` is a Choice node; only Generate nodes"),
        "{err}"
    );
    let (ok, _, err) = cli(&[
        "strings",
        "promote",
        &story,
        "wren_plea",
        "--text",
        "Go, {gold}.",
    ]);
    assert!(!ok);
    assert!(err.contains("`{gold}` is not a declared variable"), "{err}");
    assert!(
        err.contains("the promoted story would not check; not written"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&story).unwrap(), before);
    // Promoted: a Line with the same id, speaker and next; the rest of the file as it was.
    let line = "Bring it back before the moon is up, {player_name}.";
    let (ok, out, err) = cli(&["strings", "promote", &story, "wren_plea", "--text", line]);
    assert!(ok, "{err}");
    assert!(out.contains("promoted `wren_plea`"), "{out}");
    let after = std::fs::read_to_string(&story).unwrap();
    assert!(!after.contains("Find it before moonrise"), "{after}");
    let (head, _) = before
        .split_once("        Generate(\n            id: \"wren_plea\"")
        .unwrap();
    assert!(after.starts_with(head));
    let inputs = write(&dir, "road.inputs", "4\n");
    let (ok, out, err) = cli(&["transcript", &story, "--inputs", &inputs]);
    assert!(ok, "{err}");
    assert!(
        out.contains("Elder Wren: Bring it back before the moon is up, traveller.\n"),
        "{out}"
    );
    let (ok, table, _) = cli(&["strings", "export", &story]);
    assert!(ok);
    assert!(table.contains("\nwren_plea,wren,"), "{table}");
}
