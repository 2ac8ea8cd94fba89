//! Checks of the actions and emotions personas declare and the nodes that allow them.

use std::collections::HashSet;

use super::super::diagnostic::{Diagnostic, SourceText};
use super::super::model::Node;
use super::{Check, suggest};

/// Names the line grammar and game code can rely on: `[a-z_][a-z0-9_]*`.
fn is_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl Check<'_> {
    /// Each persona's emotions, actions and `chat_actions`; each `Generate` node's `actions`
    /// and `on_action`; actions nothing allows.
    pub(super) fn acts(&mut self) {
        let mut allowed: HashSet<(&str, &str)> = HashSet::new();
        for n in &self.story.nodes {
            if let Node::Generate {
                speaker, actions, ..
            } = n
            {
                allowed.extend(actions.iter().map(|a| (speaker.as_str(), a.as_str())));
            }
        }
        for (key, member) in self.cast {
            let (p, src) = (&member.persona, &member.source);
            let mut out = Vec::new();
            let emotions = src.find_field("emotions", 0).unwrap_or(0);
            let mut seen = HashSet::new();
            for e in &p.emotions {
                let at = src.location(src.find_literal(e, emotions).unwrap_or(emotions));
                if !is_name(e) {
                    out.push(Diagnostic::error(
                        &src.path,
                        at,
                        format!(
                            "emotion `{e}` is not a name: use lowercase letters, digits and `_`"
                        ),
                    ));
                } else if !seen.insert(e) {
                    out.push(Diagnostic::error(
                        &src.path,
                        at,
                        format!("emotion `{e}` is listed twice"),
                    ));
                }
            }
            let actions = src.find_field("actions", 0).unwrap_or(0);
            for (name, decl) in &p.actions {
                let start = src.find_literal(name, actions).unwrap_or(actions);
                let at = src.location(start);
                if !is_name(name) {
                    out.push(Diagnostic::error(
                        &src.path,
                        at,
                        format!(
                            "action `{name}` is not a name: use lowercase letters, digits and `_`"
                        ),
                    ));
                }
                for (arg, ty) in &decl.args {
                    let arg_at = src.location(src.find_literal(arg, start).unwrap_or(start));
                    if !is_name(arg) {
                        out.push(Diagnostic::error(
                            &src.path,
                            arg_at,
                            format!("action `{name}`: argument `{arg}` is not a name"),
                        ));
                    }
                    if let Some(problem) = ty.problem() {
                        out.push(Diagnostic::error(
                            &src.path,
                            arg_at,
                            format!("action `{name}`: argument `{arg}`: {problem}"),
                        ));
                    }
                }
                let chat = p.chat_actions.contains(name);
                if !chat && !allowed.contains(&(key.as_str(), name.as_str())) {
                    out.push(Diagnostic::warning(
                        &src.path,
                        at,
                        format!("action `{name}` is never allowed: no `Generate` node of `{key}` in story `{}` lists it, nor `chat_actions`", self.story.id),
                    ));
                }
            }
            let chat = src.find_field("chat_actions", 0).unwrap_or(0);
            for name in &p.chat_actions {
                if !p.actions.contains_key(name) {
                    out.push(undeclared(src, chat, name, &p.actions));
                }
            }
            self.out.extend(out);
        }
        for n in self.story.nodes.clone() {
            let Node::Generate {
                id,
                speaker,
                actions,
                on_action,
                ..
            } = &n
            else {
                continue;
            };
            let declared = self.cast.get(speaker).map(|m| &m.persona.actions);
            for name in actions {
                if let Some(declared) = declared
                    && !declared.contains_key(name)
                {
                    let help = suggest(name, declared.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            format!("declare it in `{speaker}`'s persona under `actions`")
                        });
                    self.error(
                        self.in_node(id, name),
                        format!(
                            "`{id}` allows action `{name}`, which `{speaker}` does not declare"
                        ),
                        Some(help),
                    );
                }
            }
            for name in on_action.keys() {
                if !actions.contains(name) {
                    self.error(
                        self.in_node(id, name),
                        format!("`{id}` has an `on_action` edge for `{name}`, which its `actions` do not allow"),
                        Some(format!("add \"{name}\" to the node's `actions`")),
                    );
                }
            }
        }
    }
}

fn undeclared(
    src: &SourceText,
    from: usize,
    name: &str,
    declared: &std::collections::BTreeMap<String, super::super::acts::ActionDecl>,
) -> Diagnostic {
    let at = src.location(src.find_literal(name, from).unwrap_or(from));
    let d = Diagnostic::error(
        &src.path,
        at,
        format!("`chat_actions` lists `{name}`, which `actions` does not declare"),
    );
    match suggest(name, declared.keys().map(String::as_str)) {
        Some(s) => d.with_help(format!("did you mean `{s}`?")),
        None => d,
    }
}
