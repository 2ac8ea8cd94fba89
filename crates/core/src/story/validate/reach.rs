//! Reachability that knows conditions: every play-through is explored (variable values, the
//! visit counts conditions ask about, once-only picks; free text may take any open edge),
//! up to a bound. What no play-through does is reported: nodes and endings never reached,
//! options never shown, choices reached with no option open, Branch nodes that go round for
//! ever, effects that fail.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use super::super::expr::Expr;
use super::super::model::{Effect, Node, VarValue};
use super::Check;

/// Most distinct story states explored; a story with more (a counter that grows in a loop)
/// skips these checks.
pub const MAX_STATES: usize = 20_000;

/// A point of a play-through, as far as conditions can tell.
#[derive(Clone)]
struct State {
    node: usize,
    vars: BTreeMap<String, VarValue>,
    /// Variables holding what the player typed (any text).
    unknown: BTreeSet<String>,
    /// Visit counts of the nodes conditions ask about, capped.
    visits: BTreeMap<String, u32>,
    /// Once-only options picked: (node, option).
    picked: BTreeSet<(usize, usize)>,
}

impl State {
    fn key(&self) -> String {
        format!(
            "{}|{:?}|{:?}|{:?}|{:?}",
            self.node, self.vars, self.unknown, self.visits, self.picked
        )
    }
}

/// Whether a condition holds: surely, surely not, or either (it reads typed text).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holds {
    Yes,
    No,
    Maybe,
}

/// What went wrong on some play-through, by node index.
#[derive(Default)]
struct Findings {
    reached: Vec<bool>,
    shown: HashSet<(usize, usize)>,
    stuck: BTreeSet<usize>,
    loops: BTreeSet<usize>,
    failures: BTreeMap<usize, String>,
}

struct Explorer<'a> {
    nodes: &'a [Node],
    index: HashMap<&'a str, usize>,
    exprs: HashMap<&'a str, Option<Expr>>,
    asked: HashSet<String>,
    cap: u32,
    found: Findings,
}

impl<'a> Explorer<'a> {
    /// The parsed expression (parsed once), and whether it reads typed text in `st`.
    fn expr(&mut self, st: &State, source: &'a str) -> Result<(&Expr, bool), String> {
        let expr = self
            .exprs
            .entry(source)
            .or_insert_with(|| Expr::parse(source).ok())
            .as_ref()
            .ok_or_else(|| format!("`{source}` does not parse"))?;
        let typed = expr
            .variables_read()
            .iter()
            .any(|v| st.unknown.contains(*v));
        Ok((expr, typed))
    }

    fn holds(&mut self, st: &State, cond: Option<&'a str>) -> Result<Holds, String> {
        let Some(cond) = cond else {
            return Ok(Holds::Yes);
        };
        let (expr, typed) = self.expr(st, cond)?;
        if typed {
            return Ok(Holds::Maybe);
        }
        match expr.holds_in(&st.vars, &st.visits) {
            Ok(true) => Ok(Holds::Yes),
            Ok(false) => Ok(Holds::No),
            Err(e) => Err(e.to_string()),
        }
    }

    fn apply(&mut self, st: &mut State, effects: &'a [Effect]) -> Result<(), String> {
        for e in effects {
            match e {
                Effect::Set(var, source) => {
                    let (expr, typed) = self.expr(st, source)?;
                    if typed {
                        st.unknown.insert(var.clone());
                        continue;
                    }
                    let value = expr
                        .eval_in(&st.vars, &st.visits)
                        .map_err(|e| e.to_string())?;
                    let value = match (st.vars.get(var), value) {
                        (Some(VarValue::Float(_)), VarValue::Int(i)) => VarValue::Float(i as f64),
                        (_, v) => v,
                    };
                    st.unknown.remove(var);
                    st.vars.insert(var.clone(), value);
                }
                Effect::Add(var, by) => match st.vars.get_mut(var) {
                    Some(VarValue::Int(i)) => *i = i.saturating_add(*by as i64),
                    Some(VarValue::Float(f)) => *f += by,
                    _ => {}
                },
                Effect::Flag(var) => {
                    st.vars.insert(var.clone(), VarValue::Bool(true));
                }
                Effect::Clear(var) => {
                    st.vars.insert(var.clone(), VarValue::Bool(false));
                }
                Effect::Relate(..) | Effect::Remember(..) => {}
            }
        }
        Ok(())
    }

