//! The story runtime: advances nodes, applies effects, evaluates conditions, keeps memories,
//! and says what the game must do next as a [`Beat`]. It never blocks and never calls a model:
//! generated lines and intent scores come from whoever drives it (the Bevy plugin, the CLI's
//! [`Session`](super::Session)). Every step works on a copy of the state and commits only when
//! it succeeded, so an error leaves the last good state.

mod beat;
mod input;
mod lines;

pub use beat::{Beat, LineOutcome, LineRequest, RouteRequest, Routed, RuntimeError, ShownOption};

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::engine::chat::{ChatMessage, Role};
use crate::engine::sampler::SamplingParams;

use crate::story::expr::{Expr, TextScope, render};
use crate::story::load::StoryBundle;
use crate::story::model::{Effect, Node, VarValue};
use crate::story::save::{SaveError, SaveGame, content_hash};
use crate::story::state::StoryState;
use crate::story::strings::option_ids;
pub use lines::MARKUP_TOKENS;
use lines::read_line;

/// A story in progress.
#[derive(Debug, Clone)]
pub struct StoryRuntime {
    bundle: Arc<StoryBundle>,
    exprs: HashMap<String, Expr>,
    state: StoryState,
    /// The sampling that generated lines start from (the story's and persona's overrides
    /// applied on top).
    sampling: SamplingParams,
    /// Nodes entered since [`take_entered`](Self::take_entered) was last called, Branch nodes
    /// included (not saved).
    entered: Vec<String>,
}

impl StoryRuntime {
    /// Starts a story at its start node (entry effects applied).
    pub fn new(bundle: Arc<StoryBundle>) -> Result<Self, RuntimeError> {
        let mut state = StoryState {
            variables: bundle.story.variables.clone(),
            ..StoryState::default()
        };
        for (key, member) in &bundle.cast {
            let rel = state.relationships.entry(key.clone()).or_default();
            for (who, r) in &member.persona.relationships {
                rel.insert(who.clone(), r.value);
            }
        }
        let mut rt = Self {
            bundle,
            exprs: HashMap::new(),
            state,
            sampling: SamplingParams::default(),
            entered: Vec::new(),
        };
        let start = rt.bundle.story.start.clone();
        let mut next = rt.state.clone();
        rt.enter(&mut next, &start)?;
        rt.state = next;
        Ok(rt)
    }

    /// Resumes from a save of this exact story version.
    pub fn restore(bundle: Arc<StoryBundle>, mut save: SaveGame) -> Result<Self, SaveError> {
        save.check_story(&bundle)?;
        save.migrate(&bundle);
        Ok(Self {
            bundle,
            exprs: HashMap::new(),
            state: save.state,
            sampling: SamplingParams::default(),
            entered: Vec::new(),
        })
    }

    /// Every node entered since the last call, in order, Branch nodes (which are passed through
    /// without a beat) included: a journal or quest log sees the whole path.
    pub fn take_entered(&mut self) -> Vec<String> {
        std::mem::take(&mut self.entered)
    }

    /// Sets the sampling that generated lines start from (default: `SamplingParams::default()`);
    /// a `Generate` node's `max_tokens` and the speaker's `temperature` still override it. The
    /// plugin passes its `DialogueSettings::sampling` here before every beat.
    pub fn set_sampling(&mut self, base: SamplingParams) {
        self.sampling = base;
    }

    /// The sampling generated lines start from.
    pub fn sampling(&self) -> &SamplingParams {
        &self.sampling
    }

    /// A save of the current state.
    pub fn save(&self) -> SaveGame {
        SaveGame {
            format: super::save::SAVE_FORMAT,
            story_id: self.bundle.story.id.clone(),
            story_hash: content_hash(&self.bundle),
            state: self.state.clone(),
        }
    }

    /// The state.
    pub fn state(&self) -> &StoryState {
        &self.state
    }

    /// The story and cast.
    pub fn bundle(&self) -> &Arc<StoryBundle> {
        &self.bundle
    }

    /// A persona's display name, or the key.
    pub fn display_name(&self, key: &str) -> String {
        self.bundle
            .persona(key)
            .map_or_else(|| key.to_owned(), |p| p.name.clone())
    }

    fn node(&self, id: &str) -> Result<&Node, RuntimeError> {
        self.bundle
            .story
            .node(id)
            .ok_or_else(|| RuntimeError::MissingNode(id.to_owned()))
    }

