//! The story layer's integration tests: loading and checking stories and personas, the runtime,
//! conversations, saves, text and safety rules. One binary, one module per behaviour.

#[path = "../common/mod.rs"]
mod common;

mod conversation;
mod fixtures;
mod reach;
mod runtime;
mod safety_rules;
mod saves;
mod text;
