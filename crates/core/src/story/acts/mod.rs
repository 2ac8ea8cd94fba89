//! What an NPC may do and show while it speaks: actions with typed arguments and a closed set
//! of emotions, declared in RON, turned into a grammar the model's line is held to, and read
//! back out of the streamed line.
//!
//! A line under [`LineFormat`] reads `[emotion] the spoken words <action {"arg":value}>`: the
//! emotion (one of the declared ones, where the NPC declares any) comes first so a game can show it before the
//! words, then the words (no markup characters), then at most one action call whose arguments
//! are JSON checked against the declaration. [`MarkupSplitter`] turns the streamed text into
//! [`LinePart`]s so that only the words reach the player; [`ActionDecl::validate`] turns the
//! call into a typed [`Action`].

mod decl;
mod format;
mod markup;
mod ranges;
mod value;

pub use decl::{ActionDecl, ArgType};
pub use format::LineFormat;
pub use markup::{LinePart, MarkupSplitter};
pub use value::{Action, ActionError, ArgValue, FromArg, ReadLine};

#[cfg(test)]
mod tests;
