//! PCM helpers: WAV files in and out (`hound`), down-mixing and resampling to Whisper's
//! 16 kHz.

use std::path::Path;

pub use super::WHISPER_RATE;

/// Why a WAV file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum WavError {
    /// Not a WAV file hound can read, or an I/O failure.
    #[error("{path}: {source}")]
    Wav {
        /// The file.
        path: String,
        /// What hound said.
        source: hound::Error,
    },
    /// A sample format we do not read.
    #[error(
        "{path}: {bits}-bit {format} samples are not supported (16/24/32-bit integer or 32-bit float)"
    )]
    Format {
        /// The file.
        path: String,
        /// Bits per sample.
        bits: u16,
        /// Integer or float.
        format: &'static str,
    },
}

/// Mono samples at a rate.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Samples per second.
    pub sample_rate: u32,
    /// Mono samples in -1..1.
    pub samples: Vec<f32>,
}

/// Reads a WAV file, mixing its channels down to mono.
pub fn read_wav(path: &Path) -> Result<Pcm, WavError> {
    let err = |source| WavError::Wav {
        path: path.display().to_string(),
        source,
    };
    let mut reader = hound::WavReader::open(path).map_err(err)?;
    let spec = reader.spec();
    let channels = spec.channels.max(1) as usize;
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .collect::<Result<_, _>>()
            .map_err(err)?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            reader
                .samples::<i32>()
                .map(|s| s.map(|s| s as f32 * scale))
                .collect::<Result<_, _>>()
                .map_err(err)?
        }
        (format, bits) => {
            return Err(WavError::Format {
                path: path.display().to_string(),
                bits,
                format: if format == hound::SampleFormat::Float {
                    "float"
                } else {
                    "integer"
                },
            });
        }
    };
    let samples = interleaved
        .chunks(channels)
        .map(|frame| frame.iter().sum::<f32>() / frame.len() as f32)
        .collect();
    Ok(Pcm {
        sample_rate: spec.sample_rate,
        samples,
    })
}

/// Writes mono 16-bit PCM.
pub fn write_wav(path: &Path, pcm: &Pcm) -> Result<(), WavError> {
    let err = |source| WavError::Wav {
        path: path.display().to_string(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).map_err(err)?;
    for &s in &pcm.samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
            .map_err(err)?;
    }
    w.finalize().map_err(err)
}

/// Resamples mono audio (linear interpolation after a moving-average low-pass when going
/// down, enough for speech recognition; not for music).
pub fn resample(samples: &[f32], from: u32, to: u32) -> Vec<f32> {
    if from == to || samples.is_empty() || from == 0 || to == 0 {
        return samples.to_vec();
    }
    let smoothed;
    let src = if to < from {
        let width = (from as f32 / to as f32).round().max(1.0) as usize;
        smoothed = box_filter(samples, width);
        &smoothed
    } else {
        samples
    };
    let n = (src.len() as u64 * to as u64 / from as u64) as usize;
    let step = from as f64 / to as f64;
    (0..n)
        .map(|i| {
            let x = i as f64 * step;
            let j = x as usize;
            let t = (x - j as f64) as f32;
            let a = src[j.min(src.len() - 1)];
            let b = src[(j + 1).min(src.len() - 1)];
            a + (b - a) * t
        })
        .collect()
}

fn box_filter(samples: &[f32], width: usize) -> Vec<f32> {
    if width <= 1 {
        return samples.to_vec();
    }
    let half = width / 2;
    let mut prefix = Vec::with_capacity(samples.len() + 1);
    prefix.push(0f64);
    for &s in samples {
        prefix.push(prefix.last().copied().unwrap_or(0.0) + s as f64);
    }
    (0..samples.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + width - half).min(samples.len());
            ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_keeps_its_length_and_pitch_when_resampled() {
        let tone: Vec<f32> = (0..22050)
            .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / 22050.0).sin() * 0.5)
            .collect();
        let out = resample(&tone, 22050, WHISPER_RATE);
        assert_eq!(out.len(), 16000);
        let crossings = out.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        assert!(
            (438..=442).contains(&crossings),
            "{crossings} rising zero crossings"
        );
    }

    #[test]
    fn wav_round_trip_and_clear_errors() {
        let dir = std::env::temp_dir().join(format!("bld-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.wav");
        let pcm = Pcm {
            sample_rate: 16000,
            samples: vec![0.0, 0.5, -0.5, 0.25],
        };
        write_wav(&p, &pcm).unwrap();
        let back = read_wav(&p).unwrap();
        assert_eq!(back.sample_rate, 16000);
        assert!((back.samples[1] - 0.5).abs() < 1e-3);
        std::fs::write(dir.join("b.wav"), b"RIFF\x04\0\0\0WAVE").unwrap();
        let e = read_wav(&dir.join("b.wav")).unwrap_err().to_string();
        assert!(e.contains("b.wav"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }

    use proptest::prelude::*;

    /// A WAV file whose header fields are any values: format tag, channels, rate, bits, block
    /// size, chunk sizes (honest or not), then a body of random bytes, maybe cut short.
    fn wav_file() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![Just(1u16), Just(3u16), Just(0xFFFEu16), any::<u16>()],
            prop_oneof![1u16..3, any::<u16>()],
            prop_oneof![Just(16_000u32), any::<u32>()],
            prop_oneof![
                prop::sample::select(vec![8u16, 16, 24, 32, 64]),
                any::<u16>()
            ],
            any::<u16>(),
            prop_oneof![Just(None), any::<u32>().prop_map(Some)],
            prop::collection::vec(any::<u8>(), 0..512),
        )
            .prop_map(|(tag, channels, rate, bits, align, claimed, body)| {
                let mut b = b"RIFF".to_vec();
                b.extend_from_slice(&(36 + body.len() as u32).to_le_bytes());
                b.extend_from_slice(b"WAVEfmt ");
                b.extend_from_slice(&16u32.to_le_bytes());
                b.extend_from_slice(&tag.to_le_bytes());
                b.extend_from_slice(&channels.to_le_bytes());
                b.extend_from_slice(&rate.to_le_bytes());
                b.extend_from_slice(&rate.wrapping_mul(u32::from(align)).to_le_bytes());
                b.extend_from_slice(&align.to_le_bytes());
                b.extend_from_slice(&bits.to_le_bytes());
                b.extend_from_slice(b"data");
                b.extend_from_slice(&claimed.unwrap_or(body.len() as u32).to_le_bytes());
                b.extend(body);
                b
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::proptest_cases(1024)))]

        /// Any header, any body: samples or a typed error naming the file, never a panic.
        #[test]
        fn any_wav_gives_samples_or_an_error(file in wav_file()) {
            let dir = std::env::temp_dir().join(format!("bld-wav-prop-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let p = dir.join("x.wav");
            std::fs::write(&p, &file).unwrap();
            match read_wav(&p) {
                Ok(pcm) => prop_assert!(pcm.samples.len() <= file.len()),
                Err(e) => prop_assert!(e.to_string().contains("x.wav"), "{e}"),
            }
        }
    }
}
