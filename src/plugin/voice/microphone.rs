//! Microphone capture (feature `microphone`): the default input device through `cpal`, sent to
//! the listener as [`MicrophoneAudio`] each frame. The audio callback only copies samples into
//! a channel; mixing down happens there, everything else on the listening thread.

use bevy::prelude::*;
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use crossbeam_channel::{Receiver, Sender, unbounded};

use super::MicrophoneAudio;

/// Captures the default microphone for [`DialogueVoicePlugin`](super::DialogueVoicePlugin).
/// Without a device (a server, a CI machine) it logs a warning and the game runs on.
#[derive(Default)]
pub struct MicrophonePlugin;

/// The open input stream (not `Send` on every platform, so a non-send resource).
struct MicStream(#[allow(dead_code)] cpal::Stream);

#[derive(Resource)]
struct MicSamples {
    rx: Receiver<Vec<f32>>,
    sample_rate: u32,
}

/// Why the microphone could not be opened.
#[derive(Debug, thiserror::Error)]
enum MicError {
    #[error("no default input device")]
    NoDevice,
    #[error("its default config: {0}")]
    Config(#[from] cpal::DefaultStreamConfigError),
    #[error("the input stream: {0}")]
    Build(#[from] cpal::BuildStreamError),
    #[error("starting the stream: {0}")]
    Play(#[from] cpal::PlayStreamError),
    #[error("{0:?} samples are not supported")]
    Format(cpal::SampleFormat),
}

fn mono<T: Copy>(data: &[T], channels: usize, to_f32: impl Fn(T) -> f32) -> Vec<f32> {
    data.chunks(channels.max(1))
        .map(|f| f.iter().map(|&s| to_f32(s)).sum::<f32>() / f.len() as f32)
        .collect()
}

fn open(tx: Sender<Vec<f32>>) -> Result<(cpal::Stream, u32), MicError> {
    let host = cpal::default_host();
    let device = host.default_input_device().ok_or(MicError::NoDevice)?;
    let supported = device.default_input_config()?;
    let format = supported.sample_format();
    let config: cpal::StreamConfig = supported.into();
    let channels = config.channels as usize;
    let rate = config.sample_rate;
    let err = |e| warn!("microphone: {e}");
    let stream = match format {
        cpal::SampleFormat::F32 => device.build_input_stream(
            &config,
            move |d: &[f32], _: &_| drop(tx.send(mono(d, channels, |s| s))),
            err,
            None,
        )?,
        cpal::SampleFormat::I16 => device.build_input_stream(
            &config,
            move |d: &[i16], _: &_| drop(tx.send(mono(d, channels, |s| s as f32 / 32768.0))),
            err,
            None,
        )?,
        cpal::SampleFormat::U16 => device.build_input_stream(
            &config,
            move |d: &[u16], _: &_| {
                drop(tx.send(mono(d, channels, |s| (s as f32 - 32768.0) / 32768.0)))
            },
            err,
            None,
        )?,
        other => return Err(MicError::Format(other)),
    };
    stream.play()?;
    Ok((stream, rate))
}

impl Plugin for MicrophonePlugin {
    fn build(&self, app: &mut App) {
        let (tx, rx) = unbounded();
        match open(tx) {
            Ok((stream, sample_rate)) => {
                info!("microphone: capturing at {sample_rate} Hz");
                app.insert_non_send(MicStream(stream))
                    .insert_resource(MicSamples { rx, sample_rate })
                    .add_systems(
                        Update,
                        forward.before(crate::plugin::DialogueSystems::Input),
                    );
            }
            Err(e) => warn!("microphone: not capturing ({e}); voice input needs MicrophoneAudio"),
        }
    }
}

fn forward(mic: Res<MicSamples>, mut out: MessageWriter<MicrophoneAudio>) {
    let mut samples = Vec::new();
    for chunk in mic.rx.try_iter() {
        samples.extend(chunk);
    }
    if !samples.is_empty() {
        out.write(MicrophoneAudio {
            samples,
            sample_rate: mic.sample_rate,
        });
    }
}
