//! What the runtime asks of its driver, and how a step can fail.

use crate::engine::backend::Prompt;
use crate::engine::sampler::SamplingParams;

use crate::story::acts::{Action, ActionError, LineFormat};
use crate::story::expr::ExprError;
use crate::story::prompt::FittedPrompt;

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
    /// What the line carries besides words (the speaker's emotions, the actions allowed
    /// here), if anything: send [`LineFormat::constraint`] with the request and read the text
    /// with a [`MarkupSplitter`](crate::story::acts::MarkupSplitter).
    pub format: Option<LineFormat>,
}

/// A generated line, read: its words, the emotion it opened with and the action it took.
#[derive(Debug, Clone, PartialEq)]
pub struct LineOutcome {
    /// The spoken words, without markup (what the speaker's memory keeps).
    pub words: String,
    /// The emotion shown, one of the speaker's.
    pub emotion: Option<String>,
    /// The action taken, validated against the speaker's declaration.
    pub action: Option<Action>,
    /// An action call that was refused (unknown here, or bad arguments): no action is taken.
    pub refused: Option<ActionError>,
    /// The node the story moved to (`on_action`'s edge for the action, else `next`).
    pub next: String,
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
#[allow(clippy::large_enum_variant)] // one beat at a time, moved once: boxing would buy nothing
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
    /// A choice whose options are all hidden by their conditions: the story cannot go on
    /// from here (give one option no condition, or route around the node).
    #[error(
        "node `{node}`: every option is hidden by its condition, so there is nothing to pick (give one option no `when`)"
    )]
    NoOptionShown {
        /// The node.
        node: String,
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
    /// When a model scored the text: the probability of its best candidate.
    pub probability: Option<f32>,
    /// The model's pick was taken (false: keywords decided, or `otherwise`).
    pub by_model: bool,
    /// The node it led to.
    pub target: String,
}

/// A choose request scoring what the player typed against a free-input node's open edges.
#[derive(Debug, Clone, PartialEq)]
pub struct RouteRequest {
    /// The player's text, cleaned as it will be recorded.
    pub player: String,
    /// The scoring prompt.
    pub prompt: Prompt,
    /// One candidate per open edge, then "something else"; empty when no edge is open.
    pub candidates: Vec<String>,
}
