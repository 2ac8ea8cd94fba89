//! Safety, limits and monitoring, Bevy-free: the rules authored in `safety.ron`
//! ([`SafetyRules`], checked by `llama-dialogue check` with `file:line:col` errors), the
//! [`Moderator`] trait they implement (a game adds its own classifier), the input limit, and
//! the opt-in [`AuditLog`]. Matching itself is in [`crate::engine::safety`].

mod audit;
mod input;
mod moderator;
mod rules;

pub use audit::{
    AuditConfig, AuditError, AuditKind, AuditLog, AuditRecord, AuditSummary, prompt_hash, rotated,
    summarize,
};
pub use input::{InputRefused, Limited};
pub use moderator::{Direction, Flag, ModerationContext, Moderator};
pub use rules::{Applies, InputLimit, OverLimit, Rule, SAFETY_FILE, SafetyFile, SafetyRules};
