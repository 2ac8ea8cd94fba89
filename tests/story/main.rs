//! The story layer's integration tests: loading and checking stories and personas, the runtime,
//! conversations, saves, text and safety rules. One binary, one module per behaviour.

#[path = "../common/mod.rs"]
mod common;

/// Measures allocations for the property tests (`common::alloc`); forwards to the system's.
#[global_allocator]
static ALLOCATOR: common::alloc::Tracking = common::alloc::Tracking;

mod conversation;
mod fixtures;
mod properties;
mod reach;
mod runtime;
mod safety_rules;
mod saves;
mod text;
