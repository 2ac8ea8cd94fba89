//! The worker's compiled constraints: one compiler for the model's vocabulary (made on the
//! first constrained request), and each distinct grammar compiled once, then reused by every
//! line that asks for it (a persona's or a story node's constraint is the same each time).

use std::collections::{HashMap, VecDeque};

use crate::engine::constrain::{Compiler, Constraint, ConstraintError, Grammar, Guide};
use crate::engine::llama::Llama;

/// How many compiled grammars are kept (the oldest goes first).
const KEEP: usize = 64;

#[derive(Default)]
pub(super) struct Grammars {
    compiler: Option<Compiler>,
    compiled: HashMap<String, Grammar>,
    order: VecDeque<String>,
    /// Grammars compiled so far (a reused one is not counted again).
    pub compiles: usize,
}

impl Grammars {
    /// A guide for one generation under `constraint`, compiling it on first use.
    pub fn guide(
        &mut self,
        llama: &Llama,
        constraint: &Constraint,
    ) -> Result<Guide, ConstraintError> {
        let key = constraint.key();
        if let Some(g) = self.compiled.get(&key) {
            return Ok(g.guide());
        }
        let compiler = match &mut self.compiler {
            Some(c) => c,
            slot => slot.insert(llama.constraint_compiler()?),
        };
        let grammar =
            compiler.compile(constraint, &format!("the request's {}", constraint.kind()))?;
        let guide = grammar.guide();
        if self.order.len() >= KEEP
            && let Some(old) = self.order.pop_front()
        {
            self.compiled.remove(&old);
        }
        self.order.push_back(key.clone());
        self.compiled.insert(key, grammar);
        self.compiles += 1;
        Ok(guide)
    }
}
