//! The line format a speaking NPC is held to, as a grammar and as prompt instructions.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use super::{ActionDecl, ArgType, ranges};
use crate::engine::constrain::Constraint;

/// Characters the spoken words may not contain: they open or close markup.
pub(super) const MARKUP: &[char] = &['[', ']', '<', '>', '{', '}', '\n'];

/// What one line may carry besides its words: an emotion out of `emotions` (when any are
/// declared, every line opens with one), and at most one call of one of `actions`. Names must be identifiers (`[a-z_][a-z0-9_]*`), which `check` enforces.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineFormat {
    /// The emotions the NPC can show.
    pub emotions: Vec<String>,
    /// The actions allowed in this line, by name.
    pub actions: BTreeMap<String, ActionDecl>,
    /// Longest spoken text, in characters.
    pub max_chars: u32,
}

impl LineFormat {
    /// The default longest spoken text.
    pub const DEFAULT_MAX_CHARS: u32 = 240;

    /// A format with `emotions` and `actions` and the default text length.
    pub fn new(emotions: Vec<String>, actions: BTreeMap<String, ActionDecl>) -> Self {
        Self {
            emotions,
            actions,
            max_chars: Self::DEFAULT_MAX_CHARS,
        }
    }

    /// Whether the line carries anything but words (without, no constraint is needed).
    pub fn is_plain(&self) -> bool {
        self.emotions.is_empty() && self.actions.is_empty()
    }

    /// The grammar (llguidance's Lark) of a line in this format.
    pub fn grammar(&self) -> String {
        let mut g = String::from("start: ");
        if !self.emotions.is_empty() {
            g.push_str("emotion ");
        }
        g.push_str("WORDS");
        if self.actions.values().any(|d| args(d).is_some()) {
            g.push_str(" call?");
        }
        g.push('\n');
        if !self.emotions.is_empty() {
            let names: Vec<String> = self.emotions.iter().map(|e| literal(e)).collect();
            let _ = writeln!(g, "emotion: \"[\" ({}) \"] \"", names.join(" | "));
        }
        let forbidden: String = MARKUP.iter().map(|c| escape_class(*c)).collect();
        let _ = writeln!(
            g,
            "WORDS: /[^ {forbidden}][^{forbidden}]{{0,{}}}/",
            self.max_chars.saturating_sub(1)
        );
        // An action whose declaration admits no value (`check` reports it) cannot be called.
        let callable: Vec<String> = self
            .actions
            .iter()
            .filter_map(|(name, decl)| match args(decl) {
                None => None,
                Some(a) if a.is_empty() => Some(literal(name)),
                Some(a) => Some(format!("{} {a}", literal(&format!("{name} ")))),
            })
            .collect();
        if !callable.is_empty() {
            let calls: Vec<String> = (0..callable.len()).map(|i| format!("act{i}")).collect();
            let _ = writeln!(g, "call: \"<\" ({}) \">\"", calls.join(" | "));
            for (i, call) in callable.iter().enumerate() {
                let _ = writeln!(g, "act{i}: {call}");
            }
        }
        g
    }

    /// The grammar as a constraint for a generate request.
    pub fn constraint(&self) -> Constraint {
        Constraint::Lark(self.grammar())
    }

    /// What the prompt tells the model about the format and the actions.
    pub fn instructions(&self) -> String {
        let mut s = String::new();
        if !self.emotions.is_empty() {
            let _ = write!(
                s,
                "Begin with how you feel in brackets, one of: {}. ",
                self.emotions.join(", ")
            );
        }
        if !self.actions.is_empty() {
            s.push_str("If you do something, end with one action in angle brackets:");
            for (name, decl) in &self.actions {
                let _ = write!(s, " <{name}");
                if !decl.args.is_empty() {
                    let args: Vec<String> = decl
                        .args
                        .iter()
                        .map(|(k, t)| format!("\"{k}\": {}", t.describe()))
                        .collect();
                    let _ = write!(s, " {{{}}}", args.join(", "));
                }
                let _ = write!(s, "> to {};", decl.description.trim_end_matches('.'));
            }
            s.pop();
            s.push('.');
        }
        s
    }
}

/// The arguments object, compact JSON with the keys in order, each value held to its type and
/// range by the grammar (numbers included, so no float runs on digit after digit).
/// Empty for an action without arguments; `None` when an argument admits no value.
fn args(decl: &ActionDecl) -> Option<String> {
    if decl.args.is_empty() {
        return Some(String::new());
    }
    let fields = decl
        .args
        .iter()
        .map(|(k, t)| {
            let key = literal(&format!("{}:", Value::String(k.clone())));
            value(t).map(|v| format!("{key} {v}"))
        })
        .collect::<Option<Vec<String>>>()?;
    Some(format!("\"{{\" {} \"}}\"", fields.join(" \",\" ")))
}

fn value(ty: &ArgType) -> Option<String> {
    if ty.problem().is_some() {
        return None;
    }
    Some(match ty {
        ArgType::Text { max_len } => {
            format!(r#""\"" /[^"\\\x00-\x1f]{{1,{max_len}}}/? "\"""#)
        }
        ArgType::Int { min, max } => format!("/{}/", ranges::int_range(*min, *max)),
        ArgType::Float { min, max } => format!("/{}/", ranges::decimal_range(*min, *max)?),
        ArgType::Bool => r#"("true" | "false")"#.into(),
        ArgType::OneOf(words) => {
            let alts: Vec<String> = words
                .iter()
                .map(|w| literal(&Value::String(w.clone()).to_string()))
                .collect();
            format!("({})", alts.join(" | "))
        }
    })
}

/// A Lark string literal (JSON's escaping is a subset of Lark's).
fn literal(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

fn escape_class(c: char) -> String {
    match c {
        '\n' => "\\n".into(),
        '[' | ']' | '{' | '}' | '/' | '\\' | '^' | '-' => format!("\\{c}"),
        c => c.to_string(),
    }
}