    /// Enters `target` as the runtime does (visit, effects, Branch cases in order) and gives
    /// every state it can settle in; a Branch case that may go either way forks.
    fn enter(&mut self, st: State, target: &str) -> Vec<State> {
        let mut out = Vec::new();
        let mut work = vec![(st, target.to_owned(), 0usize)];
        while let Some((mut st, id, hops)) = work.pop() {
            let Some(&i) = self.index.get(id.as_str()) else {
                continue;
            };
            if hops > self.nodes.len() {
                self.found.loops.insert(i);
                continue;
            }
            let nodes = self.nodes;
            let node = &nodes[i];
            self.found.reached[i] = true;
            if self.asked.contains(&id) {
                let v = st.visits.entry(id.clone()).or_insert(0);
                *v = (*v + 1).min(self.cap);
            }
            st.node = i;
            if let Err(e) = self.apply(&mut st, node.effects()) {
                self.found.failures.entry(i).or_insert(e);
                continue;
            }
            let Node::Branch {
                cases, otherwise, ..
            } = node
            else {
                out.push(st);
                continue;
            };
            let mut fell_through = true;
            for c in cases {
                match self.holds(&st, Some(c.when.as_str())) {
                    Ok(Holds::Yes) => {
                        work.push((st.clone(), c.next.clone(), hops + 1));
                        fell_through = false;
                        break;
                    }
                    Ok(Holds::Maybe) => work.push((st.clone(), c.next.clone(), hops + 1)),
                    Ok(Holds::No) => {}
                    Err(e) => {
                        self.found.failures.entry(i).or_insert(e);
                        fell_through = false;
                        break;
                    }
                }
            }
            if fell_through {
                work.push((st, otherwise.clone(), hops + 1));
            }
        }
        out
    }

    /// The states one move after `st`, or `None` at an ending.
    fn moves(&mut self, st: &State) -> Vec<State> {
        let i = st.node;
        let nodes = self.nodes;
        match &nodes[i] {
            Node::Line { next, .. } => self.enter(st.clone(), next),
            // The speaker may take any action with an edge of its own, or none.
            Node::Generate {
                next, on_action, ..
            } => {
                let mut out = self.enter(st.clone(), next);
                for target in on_action.values() {
                    out.extend(self.enter(st.clone(), target));
                }
                out
            }
            Node::Choice { options, .. } => {
                let mut open = Vec::new();
                for fallback in [false, true] {
                    let mut sure = false;
                    for (k, o) in options.iter().enumerate() {
                        let used = o.once && st.picked.contains(&(i, k));
                        if o.fallback != fallback || used {
                            continue;
                        }
                        match self.holds(st, o.when.as_deref()) {
                            Ok(Holds::Yes) => {
                                sure = true;
                                open.push(k);
                            }
                            Ok(Holds::Maybe) => open.push(k),
                            Ok(Holds::No) => {}
                            Err(e) => {
                                self.found.failures.entry(i).or_insert(e);
                            }
                        }
                    }
                    if sure {
                        break;
                    }
                }
                if open.is_empty() {
                    self.found.stuck.insert(i);
                }
                let mut out = Vec::new();
                for k in open {
                    self.found.shown.insert((i, k));
                    let mut next = st.clone();
                    if options[k].once {
                        next.picked.insert((i, k));
                    }
                    match self.apply(&mut next, &options[k].effects) {
                        Ok(()) => out.extend(self.enter(next, &options[k].next)),
                        Err(e) => {
                            self.found.failures.entry(i).or_insert(e);
                        }
                    }
                }
                out
            }
            Node::FreeInput {
                edges,
                otherwise,
                store,
                ..
            } => {
                let mut typed = st.clone();
                if let Some(var) = store {
                    typed.unknown.insert(var.clone());
                }
                let mut out = Vec::new();
                for e in edges {
                    match self.holds(&typed, e.when.as_deref()) {
                        Ok(Holds::No) => {}
                        Ok(_) => {
                            let mut next = typed.clone();
                            match self.apply(&mut next, &e.effects) {
                                Ok(()) => out.extend(self.enter(next, &e.next)),
                                Err(err) => {
                                    self.found.failures.entry(i).or_insert(err);
                                }
                            }
                        }
                        Err(err) => {
                            self.found.failures.entry(i).or_insert(err);
                        }
                    }
                }
                out.extend(self.enter(typed, otherwise));
                out
            }
            Node::Branch { .. } | Node::Ending { .. } => Vec::new(),
        }
    }
}

/// The visit-count cap: one past the largest number any expression compares with, so
/// `visits(hub) > 3` still tells 4 from 3.
fn visit_cap<'a>(sources: impl Iterator<Item = &'a str>) -> u32 {
    let mut max = 1u32;
    for s in sources {
        for word in s.split(|c: char| !c.is_ascii_digit()) {
            if let Ok(n) = word.parse::<u32>() {
                max = max.max(n.min(64));
            }
        }
    }
    max + 2
}

