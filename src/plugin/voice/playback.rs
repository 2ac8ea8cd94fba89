//! Playing NPC speech through Bevy's audio, spatially at the NPC (when the app has
//! `AudioPlugin`): each sentence becomes a [`VoiceClip`] asset played by a child entity of the
//! NPC, so it sounds from where the NPC stands (give the camera or the headset a
//! `SpatialListener`).

use std::num::NonZero;
use std::sync::Arc;
use std::time::Duration;

use bevy::audio::{AudioPlayer, Decodable, PlaybackSettings, Sample, Source};
use bevy::prelude::*;

use crate::engine::voice::Speech;

/// A sentence of NPC speech as an audio asset (mono PCM).
#[derive(Asset, TypePath, Debug, Clone)]
pub struct VoiceClip {
    samples: Arc<[f32]>,
    sample_rate: u32,
}

impl VoiceClip {
    /// A clip of synthesised speech.
    pub fn new(speech: &Speech) -> Self {
        Self {
            samples: speech.samples.clone().into(),
            sample_rate: speech.sample_rate.max(1),
        }
    }
}

/// Plays a [`VoiceClip`].
#[derive(Debug)]
pub struct VoiceClipDecoder {
    samples: Arc<[f32]>,
    at: usize,
    sample_rate: NonZero<u32>,
}

impl Iterator for VoiceClipDecoder {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let s = self.samples.get(self.at).copied();
        self.at += 1;
        s
    }
}

impl Source for VoiceClipDecoder {
    fn current_span_len(&self) -> Option<usize> {
        Some(self.samples.len().saturating_sub(self.at))
    }

    fn channels(&self) -> NonZero<u16> {
        NonZero::<u16>::MIN
    }

    fn sample_rate(&self) -> NonZero<u32> {
        self.sample_rate
    }

    fn total_duration(&self) -> Option<Duration> {
        Some(Duration::from_secs_f64(
            self.samples.len() as f64 / self.sample_rate.get() as f64,
        ))
    }
}

impl Decodable for VoiceClip {
    type Decoder = VoiceClipDecoder;

    fn decoder(&self) -> VoiceClipDecoder {
        VoiceClipDecoder {
            samples: self.samples.clone(),
            at: 0,
            sample_rate: NonZero::new(self.sample_rate).unwrap_or(NonZero::<u32>::MIN),
        }
    }
}

/// The entity playing an NPC's current sentence (a child of the NPC).
#[derive(Component, Debug, Clone, Copy)]
pub struct NpcVoiceSound {
    /// The NPC.
    pub npc: Entity,
}

/// Whether the app plays voice audio (it has `AudioPlugin`).
#[derive(Resource, Debug, Clone, Copy)]
pub(super) struct AudioOut;

/// Starts a sentence's sound at the NPC.
pub(super) fn play(
    commands: &mut Commands,
    clips: &mut Assets<VoiceClip>,
    npc: Entity,
    speech: &Speech,
) {
    let handle = clips.add(VoiceClip::new(speech));
    let sound = commands
        .spawn((
            Name::new("npc voice"),
            AudioPlayer::<VoiceClip>(handle),
            PlaybackSettings::DESPAWN.with_spatial(true),
            // About mouth height on a standing character.
            Transform::from_xyz(0.0, 1.6, 0.0),
            NpcVoiceSound { npc },
        ))
        .id();
    commands.entity(npc).add_child(sound);
}

/// Stops every sound of an NPC.
pub(super) fn silence(
    commands: &mut Commands,
    sounds: &Query<(Entity, &NpcVoiceSound)>,
    npc: Entity,
) {
    for (e, s) in sounds {
        if s.npc == npc {
            commands.entity(e).despawn();
        }
    }
}
