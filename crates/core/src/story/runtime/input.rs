//! Player input: authored choices and free text routed onto edges.

use crate::engine::backend::{CandidateScore, Prompt};
use crate::engine::chat::Role;

use crate::story::model::{Node, VarValue};
use crate::story::route::{pick_keywords, pick_scored, route_prompt, sanitize_player_text};
use crate::story::strings::option_ids;

use super::{RouteRequest, Routed, RuntimeError, StoryRuntime};

impl StoryRuntime {
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
        if !self.open_options(&s, id, options)?.contains(&index) {
            return Err(RuntimeError::NoSuchOption {
                node: id.clone(),
                index,
            });
        }
        if option.once {
            s.picked.insert(option_ids(id, options).swap_remove(index));
        }
        let text = Self::fill(&s, id, &option.text)?;
        Self::remember_turn(&mut s, speaker.as_deref(), Role::User, &text);
        self.apply(&mut s, id, &option.effects)?;
        self.enter(&mut s, &option.next)?;
        self.state = s;
        Ok(())
    }

    /// The choose request that scores the current free-input node's open edges against what
    /// the player typed (no candidates when no edge is open).
    pub fn route_request(&mut self, player: &str) -> Result<RouteRequest, RuntimeError> {
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
            return Ok(RouteRequest {
                player: text,
                prompt: Prompt::default(),
                candidates: Vec::new(),
            });
        }
        let asked = state
            .memories
            .get(speaker)
            .and_then(|m| m.turns.iter().rev().find(|t| t.role == Role::Assistant))
            .map(|t| t.content.clone());
        let (prompt, candidates) = route_prompt(asked.as_deref(), &text, &intents);
        Ok(RouteRequest {
            player: text,
            prompt,
            candidates,
        })
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
            store,
            ..
        } = &node
        else {
            return Err(self.wrong(&node, "say"));
        };
        let text = sanitize_player_text(player, self.bundle.story.settings.max_player_tokens * 3);
        let mut s = self.state.clone();
        if let Some(var) = store {
            // Before the edges' conditions, so they can look at it too.
            s.variables
                .insert(var.clone(), VarValue::String(text.trim().to_owned()));
        }
        let mut open = Vec::new();
        for (i, e) in edges.iter().enumerate() {
            if self.holds(&s, id, e.when.as_deref())? {
                open.push(i);
            }
        }
        let threshold = threshold.unwrap_or(self.bundle.story.settings.route_threshold);
        let kw: Vec<&[String]> = open.iter().map(|&i| edges[i].keywords.as_slice()).collect();
        let by_keywords = || pick_keywords(&text, &kw).map(|k| open[k]);
        // The model decides when it is confident; otherwise the authored keywords do.
        let (edge, probability, by_model) = match scores {
            Some(sc) if sc.len() == open.len() + 1 => match pick_scored(sc, threshold) {
                (Some(k), p) => (Some(open[k]), Some(p), true),
                (None, p) => (by_keywords(), Some(p), false),
            },
            _ => (by_keywords(), None, false),
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
            by_model,
            edge,
            probability,
            target,
        })
    }
}
