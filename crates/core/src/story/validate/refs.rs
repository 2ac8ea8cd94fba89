//! Checks of references: speakers, variables, interpolations, conditions, effects, targets.

use super::super::expr::{Expr, ExprError, conditions, parse_text, vars_read};
use super::super::model::{Effect, Node, VarType};
use super::{Check, PLAYER, suggest};

impl Check<'_> {
    pub(super) fn check_speaker(&mut self, node: &str, who: &str, what: &str) {
        if !self.cast.contains_key(who) && !self.story.cast.contains_key(who) {
            let help = suggest(who, self.story.cast.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| Some("add the persona to the story's `cast`".into()));
            self.error(
                self.in_node(node, who),
                format!("{what} `{who}` is not in the cast"),
                help,
            );
        }
    }

    pub(super) fn check_text(&mut self, node: &str, text: &str) {
        let pieces = match parse_text(text) {
            Ok(p) => p,
            Err(why) => {
                return self.error(
                    self.in_node(node, text),
                    format!("in text {text:?}: {why}"),
                    None,
                );
            }
        };
        let mut read = Vec::new();
        vars_read(&pieces, &mut read);
        for v in read {
            if !self.env.contains_key(&v) {
                let help = suggest(&v, self.env.keys().map(String::as_str))
                    .map(|s| format!("did you mean `{s}`?"))
                    .or_else(|| Some("declare it in `variables`".into()));
                self.error(
                    self.in_node(node, text),
                    format!("`{{{v}}}` is not a declared variable"),
                    help,
                );
            }
        }
        let mut conds = Vec::new();
        conditions(&pieces, &mut conds);
        for c in conds {
            self.condition_in(node, &c, text);
        }
    }

    pub(super) fn check_condition(&mut self, node: &str, cond: &str) {
        self.condition_in(node, cond, cond);
    }

    /// Checks `cond`, reporting at the string literal `located` (the condition itself, or the
    /// text holding an `{if …}` block).
    fn condition_in(&mut self, node: &str, cond: &str, located: &str) {
        if let Ok(expr) = Expr::parse(cond) {
            self.check_nodes_asked(node, located, &expr);
        }
        if let Err(e) = Expr::parse(cond).and_then(|e| e.check_condition(&self.env)) {
            let help = match &e {
                ExprError::Undeclared { name } => {
                    suggest(name, self.env.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some("declare it in `variables`".into()))
                }
                _ => None,
            };
            self.error(self.in_node(node, located), format!("condition: {e}"), help);
        }
    }

    /// The nodes of `visits(..)` / `seen(..)` must exist.
    pub(super) fn check_nodes_asked(&mut self, node: &str, source: &str, expr: &Expr) {
        for asked in expr.nodes_asked() {
            if !self.ids.contains(asked) {
                let help = suggest(asked, self.story.nodes.iter().map(Node::id))
                    .map(|s| format!("did you mean `{s}`?"));
                self.error(
                    self.in_node(node, source),
                    format!("`{source}` asks about node `{asked}`, which is not a node"),
                    help,
                );
            }
        }
    }

    pub(super) fn var_type(&mut self, node: &str, name: &str) -> Option<VarType> {
        let t = self.env.get(name).copied();
        if t.is_none() {
            let help = suggest(name, self.env.keys().map(String::as_str))
                .map(|s| format!("did you mean `{s}`?"))
                .or_else(|| Some("declare it in `variables`".into()));
            self.error(
                self.in_node(node, name),
                format!("effect on `{name}`, which is not a declared variable"),
                help,
            );
        }
        t
    }

    pub(super) fn check_effects(&mut self, node: &str, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::Set(var, expr) => {
                    let Some(want) = self.var_type(node, var) else {
                        continue;
                    };
                    if let Ok(parsed) = Expr::parse(expr) {
                        self.check_nodes_asked(node, expr, &parsed);
                    }
                    match Expr::parse(expr).and_then(|x| x.check(&self.env)) {
                        Err(err) => self.error(
                            self.in_node(node, expr),
                            format!("Set(\"{var}\", ..): {err}"),
                            None,
                        ),
                        Ok(got)
                            if got == want || (want == VarType::Float && got == VarType::Int) => {}
                        Ok(got) => self.error(
                            self.in_node(node, expr),
                            format!("Set(\"{var}\", {expr:?}) gives {got}, but `{var}` is {want}"),
                            None,
                        ),
                    }
                }
                Effect::Add(var, by) => match self.var_type(node, var) {
                    Some(VarType::Int) if by.fract() != 0.0 => self.error(
                        self.in_node(node, var),
                        format!(
                            "Add(\"{var}\", {by}): `{var}` is int, so the amount must be whole"
                        ),
                        None,
                    ),
                    Some(VarType::Int | VarType::Float) | None => {}
                    Some(t) => self.error(
                        self.in_node(node, var),
                        format!("Add(\"{var}\", ..): `{var}` is {t}, not a number"),
                        None,
                    ),
                },
                Effect::Flag(var) | Effect::Clear(var) => match self.var_type(node, var) {
                    Some(VarType::Bool) | None => {}
                    Some(t) => self.error(
                        self.in_node(node, var),
                        format!("Flag/Clear(\"{var}\"): `{var}` is {t}, not bool"),
                        Some(format!("use Set(\"{var}\", ..) to change it")),
                    ),
                },
                Effect::Relate(npc, toward, _) => {
                    self.check_speaker(node, npc, "Relate: NPC");
                    if toward != PLAYER {
                        self.check_speaker(node, toward, "Relate: target");
                    }
                }
                Effect::Remember(npc, fact) => {
                    self.check_speaker(node, npc, "Remember: NPC");
                    self.check_text(node, fact);
                }
            }
        }
    }

    pub(super) fn check_target(&mut self, node: &str, target: &str) {
        if !self.ids.contains(target) {
            let help = suggest(target, self.story.nodes.iter().map(Node::id))
                .map(|s| format!("did you mean `{s}`?"));
            self.error(
                self.in_node(node, target),
                format!("`{node}` leads to `{target}`, which is not a node"),
                help,
            );
        }
    }
}
