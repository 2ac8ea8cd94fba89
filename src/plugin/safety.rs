//! Safety in the running game: the rules of `safety.ron` and any [`Moderator`] the game adds,
//! applied to what players type (input limit, deflection lines) and to every streamed line
//! (held back until it cannot start a banned phrase; a line that breaks a rule is replaced
//! before the player sees it), with [`DialogueFlagged`] and [`PlayerInputLimited`] events and
//! the opt-in audit log.

use std::path::PathBuf;
use std::sync::Arc;

use bevy::prelude::*;

use crate::engine::backend::Prompt;
use crate::engine::safety::{BannedPhrases, StreamGuard};
use crate::story::safety::{
    AuditConfig, AuditKind, AuditLog, AuditRecord, Flag, ModerationContext, Moderator, SAFETY_FILE,
    SafetyRules, prompt_hash,
};

/// The plugin's safety settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SafetyConfig {
    /// The rules file, relative to the stories folder; read when the plugin starts. A missing
    /// file means no rules (the input limit's defaults still apply). A file that does not load
    /// fails closed: its `file:line:col` errors are reported and every player message gets the
    /// deflection line until the file is fixed.
    pub rules_file: Option<PathBuf>,
    /// Re-read the rules file when it changes on disk (its time and size are looked at once a
    /// frame). A change that does not load keeps the last good rules in force.
    pub watch: bool,
    /// Write an audit log (off by default).
    pub audit: Option<AuditConfig>,
}

impl Default for SafetyConfig {
    fn default() -> Self {
        Self {
            rules_file: Some(SAFETY_FILE.into()),
            watch: true,
            audit: None,
        }
    }
}

/// The name of the flag raised on every player message while the rules file does not load.
pub const RULES_NOT_LOADED: &str = "safety.ron did not load";

/// The rules file being watched: where, and what it looked like when last read.
struct RulesFile {
    path: PathBuf,
    seen: Option<(std::time::SystemTime, u64)>,
}

impl RulesFile {
    fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }
}

/// Player text broke a rule (the NPC answered with the deflection line, the story did not
/// move), or a generated line did (it was replaced before the player saw the rule broken).
#[derive(EntityEvent, Debug, Clone)]
pub struct DialogueFlagged {
    /// The NPC spoken to, or speaking.
    pub entity: Entity,
    /// What was flagged, by which rule and moderator.
    pub flag: Flag,
    /// What the NPC said instead.
    pub replaced_with: String,
}

/// A player's message was longer than `safety.ron`'s `input.max_chars`: it was cut (and used)
/// or refused (the NPC does not answer it).
#[derive(EntityEvent, Debug, Clone)]
pub struct PlayerInputLimited {
    /// The NPC it was said to.
    pub entity: Entity,
    /// Its length in characters.
    pub chars: usize,
    /// The limit.
    pub max_chars: usize,
    /// Refused rather than cut.
    pub refused: bool,
}

/// The safety rules, the game's own moderators and the audit log. Change it at run time:
/// [`set_rules`](Self::set_rules), [`add_moderator`](Self::add_moderator).
#[derive(Resource, Default)]
pub struct DialogueSafety {
    rules: Arc<SafetyRules>,
    moderators: Vec<Arc<dyn Moderator>>,
    audit: Option<AuditLog>,
    /// Why the rules file does not load, while no good rules were ever read from it.
    closed: Option<String>,
    /// Good rules were read from the file or set by the game.
    have_rules: bool,
    watched: Option<RulesFile>,
}

impl DialogueSafety {
    /// Reads the rules named by `config` under `stories_dir` and opens the audit log.
    pub(crate) fn start(config: &SafetyConfig, stories_dir: &std::path::Path) -> Self {
        let mut safety = Self::default();
        if let Some(file) = &config.rules_file {
            let path = stories_dir.join(file);
            if path.exists() {
                safety.read(&path);
            } else {
                info!("no safety rules ({} does not exist)", path.display());
            }
            if config.watch {
                safety.watched = Some(RulesFile {
                    seen: RulesFile::stamp(&path),
                    path,
                });
            }
        }
        safety.audit = config.audit.clone().and_then(|a| match AuditLog::open(a) {
            Ok(log) => Some(log),
            Err(e) => {
                error!("{e}; no audit log is written");
                None
            }
        });
        safety
    }

