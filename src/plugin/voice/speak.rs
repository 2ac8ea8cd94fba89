//! The speaking half: NPC lines to sentences to PCM with visemes, played out on the NPC.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bevy::prelude::*;

use super::playback::{self, AudioOut, NpcVoiceSound, VoiceClip};
use super::{VoicePart, VoiceStatus};
use crate::engine::voice::speak::{LineId, SpeakEvent, TextToSpeech};
use crate::engine::voice::{Speech, VoiceSpec};
use crate::plugin::{LineChunk, LineFinished, LineStarted, Npc, PersonaAsset};

/// A voice for this NPC instead of its persona's.
#[derive(Component, Debug, Clone, PartialEq)]
pub struct NpcVoice(pub VoiceSpec);

/// How open the NPC's mouth is now (0 closed, 1 wide), following the visemes of the audio it
/// is speaking. Every [`Npc`] has one while the voice plugin runs; drive a jaw or a mouth
/// shape with it.
#[derive(Component, Debug, Clone, Copy, Default, PartialEq)]
pub struct NpcMouth {
    /// Mouth opening, 0 to 1.
    pub open: f32,
}

/// A sentence of an NPC's line was synthesised: its PCM and visemes (queued to play on the
/// NPC). A game playing audio its own way (a headset's audio API, say) takes it from here.
#[derive(EntityEvent, Debug, Clone)]
pub struct NpcSpeechAudio {
    /// The NPC.
    pub entity: Entity,
    /// The sentence.
    pub sentence: String,
    /// Its audio and visemes.
    pub speech: Arc<Speech>,
    /// Milliseconds synthesis took.
    pub synth_ms: f32,
}

/// The NPC's line was cut short: its audio stopped and the rest will not come.
#[derive(EntityEvent, Debug, Clone)]
pub struct NpcSpeechStopped {
    /// The NPC.
    pub entity: Entity,
}

#[derive(Debug, Clone)]
struct Clip {
    line: LineId,
    speech: Arc<Speech>,
}

#[derive(Debug, Clone)]
struct Voicing {
    line: LineId,
    spec: VoiceSpec,
    sent: String,
}

/// The audio an NPC has queued and how far it has played.
#[derive(Component, Debug, Clone, Default)]
pub struct NpcVoicePlayback {
    queue: VecDeque<Clip>,
    played: f32,
    voicing: Option<Voicing>,
    sounding: bool,
}

