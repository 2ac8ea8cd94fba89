//! Semantic checks of a parsed story and its cast. Every finding points at the offending text.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::engine::chat::{ChatMessage, Role};

use super::budget::TokenCounter;
use super::diagnostic::{Diagnostic, Diagnostics, Location, SourceText};
use super::expr::{Expr, TypeEnv, parse_interpolation};
use super::load::CastMember;
use super::model::{Effect, Node, Story, VarType};
use super::prompt::{PromptParts, assemble, measure, state_text};

/// The relationship target every persona may name besides the cast.
pub const PLAYER: &str = "player";

struct Check<'a> {
    src: &'a SourceText,
    story: &'a Story,
    cast: &'a BTreeMap<String, CastMember>,
    env: TypeEnv,
    out: Vec<Diagnostic>,
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !matches!(name, "true" | "false")
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
    };
    c.story_fields();
    c.personas();
    c.nodes();
    c.graph();
    c.budget(counter);
    Diagnostics(c.out)
}

impl Check<'_> {
    fn loc(&self, offset: usize) -> Location {
        self.src.location(offset)
    }

    fn error(&mut self, at: Location, msg: String, help: Option<String>) {
        let d = Diagnostic::error(&self.src.path, at, msg);
        self.out.push(match help {
            Some(h) => d.with_help(h),
            None => d,
        });
    }

    fn warn(&mut self, at: Location, msg: String) {
        self.out.push(Diagnostic::warning(&self.src.path, at, msg));
    }

    /// Offset of the node `id`'s `id: "…"` field (its `n`th occurrence, for duplicates).
    fn node_offset(&self, id: &str, nth: usize) -> usize {
        let nodes = self.src.find_field("nodes", 0).unwrap_or(0);
        let mut from = nodes;
        let mut seen = 0;
        while let Some(at) = self.src.find_field("id", from) {
            let rest = self.src.text[at + 2..].trim_start();
            let rest = rest.strip_prefix(':').unwrap_or(rest).trim_start();
            if rest.starts_with(&format!("\"{id}\"")) {
                if seen == nth {
                    return at;
                }
                seen += 1;
            }
            from = at + 2;
        }
        nodes
    }

    /// Location of the literal `value` inside node `id` (or the node itself).
    fn in_node(&self, id: &str, value: &str) -> Location {
        let start = self.node_offset(id, 0);
        self.loc(self.src.find_literal(value, start).unwrap_or(start))
    }

    fn story_fields(&mut self) {
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
                        "use letters, digits and `_`, not starting with a digit (e.g. `has_key`)"
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

    fn personas(&mut self) {
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

    fn check_speaker(&mut self, node: &str, who: &str, what: &str) {
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

    fn check_text(&mut self, node: &str, text: &str) {
        match parse_interpolation(text) {
            Err(why) => self.error(
                self.in_node(node, text),
                format!("in text {text:?}: {why}"),
                None,
            ),
            Ok(pieces) => {
                for p in pieces {
                    if let super::expr::Piece::Var(v) = p
                        && !self.env.contains_key(v)
                    {
                        let help = suggest(v, self.env.keys().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"))
                            .or_else(|| Some("declare it in `variables`".into()));
                        self.error(
                            self.in_node(node, text),
                            format!("`{{{v}}}` is not a declared variable"),
                            help,
                        );
                    }
                }
            }
        }
    }

    fn check_condition(&mut self, node: &str, cond: &str) {
        if let Err(e) = Expr::parse(cond).and_then(|e| e.check_condition(&self.env)) {
            let help = match &e {
                super::expr::ExprError::Undeclared { name } => {
                    suggest(name, self.env.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some("declare it in `variables`".into()))
                }
                _ => None,
            };
            self.error(self.in_node(node, cond), format!("condition: {e}"), help);
        }
    }

    fn var_type(&mut self, node: &str, name: &str) -> Option<VarType> {
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

    fn check_effects(&mut self, node: &str, effects: &[Effect]) {
        for e in effects {
            match e {
                Effect::Set(var, expr) => {
                    let Some(want) = self.var_type(node, var) else {
                        continue;
                    };
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
                            format!(
                                "Set(\"{var}\", {expr:?}) gives a {got}, but `{var}` is {want}"
                            ),
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
                        Some(format!("use Set(\"{var}\", ..) for a {t}")),
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

    fn check_target(&mut self, node: &str, target: &str) {
        if self.story.node(target).is_none() {
            let help = suggest(target, self.story.nodes.iter().map(Node::id))
                .map(|s| format!("did you mean `{s}`?"));
            self.error(
                self.in_node(node, target),
                format!("`{node}` leads to `{target}`, which is not a node"),
                help,
            );
        }
    }

    fn nodes(&mut self) {
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
                    ..
                } => {
                    if let Some(t) = text {
                        self.check_text(id, t);
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

    fn graph(&mut self) {
        let nodes = &self.story.nodes;
        let index: HashMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
        let edges: Vec<Vec<usize>> = nodes
            .iter()
            .map(|n| {
                n.targets()
                    .iter()
                    .filter_map(|t| index.get(t).copied())
                    .collect()
            })
            .collect();
        let mut reach = vec![false; nodes.len()];
        if let Some(&s) = index.get(self.story.start.as_str()) {
            let mut queue = VecDeque::from([s]);
            reach[s] = true;
            while let Some(i) = queue.pop_front() {
                for &j in &edges[i] {
                    if !reach[j] {
                        reach[j] = true;
                        queue.push_back(j);
                    }
                }
            }
        }
        // Which nodes can reach an ending (walk the edges backwards from every ending).
        let mut back: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, out) in edges.iter().enumerate() {
            for &j in out {
                back[j].push(i);
            }
        }
        let mut ends = vec![false; nodes.len()];
        let mut queue: VecDeque<usize> = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| matches!(n, Node::Ending { .. }))
            .map(|(i, _)| i)
            .collect();
        if queue.is_empty() && !nodes.is_empty() {
            let at = self.src.find_field("nodes", 0).unwrap_or(0);
            self.error(
                self.loc(at),
                "the story has no Ending node".into(),
                Some("add at least one `Ending(id: .., title: ..)`".into()),
            );
            return;
        }
        for &i in &queue {
            ends[i] = true;
        }
        while let Some(i) = queue.pop_front() {
            for &j in &back[i] {
                if !ends[j] {
                    ends[j] = true;
                    queue.push_back(j);
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (i, n) in nodes.iter().enumerate() {
            if !seen.insert(n.id()) {
                continue;
            }
            let at = self.loc(self.node_offset(n.id(), 0));
            if !reach[i] {
                self.warn(
                    at,
                    format!(
                        "node `{}` cannot be reached from `{}`",
                        n.id(),
                        self.story.start
                    ),
                );
            }
            if !ends[i] {
                self.error(
                    at,
                    format!(
                        "from `{}` no ending can be reached: the player would be stuck in a loop",
                        n.id()
                    ),
                    Some("give one of its paths a way to an Ending".into()),
                );
            }
        }
    }

    /// Worst-case prompt of each generated node against the context.
    fn budget(&mut self, counter: &dyn TokenCounter) {
        let context = counter
            .context()
            .unwrap_or(self.story.settings.context_tokens);
        let s = &self.story.settings;
        let longest_line = self
            .story
            .nodes
            .iter()
            .map(|n| match n {
                Node::Line { text, .. } => counter.count(text),
                Node::Generate {
                    max_tokens,
                    fallback,
                    ..
                } => (max_tokens.unwrap_or(s.max_tokens) as usize).max(counter.count(fallback)),
                Node::Choice { options, .. } => options
                    .iter()
                    .map(|o| counter.count(&o.text))
                    .max()
                    .unwrap_or(0),
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(s.max_player_tokens);
        let turn = "x".repeat(longest_line * 3);
        for n in self.story.nodes.clone() {
            let Node::Generate {
                id,
                speaker,
                directive,
                max_tokens,
                ..
            } = &n
            else {
                continue;
            };
            let Some(member) = self.cast.get(speaker) else {
                continue;
            };
            let persona = &member.persona;
            let mut facts: Vec<String> = persona.knowledge.iter().map(|f| f.text.clone()).collect();
            for node in &self.story.nodes {
                let option_effects = match node {
                    Node::Choice { options, .. } => options
                        .iter()
                        .flat_map(|o| o.effects.iter())
                        .collect::<Vec<_>>(),
                    Node::FreeInput { edges, .. } => {
                        edges.iter().flat_map(|e| e.effects.iter()).collect()
                    }
                    _ => Vec::new(),
                };
                for e in node.effects().iter().chain(option_effects) {
                    if let Effect::Remember(who, fact) = e
                        && who == speaker
                    {
                        facts.push(fact.clone());
                    }
                }
            }
            let feelings: Vec<(String, i64)> = self
                .story
                .cast
                .keys()
                .filter(|k| *k != speaker)
                .map(|k| (k.clone(), 0))
                .chain([(PLAYER.to_owned(), 0)])
                .collect();
            let history = (0..s.history_turns)
                .map(|i| {
                    ChatMessage::new(
                        if i % 2 == 0 {
                            Role::User
                        } else {
                            Role::Assistant
                        },
                        turn.clone(),
                    )
                })
                .collect();
            let parts = PromptParts {
                persona: persona.system_text(),
                facts,
                state: state_text(&self.story.description, &feelings),
                directive: directive.clone(),
                history,
            };
            let prompt = assemble(&parts, &parts.history, &parts.facts, true);
            let answer = max_tokens
                .or(persona.generation.max_tokens)
                .unwrap_or(s.max_tokens) as usize;
            let total = measure(&prompt, counter) + answer;
            if total > context {
                let persona_tokens = counter.count(&parts.persona);
                let at = self.in_node(id, directive);
                self.error(
                    at,
                    format!(
                        "the worst-case prompt of `{id}` takes {total} tokens but the context holds {context} \
                         (persona {persona_tokens}, {} facts, {} history turns of up to {longest_line}, answer {answer}; counted by {})",
                        parts.facts.len(),
                        s.history_turns,
                        counter.describe()
                    ),
                    Some("shorten the persona or its facts, or lower settings.history_turns / max_tokens".into()),
                );
            }
        }
    }
}
