//! The Bevy plugin's integration tests, headless (`MinimalPlugins`): talking, choices, free
//! text, stories, hot reload, saves, safety, priority, remote and voice, and a real model through
//! the plugin. One binary, one module per behaviour.

#[path = "../common/app.rs"]
#[allow(dead_code)]
mod app;
#[path = "../common/mod.rs"]
mod common;

mod between;
mod cancel_on_despawn;
mod choices;
mod free_text;
mod hot_reload;
mod locale;
mod messages;
mod no_model;
mod priority;
mod real_model;
#[cfg(feature = "remote")]
mod remote;
mod safety;
mod save_load;
mod stories;
mod talk;
#[cfg(feature = "voice")]
mod voice;
