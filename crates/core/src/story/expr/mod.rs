//! Conditions and authored text with inline logic (`{variable}`, `{if …}`, `{seq: …}`). Expressions are parsed by the `evalexpr` crate;
//! we type-check its operator tree against the declared variables before anything runs.

use std::collections::BTreeMap;

use evalexpr::{ContextWithMutableVariables, HashMapContext, Node as ExprNode, Operator, Value};

use super::model::{VarType, VarValue};

mod prepass;
mod render;
mod text;

pub use prepass::{MAX_EXPR_DEPTH, MAX_EXPR_LEN, MAX_EXPR_OPERATORS};
use prepass::{SEEN, VISITS, limits, visit_calls};
pub use render::{TextScope, interpolate, render};
pub use text::{MAX_TEXT_DEPTH, check_text, conditions, parse_text, vars_read};

/// An expression over story variables (`trust >= 2 && has_key`), parsed once.
#[derive(Debug, Clone)]
pub struct Expr {
    source: String,
    tree: ExprNode,
}

/// Why an expression is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    /// It does not parse.
    #[error("cannot parse `{expr}`: {reason}")]
    Syntax {
        /// The expression.
        expr: String,
        /// The parser's message.
        reason: String,
    },
    /// It names a variable the story does not declare.
    #[error("`{name}` is not a declared variable")]
    Undeclared {
        /// The name.
        name: String,
    },
    /// Its parts have types that do not fit together.
    #[error("type error in `{expr}`: {reason}")]
    Type {
        /// The expression.
        expr: String,
        /// What does not fit.
        reason: String,
    },
    /// It uses something conditions may not (assignment, functions, tuples).
    #[error("`{expr}` uses {what}, which conditions do not allow; change variables with effects")]
    NotAllowed {
        /// The expression.
        expr: String,
        /// What it uses.
        what: &'static str,
    },
    /// It is too long or too deeply nested to handle safely (the parser and checker recurse).
    #[error("`{expr}` is too complex: {reason}; split it over variables set by effects")]
    TooComplex {
        /// Its start.
        expr: String,
        /// Which limit it passes.
        reason: String,
    },
    /// It failed while evaluating (e.g. division by zero).
    #[error("evaluating `{expr}` failed: {reason}")]
    Eval {
        /// The expression.
        expr: String,
        /// Why.
        reason: String,
    },
}

/// Variable types by name.
pub type TypeEnv = BTreeMap<String, VarType>;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Ty {
    Bool,
    Int,
    Float,
    Str,
}

impl Ty {
    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "bool",
            Ty::Int => "int",
            Ty::Float => "float",
            Ty::Str => "string",
        }
    }
    fn of(t: VarType) -> Self {
        match t {
            VarType::Bool => Ty::Bool,
            VarType::Int => Ty::Int,
            VarType::Float => Ty::Float,
            VarType::String => Ty::Str,
        }
    }
}

impl Expr {
    /// Parses an expression.
    pub fn parse(source: &str) -> Result<Self, ExprError> {
        limits(source)?;
        let rewritten = visit_calls(source)?;
        let tree = evalexpr::build_operator_tree(&rewritten).map_err(|e| ExprError::Syntax {
            expr: source.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            source: source.to_owned(),
            tree,
        })
    }

