//! The Bevy plugin: [`LlamaDialoguePlugin`].
//!
//! A thin layer over the Bevy-free [`engine`](crate::engine) and [`story`](crate::story): the
//! model runs on the worker thread, one `PreUpdate` system drains its events under a per-frame
//! budget, and no system ever waits. The plugin guide (`docs/PLUGIN.md`) follows; its examples
//! compile and run as doctests.
//!
#![doc = include_str!("../../docs/PLUGIN.md")]

mod assets;
mod backend;
mod between;
mod components;
mod diagnostics;
mod drive;
mod events;
mod lookup;
mod messages;
mod persist;
mod receive;
mod safety;
mod schedule;
mod settings;
mod speech;
mod status;
mod story;
mod talk;
#[cfg(feature = "voice")]
mod voice;

use std::path::PathBuf;

use bevy::asset::io::AssetSourceBuilder;
use bevy::prelude::*;

pub use assets::{PersonaAsset, PersonaLoader, StoryAsset, StoryLoadError, StoryLoader};
pub use backend::{DialogueBackendHandle, Speaking};
pub use between::{LineHeard, TalkBetween, TalkBetweenEnded};
pub use components::{DialogueListener, FreeChatMemory, Npc, NpcEmotion, NpcStats, SpeechBuffer};
pub use diagnostics::{
    DialogueStats, PREFIX_CACHE_HIT_RATE, QUEUE_LENGTH, QUEUE_WAIT_MS, TOKENS_PER_SECOND, TTFT_MS,
};
pub use events::{
    ChoicesPresented, ChoicesWithdrawn, DialogueError, DialogueTag, InputRequested, LineChunk,
    LineFinished, LineQueued, LineStarted, NpcAction, StoryEnded, StoryNodeEntered, tags_in,
};
pub use messages::{
    CancelDialogue, ChoicePicked, LoadStory, PlayerSaid, SaveStory, StorySaved, TalkTo,
};
pub use safety::{
    DialogueFlagged, DialogueSafety, PlayerInputLimited, RULES_NOT_LOADED, SafetyConfig,
};
pub use settings::{DialogueSettings, Scheduling};
pub use status::{DialogueBackendStatus, ModelFailed, ModelReady};
pub use story::{DialogueStory, PlayerStory, StoryWait};
#[cfg(feature = "microphone")]
pub use voice::MicrophonePlugin;
#[cfg(feature = "voice")]
pub use voice::{
    DialogueVoicePlugin, ListenMode, MicrophoneAudio, NpcMouth, NpcSpeechAudio, NpcSpeechStopped,
    NpcVoice, NpcVoicePlayback, NpcVoiceSound, PlayerSpeaking, PlayerSpoke, PushToTalk, VoiceClip,
    VoiceClipDecoder, VoiceFocus, VoicePart, VoiceStatus,
};

use crate::engine::backend::{DialogueBackend, LocalLlama, Scripted};
use crate::engine::sampler::SamplingParams;
use crate::engine::source::ModelSource;
use crate::engine::worker::WorkerConfig;

/// The plugin's systems, in the order they run each frame.
#[derive(SystemSet, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DialogueSystems {
    /// `PreUpdate`: drain the backend (text chunks, finished lines, scores) into entity events.
    Receive,
    /// `Update`: start or hot-reload the story, then read the game's messages (talk, choices,
    /// typed text, cancel, save/load). Send messages before this set to have them handled in the
    /// same frame.
    Input,
    /// `Update`: take story steps and send requests to the backend.
    Drive,
    /// `Update`: warm personas near the listener, cancel lines of NPCs left behind.
    Schedule,
    /// `PostUpdate`: publish diagnostics.
    Diagnostics,
}

/// Gives NPCs a voice. Add it **before** `DefaultPlugins` (or `AssetPlugin`) so it can register
/// the `stories://` asset source:
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_llama_dialogue::plugin::{LlamaDialoguePlugin, Npc};
/// use bevy_llama_dialogue::engine::source::ModelSource;
///
/// App::new()
///     .add_plugins(LlamaDialoguePlugin {
///         model: ModelSource::path("models/llama-2-7b-chat.Q4_K_M.gguf"),
///         story: Some("stories://lantern.story.ron".into()),
///         ..default()
///     })
///     .add_plugins(MinimalPlugins)
///     .add_plugins(AssetPlugin::default())
///     .add_systems(Startup, |mut commands: Commands, assets: Res<AssetServer>| {
///         commands.spawn((Npc::new(assets.load("stories://personas/mara.persona.ron")), Transform::default()));
///     })
///     .run();
/// ```
pub struct LlamaDialoguePlugin {
    /// The model; [`ModelSource::None`] plays the authored fallback lines.
    pub model: ModelSource,
    /// Compute threads for the model (default: physical cores − 1, leaving one to the game).
    pub threads: Option<usize>,
    /// Memory for cached persona/conversation prefixes, in MB.
    pub prefix_cache_mb: usize,
    /// Lines the local model generates at once (continuous batching, default 4): several NPCs
    /// speak together, each weight read once per step for all of them. 1: one line at a time.
    pub max_batch: usize,
    /// Sampling defaults for generated lines.
    pub sampling: SamplingParams,
    /// How NPCs are scheduled and how much happens per frame.
    pub scheduling: Scheduling,
    /// The folder behind `stories://`.
    pub stories_dir: PathBuf,
    /// A story to run (asset path, e.g. `stories://lantern.story.ron`).
    pub story: Option<String>,
    /// Play stories in this language: each story loads its `<story>.<locale>.strings.csv`
    /// translation (made with `llama-dialogue strings import`, hot-reloaded like the story);
    /// untranslated lines, or a story with no translation, use the authored text.
    pub locale: Option<String>,
    /// Use this backend instead of the one `model` selects (tests, remote backends).
    pub backend: Option<fn() -> Box<dyn DialogueBackend>>,
    /// Moderation rules (`safety.ron` in `stories_dir`), the input limit and the audit log.
    pub safety: SafetyConfig,
}

