//! Checks of each node kind.

use std::collections::HashMap;

use super::super::model::Node;
use super::{Check, suggest};

impl Check<'_> {
    pub(super) fn nodes(&mut self) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for n in &self.story.nodes {
            let id = n.id();
            let count = seen.entry(id).or_insert(0);
            *count += 1;
            if id.trim().is_empty() {
                self.error(
                    self.loc(self.node_offset(id, 0)),
                    "a node has an empty id".into(),
                    None,
                );
            } else if *count > 1 {
                let at = self.loc(self.node_offset(id, *count - 1));
                self.error(
                    at,
                    format!("node id `{id}` is used twice"),
                    Some("node ids must be unique; rename one".into()),
                );
            }
        }
        for n in self.story.nodes.clone().iter() {
            let id = n.id();
            if let Some(s) = n.speaker() {
                self.check_speaker(id, s, "speaker");
            }
            self.check_effects(id, n.effects());
            for t in n.targets() {
                self.check_target(id, t);
            }
            match n {
                Node::Line { text, .. } => self.check_text(id, text),
                Node::Generate {
                    directive,
                    fallback,
                    max_tokens,
                    ..
                } => {
                    self.check_text(id, directive);
                    self.check_text(id, fallback);
                    if fallback.trim().is_empty() {
                        self.error(
                            self.in_node(id, fallback),
                            format!("`{id}` has an empty fallback line"),
                            Some("players without a model see the fallback; write one".into()),
                        );
                    }
                    if *max_tokens == Some(0) {
                        let at = self
                            .src
                            .find_field("max_tokens", self.node_offset(id, 0))
                            .unwrap_or(0);
                        self.error(self.loc(at), format!("`{id}`: max_tokens is 0"), None);
                    }
                }
                Node::Choice { text, options, .. } => {
                    if let Some(t) = text {
                        self.check_text(id, t);
                    }
                    if options.is_empty() {
                        let at = self
                            .src
                            .find_field("options", self.node_offset(id, 0))
                            .unwrap_or(0);
                        self.error(
                            self.loc(at),
                            format!("choice `{id}` has no options, so there is no way out"),
                            Some("add an option or make it an Ending".into()),
                        );
                    } else if options.iter().all(|o| o.when.is_some()) {
                        let at = self.loc(self.node_offset(id, 0));
                        self.warn(at, format!("every option of `{id}` has a condition; if none holds the player is stuck"));
                    }
                    for o in options {
                        self.check_text(id, &o.text);
                        if let Some(w) = &o.when {
                            self.check_condition(id, w);
                        }
                        self.check_effects(id, &o.effects);
                    }
                }
                Node::FreeInput {
                    text,
                    edges,
                    threshold,
                    store,
                    ..
                } => {
                    if let Some(t) = text {
                        self.check_text(id, t);
                    }
                    if let Some(var) = store {
                        match self.env.get(var.as_str()).copied() {
                            Some(crate::story::VarType::String) => {}
                            None => {
                                let help = suggest(var, self.env.keys().map(String::as_str))
                                    .map(|s| format!("did you mean `{s}`?"))
                                    .or_else(|| {
                                        Some(format!("declare it: `\"{var}\": String(\"\")`"))
                                    });
                                self.error(
                                    self.in_node(id, var),
                                    format!("`{id}`: store: `{var}` is not a declared variable"),
                                    help,
                                );
                            }
                            Some(other) => self.error(
                                self.in_node(id, var),
                                format!(
                                    "`{id}`: store: `{var}` is {other}; what the player types is a string"
                                ),
                                Some(format!("declare it as `\"{var}\": String(\"\")`")),
                            ),
                        }
                    }
                    if let Some(t) = threshold
                        && !(0.0..=1.0).contains(t)
                    {
                        let at = self
                            .src
                            .find_field("threshold", self.node_offset(id, 0))
                            .unwrap_or(0);
                        self.error(
                            self.loc(at),
                            format!("`{id}`: threshold {t} is not a probability between 0 and 1"),
                            None,
                        );
                    }
                    for e in edges {
                        if e.intent.trim().is_empty() {
                            self.error(
                                self.in_node(id, &e.intent),
                                format!("`{id}`: an edge has an empty intent"),
                                Some(
                                    "describe what the player means, e.g. \"asks about the mill\""
                                        .into(),
                                ),
                            );
                        }
                        if e.keywords.is_empty() {
                            let at = self.in_node(id, &e.intent);
                            self.warn(at, format!("edge {:?} has no keywords: without a model it can never be taken", e.intent));
                        }
                        if let Some(w) = &e.when {
                            self.check_condition(id, w);
                        }
                        self.check_effects(id, &e.effects);
                    }
                }
                Node::Branch { cases, .. } => {
                    for c in cases {
                        self.check_condition(id, &c.when);
                    }
                }
                Node::Ending { text, .. } => {
                    if let Some(t) = text {
                        self.check_text(id, t);
                    }
                }
            }
        }
    }
}