impl NpcVoicePlayback {
    /// Audio is playing or queued.
    pub fn is_speaking(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Seconds of audio still to play.
    pub fn remaining_seconds(&self) -> f32 {
        self.queue.iter().map(|c| c.speech.seconds()).sum::<f32>() - self.played
    }

    /// The speech playing now and the sample it is at.
    pub fn now_playing(&self) -> Option<(&Speech, usize)> {
        self.queue.front().map(|c| {
            let at = (self.played * c.speech.sample_rate as f32) as usize;
            (c.speech.as_ref(), at)
        })
    }

    fn drop_line(&mut self, line: LineId) -> bool {
        let before = self.queue.len();
        let front = self.queue.front().map(|c| c.line);
        self.queue.retain(|c| c.line != line);
        if front == Some(line) {
            self.played = 0.0;
            self.sounding = false;
        }
        self.queue.len() != before
    }
}

#[derive(Resource)]
pub(super) struct Speaker {
    pub tts: Option<TextToSpeech>,
    pub default_voice: VoiceSpec,
    pub next_line: LineId,
}

/// Which NPC each line in synthesis belongs to.
#[derive(Resource, Default)]
pub(super) struct LineOwners(HashMap<LineId, Entity>);

fn voice_of(
    npc: Entity,
    overrides: &Query<&NpcVoice>,
    npcs: &Query<&Npc>,
    personas: &Assets<PersonaAsset>,
    default: &VoiceSpec,
) -> VoiceSpec {
    if let Ok(v) = overrides.get(npc) {
        return v.0.clone();
    }
    npcs.get(npc)
        .ok()
        .and_then(|n| personas.get(&n.persona))
        .and_then(|p| p.0.voice.clone())
        .unwrap_or_else(|| default.clone())
}

pub(super) fn on_line_started(
    line: On<LineStarted>,
    mut speaker: ResMut<Speaker>,
    mut owners: ResMut<LineOwners>,
    mut playback: Query<&mut NpcVoicePlayback>,
    overrides: Query<&NpcVoice>,
    npcs: Query<&Npc>,
    personas: Res<Assets<PersonaAsset>>,
) {
    if speaker.tts.is_none() || line.speaker.is_none() {
        return;
    }
    let Ok(mut p) = playback.get_mut(line.entity) else {
        return;
    };
    let spec = voice_of(
        line.entity,
        &overrides,
        &npcs,
        &personas,
        &speaker.default_voice,
    );
    let id = speaker.next_line;
    speaker.next_line += 1;
    owners.0.insert(id, line.entity);
    p.voicing = Some(Voicing {
        line: id,
        spec,
        sent: String::new(),
    });
}

pub(super) fn on_line_chunk(
    chunk: On<LineChunk>,
    speaker: Res<Speaker>,
    mut playback: Query<&mut NpcVoicePlayback>,
) {
    let (Some(tts), Ok(mut p)) = (speaker.tts.as_ref(), playback.get_mut(chunk.entity)) else {
        return;
    };
    if let Some(v) = p.voicing.as_mut() {
        tts.text(v.line, &v.spec, &chunk.text);
        v.sent.push_str(&chunk.text);
    }
}

pub(super) fn on_line_finished(
    done: On<LineFinished>,
    mut speaker: ResMut<Speaker>,
    mut owners: ResMut<LineOwners>,
    mut playback: Query<&mut NpcVoicePlayback>,
    sounds: Query<(Entity, &NpcVoiceSound)>,
    mut commands: Commands,
) {
    let Ok(mut p) = playback.get_mut(done.entity) else {
        return;
    };
    let Some(v) = p.voicing.take() else {
        return;
    };
    let Some(tts) = speaker.tts.as_ref() else {
        return;
    };
    if done.cancelled {
        tts.cancel(v.line);
        owners.0.remove(&v.line);
        if p.drop_line(v.line) {
            playback::silence(&mut commands, &sounds, done.entity);
        }
        commands.trigger(NpcSpeechStopped {
            entity: done.entity,
        });
        return;
    }
    if let Some(rest) = done.text.strip_prefix(v.sent.as_str()) {
        if !rest.is_empty() {
            tts.text(v.line, &v.spec, rest);
        }
        tts.end(v.line);
    } else {
        // The line shown in the end is not what streamed (a moderation replacement): say it.
        tts.cancel(v.line);
        owners.0.remove(&v.line);
        p.drop_line(v.line);
        let id = speaker.next_line;
        speaker.next_line += 1;
        owners.0.insert(id, done.entity);
        if let Some(tts) = speaker.tts.as_ref() {
            tts.text(id, &v.spec, &done.text);
            tts.end(id);
        }
    }
}

pub(super) fn on_npc_removed(
    gone: On<Remove, Npc>,
    speaker: Res<Speaker>,
    mut owners: ResMut<LineOwners>,
    playback: Query<&NpcVoicePlayback>,
) {
    if let (Some(tts), Ok(p)) = (speaker.tts.as_ref(), playback.get(gone.entity))
        && let Some(v) = &p.voicing
    {
        tts.cancel(v.line);
    }
    owners.0.retain(|_, e| *e != gone.entity);
}

pub(super) fn receive(
    speaker: Res<Speaker>,
    mut owners: ResMut<LineOwners>,
    mut status: ResMut<VoiceStatus>,
    mut playback: Query<&mut NpcVoicePlayback>,
    mut commands: Commands,
) {
    let Some(tts) = speaker.tts.as_ref() else {
        return;
    };
    while let Some(event) = tts.try_recv() {
        match event {
            SpeakEvent::Ready { label } => {
                info!("voice: {label} ready");
                status.speaking = VoicePart::Ready(label);
            }
            SpeakEvent::Failed(e) => {
                error!("voice: text to speech did not start: {e}");
                status.speaking = VoicePart::Failed(e.to_string());
            }
            SpeakEvent::Audio {
                line,
                sentence,
                speech,
                synth_ms,
            } => {
                let Some(&npc) = owners.0.get(&line) else {
                    continue; // cancelled while it was being synthesised
                };
                let Ok(mut p) = playback.get_mut(npc) else {
                    continue;
                };
                let speech = Arc::new(speech);
                if p.queue.is_empty() {
                    p.played = 0.0;
                }
                p.queue.push_back(Clip {
                    line,
                    speech: speech.clone(),
                });
                commands.trigger(NpcSpeechAudio {
                    entity: npc,
                    sentence,
                    speech,
                    synth_ms,
                });
            }
            SpeakEvent::Error { line, error } => {
                warn!("voice: a sentence of line {line} was not spoken: {error}");
            }
            SpeakEvent::Done { line } => {
                owners.0.remove(&line);
            }
        }
    }
}

/// Stops the audio of NPCs the listener walked away from (beyond the scheduling's
/// `cancel_radius`, where their lines in flight are cancelled too).
pub(super) fn stop_when_left(
    lookup: crate::plugin::lookup::NpcLookup,
    speaker: Res<Speaker>,
    mut owners: ResMut<LineOwners>,
    mut npcs: Query<(Entity, &mut NpcVoicePlayback)>,
    sounds: Query<(Entity, &NpcVoiceSound)>,
    mut commands: Commands,
) {
    let radius = lookup.settings().scheduling.cancel_radius;
    for (npc, mut p) in &mut npcs {
        let owned = owners.0.values().any(|&e| e == npc);
        if !(p.is_speaking() || owned || p.voicing.is_some()) {
            continue;
        }
        if !lookup.distance(npc).is_some_and(|d| d > radius) {
            continue;
        }
        owners.0.retain(|&line, e| {
            if *e == npc
                && let Some(tts) = speaker.tts.as_ref()
            {
                tts.cancel(line);
            }
            *e != npc
        });
        p.voicing = None;
        p.queue.clear();
        p.played = 0.0;
        p.sounding = false;
        playback::silence(&mut commands, &sounds, npc);
        commands.trigger(NpcSpeechStopped { entity: npc });
    }
}

pub(super) fn animate(
    time: Res<Time>,
    mut npcs: Query<(Entity, &mut NpcVoicePlayback, &mut NpcMouth)>,
    audio: Option<Res<AudioOut>>,
    mut clips: Option<ResMut<Assets<VoiceClip>>>,
    mut commands: Commands,
) {
    let dt = time.delta_secs();
    for (npc, mut p, mut mouth) in &mut npcs {
        if p.queue.is_empty() {
            if mouth.open != 0.0 {
                mouth.open = 0.0;
            }
            continue;
        }
        if p.sounding {
            p.played += dt;
        }
        while let Some(front) = p.queue.front() {
            let len = front.speech.seconds();
            if p.played < len {
                break;
            }
            p.played -= len;
            p.queue.pop_front();
            p.sounding = false;
        }
        if !p.sounding {
            // The next sentence starts now (its first frame counts from here).
            if let (Some(front), Some(_), Some(clips)) = (p.queue.front(), &audio, clips.as_mut()) {
                playback::play(&mut commands, clips, npc, &front.speech);
            }
            p.sounding = !p.queue.is_empty();
        }
        let open = p.now_playing().map_or(0.0, |(s, at)| s.mouth_at(at));
        if mouth.open != open {
            mouth.open = open;
        }
    }
}
