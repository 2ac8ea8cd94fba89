//! The listening half: audio in, [`PlayerSpoke`] and [`PlayerSaid`] out.

use bevy::prelude::*;

use super::{VoicePart, VoiceStatus};
use crate::engine::voice::listen::{Heard, ListenEvent, SpeechToText};
use crate::plugin::{PlayerSaid, TalkTo};

/// How the player's speech is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListenMode {
    /// The player just speaks: a voice-activity detector finds where.
    #[default]
    VoiceActivity,
    /// Only audio while [`PushToTalk`] is held (a key, a controller's trigger).
    PushToTalk,
}

/// Microphone audio for the listener (any rate, mono). The `microphone` feature sends it from
/// the default input device; a game may send its own.
#[derive(Message, Debug, Clone)]
pub struct MicrophoneAudio {
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

/// The player is speaking: what was heard so far (empty when they just started).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct PlayerSpeaking {
    /// The partial transcript.
    pub partial: String,
}

/// The player said something (sent as [`PlayerSaid`] too when [`VoiceFocus`] names an NPC).
#[derive(Message, Debug, Clone, PartialEq)]
pub struct PlayerSpoke {
    /// Who it was said to.
    pub npc: Option<Entity>,
    /// What Whisper heard.
    pub text: String,
    /// Seconds of speech.
    pub audio_seconds: f32,
    /// Milliseconds from the end of the utterance being known to the text.
    pub transcribe_ms: f32,
}

/// The NPC the player's voice is for. Set by the game (the NPC in front of the player); a
/// [`TalkTo`] sets it too.
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct VoiceFocus {
    /// The NPC, if any.
    pub npc: Option<Entity>,
}

/// Push-to-talk: set `pressed` while the key or trigger is held (with
/// [`ListenMode::PushToTalk`]).
#[derive(Resource, Debug, Clone, Default, PartialEq)]
pub struct PushToTalk {
    /// Held now.
    pub pressed: bool,
}

#[derive(Resource)]
pub(super) struct Listening {
    pub stt: Option<SpeechToText>,
    pub mode: ListenMode,
    pub held: bool,
}

pub(super) fn focus_on_talk(mut talks: MessageReader<TalkTo>, mut focus: ResMut<VoiceFocus>) {
    if let Some(t) = talks.read().last()
        && focus.npc != Some(t.npc)
    {
        focus.npc = Some(t.npc);
    }
}

pub(super) fn feed(
    mut audio: MessageReader<MicrophoneAudio>,
    mut listening: ResMut<Listening>,
    push: Res<PushToTalk>,
) {
    let Listening { stt, mode, held } = &mut *listening;
    let Some(stt) = stt.as_ref() else {
        audio.clear();
        return;
    };
    let push_mode = *mode == ListenMode::PushToTalk;
    if push_mode && push.pressed && !*held {
        *held = true;
        stt.hold(true);
    }
    for a in audio.read() {
        if !push_mode || *held {
            stt.send_audio(a.samples.clone(), a.sample_rate);
        }
    }
    if push_mode && !push.pressed && *held {
        *held = false;
        stt.hold(false);
    }
}

pub(super) fn receive(
    listening: Res<Listening>,
    focus: Res<VoiceFocus>,
    mut status: ResMut<VoiceStatus>,
    mut speaking: MessageWriter<PlayerSpeaking>,
    mut spoke: MessageWriter<PlayerSpoke>,
    mut said: MessageWriter<PlayerSaid>,
    npcs: Query<(), With<crate::plugin::Npc>>,
) {
    let Some(stt) = listening.stt.as_ref() else {
        return;
    };
    while let Some(event) = stt.try_recv() {
        match event {
            ListenEvent::Ready { model } => {
                info!("voice: Whisper ready ({})", model.display());
                status.listening = VoicePart::Ready(format!("Whisper ({})", model.display()));
            }
            ListenEvent::Failed(e) => {
                error!("voice: Whisper did not load: {e}");
                status.listening = VoicePart::Failed(e);
            }
            ListenEvent::Error(e) => warn!("voice: an utterance was lost: {e}"),
            ListenEvent::Heard(Heard::Started) => {
                speaking.write(PlayerSpeaking {
                    partial: String::new(),
                });
            }
            ListenEvent::Heard(Heard::Partial(partial)) => {
                speaking.write(PlayerSpeaking { partial });
            }
            ListenEvent::Heard(Heard::Final {
                transcript,
                audio_seconds,
                transcribe_ms,
            }) => {
                let npc = focus.npc.filter(|&e| npcs.contains(e));
                debug!("voice: heard {:?} ({transcribe_ms:.0} ms)", transcript.text);
                if let Some(npc) = npc {
                    said.write(PlayerSaid {
                        npc,
                        text: transcript.text.clone(),
                    });
                }
                spoke.write(PlayerSpoke {
                    npc,
                    text: transcript.text,
                    audio_seconds,
                    transcribe_ms,
                });
            }
            ListenEvent::Heard(Heard::NotSpeech(t)) => {
                debug!(
                    "voice: not speech: {:?} (no-speech {:.2})",
                    t.text, t.no_speech_prob
                );
            }
            ListenEvent::Heard(Heard::Dropped) => {}
        }
    }
}
