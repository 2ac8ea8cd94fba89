//! The story format (`*.story.ron`): variables, cast, nodes, effects. See `docs/AUTHORING.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::unique::unique_map;

/// A story variable's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum VarValue {
    /// `Bool(true)`.
    Bool(bool),
    /// `Int(3)`.
    Int(i64),
    /// `Float(0.5)`.
    Float(f64),
    /// `String("text")`.
    String(String),
}

/// A variable's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VarType {
    /// true/false.
    Bool,
    /// Whole numbers.
    Int,
    /// Decimal numbers.
    Float,
    /// Text.
    String,
}

impl VarValue {
    /// The value's type.
    pub fn var_type(&self) -> VarType {
        match self {
            Self::Bool(_) => VarType::Bool,
            Self::Int(_) => VarType::Int,
            Self::Float(_) => VarType::Float,
            Self::String(_) => VarType::String,
        }
    }
}

impl std::fmt::Display for VarValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(i) => write!(f, "{i}"),
            Self::Float(x) => write!(f, "{x}"),
            Self::String(s) => f.write_str(s),
        }
    }
}

impl std::fmt::Display for VarType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Bool => "bool",
            Self::Int => "int",
            Self::Float => "float",
            Self::String => "string",
        })
    }
}

/// Something a node, choice or edge does to the story state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// `Set("trust", "trust + 1")`: the variable takes the expression's value (same type).
    Set(String, String),
    /// `Add("trust", 1)`: adds a number to an int or float variable.
    Add(String, f64),
    /// `Flag("saw_thief")`: sets a bool variable to true.
    Flag(String),
    /// `Clear("saw_thief")`: sets a bool variable to false.
    Clear(String),
    /// `Relate("mara", "player", 1)`: changes how an NPC feels about the player or another
    /// cast member.
    Relate(String, String, i64),
    /// `Remember("mara", "The player found the key.")`: a fact the NPC will know from now on
    /// (`{variable}` interpolation allowed).
    Remember(String, String),
}

/// One authored option of a [`Node::Choice`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceOption {
    /// What the player says (`{variable}` interpolation allowed).
    pub text: String,
    /// Shown only when this condition holds.
    #[serde(default)]
    pub when: Option<String>,
    /// Applied when picked.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// Where it leads.
    pub next: String,
    /// Shown until it has been picked once (Ink's once-only `*` choice). Without it an option
    /// is sticky: shown every time its condition holds.
    #[serde(default)]
    pub once: bool,
    /// Shown only when no other option of the choice is (Ink's fallback choice): the way on
    /// when every other option is hidden or used up.
    #[serde(default)]
    pub fallback: bool,
}

/// One authored edge of a [`Node::FreeInput`]: what the player's free text may mean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntentEdge {
    /// What the player means, in words the model scores ("asks about the mill").
    pub intent: String,
    /// Words that select this edge when there is no model (case-insensitive).
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Only considered when this condition holds.
    #[serde(default)]
    pub when: Option<String>,
    /// Applied when taken.
    #[serde(default)]
    pub effects: Vec<Effect>,
    /// Where it leads.
    pub next: String,
}

/// A case of a [`Node::Branch`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The condition.
    pub when: String,
    /// Where to go when it holds.
    pub next: String,
}

/// A node of the story graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum Node {
    /// An authored line, spoken by a cast member or, without `speaker`, the narrator.
    Line {
        /// Unique id.
        id: String,
        /// Cast key of the speaker; none for narration.
        #[serde(default)]
        speaker: Option<String>,
        /// The line (`{variable}` interpolation allowed).
        text: String,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
        /// Where to go after it.
        next: String,
    },
    /// A line the model writes in character, following a directive.
    Generate {
        /// Unique id.
        id: String,
        /// Cast key of the speaker.
        speaker: String,
        /// What the line must do ("Mara hints at the mill without naming it").
        directive: String,
        /// Longest answer in tokens (default: the story's `settings.max_tokens`).
        #[serde(default)]
        max_tokens: Option<u32>,
        /// The authored line used without a model or when generation fails.
        fallback: String,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
        /// Where to go after it.
        next: String,
        /// Actions (declared by the speaker's persona) the speaker may take in this line.
        #[serde(default)]
        actions: Vec<String>,
        /// Where to go instead of `next` when the speaker takes an action, by action name.
        #[serde(default, deserialize_with = "unique_map")]
        on_action: BTreeMap<String, String>,
    },
    /// Authored options for the player.
    Choice {
        /// Unique id.
        id: String,
        /// Who is being answered (their memory records the pick).
        #[serde(default)]
        speaker: Option<String>,
        /// A line shown with the options, if any.
        #[serde(default)]
        text: Option<String>,
        /// The options, in order.
        options: Vec<ChoiceOption>,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
    },
    /// The player types freely; the text is routed onto one of the edges.
    FreeInput {
        /// Unique id.
        id: String,
        /// Who is being spoken to.
        speaker: String,
        /// A prompt shown to the player, if any.
        #[serde(default)]
        text: Option<String>,
        /// What the player's text may mean.
        edges: Vec<IntentEdge>,
        /// Where to go when no edge matches.
        otherwise: String,
        /// Lowest probability for an edge to be taken (default: `settings.route_threshold`).
        #[serde(default)]
        threshold: Option<f32>,
        /// A declared string variable that keeps what the player typed (cleaned and cut to
        /// `settings.max_player_tokens`), set before the edge's effects run: a name, a
        /// password, usable in text (`{player_name}`) and conditions.
        #[serde(default)]
        store: Option<String>,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
    },
    /// A jump: the first case whose condition holds, else `otherwise`.
    Branch {
        /// Unique id.
        id: String,
        /// Conditions in order.
        #[serde(default)]
        cases: Vec<Case>,
        /// Where to go when no case holds.
        otherwise: String,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
    },
    /// The story ends here.
    Ending {
        /// Unique id.
        id: String,
        /// The ending's name ("The lantern returned").
        title: String,
        /// A closing line (`{variable}` interpolation allowed).
        #[serde(default)]
        text: Option<String>,
        /// Applied on entering.
        #[serde(default)]
        effects: Vec<Effect>,
    },
}

