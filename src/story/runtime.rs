//! The story runtime: advances nodes, applies effects, evaluates conditions, keeps memories,
//! and says what the game must do next as a [`Beat`]. It never blocks and never calls a model:
//! generated lines and intent scores come from whoever drives it (the Bevy plugin, the CLI's
//! [`Session`](super::Session)). Every step works on a copy of the state and commits only when
//! it succeeded, so an error leaves the last good state.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::engine::backend::{CandidateScore, Prompt};
use crate::engine::chat::{ChatMessage, Role};
use crate::engine::sampler::SamplingParams;

use super::budget::Estimate;
use super::expr::{Expr, ExprError, interpolate};
use super::load::StoryBundle;
use super::model::{Effect, Node, VarValue};
use super::prompt::{FittedPrompt, PromptParts, fit, state_text};
use super::route::{pick_keywords, pick_scored, route_prompt, sanitize_player_text};
use super::save::{SaveError, SaveGame, content_hash};
use super::state::StoryState;
use super::validate::PLAYER;

/// A line the model should write.
#[derive(Debug, Clone, PartialEq)]
pub struct LineRequest {
    /// The node.
    pub node: String,
    /// Cast key of the speaker.
    pub speaker: String,
    /// The prompt, fitted to the context.
    pub prompt: FittedPrompt,
    /// Sampling (persona overrides applied; `max_tokens` set).
    pub params: SamplingParams,
    /// The authored line for when there is no model or generation fails.
    pub fallback: String,
}

/// An option as shown to the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShownOption {
    /// Its index in the node's authored options (what [`StoryRuntime::choose`] takes).
    pub index: usize,
    /// The text, interpolated.
    pub text: String,
}

/// What the story needs now.
#[derive(Debug, Clone, PartialEq)]
pub enum Beat {
    /// Show an authored line, then call [`StoryRuntime::advance`].
    Line {
        /// The node.
        node: String,
        /// Cast key, or none for narration.
        speaker: Option<String>,
        /// The line, interpolated.
        text: String,
    },
    /// Get a line (model or fallback), then call [`StoryRuntime::finish_line`].
    Generate(LineRequest),
    /// Offer options, then call [`StoryRuntime::choose`].
    Choice {
        /// The node.
        node: String,
        /// Who is being answered.
        speaker: Option<String>,
        /// A line shown with the options.
        text: Option<String>,
        /// The options whose conditions hold.
        options: Vec<ShownOption>,
    },
    /// Take free text, then call [`StoryRuntime::say`].
    FreeInput {
        /// The node.
        node: String,
        /// Who is spoken to.
        speaker: String,
        /// A prompt for the player.
        text: Option<String>,
    },
    /// The story is over.
    Ended {
        /// The ending node.
        node: String,
        /// Its title.
        title: String,
        /// Its closing line.
        text: Option<String>,
    },
}

/// Why a step failed (the state is unchanged).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RuntimeError {
    /// A condition or `Set` expression failed to evaluate.
    #[error("node `{node}`: {error}")]
    Expr {
        /// The node.
        node: String,
        /// The error.
        error: ExprError,
    },
    /// The call does not fit the current beat (e.g. `choose` on a line).
    #[error("node `{node}` is a {kind}; {call} does not apply")]
    WrongBeat {
        /// The node.
        node: String,
        /// Its kind.
        kind: &'static str,
        /// The call.
        call: &'static str,
    },
    /// The option index is not among the shown options.
    #[error("option {index} is not available at `{node}`")]
    NoSuchOption {
        /// The node.
        node: String,
        /// The index.
        index: usize,
    },
    /// A node id is missing (only with unvalidated stories).
    #[error("node `{0}` does not exist")]
    MissingNode(String),
    /// Branch nodes lead to each other without end.
    #[error("branches starting at `{0}` loop without reaching a line, choice or ending")]
    BranchLoop(String),
    /// The prompt cannot be made to fit.
    #[error("node `{node}`: {reason}")]
    Prompt {
        /// The node.
        node: String,
        /// Why.
        reason: String,
    },
}

/// Where free text went.
#[derive(Debug, Clone, PartialEq)]
pub struct Routed {
    /// The authored edge index taken, or none for `otherwise`.
    pub edge: Option<usize>,
    /// The edge's probability when a model scored it.
    pub probability: Option<f32>,
    /// The node it led to.
    pub target: String,
}

