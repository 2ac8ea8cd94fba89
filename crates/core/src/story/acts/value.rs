//! Actions read back out of a line: the call parsed, its arguments checked against the
//! declaration and typed.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ActionDecl, ArgType, LineFormat, LinePart, MarkupSplitter};

/// A validated argument value.
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    /// Text, or one of a `OneOf` list.
    Text(String),
    /// A whole number.
    Int(i64),
    /// A number.
    Float(f64),
    /// A truth value.
    Bool(bool),
}

impl std::fmt::Display for ArgValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text(s) => write!(f, "{}", Value::String(s.clone())),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// Rust types an argument can be read as ([`Action::arg`]).
pub trait FromArg: Sized {
    /// The value as `Self`, if it is of that kind.
    fn from_arg(v: &ArgValue) -> Option<Self>;
}

impl FromArg for String {
    fn from_arg(v: &ArgValue) -> Option<Self> {
        match v {
            ArgValue::Text(s) => Some(s.clone()),
            _ => None,
        }
    }
}

impl FromArg for i64 {
    fn from_arg(v: &ArgValue) -> Option<Self> {
        match v {
            ArgValue::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl FromArg for f64 {
    fn from_arg(v: &ArgValue) -> Option<Self> {
        match v {
            ArgValue::Float(x) => Some(*x),
            ArgValue::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

impl FromArg for bool {
    fn from_arg(v: &ArgValue) -> Option<Self> {
        match v {
            ArgValue::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

/// An action an NPC took, with its arguments checked against the declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The action's name.
    pub name: String,
    /// Its arguments by name, every declared one present.
    pub args: BTreeMap<String, ArgValue>,
}

impl Action {
    /// Argument `name` as a `T` (`action.arg::<i64>("count")`); `None` when there is no such
    /// argument or it is of another kind.
    pub fn arg<T: FromArg>(&self, name: &str) -> Option<T> {
        self.args.get(name).and_then(T::from_arg)
    }
}

impl std::fmt::Display for Action {
    /// `give_item {"count":2,"item":"key"}`, or the bare name without arguments.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.name)?;
        if !self.args.is_empty() {
            let args: Vec<String> = self
                .args
                .iter()
                .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                .collect();
            write!(f, " {{{}}}", args.join(","))?;
        }
        Ok(())
    }
}

/// Why an action call was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ActionError {
    /// The call names no allowed action.
    #[error("`{call}` is not an action allowed here (allowed: {allowed})")]
    Unknown {
        /// The call as written.
        call: String,
        /// The allowed names.
        allowed: String,
    },
    /// The arguments are not a JSON object.
    #[error("action `{action}`: the arguments are not a JSON object: {reason}")]
    Malformed {
        /// The action.
        action: String,
        /// Why.
        reason: String,
    },
    /// An argument is missing, unknown, of the wrong type or out of range.
    #[error("action `{action}`: argument `{arg}` {reason}")]
    BadArg {
        /// The action.
        action: String,
        /// The argument.
        arg: String,
        /// What is wrong.
        reason: String,
    },
}

/// A finished line in a [`LineFormat`], read: its words, its emotion, its action.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReadLine {
    /// The spoken words, without markup, trimmed.
    pub words: String,
    /// The emotion the line opened with, if it is one of the format's.
    pub emotion: Option<String>,
    /// The action taken, validated.
    pub action: Option<Action>,
    /// A call that was refused (not allowed, or bad arguments): no action is taken.
    pub refused: Option<ActionError>,
}

impl LineFormat {
    /// Reads a whole line (the model's text, markup included).
    pub fn read(&self, text: &str) -> ReadLine {
        let mut line = ReadLine::default();
        let mut splitter = MarkupSplitter::new();
        let mut parts = splitter.push(text);
        parts.extend(splitter.finish());
        for part in parts {
            match part {
                LinePart::Words(w) => line.words.push_str(&w),
                LinePart::Emotion(e) => {
                    if line.emotion.is_none() {
                        line.emotion = self.emotion(&e).map(str::to_owned);
                    }
                }
                LinePart::Call(call) if line.action.is_none() && line.refused.is_none() => {
                    match self.action(&call) {
                        Ok(a) => line.action = Some(a),
                        Err(e) => line.refused = Some(e),
                    }
                }
                LinePart::Call(_) => {}
            }
        }
        line.words = line.words.trim().to_owned();
        line
    }

    /// Reads a call (`give_item {"item":"key"}`, without the angle brackets) as an allowed,
    /// validated action.
    pub fn action(&self, call: &str) -> Result<Action, ActionError> {
        let call = call.trim();
        let (name, args) = match call.split_once(|c: char| c.is_whitespace() || c == '{') {
            Some((n, _)) => (n, call[n.len()..].trim()),
            None => (call, ""),
        };
        let Some(decl) = self.actions.get(name) else {
            return Err(ActionError::Unknown {
                call: call.to_owned(),
                allowed: self.actions.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        };
        decl.validate(name, args)
    }

    /// The emotion `name` if it is one this format allows.
    pub fn emotion<'a>(&self, name: &'a str) -> Option<&'a str> {
        self.emotions.iter().any(|e| e == name).then_some(name)
    }
}

impl ActionDecl {
    /// Checks the JSON arguments `args` (empty for none) of action `name` against this
    /// declaration.
    pub fn validate(&self, name: &str, args: &str) -> Result<Action, ActionError> {
        let bad = |arg: &str, reason: String| ActionError::BadArg {
            action: name.to_owned(),
            arg: arg.to_owned(),
            reason,
        };
        let given: serde_json::Map<String, Value> = if args.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_str(args).map_err(|e| ActionError::Malformed {
                action: name.to_owned(),
                reason: e.to_string(),
            })?
        };
        if let Some(extra) = given.keys().find(|k| !self.args.contains_key(*k)) {
            return Err(bad(extra, "is not declared".into()));
        }
        let mut out = BTreeMap::new();
        for (arg, ty) in &self.args {
            let v = given
                .get(arg)
                .ok_or_else(|| bad(arg, "is missing".into()))?;
            let value = typed(ty, v).map_err(|reason| bad(arg, reason))?;
            out.insert(arg.clone(), value);
        }
        Ok(Action {
            name: name.to_owned(),
            args: out,
        })
    }
}

fn typed(ty: &ArgType, v: &Value) -> Result<ArgValue, String> {
    match ty {
        ArgType::Text { max_len } => match v.as_str() {
            Some(s) if s.chars().count() <= *max_len as usize => Ok(ArgValue::Text(s.to_owned())),
            Some(_) => Err(format!("is longer than {max_len} characters")),
            None => Err(format!("should be text, not {v}")),
        },
        // JSON's `-0` and `2.0` are whole numbers too.
        ArgType::Int { min, max } => match v.as_i64().or_else(|| {
            v.as_f64()
                .filter(|x| x.fract() == 0.0 && x.abs() < 9.0e15)
                .map(|x| x as i64)
        }) {
            Some(i) if (*min..=*max).contains(&i) => Ok(ArgValue::Int(i)),
            Some(i) => Err(format!("is {i}, outside {min}..={max}")),
            None => Err(format!("should be a whole number, not {v}")),
        },
        ArgType::Float { min, max } => match v.as_f64() {
            Some(x) if (*min..=*max).contains(&x) => Ok(ArgValue::Float(x)),
            Some(x) => Err(format!("is {x}, outside {min}..={max}")),
            None => Err(format!("should be a number, not {v}")),
        },
        ArgType::Bool => v
            .as_bool()
            .map(ArgValue::Bool)
            .ok_or_else(|| format!("should be true or false, not {v}")),
        ArgType::OneOf(words) => match v.as_str() {
            Some(s) if words.iter().any(|w| w == s) => Ok(ArgValue::Text(s.to_owned())),
            _ => Err(format!("should be one of {}, not {v}", words.join(", "))),
        },
    }
}
