//! Action declarations as authored in RON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The type of one action argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ArgType {
    /// Free text of at most `max_len` characters (default 40).
    Text {
        /// Longest text, in characters.
        #[serde(default = "default_text_len")]
        max_len: u32,
    },
    /// A whole number within `min..=max`.
    Int {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// A number within `min..=max`.
    Float {
        /// Smallest value.
        min: f64,
        /// Largest value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// One of these words.
    OneOf(Vec<String>),
}

fn default_text_len() -> u32 {
    40
}

impl ArgType {
    /// The JSON schema of a value of this type.
    pub fn schema(&self) -> Value {
        match self {
            Self::Text { max_len } => json!({"type": "string", "maxLength": max_len}),
            Self::Int { min, max } => json!({"type": "integer", "minimum": min, "maximum": max}),
            Self::Float { min, max } => json!({"type": "number", "minimum": min, "maximum": max}),
            Self::Bool => json!({"type": "boolean"}),
            Self::OneOf(words) => json!({"enum": words}),
        }
    }

    /// How the prompt describes it (`a whole number from 1 to 3`).
    pub fn describe(&self) -> String {
        match self {
            Self::Text { max_len } => format!("text of at most {max_len} characters"),
            Self::Int { min, max } => format!("a whole number from {min} to {max}"),
            Self::Float { min, max } => format!("a number from {min} to {max}"),
            Self::Bool => "true or false".into(),
            Self::OneOf(words) => format!("one of {}", words.join(", ")),
        }
    }

    /// What is wrong with the declaration itself (an empty range, an empty list).
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Int { min, max } if min > max => Some(format!("min {min} is above max {max}")),
            #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN bounds are a problem too
            Self::Float { min, max } if !(min <= max) => {
                Some(format!("min {min} is not at most max {max}"))
            }
            Self::Float { min, max } if super::ranges::decimal_range(*min, *max).is_none() => {
                Some(format!(
                    "no number with at most {} decimals lies in {min}..={max}",
                    super::ranges::DECIMALS
                ))
            }
            Self::OneOf(words) if words.is_empty() => Some("OneOf lists no words".into()),
            Self::Text { max_len: 0 } => Some("max_len is 0".into()),
            _ => None,
        }
    }
}

/// An action an NPC may take, as a persona declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDecl {
    /// What the action does, for the prompt ("hand the player an item from your stall").
    pub description: String,
    /// Its arguments by name; every one must be given.
    #[serde(default)]
    pub args: BTreeMap<String, ArgType>,
}

impl ActionDecl {
    /// The JSON schema of the arguments object (every argument required, no others), for
    /// servers that take a schema rather than our grammar.
    pub fn args_schema(&self) -> Value {
        let props: serde_json::Map<String, Value> = self
            .args
            .iter()
            .map(|(k, t)| (k.clone(), t.schema()))
            .collect();
        json!({
            "type": "object",
            "properties": props,
            "required": self.args.keys().collect::<Vec<_>>(),
            "additionalProperties": false,
            "x-guidance": {"whitespace_flexible": false},
        })
    }
}
