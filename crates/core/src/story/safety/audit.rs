//! The opt-in audit log: one JSON line per line spoken or message judged, written on its own
//! thread, rotated by size; and its summary (`llama-dialogue audit LOG`).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::moderator::{Direction, Flag};

/// Where and how much to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// The log file (JSON lines). Rotated files are `<path>.1` (newest) to `<path>.<keep>`.
    pub path: PathBuf,
    /// A file is rotated when a record would take it past this size.
    pub max_bytes: u64,
    /// Rotated files kept.
    pub keep: usize,
}

impl AuditConfig {
    /// A log at `path`, rotated at 10 MB, 5 old files kept.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            max_bytes: 10 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// What a record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A line a character said (generated, or the replacement of a flagged one).
    Line,
    /// A player's message, flagged or refused (over the limit) and not answered by the model.
    Input,
}

/// One record. Never holds API keys or other secrets: only what was said and by whom.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// What it is about.
    pub kind: AuditKind,
    /// The NPC (the game's name for it, or its entity).
    pub npc: String,
    /// Its persona id.
    pub persona: Option<String>,
    /// The story's id (`None`: free chat).
    pub story: Option<String>,
    /// A hash of the prompt (first 16 hex digits of its SHA-256), to group records by context
    /// without storing it.
    pub prompt_hash: Option<String>,
    /// What the player said (for an answer, or the message judged).
    pub player_text: Option<String>,
    /// What the character said (what the player saw).
    pub output: Option<String>,
    /// The rules broken.
    pub flags: Vec<Flag>,
    /// The backend's label (model file or server).
    pub model: String,
}

impl AuditRecord {
    /// A record stamped now.
    pub fn now(kind: AuditKind, npc: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            time_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            kind,
            npc: npc.into(),
            persona: None,
            story: None,
            prompt_hash: None,
            player_text: None,
            output: None,
            flags: Vec::new(),
            model: model.into(),
        }
    }
}

/// The first 16 hex digits of the SHA-256 of `text`.
pub fn prompt_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Why the log cannot be written.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {source}")]
pub struct AuditError {
    /// The file.
    pub path: PathBuf,
    /// The error.
    pub source: std::io::Error,
}

/// The log's writer: records go to a thread that appends and rotates, so logging never
/// blocks the caller (a full queue drops the record and counts it).
#[derive(Debug)]
pub struct AuditLog {
    tx: Option<crossbeam_channel::Sender<AuditRecord>>,
    thread: Option<std::thread::JoinHandle<()>>,
    dropped: std::sync::atomic::AtomicU64,
}

