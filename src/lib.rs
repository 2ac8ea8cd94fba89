#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub use bevy_llama_dialogue_core::{engine, story};

pub mod plugin;

pub use plugin::LlamaDialoguePlugin;

/// The guides under `docs/`, here so that their examples compile and run as doctests. (The
/// plugin guide is the [`plugin`](crate::plugin) module's own documentation; the engine's and the
/// story layer's are here rather than in the core crate's modules because their examples use
/// this crate's paths, which the core crate's doctests cannot.)
pub mod guide {
    #[doc = include_str!("../docs/ENGINE.md")]
    pub mod engine {}
    #[doc = include_str!("../docs/STORIES.md")]
    pub mod stories {}
    #[doc = include_str!("../docs/VOICE.md")]
    pub mod voice {}
    #[doc = include_str!("../docs/SAFETY.md")]
    pub mod safety {}
    #[doc = include_str!("../docs/RELIABILITY.md")]
    pub mod reliability {}
    #[doc = include_str!("../docs/QUALITY.md")]
    pub mod quality {}
    #[doc = include_str!("../docs/PERFORMANCE.md")]
    pub mod performance {}
    #[doc = include_str!("../docs/SCALING.md")]
    pub mod scaling {}
    #[doc = include_str!("../docs/WORKER.md")]
    pub mod worker {}
    #[doc = include_str!("../docs/CLI.md")]
    pub mod cli {}
    #[doc = include_str!("../docs/DEMO.md")]
    pub mod demo {}
    #[doc = include_str!("../docs/ARCHITECTURE.md")]
    pub mod architecture {}
    #[doc = include_str!("../docs/TESTING.md")]
    pub mod testing {}
    #[doc = include_str!("../docs/STATUS.md")]
    pub mod status {}
}

/// What a game needs for a talking NPC: `use bevy_llama_dialogue::prelude::*;`.
///
/// The plugin and its system set, the NPC and listener components, the messages a game sends
/// (talk, say, pick, cancel), the events it observes (line chunks and ends, choices, actions,
/// errors, model status), and the two engine types the plugin's fields take.
pub mod prelude {
    pub use crate::engine::sampler::SamplingParams;
    pub use crate::engine::source::ModelSource;
    pub use crate::plugin::{
        CancelDialogue, ChoicePicked, ChoicesPresented, DialogueError, DialogueListener,
        DialogueSettings, DialogueStory, DialogueSystems, FreeChatMemory, InputRequested,
        LineChunk, LineFinished, LineStarted, LlamaDialoguePlugin, ModelFailed, ModelReady, Npc,
        NpcAction, NpcEmotion, PersonaAsset, PlayerSaid, SpeechBuffer, StoryEnded,
        StoryNodeEntered, TalkTo,
    };
}