impl Default for LlamaDialoguePlugin {
    fn default() -> Self {
        Self {
            model: ModelSource::None,
            threads: None,
            prefix_cache_mb: 512,
            max_batch: 4,
            sampling: SamplingParams {
                temperature: 0.7,
                max_tokens: 80,
                ..SamplingParams::default()
            },
            scheduling: Scheduling::default(),
            stories_dir: PathBuf::from("stories"),
            story: None,
            locale: None,
            backend: None,
            safety: SafetyConfig::default(),
        }
    }
}

impl LlamaDialoguePlugin {
    fn make_backend(&self) -> Box<dyn DialogueBackend> {
        if let Some(make) = self.backend {
            return make();
        }
        match &self.model {
            ModelSource::None => Box::new(Scripted::new()),
            #[cfg(feature = "remote")]
            ModelSource::Remote {
                url,
                model,
                api_key_env,
            } => {
                let mut config = crate::engine::remote::RemoteConfig::new(url.clone());
                config.model = model.clone();
                config.api_key_env = api_key_env.clone();
                Box::new(crate::engine::remote::OpenAiCompatible::spawn(config))
            }
            model => {
                let mut config = WorkerConfig::new(model.clone());
                config.threads = self.threads;
                config.prefix_cache_mb = self.prefix_cache_mb;
                config.max_batch = self.max_batch;
                Box::new(LocalLlama::spawn(config))
            }
        }
    }
}

impl Plugin for LlamaDialoguePlugin {
    fn build(&self, app: &mut App) {
        if app.world().get_resource::<AssetServer>().is_some() {
            error!(
                "LlamaDialoguePlugin was added after AssetPlugin, so `stories://` is not registered; \
                 add LlamaDialoguePlugin before DefaultPlugins (stories still load from `assets/`)"
            );
        } else {
            let dir = self.stories_dir.to_string_lossy().into_owned();
            app.register_asset_source("stories", AssetSourceBuilder::platform_default(&dir, None));
        }
        let backend = self.make_backend();
        info!("dialogue backend: {}", backend.label());
        app.insert_resource(DialogueSettings {
            sampling: self.sampling.clone(),
            scheduling: self.scheduling.clone(),
        })
        .insert_resource(DialogueBackendHandle::new(backend))
        .insert_resource(DialogueSafety::start(&self.safety, &self.stories_dir))
        .init_resource::<DialogueStats>()
        .init_resource::<DialogueBackendStatus>()
        .init_resource::<talk::DeferredMessages>()
        .init_resource::<between::Exchanges>()
        .add_message::<TalkTo>()
        .add_message::<TalkBetween>()
        .add_message::<PlayerSaid>()
        .add_message::<ChoicePicked>()
        .add_message::<CancelDialogue>()
        .add_message::<SaveStory>()
        .add_message::<LoadStory>()
        .add_message::<StorySaved>()
        .configure_sets(
            Update,
            (
                DialogueSystems::Input,
                DialogueSystems::Drive,
                DialogueSystems::Schedule,
            )
                .chain(),
        )
        .add_systems(
            PreUpdate,
            (receive::receive, status::track)
                .chain()
                .in_set(DialogueSystems::Receive),
        )
        .add_systems(
            Update,
            (
                (
                    safety::reload_rules,
                    drive::load_story,
                    talk::handle_messages,
                    between::start_and_stop,
                    persist::save_and_load,
                )
                    .chain()
                    .in_set(DialogueSystems::Input),
                (drive::advance_story, between::advance).in_set(DialogueSystems::Drive),
                schedule::schedule.in_set(DialogueSystems::Schedule),
            ),
        )
        .add_systems(
            PostUpdate,
            diagnostics::measure.in_set(DialogueSystems::Diagnostics),
        )
        .add_observer(schedule::on_npc_removed);
        diagnostics::register(app);
    }

    fn finish(&self, app: &mut App) {
        if !app.is_plugin_added::<bevy::transform::TransformPlugin>() {
            warn!(
                "LlamaDialoguePlugin without TransformPlugin: GlobalTransform never updates, so \
                 priority by distance and view, warming and cancel-on-walking-away all see every \
                 NPC at the origin; add TransformPlugin (DefaultPlugins has it)"
            );
        }
        if app.world().get_resource::<AssetServer>().is_none() {
            error!(
                "LlamaDialoguePlugin needs AssetPlugin: did you forget DefaultPlugins or AssetPlugin?"
            );
            return;
        }
        let shown_root = self.stories_dir.clone();
        app.init_asset::<PersonaAsset>()
            .init_asset::<StoryAsset>()
            .register_asset_loader(PersonaLoader {
                shown_root: shown_root.clone(),
            })
            .register_asset_loader(StoryLoader {
                shown_root,
                locale: self.locale.clone(),
            });
        if let Some(path) = &self.story {
            let handle = app
                .world()
                .resource::<AssetServer>()
                .load::<StoryAsset>(path.clone());
            app.world_mut().spawn((
                Name::new("dialogue story"),
                PlayerStory,
                DialogueStory::new(handle),
            ));
        }
    }
}
