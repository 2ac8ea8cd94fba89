//! Semantic checks of a parsed story and its cast. Every finding points at the offending text.

mod acts;
mod budget;
mod graph;
mod nodes;
mod reach;
mod refs;
mod voice;

pub use reach::MAX_STATES;

use std::collections::BTreeMap;

use super::budget::TokenCounter;
use super::diagnostic::{Diagnostic, Diagnostics, Location, SourceText};
use super::expr::{Expr, TypeEnv};
use super::load::CastMember;
use super::model::{Node, Story};

/// The relationship target every persona may name besides the cast.
pub const PLAYER: &str = "player";

struct Check<'a> {
    src: &'a SourceText,
    story: &'a Story,
    cast: &'a BTreeMap<String, CastMember>,
    env: TypeEnv,
    out: Vec<Diagnostic>,
    /// Every node id (for existence checks without a scan per edge).
    ids: std::collections::HashSet<&'a str>,
    /// Each node id's `id:` field offsets in file order, found once on first use.
    node_ids: std::cell::OnceCell<std::collections::HashMap<String, Vec<usize>>>,
    /// Which nodes the edges reach from the start, ignoring conditions (set by `graph`).
    reachable: Vec<bool>,
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(name, "true" | "false" | "visits" | "seen")
        && !name.starts_with("__")
}

/// The closest of `candidates` to `wrong`, if close enough to be a typo.
fn suggest<'a>(wrong: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .map(|c| (strsim::levenshtein(wrong, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Runs every check.
pub fn validate(
    src: &SourceText,
    story: &Story,
    cast: &BTreeMap<String, CastMember>,
    counter: &dyn TokenCounter,
) -> Diagnostics {
    let env: TypeEnv = story
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.var_type()))
        .collect();
    let mut c = Check {
        src,
        story,
        cast,
        env,
        out: Vec::new(),
        ids: story.nodes.iter().map(|n| n.id()).collect(),
        node_ids: std::cell::OnceCell::new(),
        reachable: Vec::new(),
    };
    c.story_fields();
    c.personas();
    c.acts();
    c.voices();
    c.nodes();
    c.graph();
    c.branch_loops();
    c.budget(counter);
    c.play_throughs();
    Diagnostics(c.out)
}

impl Check<'_> {
    pub(super) fn loc(&self, offset: usize) -> Location {
        self.src.location(offset)
    }

    pub(super) fn error(&mut self, at: Location, msg: String, help: Option<String>) {
        let d = Diagnostic::error(&self.src.path, at, msg);
        self.out.push(match help {
            Some(h) => d.with_help(h),
            None => d,
        });
    }

    pub(super) fn warn(&mut self, at: Location, msg: String) {
        self.out.push(Diagnostic::warning(&self.src.path, at, msg));
    }

    /// Offset of the node `id`'s `id: "…"` field (its `n`th occurrence, for duplicates).
    pub(super) fn node_offset(&self, id: &str, nth: usize) -> usize {
        let nodes = self.src.find_field("nodes", 0).unwrap_or(0);
        let ids = self.node_ids.get_or_init(|| {
            // One pass over every `id: "…"` after `nodes`.
            let mut ids: std::collections::HashMap<String, Vec<usize>> = Default::default();
            for (id, at) in self.src.id_fields(nodes) {
                ids.entry(id).or_default().push(at);
            }
            ids
        });
        ids.get(id)
            .and_then(|offsets| offsets.get(nth))
            .copied()
            .unwrap_or(nodes)
    }

    /// Location of the literal `value` inside node `id` (or the node itself).
    pub(super) fn in_node(&self, id: &str, value: &str) -> Location {
        let start = self.node_offset(id, 0);
        self.loc(self.src.find_literal(value, start).unwrap_or(start))
    }

    pub(super) fn story_fields(&mut self) {
        if self.story.id.trim().is_empty() {
            let at = self.src.find_field("id", 0).unwrap_or(0);
            self.error(
                self.loc(at),
                "the story id is empty".into(),
                Some("saves name the story by this id".into()),
            );
        }
        let vars = self.src.find_field("variables", 0).unwrap_or(0);
        for name in self.story.variables.keys() {
            if !is_identifier(name) {
                let at = self.src.find_literal(name, vars).unwrap_or(vars);
                self.error(
                    self.loc(at),
                    format!("`{name}` is not a valid variable name"),
                    Some(
                        "use letters, digits and `_`, not starting with a digit or `__`, and not \
                         `visits`/`seen` (e.g. `has_key`)"
                            .into(),
                    ),
                );
            }
        }
        let t = self.story.settings.route_threshold;
        if !(0.0..=1.0).contains(&t) {
            let at = self.src.find_field("route_threshold", 0).unwrap_or(0);
            self.error(
                self.loc(at),
                format!("route_threshold is {t}; it is a probability between 0 and 1"),
                None,
            );
        }
        if self.story.node(&self.story.start).is_none() {
            let at = self.src.find_field("start", 0).unwrap_or(0);
            let at = self.src.find_literal(&self.story.start, at).unwrap_or(at);
            let help = suggest(&self.story.start, self.story.nodes.iter().map(Node::id))
                .map(|s| format!("did you mean `{s}`?"));
            self.error(
                self.loc(at),
                format!("the start node `{}` does not exist", self.story.start),
                help,
            );
        }
    }

    pub(super) fn personas(&mut self) {
        for (key, member) in self.cast {
            let p = &member.persona;
            let psrc = &member.source;
            if &p.id != key {
                let at = psrc.find_field("id", 0).unwrap_or(0);
                self.out.push(
                    Diagnostic::error(
                        &psrc.path,
                        psrc.location(at),
                        format!(
                            "persona id `{}` does not match its cast key `{key}` in {}",
                            p.id,
                            self.src.path.display()
                        ),
                    )
                    .with_help("use the same name in the story's cast and the persona's id"),
                );
            }
            let knowledge = psrc.find_field("knowledge", 0).unwrap_or(0);
            for fact in &p.knowledge {
                // Facts are authored text too: `{variable}` and inline blocks of this story.
                if let Err(why) = super::expr::check_text(&fact.text, &self.env) {
                    let at = psrc
                        .find_literal(&fact.text, knowledge)
                        .unwrap_or(knowledge);
                    self.out.push(Diagnostic::error(
                        &psrc.path,
                        psrc.location(at),
                        format!("fact {:?}: {why} in story `{}`", fact.text, self.story.id),
                    ));
                }
                let Some(when) = &fact.when else { continue };
                let problem = Expr::parse(when).and_then(|e| e.check_condition(&self.env));
                if let Err(e) = problem {
                    let at = psrc.find_literal(when, knowledge).unwrap_or(knowledge);
                    self.out.push(
                        Diagnostic::error(
                            &psrc.path,
                            psrc.location(at),
                            format!("fact gated on `{when}`: {e} in story `{}`", self.story.id),
                        )
                        .with_help(format!(
                            "declare it in {}'s `variables`",
                            self.src.path.display()
                        )),
                    );
                }
            }
            let rels = psrc.find_field("relationships", 0).unwrap_or(0);
            for who in p.relationships.keys() {
                if who != PLAYER && !self.cast.contains_key(who) {
                    let at = psrc.find_literal(who, rels).unwrap_or(rels);
                    self.out.push(Diagnostic::warning(
                        &psrc.path,
                        psrc.location(at),
                        format!("relationship to `{who}`, who is not in story `{}`'s cast (ignored there)", self.story.id),
                    ));
                }
            }
        }
    }
}
