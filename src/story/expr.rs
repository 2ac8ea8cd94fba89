//! Conditions and `{variable}` interpolation. Expressions are parsed by the `evalexpr` crate;
//! we type-check its operator tree against the declared variables before anything runs.

use std::collections::BTreeMap;

use evalexpr::{ContextWithMutableVariables, HashMapContext, Node as ExprNode, Operator, Value};

use super::model::{VarType, VarValue};

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

/// The longest expression accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 4096;
/// The deepest nesting of parentheses accepted.
pub const MAX_EXPR_DEPTH: usize = 32;
/// The most operators accepted in one expression (a long `&&` chain nests as deep as it is
/// long in the parser's tree).
pub const MAX_EXPR_OPERATORS: usize = 128;

/// Refuses, before parsing, expressions whose parse or check would recurse too deep: a
/// hostile or generated file must give an error, never overflow the stack.
fn limits(source: &str) -> Result<(), ExprError> {
    let too = |reason: String| {
        let mut start: String = source.chars().take(40).collect();
        if start.len() < source.len() {
            start.push('…');
        }
        Err(ExprError::TooComplex {
            expr: start,
            reason,
        })
    };
    if source.len() > MAX_EXPR_LEN {
        return too(format!(
            "{} bytes long (at most {MAX_EXPR_LEN})",
            source.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in source.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_EXPR_DEPTH {
        return too(format!(
            "parentheses nested {deepest} deep (at most {MAX_EXPR_DEPTH})"
        ));
    }
    // Operators are runs of operator characters (`>=`, `&&`, `!` …).
    let is_op = |c: char| "+-*/%^<>=!&|".contains(c);
    let mut operators = 0;
    let mut in_op = false;
    for c in source.chars() {
        operators += usize::from(is_op(c) && !in_op);
        in_op = is_op(c);
    }
    if operators > MAX_EXPR_OPERATORS {
        return too(format!(
            "{operators} operators (at most {MAX_EXPR_OPERATORS})"
        ));
    }
    Ok(())
}

/// What `visits(node)` and `seen(node)` become inside the parsed tree (identifiers a story
/// variable cannot have: variable names cannot start with `__`).
const VISITS: &str = "__visits__";
const SEEN: &str = "__seen__";

/// Rewrites `visits(node)` (times the node was entered, an int) and `seen(node)` (entered at
/// least once, a bool) into identifiers the evaluator reads from the visit counts.
fn visit_calls(source: &str) -> Result<String, ExprError> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while let Some(i) = rest.find(['v', 's']) {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        let boundary = !out.chars().next_back().is_some_and(ident);
        let call = [("visits", VISITS), ("seen", SEEN)]
            .into_iter()
            .find(|(name, _)| boundary && tail.starts_with(name))
            .and_then(|(name, prefix)| {
                let args = tail[name.len()..].trim_start().strip_prefix('(')?;
                let close = args.find(')')?;
                Some((prefix, args[..close].trim(), &args[close + 1..], name))
            });
        match call {
            Some((prefix, node, after, name)) => {
                if node.is_empty() || !node.chars().all(ident) {
                    return Err(ExprError::Syntax {
                        expr: source.to_owned(),
                        reason: format!("`{name}(..)` takes one node id, e.g. `{name}(hub)`"),
                    });
                }
                out.push_str(prefix);
                out.push_str(node);
                rest = after;
            }
            None => {
                let c = tail.chars().next().map_or(1, char::len_utf8);
                out.push_str(&tail[..c]);
                rest = &tail[c..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
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

/// A piece of an interpolated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{name}`.
    Var(&'a str),
}

/// Splits `text` at `{variable}` references; `{{` and `}}` are literal braces.
pub fn parse_interpolation(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(i) = rest.find(['{', '}']) else {
            out.push(Piece::Text(rest));
            break;
        };
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("a lone `}`; write `}}` for a literal brace".into());
        } else {
            let Some(end) = tail.find('}') else {
                return Err("`{` is never closed; write `{{` for a literal brace".into());
            };
            let name = tail[1..end].trim();
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("`{{{}}}` is not a variable name", &tail[1..end]));
            }
            out.push(Piece::Var(name));
            rest = &tail[end + 1..];
        }
    }
    Ok(out)
}

/// Fills `{variable}` references with their values (unknown ones stay as written).
pub fn interpolate(text: &str, vars: &BTreeMap<String, VarValue>) -> String {
    match parse_interpolation(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_owned(),
                Piece::Var(v) => vars
                    .get(v)
                    .map_or_else(|| format!("{{{v}}}"), |x| x.to_string()),
            })
            .collect(),
        Err(_) => text.to_owned(),
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

    #[test]
    fn interpolation_parses_and_fills() {
        let vars: BTreeMap<String, VarValue> = [("n".to_owned(), VarValue::Int(3))].into();
        assert_eq!(interpolate("{n} coins {{not}}", &vars), "3 coins {not}");
        assert!(parse_interpolation("{n").is_err());
        assert!(parse_interpolation("a } b").is_err());
        assert!(parse_interpolation("{two words}").is_err());
    }
}