    fn expr(&mut self, node: &str, source: &str) -> Result<Expr, RuntimeError> {
        if let Some(e) = self.exprs.get(source) {
            return Ok(e.clone());
        }
        let e = Expr::parse(source).map_err(|error| RuntimeError::Expr {
            node: node.to_owned(),
            error,
        })?;
        self.exprs.insert(source.to_owned(), e.clone());
        Ok(e)
    }

    fn holds(
        &mut self,
        state: &StoryState,
        node: &str,
        cond: Option<&str>,
    ) -> Result<bool, RuntimeError> {
        let Some(c) = cond else { return Ok(true) };
        self.expr(node, c)?
            .holds_in(&state.variables, &state.visits)
            .map_err(|error| RuntimeError::Expr {
                node: node.to_owned(),
                error,
            })
    }

    fn apply(
        &mut self,
        state: &mut StoryState,
        node: &str,
        effects: &[Effect],
    ) -> Result<(), RuntimeError> {
        for e in effects {
            match e {
                Effect::Set(var, source) => {
                    let value = self
                        .expr(node, source)?
                        .eval_in(&state.variables, &state.visits)
                        .map_err(|error| RuntimeError::Expr {
                            node: node.to_owned(),
                            error,
                        })?;
                    let value = match (state.variables.get(var), value) {
                        (Some(VarValue::Float(_)), VarValue::Int(i)) => VarValue::Float(i as f64),
                        (_, v) => v,
                    };
                    state.variables.insert(var.clone(), value);
                }
                Effect::Add(var, by) => {
                    if let Some(v) = state.variables.get_mut(var) {
                        match v {
                            VarValue::Int(i) => *i = i.saturating_add(*by as i64),
                            VarValue::Float(f) => *f += by,
                            _ => {}
                        }
                    }
                }
                Effect::Flag(var) => {
                    state.variables.insert(var.clone(), VarValue::Bool(true));
                }
                Effect::Clear(var) => {
                    state.variables.insert(var.clone(), VarValue::Bool(false));
                }
                Effect::Relate(npc, toward, by) => {
                    let v = state
                        .relationships
                        .entry(npc.clone())
                        .or_default()
                        .entry(toward.clone())
                        .or_insert(0);
                    *v = v.saturating_add(*by);
                }
                Effect::Remember(npc, fact) => {
                    let fact = Self::fill(state, node, fact)?;
                    let facts = &mut state.memories.entry(npc.clone()).or_default().facts;
                    if !facts.contains(&fact) {
                        facts.push(fact);
                    }
                }
            }
        }
        Ok(())
    }

    /// Enters `id` in `state`: visit count, entry effects, and through branches.
    fn enter(&mut self, state: &mut StoryState, id: &str) -> Result<(), RuntimeError> {
        // A failed step leaves the state as it was: it entered nothing.
        let mark = self.entered.len();
        let result = self.enter_nodes(state, id);
        if result.is_err() {
            self.entered.truncate(mark);
        }
        result
    }

    fn enter_nodes(&mut self, state: &mut StoryState, id: &str) -> Result<(), RuntimeError> {
        let mut id = id.to_owned();
        for _ in 0..=self.bundle.story.nodes.len() {
            let node = self.node(&id)?.clone();
            *state.visits.entry(id.clone()).or_insert(0) += 1;
            state.node = id.clone();
            self.entered.push(id.clone());
            self.apply(state, &id, node.effects())?;
            match &node {
                Node::Branch {
                    cases, otherwise, ..
                } => {
                    let mut target = otherwise.clone();
                    for c in cases {
                        if self.holds(state, &id, Some(&c.when))? {
                            target = c.next.clone();
                            break;
                        }
                    }
                    id = target;
                }
                Node::Ending { .. } => {
                    state.ended = Some(id.clone());
                    return Ok(());
                }
                _ => return Ok(()),
            }
        }
        Err(RuntimeError::BranchLoop(id))
    }

    /// Fills an authored text of `node` (variables, `{if}`, alternatives by its visits).
    fn fill(state: &StoryState, node: &str, text: &str) -> Result<String, RuntimeError> {
        let scope = TextScope {
            vars: &state.variables,
            visits: &state.visits,
            node,
        };
        render(text, &scope).map_err(|error| RuntimeError::Expr {
            node: node.to_owned(),
            error,
        })
    }

    fn remember_turn(state: &mut StoryState, who: Option<&str>, role: Role, text: &str) {
        if let Some(w) = who {
            state
                .memories
                .entry(w.to_owned())
                .or_default()
                .push(ChatMessage::new(role, text));
        }
    }

