//! The Bevy-free story layer: personas and branching stories authored in RON, validated with
//! exact `file:line:col` errors, run by a [`StoryRuntime`] that asks a
//! [`DialogueBackend`](crate::engine::backend::DialogueBackend) for generated lines and routes
//! free player text onto authored edges. The format is documented in `docs/AUTHORING.md`.

pub mod acts;
mod budget;
mod conversation;
mod diagnostic;
pub mod eval;
mod expr;
mod load;
mod model;
mod persona;
mod promote;
mod prompt;
mod ron_hints;
mod route;
mod runtime;
pub mod safety;
mod save;
mod session;
mod state;
mod strings;
mod unique;
mod validate;

pub use budget::{Estimate, ModelCounter, TokenCounter};
pub use conversation::{Conversation, PickError, Step, StoryWait};
pub use diagnostic::{Diagnostic, Diagnostics, Location, Severity, SourceText};
pub use expr::{
    Expr, ExprError, MAX_EXPR_DEPTH, MAX_EXPR_LEN, MAX_EXPR_OPERATORS, MAX_TEXT_DEPTH, TextScope,
    interpolate, render,
};
pub use load::{
    CastMember, StoryBundle, cast_path, parse_persona, parse_story, read_cast, read_source,
};
pub use model::{
    Case, ChoiceOption, Effect, IntentEdge, Node, Story, StorySettings, VarType, VarValue,
};
pub use persona::{
    Fact, GenerationOverrides, Persona, Relationship, SampleLine, relationship_words,
};
pub use promote::{PromoteError, promote_generated};
pub use prompt::{
    FittedPrompt, OPENING_TURN, PromptParts, PromptTooLong, fit, measure, state_text,
};
pub use route::{NONE_OF_THESE, pick_keywords, pick_scored, route_prompt, sanitize_player_text};
pub use runtime::{
    Beat, LineOutcome, LineRequest, MARKUP_TOKENS, RouteRequest, Routed, RuntimeError, ShownOption,
    StoryRuntime,
};
pub use save::{SAVE_FORMAT, SaveError, SaveGame, content_hash, write_atomic};
pub use session::{Session, SpokenLine};
pub use state::{MEMORY_TURNS, NpcMemory, StoryState, keep_last};
pub use strings::{
    AuthoredLine, StringsError, TITLE_ID, TranslatedLine, Translation, TranslationReport,
    authored_lines, check_translation, localize, option_ids, translation_path,
};
pub use validate::{MAX_STATES, PLAYER};
