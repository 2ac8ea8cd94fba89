//! Speech both ways in the plugin (feature `voice`): [`DialogueVoicePlugin`].
//!
//! - **Listening**: audio sent as [`MicrophoneAudio`] (from the `microphone` feature's capture,
//!   or the game's own) goes to Whisper on its own thread behind a voice-activity detector (or
//!   push-to-talk, [`PushToTalk`]); while the player speaks, [`PlayerSpeaking`] carries the
//!   partial transcript; what was said arrives as [`PlayerSpoke`] and as a
//!   [`PlayerSaid`](super::PlayerSaid) to the NPC in [`VoiceFocus`], so it takes the same
//!   route onto the story's edges as typed text.
//! - **Speaking**: every NPC line is synthesised sentence by sentence on its own thread as it
//!   streams in (the first sentence sounds before the line is finished), in the voice its
//!   persona names (`voice: (name, pitch, rate)`; [`NpcVoice`] overrides); each sentence's PCM
//!   and visemes arrive as [`NpcSpeechAudio`] on the NPC, whose [`NpcMouth`] follows the
//!   visemes as the audio plays. A cancelled line (walking away, [`CancelDialogue`]
//!   (super::CancelDialogue), despawn) stops its audio: [`NpcSpeechStopped`].
//!
//! Nothing here waits on a frame: both models run on their own threads.

mod listen;
#[cfg(feature = "microphone")]
mod microphone;
mod playback;
mod speak;

use std::path::PathBuf;

use bevy::prelude::*;

pub use listen::{
    ListenMode, MicrophoneAudio, PlayerSpeaking, PlayerSpoke, PushToTalk, VoiceFocus,
};
#[cfg(feature = "microphone")]
pub use microphone::MicrophonePlugin;
pub use playback::{NpcVoiceSound, VoiceClip, VoiceClipDecoder};
pub use speak::{NpcMouth, NpcSpeechAudio, NpcSpeechStopped, NpcVoice, NpcVoicePlayback};

use super::{DialogueSystems, Npc};
use crate::engine::voice::listen::ListenConfig;
use crate::engine::voice::{Voice, VoiceError, VoiceSpec};

/// Adds speech both ways. Add it after [`LlamaDialoguePlugin`](super::LlamaDialoguePlugin).
///
/// ```no_run
/// use bevy::prelude::*;
/// use bevy_llama_dialogue::plugin::{DialogueVoicePlugin, LlamaDialoguePlugin};
///
/// App::new()
///     .add_plugins(LlamaDialoguePlugin::default())
///     .add_plugins(DefaultPlugins)
///     .add_plugins(DialogueVoicePlugin {
///         whisper: Some("models/whisper-tiny.en".into()),
///         ..default()
///     })
///     .run();
/// ```
pub struct DialogueVoicePlugin {
    /// The Whisper folder (Hugging Face layout, or CTranslate2's `model.bin`, converted once
    /// and cached); `None`: the player is not listened to (NPCs still speak).
    pub whisper: Option<PathBuf>,
    /// Voice-activity detection and partial transcripts.
    pub listen: ListenConfig,
    /// Speak freely, or only while [`PushToTalk`] is held.
    pub mode: ListenMode,
    /// NPCs speak their lines aloud.
    pub speak: bool,
    /// The voice of personas that name none.
    pub default_voice: VoiceSpec,
    /// The synthesiser (default: eSpeak NG).
    pub make_voice: Option<MakeVoice>,
}

impl Default for DialogueVoicePlugin {
    fn default() -> Self {
        Self {
            whisper: None,
            listen: ListenConfig::default(),
            mode: ListenMode::VoiceActivity,
            speak: true,
            default_voice: VoiceSpec::default(),
            make_voice: None,
        }
    }
}

/// Makes the synthesiser, on the speaking thread.
pub type MakeVoice = fn() -> Result<Box<dyn Voice>, VoiceError>;

/// Where each half of the voice stands.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum VoicePart {
    /// Not used (no Whisper folder; `speak: false`).
    #[default]
    Off,
    /// The model or synthesiser is starting.
    Loading,
    /// Working; the text names the model or synthesiser.
    Ready(String),
    /// It did not start; the text says why. The game goes on without it.
    Failed(String),
}

/// The voice's state, for a status line.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct VoiceStatus {
    /// Speech to text.
    pub listening: VoicePart,
    /// Text to speech.
    pub speaking: VoicePart,
}

impl Plugin for DialogueVoicePlugin {
    fn build(&self, app: &mut App) {
        let mut status = VoiceStatus::default();
        let listener = self.whisper.clone().map(|dir| {
            status.listening = VoicePart::Loading;
            crate::engine::voice::listen::SpeechToText::spawn(dir, self.listen.clone())
        });
        let speaker = self.speak.then(|| {
            status.speaking = VoicePart::Loading;
            match self.make_voice {
                Some(make) => crate::engine::voice::speak::TextToSpeech::spawn(Box::new(make)),
                None => crate::engine::voice::speak::TextToSpeech::espeak(),
            }
        });
        app.insert_resource(status)
            .insert_resource(listen::Listening {
                stt: listener,
                mode: self.mode,
                held: false,
            })
            .insert_resource(speak::Speaker {
                tts: speaker,
                default_voice: self.default_voice.clone(),
                next_line: 1,
            })
            .init_resource::<speak::LineOwners>()
            .init_resource::<VoiceFocus>()
            .init_resource::<PushToTalk>()
            .add_message::<MicrophoneAudio>()
            .add_message::<PlayerSpeaking>()
            .add_message::<PlayerSpoke>()
            .register_required_components::<Npc, NpcMouth>()
            .register_required_components::<Npc, NpcVoicePlayback>()
            .add_systems(
                Update,
                (listen::focus_on_talk, listen::feed, listen::receive)
                    .chain()
                    .before(DialogueSystems::Input),
            )
            .add_systems(PreUpdate, speak::receive.after(DialogueSystems::Receive))
            .add_systems(
                Update,
                (speak::stop_when_left, speak::animate)
                    .chain()
                    .after(DialogueSystems::Schedule),
            )
            .add_observer(speak::on_line_started)
            .add_observer(speak::on_line_chunk)
            .add_observer(speak::on_line_finished)
            .add_observer(speak::on_npc_removed);
    }

    fn finish(&self, app: &mut App) {
        if app.is_plugin_added::<bevy::audio::AudioPlugin>() {
            use bevy::audio::AddAudioSource;
            app.add_audio_source::<VoiceClip>()
                .insert_resource(playback::AudioOut);
        } else {
            info!(
                "voice: no AudioPlugin, so NPC speech is not played (NpcSpeechAudio and NpcMouth \
                 still carry it)"
            );
        }
    }
}
