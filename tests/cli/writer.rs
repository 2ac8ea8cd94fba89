//! What writers meet first in the CLI: a byte order mark is accepted, counts read as English,
//! an error is printed once with one `error:` prefix, and a model asked for by name that cannot
//! load is an error (never a silent switch to the authored lines).

use crate::common;

use std::process::Command;

fn cli() -> Command {
    crate::cli_command()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the bundled story and personas in a temp folder, the story edited by `edit`.
fn story_copy(tag: &str, edit: impl FnOnce(String) -> String) -> std::path::PathBuf {
    let dir = common::temp_dir(tag);
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for e in std::fs::read_dir(common::repo().join("stories/personas")).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("personas").join(p.file_name().unwrap())).unwrap();
    }
    let story = std::fs::read_to_string(common::repo().join("stories/lantern.story.ron")).unwrap();
    let path = dir.join("lantern.story.ron");
    std::fs::write(&path, edit(story)).unwrap();
    path
}

#[test]
fn a_byte_order_mark_is_accepted_and_positions_count_after_it() {
    let clean = story_copy("bom-ok", |s| format!("\u{feff}{s}"));
    let out = common::output(cli().args(["check", clean.to_str().unwrap()]));
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("checked 1 story and 0 personas"));
    // A broken file with a BOM reports the same findings at the same positions as without.
    let fixture = common::repo().join("tests/fixtures/bad/07_unknown_target.story.ron");
    let body = std::fs::read_to_string(fixture).unwrap();
    let diagnostics = |tag: &str, text: String| {
        let dir = common::temp_dir(tag);
        std::fs::create_dir_all(dir.join("personas")).unwrap();
        for e in std::fs::read_dir(common::repo().join("tests/fixtures/bad/personas")).unwrap() {
            let p = e.unwrap().path();
            std::fs::copy(&p, dir.join("personas").join(p.file_name().unwrap())).unwrap();
        }
        let file = dir.join("07_unknown_target.story.ron");
        std::fs::write(&file, text).unwrap();
        let out = common::output(cli().args(["check", "--json", file.to_str().unwrap()]));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let found: Vec<(serde_json::Value, serde_json::Value)> = v["diagnostics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| (d["location"].clone(), d["message"].clone()))
            .collect();
        found
    };
    let plain = diagnostics("bom-without", body.clone());
    assert!(
        plain
            .iter()
            .any(|(at, _)| at["line"] == 8 && at["col"] == 58),
        "{plain:?}"
    );
    assert_eq!(diagnostics("bom-with", format!("\u{feff}{body}")), plain);
}

#[test]
fn counts_read_as_english_and_errors_have_one_prefix() {
    let broken = story_copy("one-error", |s| {
        s.replacen(r#"next: "wren_plea","#, r#"next: "wren_pleaa","#, 1)
    });
    let out = common::output(cli().args(["check", broken.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("checked 1 story and 0 personas")
            && stdout.contains(": 1 error, 0 warnings"),
        "{stdout}"
    );
    assert_eq!(text(&out.stderr).trim(), "error: 1 error found");
    // `play` on the same file: the finding once as `check` prints it, then one summary line.
    let out = common::output(
        cli()
            .args(["play", broken.to_str().unwrap()])
            .stdin(std::process::Stdio::null()),
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("wren_pleaa").count(), 1, "{stderr}");
    assert!(
        stderr
            .lines()
            .all(|l| !(l.starts_with("error: ") && l.contains(": error: "))),
        "a doubled prefix: {stderr}"
    );
    assert!(stderr.contains("the story has errors"), "{stderr}");
}

#[test]
fn a_model_that_cannot_load_fails_the_transcript() {
    let inputs = common::temp_dir("no-model").join("inputs.txt");
    std::fs::write(&inputs, "1\n").unwrap();
    let out = common::output(cli().args([
        "transcript",
        "stories/lantern.story.ron",
        "--inputs",
        inputs.to_str().unwrap(),
        "--model",
        "/no/such/model.gguf",
    ]));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("/no/such/model.gguf") && stderr.contains("could not be loaded"),
        "{stderr}"
    );
    assert!(
        !text(&out.stdout).contains("[no model"),
        "no silent fallback"
    );
}

#[test]
fn huge_or_deeply_nested_conditions_are_errors_not_crashes() {
    let nested = |n| format!("{}trust_mara >= 1{}", "(".repeat(n), ")".repeat(n));
    let chain = |n| vec!["trust_mara >= 1"; n].join(" && ");
    for (tag, condition, says) in [
        (
            "deep",
            nested(100),
            "parentheses nested 100 deep (at most 32)",
        ),
        ("deeper", nested(20_000), "40015 bytes long (at most 4096)"),
        ("chain", chain(200), "399 operators (at most 128)"),
        ("long", chain(7_000), "bytes long (at most 4096)"),
    ] {
        let story = story_copy(tag, |s| {
            s.replacen(
                "when: \"trust_mara >= 1\"",
                &format!("when: \"{condition}\""),
                1,
            )
        });
        let out = common::output(cli().args(["check", story.to_str().unwrap()]));
        // Exit 1 with the finding (a stack overflow would abort with 134).
        assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("lantern.story.ron:130:") && stdout.contains(says),
            "{stdout}"
        );
        assert!(stdout.contains("is too complex"), "{stdout}");
    }
}

/// A run-time effect error in `play`/`transcript` is reported and the story stays at its last
/// good state (it used to quit).
#[test]
fn a_failing_effect_is_reported_and_the_story_goes_on() {
    let dir = common::temp_dir("effect-error");
    let story = dir.join("t.story.ron");
    std::fs::write(
        &story,
        r#"Story(
            id: "t", title: "T",
            variables: { "n": Int(0) },
            start: "a",
            nodes: [
                Choice(id: "a", text: "Pick.", options: [
                    (text: "divide", effects: [Set("n", "1 / n")], next: "end"),
                    (text: "fine", next: "end"),
                ]),
                Ending(id: "end", title: "The end"),
            ],
        )"#,
    )
    .unwrap();
    let inputs = dir.join("inputs.txt");
    std::fs::write(&inputs, "1\n2\n").unwrap();
    let out = common::output(cli().args([
        "transcript",
        story.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
    ]));
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("[error: ") && stdout.contains("the story stays here"),
        "{stdout}"
    );
    assert_eq!(stdout.matches("Pick.").count(), 2, "asked again: {stdout}");
    assert!(stdout.contains("== Ending: The end =="), "{stdout}");
}

/// `check` on a folder with no story or persona files is an error, not a pass.
#[test]
fn an_empty_folder_does_not_pass() {
    let dir = common::temp_dir("empty-check");
    std::fs::write(dir.join("notes.txt"), "not a story").unwrap();
    let out = common::output(cli().args(["check", dir.to_str().unwrap()]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("no story (`*.story.ron`), persona"),
        "{stderr}"
    );
}