impl Node {
    /// The node's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Line { id, .. }
            | Self::Generate { id, .. }
            | Self::Choice { id, .. }
            | Self::FreeInput { id, .. }
            | Self::Branch { id, .. }
            | Self::Ending { id, .. } => id,
        }
    }

    /// The kind's name as written in RON.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Self::Line { .. } => "Line",
            Self::Generate { .. } => "Generate",
            Self::Choice { .. } => "Choice",
            Self::FreeInput { .. } => "FreeInput",
            Self::Branch { .. } => "Branch",
            Self::Ending { .. } => "Ending",
        }
    }

    /// Effects applied on entering.
    pub fn effects(&self) -> &[Effect] {
        match self {
            Self::Line { effects, .. }
            | Self::Generate { effects, .. }
            | Self::Choice { effects, .. }
            | Self::FreeInput { effects, .. }
            | Self::Branch { effects, .. }
            | Self::Ending { effects, .. } => effects,
        }
    }

    /// The cast member speaking or spoken to, if any.
    pub fn speaker(&self) -> Option<&str> {
        match self {
            Self::Line { speaker, .. } | Self::Choice { speaker, .. } => speaker.as_deref(),
            Self::Generate { speaker, .. } | Self::FreeInput { speaker, .. } => Some(speaker),
            Self::Branch { .. } | Self::Ending { .. } => None,
        }
    }

    /// Every node id this node can lead to, in authored order.
    pub fn targets(&self) -> Vec<&str> {
        match self {
            Self::Line { next, .. } => vec![next],
            Self::Generate {
                next, on_action, ..
            } => std::iter::once(next.as_str())
                .chain(on_action.values().map(String::as_str))
                .collect(),
            Self::Choice { options, .. } => options.iter().map(|o| o.next.as_str()).collect(),
            Self::FreeInput {
                edges, otherwise, ..
            } => edges
                .iter()
                .map(|e| e.next.as_str())
                .chain([otherwise.as_str()])
                .collect(),
            Self::Branch {
                cases, otherwise, ..
            } => cases
                .iter()
                .map(|c| c.next.as_str())
                .chain([otherwise.as_str()])
                .collect(),
            Self::Ending { .. } => Vec::new(),
        }
    }
}

fn default_context() -> usize {
    4096
}
fn default_history() -> usize {
    8
}
fn default_player_tokens() -> usize {
    64
}
fn default_max_tokens() -> u32 {
    80
}
fn default_threshold() -> f32 {
    0.35
}

/// Story-wide settings; every field may be left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorySettings {
    /// The context length the prompts must fit (LLaMA-2: 4096). `check --model` uses the model's.
    #[serde(default = "default_context")]
    pub context_tokens: usize,
    /// How many recent turns (lines either way) go into a prompt.
    #[serde(default = "default_history")]
    pub history_turns: usize,
    /// Player text is cut to this many tokens (estimated) before it reaches a prompt.
    #[serde(default = "default_player_tokens")]
    pub max_player_tokens: usize,
    /// Longest generated line in tokens, unless a node says otherwise.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Lowest probability (0–1) for free text to take an authored edge.
    #[serde(default = "default_threshold")]
    pub route_threshold: f32,
}

impl Default for StorySettings {
    fn default() -> Self {
        Self {
            context_tokens: default_context(),
            history_turns: default_history(),
            max_player_tokens: default_player_tokens(),
            max_tokens: default_max_tokens(),
            route_threshold: default_threshold(),
        }
    }
}

/// A story: a graph of nodes over declared variables, spoken by a cast of personas.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Story {
    /// Stable id (saves name it).
    pub id: String,
    /// Title shown to players.
    pub title: String,
    /// A sentence about the story's premise; it goes into every prompt's story state.
    #[serde(default)]
    pub description: String,
    /// Declared variables and their initial values.
    #[serde(default, deserialize_with = "unique_map")]
    pub variables: BTreeMap<String, VarValue>,
    /// Cast key → persona file, relative to the story file.
    #[serde(default, deserialize_with = "unique_map")]
    pub cast: BTreeMap<String, String>,
    /// The first node.
    pub start: String,
    /// Story-wide settings.
    #[serde(default)]
    pub settings: StorySettings,
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Story {
    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id() == id)
    }
}
