//! Banned phrases, matched the way a player would read them: across token boundaries, in any
//! case, through accents, full-width and mathematical letters, Cyrillic and Greek look-alikes
//! and digit spellings (`h3ll0`), with zero-width characters ignored.
//!
//! [`BannedPhrases`] is the compiled set; the generation loop bans a phrase's first token and
//! backtracks when one appears in its held-back text ([`Continuation`](crate::engine::generate::Continuation)),
//! and [`StreamGuard`] holds back streamed text of any backend until it cannot start a banned
//! phrase. The rules themselves are authored in `safety.ron` ([`crate::story::safety`]).

mod fold;
mod guard;
mod phrases;

pub use fold::{Folded, fold};
pub use guard::{Guarded, StreamGuard};
pub use phrases::{BanHit, BannedPhrases};
