#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod engine;
#[cfg(feature = "plugin")]
pub mod plugin;
pub mod story;