    /// Reads `path`: good rules replace the rules in force; a file that does not load keeps
    /// the last good rules, or, when there were none, closes free text until it loads.
    fn read(&mut self, path: &std::path::Path) {
        match SafetyRules::load(path) {
            Ok(r) => {
                info!(
                    "safety rules: {} ({} rules)",
                    path.display(),
                    r.file.rules.len()
                );
                self.set_rules(r);
            }
            Err(d) if !self.have_rules => {
                error!(
                    "{d}the safety rules did not load: every player message gets the \
                     deflection line until the file is fixed"
                );
                self.closed = Some(d.to_string());
            }
            Err(d) => error!("{d}the last good safety rules stay in force"),
        }
    }

    /// Why the rules file does not load, while player text is refused for it (`None` when the
    /// rules in force are good or there is no rules file).
    pub fn load_error(&self) -> Option<&str> {
        self.closed.as_deref()
    }

    /// The rules in force.
    pub fn rules(&self) -> &SafetyRules {
        &self.rules
    }

    /// Replaces the rules (lines already streaming keep the rules they started with) and opens
    /// free text again if a broken rules file had closed it.
    pub fn set_rules(&mut self, rules: SafetyRules) {
        self.rules = Arc::new(rules);
        self.closed = None;
        self.have_rules = true;
    }

    /// Adds a moderator, asked after the rules.
    pub fn add_moderator(&mut self, moderator: impl Moderator) {
        self.moderators.push(Arc::new(moderator));
    }

    /// Writes a record to the audit log, if there is one.
    pub fn audit(&self, record: impl FnOnce() -> AuditRecord) {
        if let Some(log) = &self.audit {
            log.log(record());
        }
    }

    /// Whether an audit log is written.
    pub fn audits(&self) -> bool {
        self.audit.is_some()
    }

    /// Player text against the rules, then the moderators: the first flag. Every message is
    /// flagged while the rules file does not load.
    pub(crate) fn check_input(&self, text: &str, ctx: &ModerationContext<'_>) -> Option<Flag> {
        if self.closed.is_some() {
            return Some(Flag {
                rule: RULES_NOT_LOADED.into(),
                direction: crate::story::safety::Direction::Input,
                matched: String::new(),
                by: "safety.ron".into(),
            });
        }
        self.rules.check_input(text, ctx).or_else(|| {
            self.moderators
                .iter()
                .find_map(|m| m.check_input(text, ctx))
        })
    }

    /// The guard of a line spoken by `persona` in `story`, for `prompt`.
    pub(crate) fn guard(
        &self,
        persona: Option<&str>,
        story: Option<&str>,
        prompt: &Prompt,
        said: Option<&str>,
    ) -> LineGuard {
        LineGuard {
            stream: self
                .rules
                .banned_output(persona, story)
                .map(StreamGuard::new),
            rules: self.rules.clone(),
            moderators: self.moderators.clone(),
            persona: persona.map(str::to_owned),
            story: story.map(str::to_owned),
            prompt_hash: self
                .audits()
                .then(|| prompt_hash(&format!("{}\n{:?}", prompt.system, prompt.turns))),
            said: said.map(str::to_owned),
            held: String::new(),
            started: false,
        }
    }
}

/// Re-reads the rules file when its time or size changed (`SafetyConfig::watch`).
pub(crate) fn reload_rules(mut safety: ResMut<DialogueSafety>) {
    let Some(watched) = &safety.bypass_change_detection().watched else {
        return;
    };
    let stamp = RulesFile::stamp(&watched.path);
    if stamp == watched.seen || stamp.is_none() {
        // Unchanged, or gone: a deleted file keeps the rules read last.
        return;
    }
    let path = watched.path.clone();
    if let Some(w) = &mut safety.watched {
        w.seen = stamp;
    }
    safety.read(&path);
}

/// One streaming line's safety: the stream guard of its banned phrases, the game's moderators,
/// and what the audit log records about it.
pub(crate) struct LineGuard {
    stream: Option<StreamGuard>,
    rules: Arc<SafetyRules>,
    moderators: Vec<Arc<dyn Moderator>>,
    pub persona: Option<String>,
    pub story: Option<String>,
    pub prompt_hash: Option<String>,
    pub said: Option<String>,
    /// Text held for moderators that judge whole lines.
    held: String,
    /// Whether any text has come in.
    started: bool,
}