    /// What the story needs now.
    pub fn beat(&mut self) -> Result<Beat, RuntimeError> {
        let id = self.state.node.clone();
        let node = self.node(&id)?.clone();
        let fill =
            |rt: &Self, t: Option<String>| t.map(|t| Self::fill(&rt.state, &id, &t)).transpose();
        Ok(match node {
            Node::Line { speaker, text, .. } => Beat::Line {
                text: Self::fill(&self.state, &id, &text)?,
                node: id,
                speaker,
            },
            Node::Generate {
                speaker,
                directive,
                max_tokens,
                fallback,
                actions,
                ..
            } => Beat::Generate(
                self.line_request(&id, &speaker, &directive, max_tokens, &fallback, &actions)?,
            ),
            Node::Choice {
                speaker,
                text,
                options,
                ..
            } => {
                let state = self.state.clone();
                let shown: Vec<ShownOption> = self
                    .open_options(&state, &id, &options)?
                    .into_iter()
                    .map(|index| {
                        Ok(ShownOption {
                            index,
                            text: Self::fill(&state, &id, &options[index].text)?,
                        })
                    })
                    .collect::<Result<_, RuntimeError>>()?;
                if shown.is_empty() {
                    return Err(RuntimeError::NoOptionShown { node: id });
                }
                Beat::Choice {
                    text: fill(self, text)?,
                    node: id,
                    speaker,
                    options: shown,
                }
            }
            Node::FreeInput { speaker, text, .. } => Beat::FreeInput {
                text: fill(self, text)?,
                node: id,
                speaker,
            },
            Node::Ending { title, text, .. } => Beat::Ended {
                text: fill(self, text)?,
                node: id,
                title,
            },
            Node::Branch { .. } => return Err(RuntimeError::BranchLoop(id)),
        })
    }

    /// The options of choice `id` the player may pick now, by authored index: those whose
    /// condition holds and, if once-only, were not picked yet; the fallback options only when
    /// no other is open.
    fn open_options(
        &mut self,
        state: &StoryState,
        id: &str,
        options: &[crate::story::model::ChoiceOption],
    ) -> Result<Vec<usize>, RuntimeError> {
        let mut open = Vec::new();
        let ids = option_ids(id, options);
        for fallback in [false, true] {
            for (index, o) in options.iter().enumerate() {
                let used = o.once && state.picked.contains(&ids[index]);
                if o.fallback == fallback && !used && self.holds(state, id, o.when.as_deref())? {
                    open.push(index);
                }
            }
            if !open.is_empty() {
                break;
            }
        }
        Ok(open)
    }

    fn wrong(&self, node: &Node, call: &'static str) -> RuntimeError {
        RuntimeError::WrongBeat {
            node: node.id().to_owned(),
            kind: node.kind_name(),
            call,
        }
    }

    /// Moves on from an authored line.
    pub fn advance(&mut self) -> Result<(), RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::Line {
            speaker,
            text,
            next,
            ..
        } = &node
        else {
            return Err(self.wrong(&node, "advance"));
        };
        let mut s = self.state.clone();
        let text = Self::fill(&s, &s.node, text)?;
        Self::remember_turn(&mut s, speaker.as_deref(), Role::Assistant, &text);
        self.enter(&mut s, next)?;
        self.state = s;
        Ok(())
    }

    /// Records the generated (or fallback) line and moves on: along the node's `on_action`
    /// edge for the action the line took, if it has one, else to `next`.
    pub fn finish_line(&mut self, text: &str) -> Result<LineOutcome, RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::Generate {
            speaker,
            next,
            actions,
            on_action,
            ..
        } = &node
        else {
            return Err(self.wrong(&node, "finish_line"));
        };
        let format = self
            .bundle
            .persona(speaker)
            .and_then(|p| p.line_format(actions));
        let mut outcome = read_line(format.as_ref(), text);
        outcome.next = outcome
            .action
            .as_ref()
            .and_then(|a| on_action.get(&a.name))
            .unwrap_or(next)
            .clone();
        let mut s = self.state.clone();
        Self::remember_turn(&mut s, Some(speaker), Role::Assistant, &outcome.words);
        self.enter(&mut s, &outcome.next)?;
        self.state = s;
        Ok(outcome)
    }

    /// Variable values.
    pub fn variables(&self) -> &BTreeMap<String, VarValue> {
        &self.state.variables
    }
}