    /// The text it was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The story variables it reads (not counting `visits(..)` / `seen(..)`).
    pub fn variables_read(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .tree
            .iter_read_variable_identifiers()
            .filter(|name| !name.starts_with(VISITS) && !name.starts_with(SEEN))
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The node ids it asks about with `visits(..)` or `seen(..)`.
    pub fn nodes_asked(&self) -> Vec<&str> {
        let mut out: Vec<&str> = self
            .tree
            .iter_read_variable_identifiers()
            .filter_map(|name| {
                name.strip_prefix(VISITS)
                    .or_else(|| name.strip_prefix(SEEN))
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The expression's type, checking every variable is declared and every operator gets
    /// operands it accepts.
    pub fn check(&self, env: &TypeEnv) -> Result<VarType, ExprError> {
        let ty = self.infer(&self.tree, env)?;
        Ok(match ty {
            Ty::Bool => VarType::Bool,
            Ty::Int => VarType::Int,
            Ty::Float => VarType::Float,
            Ty::Str => VarType::String,
        })
    }

    /// Checks the expression is a condition (bool).
    pub fn check_condition(&self, env: &TypeEnv) -> Result<(), ExprError> {
        match self.check(env)? {
            VarType::Bool => Ok(()),
            other => Err(self.type_error(format!(
                "a condition must be true or false, this is {other} (compare it, e.g. `x > 0`)"
            ))),
        }
    }

    fn type_error(&self, reason: String) -> ExprError {
        ExprError::Type {
            expr: self.source.clone(),
            reason,
        }
    }

    fn infer(&self, node: &ExprNode, env: &TypeEnv) -> Result<Ty, ExprError> {
        let not_allowed = |what| ExprError::NotAllowed {
            expr: self.source.clone(),
            what,
        };
        let kids = node.children();
        let child = |i: usize| -> Result<Ty, ExprError> {
            kids.get(i).map(|k| self.infer(k, env)).unwrap_or_else(|| {
                Err(ExprError::Syntax {
                    expr: self.source.clone(),
                    reason: "an operand is missing".into(),
                })
            })
        };
        let op = node.operator();
        match op {
            Operator::RootNode => match kids.len() {
                1 => child(0),
                0 => Err(self.type_error("the expression is empty".into())),
                _ => Err(not_allowed("several expressions")),
            },
            Operator::Const { value } => match value {
                Value::Boolean(_) => Ok(Ty::Bool),
                Value::Int(_) => Ok(Ty::Int),
                Value::Float(_) => Ok(Ty::Float),
                Value::String(_) => Ok(Ty::Str),
                Value::Tuple(_) | Value::Empty => Err(not_allowed("a tuple or empty value")),
            },
            Operator::VariableIdentifierRead { identifier } if identifier.starts_with(VISITS) => {
                Ok(Ty::Int)
            }
            Operator::VariableIdentifierRead { identifier } if identifier.starts_with(SEEN) => {
                Ok(Ty::Bool)
            }
            Operator::VariableIdentifierRead { identifier } => env
                .get(identifier)
                .map(|t| Ty::of(*t))
                .ok_or_else(|| ExprError::Undeclared {
                    name: identifier.clone(),
                }),
            Operator::Add => {
                let (a, b) = (child(0)?, child(1)?);
                match (a, b) {
                    (Ty::Int, Ty::Int) => Ok(Ty::Int),
                    (x, y) if x.numeric() && y.numeric() => Ok(Ty::Float),
                    (Ty::Str, Ty::Str) => Ok(Ty::Str),
                    _ => Err(self.type_error(format!("cannot add {} and {}", a.name(), b.name()))),
                }
            }
            Operator::Sub | Operator::Mul | Operator::Div | Operator::Mod | Operator::Exp => {
                let (a, b) = (child(0)?, child(1)?);
                if !(a.numeric() && b.numeric()) {
                    return Err(self.type_error(format!(
                        "arithmetic needs numbers, got {} and {}",
                        a.name(),
                        b.name()
                    )));
                }
                Ok(
                    if a == Ty::Int && b == Ty::Int && !matches!(op, Operator::Exp) {
                        Ty::Int
                    } else {
                        Ty::Float
                    },
                )
            }
            Operator::Neg => {
                let a = child(0)?;
                if a.numeric() {
                    Ok(a)
                } else {
                    Err(self.type_error(format!("cannot negate a {}", a.name())))
                }
            }
            Operator::Eq | Operator::Neq => {
                let (a, b) = (child(0)?, child(1)?);
                if a == b || (a.numeric() && b.numeric()) {
                    Ok(Ty::Bool)
                } else {
                    Err(self.type_error(format!("cannot compare {} with {}", a.name(), b.name())))
                }
            }
            Operator::Gt | Operator::Lt | Operator::Geq | Operator::Leq => {
                let (a, b) = (child(0)?, child(1)?);
                if (a.numeric() && b.numeric()) || (a == Ty::Str && b == Ty::Str) {
                    Ok(Ty::Bool)
                } else {
                    Err(self.type_error(format!("cannot order {} and {}", a.name(), b.name())))
                }
            }
            Operator::And | Operator::Or => {
                let (a, b) = (child(0)?, child(1)?);
                if a == Ty::Bool && b == Ty::Bool {
                    Ok(Ty::Bool)
                } else {
                    Err(self.type_error(format!(
                        "`&&` and `||` need true/false on both sides, got {} and {}",
                        a.name(),
                        b.name()
                    )))
                }
            }
            Operator::Not => match child(0)? {
                Ty::Bool => Ok(Ty::Bool),
                a => Err(self.type_error(format!("`!` needs true/false, got {}", a.name()))),
            },
            Operator::FunctionIdentifier { .. } => Err(not_allowed("a function call")),
            Operator::Tuple | Operator::Chain => Err(not_allowed("several expressions")),
            _ => Err(not_allowed("an assignment")),
        }
    }

    /// Evaluates the expression with the given variable values (no node visited yet).
    pub fn eval(&self, vars: &BTreeMap<String, VarValue>) -> Result<VarValue, ExprError> {
        self.eval_in(vars, &BTreeMap::new())
    }

    /// Evaluates the expression with the given variable values and visit counts (for
    /// `visits(node)` and `seen(node)`).
    pub fn eval_in(
        &self,
        vars: &BTreeMap<String, VarValue>,
        visits: &BTreeMap<String, u32>,
    ) -> Result<VarValue, ExprError> {
        let eval_err = |reason: String| ExprError::Eval {
            expr: self.source.clone(),
            reason,
        };
        let mut ctx = HashMapContext::new();
        for name in self.tree.iter_read_variable_identifiers() {
            let count = |node: &str| visits.get(node).copied().unwrap_or(0);
            let value = match vars.get(name) {
                _ if name.starts_with(VISITS) => {
                    Value::Int(i64::from(count(&name[VISITS.len()..])))
                }
                _ if name.starts_with(SEEN) => Value::Boolean(count(&name[SEEN.len()..]) > 0),
                Some(VarValue::Bool(b)) => Value::Boolean(*b),
                Some(VarValue::Int(i)) => Value::Int(*i),
                Some(VarValue::Float(f)) => Value::Float(*f),
                Some(VarValue::String(s)) => Value::String(s.clone()),
                None => {
                    return Err(ExprError::Undeclared {
                        name: name.to_owned(),
                    });
                }
            };
            ctx.set_value(name.to_owned(), value)
                .map_err(|e| eval_err(e.to_string()))?;
        }
        match self
            .tree
            .eval_with_context(&ctx)
            .map_err(|e| eval_err(e.to_string()))?
        {
            Value::Boolean(b) => Ok(VarValue::Bool(b)),
            Value::Int(i) => Ok(VarValue::Int(i)),
            Value::Float(f) => Ok(VarValue::Float(f)),
            Value::String(s) => Ok(VarValue::String(s)),
            other => Err(eval_err(format!("unexpected value {other}"))),
        }
    }

    /// Evaluates a condition; anything but `true` is false.
    pub fn holds(&self, vars: &BTreeMap<String, VarValue>) -> Result<bool, ExprError> {
        self.holds_in(vars, &BTreeMap::new())
    }

    /// [`holds`](Self::holds) with visit counts.
    pub fn holds_in(
        &self,
        vars: &BTreeMap<String, VarValue>,
        visits: &BTreeMap<String, u32>,
    ) -> Result<bool, ExprError> {
        Ok(matches!(self.eval_in(vars, visits)?, VarValue::Bool(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> TypeEnv {
        [
            ("trust".to_owned(), VarType::Int),
            ("has_key".to_owned(), VarType::Bool),
            ("name".to_owned(), VarType::String),
            ("mood".to_owned(), VarType::Float),
        ]
        .into()
    }

    #[test]
    fn conditions_type_check() {
        let ok = [
            "trust >= 2 && has_key",
            "!has_key || mood > 0.5",
            "name == \"Ada\"",
        ];
        for s in ok {
            Expr::parse(s).unwrap().check_condition(&env()).unwrap();
        }
        let bad = [
            ("trust && has_key", "need true/false"),
            ("trust >= ", "an operand is missing"),
            ("trust + 1", "must be true or false"),
            ("name > 2", "cannot order string and int"),
            ("trust = 3", "assignment"),
            ("max(trust, 2) > 1", "function"),
            ("lantern", "not a declared variable"),
        ];
        for (s, want) in bad {
            let e = Expr::parse(s)
                .unwrap()
                .check_condition(&env())
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn evaluates_with_values() {
        let vars: BTreeMap<String, VarValue> = [
            ("trust".to_owned(), VarValue::Int(2)),
            ("has_key".to_owned(), VarValue::Bool(false)),
        ]
        .into();
        assert!(
            !Expr::parse("trust >= 2 && has_key")
                .unwrap()
                .holds(&vars)
                .unwrap()
        );
        assert!(
            Expr::parse("trust >= 2 || has_key")
                .unwrap()
                .holds(&vars)
                .unwrap()
        );
        assert_eq!(
            Expr::parse("trust * 3").unwrap().eval(&vars).unwrap(),
            VarValue::Int(6)
        );
    }
}