/// A story in progress.
#[derive(Debug, Clone)]
pub struct StoryRuntime {
    bundle: Arc<StoryBundle>,
    exprs: HashMap<String, Expr>,
    state: StoryState,
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
        };
        let start = rt.bundle.story.start.clone();
        let mut next = rt.state.clone();
        rt.enter(&mut next, &start)?;
        rt.state = next;
        Ok(rt)
    }

    /// Resumes from a save of this exact story version.
    pub fn restore(bundle: Arc<StoryBundle>, save: SaveGame) -> Result<Self, SaveError> {
        save.check_story(&bundle)?;
        if bundle.story.node(&save.state.node).is_none() {
            return Err(SaveError::Invalid {
                story: bundle.story.id.clone(),
                reason: format!("node `{}` does not exist", save.state.node),
            });
        }
        Ok(Self {
            bundle,
            exprs: HashMap::new(),
            state: save.state,
        })
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
            .holds(&state.variables)
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
                    let value =
                        self.expr(node, source)?
                            .eval(&state.variables)
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
                    let fact = interpolate(fact, &state.variables);
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
        let mut id = id.to_owned();
        for _ in 0..=self.bundle.story.nodes.len() {
            let node = self.node(&id)?.clone();
            *state.visits.entry(id.clone()).or_insert(0) += 1;
            state.node = id.clone();
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
        let vars = &self.state.variables;
        let node = self.node(&id)?.clone();
        Ok(match node {
            Node::Line { speaker, text, .. } => Beat::Line {
                node: id,
                speaker,
                text: interpolate(&text, vars),
            },
            Node::Generate {
                speaker,
                directive,
                max_tokens,
                fallback,
                ..
            } => {
                Beat::Generate(self.line_request(&id, &speaker, &directive, max_tokens, &fallback)?)
            }
            Node::Choice {
                speaker,
                text,
                options,
                ..
            } => {
                let mut shown = Vec::new();
                let state = self.state.clone();
                for (index, o) in options.iter().enumerate() {
                    if self.holds(&state, &id, o.when.as_deref())? {
                        shown.push(ShownOption {
                            index,
                            text: interpolate(&o.text, &state.variables),
                        });
                    }
                }
                Beat::Choice {
                    node: id,
                    speaker,
                    text: text.map(|t| interpolate(&t, &state.variables)),
                    options: shown,
                }
            }
            Node::FreeInput { speaker, text, .. } => Beat::FreeInput {
                node: id,
                speaker,
                text: text.map(|t| interpolate(&t, vars)),
            },
            Node::Ending { title, text, .. } => Beat::Ended {
                node: id,
                title,
                text: text.map(|t| interpolate(&t, vars)),
            },
            Node::Branch { .. } => return Err(RuntimeError::BranchLoop(id)),
        })
    }

    /// The prompt parts of a generated line (facts unlocked now, memories, feelings).
    pub fn prompt_parts(
        &mut self,
        node: &str,
        speaker: &str,
        directive: &str,
    ) -> Result<PromptParts, RuntimeError> {
        let state = self.state.clone();
        let mut facts = Vec::new();
        if let Some(p) = self.bundle.persona(speaker).cloned() {
            for f in &p.knowledge {
                if self.holds(&state, node, f.when.as_deref())? {
                    facts.push(interpolate(&f.text, &state.variables));
                }
            }
        }
        let memory = state.memories.get(speaker).cloned().unwrap_or_default();
        facts.extend(memory.facts.iter().cloned());
        let feelings: Vec<(String, i64)> = state
            .relationships
            .get(speaker)
            .map(|m| {
                m.iter()
                    .filter(|(who, _)| *who == PLAYER || self.bundle.cast.contains_key(*who))
                    .map(|(who, v)| {
                        let name = if who == PLAYER {
                            "the player".to_owned()
                        } else {
                            self.display_name(who)
                        };
                        (name, *v)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let window = self.bundle.story.settings.history_turns;
        let start = memory.turns.len().saturating_sub(window);
        Ok(PromptParts {
            persona: self
                .bundle
                .persona(speaker)
                .map(|p| p.system_text())
                .unwrap_or_default(),
            facts,
            state: state_text(&self.bundle.story.description, &feelings),
            directive: interpolate(directive, &state.variables),
            history: memory.turns[start..].to_vec(),
        })
    }

    fn line_request(
        &mut self,
        node: &str,
        speaker: &str,
        directive: &str,
        max_tokens: Option<u32>,
        fallback: &str,
    ) -> Result<LineRequest, RuntimeError> {
        let settings = self.bundle.story.settings.clone();
        let overrides = self
            .bundle
            .persona(speaker)
            .map(|p| p.generation.clone())
            .unwrap_or_default();
        let answer = max_tokens
            .or(overrides.max_tokens)
            .unwrap_or(settings.max_tokens) as usize;
        let parts = self.prompt_parts(node, speaker, directive)?;
        let budget = settings.context_tokens.saturating_sub(answer);
        let prompt = fit(&parts, &Estimate, budget).map_err(|e| RuntimeError::Prompt {
            node: node.to_owned(),
            reason: e.to_string(),
        })?;
        let mut params = SamplingParams {
            max_tokens: answer,
            ..SamplingParams::default()
        };
        if let Some(t) = overrides.temperature {
            params.temperature = t;
        }
        Ok(LineRequest {
            node: node.to_owned(),
            speaker: speaker.to_owned(),
            prompt,
            params,
            fallback: interpolate(fallback, &self.state.variables),
        })
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
        let text = interpolate(text, &s.variables);
        Self::remember_turn(&mut s, speaker.as_deref(), Role::Assistant, &text);
        self.enter(&mut s, next)?;
        self.state = s;
        Ok(())
    }

    /// Records the generated (or fallback) line and moves on.
    pub fn finish_line(&mut self, text: &str) -> Result<(), RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::Generate { speaker, next, .. } = &node else {
            return Err(self.wrong(&node, "finish_line"));
        };
        let mut s = self.state.clone();
        Self::remember_turn(&mut s, Some(speaker), Role::Assistant, text.trim());
        self.enter(&mut s, next)?;
        self.state = s;
        Ok(())
    }

    /// Takes option `index` (an authored index from [`Beat::Choice`]).
    pub fn choose(&mut self, index: usize) -> Result<(), RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::Choice {
            id,
            speaker,
            options,
            ..
        } = &node
        else {
            return Err(self.wrong(&node, "choose"));
        };
        let mut s = self.state.clone();
        let option = options
            .get(index)
            .ok_or_else(|| RuntimeError::NoSuchOption {
                node: id.clone(),
                index,
            })?;
        if !self.holds(&s, id, option.when.as_deref())? {
            return Err(RuntimeError::NoSuchOption {
                node: id.clone(),
                index,
            });
        }
        let text = interpolate(&option.text, &s.variables);
        Self::remember_turn(&mut s, speaker.as_deref(), Role::User, &text);
        self.apply(&mut s, id, &option.effects)?;
        self.enter(&mut s, &option.next)?;
        self.state = s;
        Ok(())
    }

    /// The cleaned player text and the choose request (prompt, candidates) that scores the
    /// current free-input node's open edges; `None` candidates when no edge is open.
    pub fn route_request(
        &mut self,
        player: &str,
    ) -> Result<(String, Option<(Prompt, Vec<String>)>), RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::FreeInput {
            id, speaker, edges, ..
        } = &node
        else {
            return Err(self.wrong(&node, "route_request"));
        };
        let text = sanitize_player_text(player, self.bundle.story.settings.max_player_tokens * 3);
        let state = self.state.clone();
        let mut intents = Vec::new();
        for e in edges {
            if self.holds(&state, id, e.when.as_deref())? {
                intents.push(e.intent.as_str());
            }
        }
        if intents.is_empty() {
            return Ok((text, None));
        }
        let asked = state
            .memories
            .get(speaker)
            .and_then(|m| m.turns.iter().rev().find(|t| t.role == Role::Assistant))
            .map(|t| t.content.clone());
        Ok((
            text.clone(),
            Some(route_prompt(asked.as_deref(), &text, &intents)),
        ))
    }

    /// Routes what the player typed: with `scores` (from the choose request of
    /// [`route_request`](Self::route_request)) by model, else by keywords; records it in the
    /// NPC's memory and moves on.
    pub fn say(
        &mut self,
        player: &str,
        scores: Option<&[CandidateScore]>,
    ) -> Result<Routed, RuntimeError> {
        let node = self.node(&self.state.node)?.clone();
        let Node::FreeInput {
            id,
            speaker,
            edges,
            otherwise,
            threshold,
            ..
        } = &node
        else {
            return Err(self.wrong(&node, "say"));
        };
        let text = sanitize_player_text(player, self.bundle.story.settings.max_player_tokens * 3);
        let mut s = self.state.clone();
        let mut open = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            if self.holds(&s, id, e.when.as_deref())? {
                open.push(i);
            }
        }
        let threshold = threshold.unwrap_or(self.bundle.story.settings.route_threshold);
        let (edge, probability) = match scores {
            Some(sc) if sc.len() == open.len() + 1 => {
                let (pick, p) = pick_scored(sc, threshold);
                (pick.map(|k| open[k]), Some(p))
            }
            _ => {
                let kw: Vec<&[String]> =
                    open.iter().map(|&i| edges[i].keywords.as_slice()).collect();
                (pick_keywords(&text, &kw).map(|k| open[k]), None)
            }
        };
        Self::remember_turn(&mut s, Some(speaker), Role::User, &text);
        let target = match edge {
            Some(i) => {
                self.apply(&mut s, id, &edges[i].effects)?;
                edges[i].next.clone()
            }
            None => otherwise.clone(),
        };
        self.enter(&mut s, &target)?;
        self.state = s;
        Ok(Routed {
            edge,
            probability,
            target,
        })
    }

    /// Variable values.
    pub fn variables(&self) -> &BTreeMap<String, VarValue> {
        &self.state.variables
    }
}
