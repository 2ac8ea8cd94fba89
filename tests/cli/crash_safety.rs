//! What a crash or a full disk can do to the files the tools write (issue 30): a process that
//! saves in a loop, killed at 50 random moments, leaves a save that loads every time; a write
//! that fails part-way (the file size limit of `ulimit -f`, as a full disk would) leaves the
//! old file as it was and no temporary file behind.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use bevy_llama_dialogue_core::story::SaveGame;

use crate::common;

/// The temporary files `write_atomic` leaves for `name` in `dir` (those of killed processes).
fn temporaries(dir: &Path, name: &str) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|f| f.starts_with(&format!(".{name}.")) && f.ends_with(".tmp"))
        .collect()
}

#[test]
fn a_save_killed_at_random_moments_still_loads() {
    let dir = common::temp_dir("cli-kill-saves");
    let save = dir.join("loop.save.ron");
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut killed_with_a_temporary = 0;
    for round in 0..50 {
        let mut child = crate::cli_command()
            .args(["play", "stories/lantern.story.ron", "--save"])
            .arg(&save)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // Save as fast as the process can: `:save` again and again, until it is killed.
        let feeder = std::thread::spawn(move || while stdin.write_all(b":save\n").is_ok() {});
        // Wait for this round's first save (the file changes), then a random moment more.
        let before = std::fs::metadata(&save).and_then(|m| m.modified()).ok();
        for _ in 0..100_000 {
            let now = std::fs::metadata(&save).and_then(|m| m.modified()).ok();
            if now.is_some() && now != before {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(std::time::Duration::from_micros(seed % 20_000));
        child.kill().unwrap();
        child.wait().unwrap();
        feeder.join().unwrap();
        let loaded = SaveGame::read(&save);
        assert!(loaded.is_ok(), "round {round}: {:?}", loaded.err());
        if !temporaries(&dir, "loop.save.ron").is_empty() {
            killed_with_a_temporary += 1;
        }
    }
    // The next successful write removes what killed processes left.
    let out = crate::cli_command()
        .args(["transcript", "stories/lantern.story.ron", "--inputs"])
        .arg(common::repo().join("tests/golden/lantern_festival.inputs"))
        .arg("--save")
        .arg(&save)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(temporaries(&dir, "loop.save.ron"), Vec::<String>::new());
    SaveGame::read(&save).unwrap();
    eprintln!("50 kills, {killed_with_a_temporary} of them in the middle of a write");
}

/// `sh` with the file size limit at 1 block and `SIGXFSZ` ignored, so a write past 512 bytes
/// fails with "File too large" as a full disk fails with "No space left on device".
fn with_a_small_disk(args: &[&str]) -> std::process::Output {
    let exe = env!("CARGO_BIN_EXE_llama-dialogue");
    Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 1; exec \"$0\" \"$@\"")
        .arg(exe)
        .args(args)
        .current_dir(common::repo())
        .output()
        .unwrap()
}

#[test]
fn a_write_that_fails_part_way_leaves_the_old_file() {
    let dir = common::temp_dir("cli-full-disk");
    let table = dir.join("table.csv");
    std::fs::write(&table, "the old table\n").unwrap();
    let out = with_a_small_disk(&[
        "strings",
        "export",
        "stories/lantern.story.ron",
        "--out",
        table.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the export is larger than 512 bytes");
    assert!(err.contains("table.csv"), "{err}");
    assert_eq!(std::fs::read_to_string(&table).unwrap(), "the old table\n");
    assert_eq!(temporaries(&dir, "table.csv"), Vec::<String>::new());

    // A save: the good one stays, the game says why the new one was not written.
    let save = dir.join("s.save.ron");
    let inputs = common::repo().join("tests/golden/lantern_festival.inputs");
    let ok = crate::cli_command()
        .args(["transcript", "stories/lantern.story.ron", "--inputs"])
        .arg(&inputs)
        .arg("--save")
        .arg(&save)
        .output()
        .unwrap();
    assert!(ok.status.success());
    let good = std::fs::read(&save).unwrap();
    assert!(good.len() > 512, "a save larger than the limit");
    let out = with_a_small_disk(&[
        "transcript",
        "stories/lantern.story.ron",
        "--inputs",
        inputs.to_str().unwrap(),
        "--save",
        save.to_str().unwrap(),
    ]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("[not saved:"), "{said}");
    assert_eq!(
        std::fs::read(&save).unwrap(),
        good,
        "the old save is intact"
    );
    assert_eq!(temporaries(&dir, "s.save.ron"), Vec::<String>::new());
}