impl std::fmt::Debug for LineGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineGuard")
            .field("persona", &self.persona)
            .field("story", &self.story)
            .finish_non_exhaustive()
    }
}

impl LineGuard {
    /// The phrases this line must not contain (for the request: the local model bans them
    /// while decoding).
    pub fn banned(&self) -> Option<Arc<BannedPhrases>> {
        self.stream.as_ref().map(|g| g.phrases().clone())
    }

    /// Whether any of the line's words came in (held back or shown).
    pub fn started(&self) -> bool {
        self.started
    }

    fn ctx(&self) -> ModerationContext<'_> {
        ModerationContext {
            persona: self.persona.as_deref(),
            story: self.story.as_deref(),
        }
    }

    fn whole_lines(&self) -> bool {
        self.moderators.iter().any(|m| m.whole_lines())
    }

    /// A streamed piece of the line's words, `shown` the words shown so far: what may be shown
    /// now, or the flag that ends the line.
    pub fn push(&mut self, shown: &str, words: &str) -> Result<String, Flag> {
        self.started |= !words.is_empty();
        let emit = match &mut self.stream {
            Some(g) => {
                let o = g.push(words);
                if let Some(hit) = o.hit {
                    return Err(self.phrase_flag(hit.rule, o.matched));
                }
                o.emit
            }
            None => words.to_owned(),
        };
        self.moderated(shown, emit, false)
    }

    /// The stream ended: the rest that may be shown, or the flag that replaces the line.
    pub fn finish(&mut self, shown: &str) -> Result<String, Flag> {
        let emit = match &mut self.stream {
            Some(g) => {
                let o = g.finish();
                if let Some(hit) = o.hit {
                    return Err(self.phrase_flag(hit.rule, o.matched));
                }
                o.emit
            }
            None => String::new(),
        };
        self.moderated(shown, emit, true)
    }

    fn moderated(&mut self, shown: &str, emit: String, complete: bool) -> Result<String, Flag> {
        if self.moderators.is_empty() {
            return Ok(emit);
        }
        self.held.push_str(&emit);
        if self.whole_lines() && !complete {
            return Ok(String::new());
        }
        let line = format!("{shown}{}", self.held);
        let ctx = self.ctx();
        let flag = self.moderators.iter().find_map(|m| {
            (!m.whole_lines() || complete)
                .then(|| m.check_output(&line, &ctx))
                .flatten()
        });
        match flag {
            Some(f) => Err(f),
            None => Ok(std::mem::take(&mut self.held)),
        }
    }

    fn phrase_flag(&self, rule: usize, matched: String) -> Flag {
        Flag {
            rule: self
                .rules
                .rule(rule)
                .map_or_else(String::new, |r| r.id.clone()),
            direction: crate::story::safety::Direction::Output,
            matched,
            by: "safety.ron".into(),
        }
    }

    /// What replaces a line flagged by `flag`: the rule's replacement, the file's, else the
    /// line's `fallback`; one that breaks a rule itself is never used (`…` then).
    pub fn replacement<'a>(&'a self, flag: &Flag, fallback: &'a str) -> &'a str {
        let line = self
            .rules
            .file
            .rules
            .iter()
            .position(|r| r.id == flag.rule)
            .and_then(|i| self.rules.replacement(i))
            .or(self.rules.file.fallback.as_deref())
            .unwrap_or(fallback);
        let ctx = self.ctx();
        let breaks = self.rules.check_output(line, &ctx).is_some()
            || self
                .moderators
                .iter()
                .any(|m| m.check_output(line, &ctx).is_some());
        if breaks { "…" } else { line }
    }

    /// A record of the line for the audit log.
    pub fn record(&self, npc: Entity, model: &str, output: &str, flags: Vec<Flag>) -> AuditRecord {
        let mut r = AuditRecord::now(AuditKind::Line, format!("{npc}"), model);
        r.persona = self.persona.clone();
        r.story = self.story.clone();
        r.prompt_hash = self.prompt_hash.clone();
        r.player_text = self.said.clone();
        r.output = Some(output.to_owned());
        r.flags = flags;
        r
    }
}