impl Check<'_> {
    /// Explores every play-through (up to [`MAX_STATES`]) and warns about what none does.
    /// Only runs on a story without errors.
    pub(super) fn play_throughs(&mut self) {
        if self.out.iter().any(|d| d.is_error()) {
            return;
        }
        let story = self.story;
        let nodes = &story.nodes;
        let index: HashMap<&str, usize> =
            nodes.iter().enumerate().map(|(i, n)| (n.id(), i)).collect();
        let mut sources: Vec<&str> = Vec::new();
        for n in nodes {
            for e in n.effects() {
                if let Effect::Set(_, s) = e {
                    sources.push(s);
                }
            }
            match n {
                Node::Choice { options, .. } => {
                    for o in options {
                        sources.extend(o.when.as_deref());
                        for e in &o.effects {
                            if let Effect::Set(_, s) = e {
                                sources.push(s);
                            }
                        }
                    }
                }
                Node::FreeInput { edges, .. } => {
                    for e in edges {
                        sources.extend(e.when.as_deref());
                    }
                }
                Node::Branch { cases, .. } => sources.extend(cases.iter().map(|c| c.when.as_str())),
                _ => {}
            }
        }
        let asked: HashSet<String> = sources
            .iter()
            .filter_map(|s| Expr::parse(s).ok())
            .flat_map(|e| {
                e.nodes_asked()
                    .into_iter()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut ex = Explorer {
            nodes,
            index,
            exprs: HashMap::new(),
            asked,
            cap: visit_cap(sources.iter().copied()),
            found: Findings {
                reached: vec![false; nodes.len()],
                ..Findings::default()
            },
        };
        let start = State {
            node: 0,
            vars: story.variables.clone(),
            unknown: BTreeSet::new(),
            visits: BTreeMap::new(),
            picked: BTreeSet::new(),
        };
        let mut seen: HashSet<String> = HashSet::new();
        let mut queue: VecDeque<State> = ex.enter(start, &story.start).into();
        let mut complete = true;
        while let Some(st) = queue.pop_front() {
            if !seen.insert(st.key()) {
                continue;
            }
            if seen.len() > MAX_STATES {
                complete = false;
                break;
            }
            queue.extend(ex.moves(&st));
        }
        self.report(ex.found, complete, seen.len());
    }

    fn report(&mut self, found: Findings, complete: bool, states: usize) {
        let story = self.story;
        let nodes = &story.nodes;
        for (i, e) in &found.failures {
            let id = nodes[*i].id();
            self.warn(
                self.loc(self.node_offset(id, 0)),
                format!("in some play-through `{id}` fails: {e}"),
            );
        }
        for i in &found.loops {
            let id = nodes[*i].id();
            self.warn(
                self.loc(self.node_offset(id, 0)),
                format!("in some play-through Branch nodes go round for ever through `{id}`"),
            );
        }
        for i in &found.stuck {
            let id = nodes[*i].id();
            self.warn(
                self.loc(self.node_offset(id, 0)),
                format!(
                    "choice `{id}` can be reached with none of its options open: the player \
                     would be stuck (add an option with `fallback: true`)"
                ),
            );
        }
        if !complete {
            return;
        }
        // Every play-through was seen: "a choice whose options all have conditions may leave
        // the player stuck" is now known, one way or the other (reported above if so).
        self.out
            .retain(|d| d.is_error() || !d.message.starts_with("every option of `"));
        let statically = self.reachable.clone();
        for (i, n) in nodes.iter().enumerate() {
            let id = n.id();
            let was_warned = !statically.get(i).copied().unwrap_or(false);
            if !found.reached[i] && !was_warned {
                let what = match n {
                    Node::Ending { .. } => "ending",
                    _ => "node",
                };
                self.warn(
                    self.loc(self.node_offset(id, 0)),
                    format!(
                        "{what} `{id}` is never reached: no play-through meets the conditions \
                         on the way ({states} story states explored)"
                    ),
                );
                continue;
            }
            let Node::Choice { options, .. } = n else {
                continue;
            };
            if !found.reached[i] {
                continue;
            }
            for (k, o) in options.iter().enumerate() {
                if !found.shown.contains(&(i, k)) {
                    self.warn(
                        self.in_node(id, &o.text),
                        format!(
                            "option {} of `{id}` ({:?}) is never shown: no play-through opens it",
                            k + 1,
                            o.text
                        ),
                    );
                }
            }
        }
    }
}