impl AuditLog {
    /// Opens (or creates) the log; fails if the file cannot be opened for appending.
    pub fn open(config: AuditConfig) -> Result<Self, AuditError> {
        let mut file = Rotating::open(config)?;
        let (tx, rx) = crossbeam_channel::bounded::<AuditRecord>(1024);
        let thread = std::thread::Builder::new()
            .name("dialogue-audit".into())
            .spawn(move || {
                for record in rx {
                    if let Err(e) = file.append(&record) {
                        tracing::warn!("{e}");
                    }
                }
            })
            .map_err(|source| AuditError {
                path: PathBuf::new(),
                source,
            })?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            dropped: Default::default(),
        })
    }

    /// Queues a record. Never blocks.
    pub fn log(&self, record: AuditRecord) {
        if let Some(tx) = &self.tx
            && tx.try_send(record).is_err()
        {
            self.dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Records dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Writes what is queued and closes the file.
    pub fn close(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

struct Rotating {
    config: AuditConfig,
    file: File,
    size: u64,
}

impl Rotating {
    fn open(config: AuditConfig) -> Result<Self, AuditError> {
        let err = |source| AuditError {
            path: config.path.clone(),
            source,
        };
        if let Some(dir) = config.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .map_err(err)?;
        let size = file.metadata().map_err(err)?.len();
        Ok(Self { config, file, size })
    }

    fn append(&mut self, record: &AuditRecord) -> Result<(), AuditError> {
        self.write(record).map_err(|source| AuditError {
            path: self.config.path.clone(),
            source,
        })
    }

    fn write(&mut self, record: &AuditRecord) -> std::io::Result<()> {
        let mut line = serde_json::to_string(record)?;
        line.push('\n');
        if self.size > 0
            && self.size + line.len() as u64 > self.config.max_bytes
            && let Err(e) = self.rotate()
        {
            // The record is not lost: it goes on the file in hand (past its size), and the
            // rotation is tried again at the next record. Nothing is deleted on failure.
            tracing::warn!(
                "audit log {}: rotation failed ({e}); writing on past {} bytes",
                self.config.path.display(),
                self.config.max_bytes
            );
        }
        self.file.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        let path = &self.config.path;
        for i in (1..self.config.keep).rev() {
            let from = rotated(path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(path, i + 1))?;
            }
        }
        if self.config.keep > 0 {
            std::fs::rename(path, rotated(path, 1))?;
        } else {
            std::fs::remove_file(path)?;
        }
        self.file = OpenOptions::new().create(true).append(true).open(path)?;
        self.size = 0;
        Ok(())
    }
}

/// The `i`-th rotated file of the log at `path` (`log.jsonl.1`).
pub fn rotated(path: &Path, i: usize) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// What a log says, in numbers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditSummary {
    /// Files read (the log and its rotated files).
    pub files: usize,
    /// Records read.
    pub records: usize,
    /// Lines spoken.
    pub lines: usize,
    /// Records with at least one flag.
    pub flagged: usize,
    /// Flags on player text.
    pub input_flags: usize,
    /// Flags on generated lines.
    pub output_flags: usize,
    /// Flags by rule id.
    pub by_rule: BTreeMap<String, usize>,
    /// Flagged records by NPC.
    pub by_npc: BTreeMap<String, usize>,
    /// Records by model.
    pub by_model: BTreeMap<String, usize>,
    /// The earliest and latest record (ms since the epoch).
    pub span_ms: Option<(u64, u64)>,
    /// Lines that are not records, as `file:line`.
    pub unreadable: Vec<String>,
}

/// Reads the log at `path` and its rotated files and sums them up. A missing log is an error;
/// a line that is not a record is listed, not fatal.
pub fn summarize(path: &Path) -> Result<(AuditSummary, Vec<AuditRecord>), AuditError> {
    let mut files = vec![path.to_owned()];
    files.extend((1..).map(|i| rotated(path, i)).take_while(|p| p.exists()));
    let mut s = AuditSummary::default();
    let mut flagged = Vec::new();
    for f in files.iter().rev() {
        let file = File::open(f).map_err(|source| AuditError {
            path: f.clone(),
            source,
        })?;
        s.files += 1;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|source| AuditError {
                path: f.clone(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(r) = serde_json::from_str::<AuditRecord>(&line) else {
                s.unreadable.push(format!("{}:{}", f.display(), n + 1));
                continue;
            };
            s.records += 1;
            if r.kind == AuditKind::Line {
                s.lines += 1;
            }
            *s.by_model.entry(r.model.clone()).or_default() += 1;
            s.span_ms = Some(match s.span_ms {
                Some((a, b)) => (a.min(r.time_ms), b.max(r.time_ms)),
                None => (r.time_ms, r.time_ms),
            });
            if !r.flags.is_empty() {
                s.flagged += 1;
                *s.by_npc.entry(r.npc.clone()).or_default() += 1;
                for flag in &r.flags {
                    *s.by_rule.entry(flag.rule.clone()).or_default() += 1;
                    match flag.direction {
                        Direction::Input => s.input_flags += 1,
                        Direction::Output => s.output_flags += 1,
                    }
                }
                flagged.push(r);
            }
        }
    }
    Ok((s, flagged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_rotate_by_size_and_the_summary_reads_them_all() {
        let dir = std::env::temp_dir().join(format!("audit-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("dialogue.jsonl");
        let mut log = AuditLog::open(AuditConfig {
            path: path.clone(),
            max_bytes: 600,
            keep: 2,
        })
        .unwrap();
        for i in 0..10 {
            let mut r = AuditRecord::now(AuditKind::Line, format!("npc{}", i % 2), "test");
            r.output = Some(format!("line {i}"));
            if i % 3 == 0 {
                r.flags.push(Flag {
                    rule: "r".into(),
                    direction: Direction::Output,
                    matched: "x".into(),
                    by: "safety.ron".into(),
                });
            }
            log.log(r);
        }
        log.close();
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only `keep` old files");
        for f in [path.clone(), rotated(&path, 1)] {
            assert!(std::fs::metadata(&f).unwrap().len() <= 600);
        }
        let (s, flagged) = summarize(&path).unwrap();
        assert!(
            s.records < 10 && s.records >= 3,
            "the oldest were rotated away: {s:?}"
        );
        assert_eq!(s.flagged, flagged.len());
        assert_eq!(s.by_rule.values().sum::<usize>(), s.output_flags);
        let newest = flagged.last().unwrap();
        assert_eq!(newest.output.as_deref(), Some("line 9"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A rename that fails mid-rotation (here `.1` cannot become `.2`: a folder is in the way)
    /// loses no record and erases no history: records go on the current file.
    #[test]
    fn a_failed_rotation_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("audit-fail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("dialogue.jsonl");
        std::fs::create_dir_all(rotated(&path, 2).join("in-the-way")).unwrap();
        std::fs::write(rotated(&path, 1), "{\"old\": true}\n").unwrap();
        let mut log = AuditLog::open(AuditConfig {
            path: path.clone(),
            max_bytes: 300,
            keep: 2,
        })
        .unwrap();
        for i in 0..12 {
            let mut r = AuditRecord::now(AuditKind::Line, "npc", "test");
            r.output = Some(format!("line {i}"));
            log.log(r);
        }
        log.close();
        let text = std::fs::read_to_string(&path).unwrap();
        for i in 0..12 {
            assert!(text.contains(&format!("\"line {i}\"")), "line {i} lost");
        }
        assert_eq!(
            std::fs::read_to_string(rotated(&path, 1)).unwrap(),
            "{\"old\": true}\n",
            "history kept"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
