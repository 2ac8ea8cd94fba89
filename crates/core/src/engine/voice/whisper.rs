//! [`WhisperModel`]: speech to text with candle-transformers' Whisper, loaded from a Hugging
//! Face folder (`config.json`, `model.safetensors`, `tokenizer.json`) or from a CTranslate2
//! folder (`model.bin`: converted once and cached as the Hugging Face layout).
#![allow(unsafe_code)] // safetensors weights are memory-mapped; each unsafe block says why it is sound

use std::path::{Path, PathBuf};

use candle_core::{D, DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::whisper::{self as w, Config, audio};

use super::audio::WHISPER_RATE;
use super::convert::{ConvertError, whisper_from_ct2};
use super::ct2::{Ct2Error, Ct2Model};
use super::mel::mel_filters;
use super::whisper_tokens::WhisperTokens;

/// Why a Whisper model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum WhisperError {
    /// The folder holds neither layout.
    #[error(
        "{0}: not a Whisper folder (expected config.json + model.safetensors + tokenizer.json, \
         or a CTranslate2 model.bin + tokenizer.json)"
    )]
    NotAModel(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// `config.json` or `tokenizer.json` is malformed.
    #[error("{path}: {message}")]
    Json {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// `model.bin` is not a CTranslate2 model.
    #[error("{path}: {source}")]
    Ct2 {
        /// The file.
        path: String,
        /// Why.
        source: Ct2Error,
    },
    /// The CTranslate2 model is not Whisper.
    #[error("{path}: {source}")]
    Convert {
        /// The file.
        path: String,
        /// Why.
        source: ConvertError,
    },
    /// A `hf://owner/name` model could not be fetched.
    #[error(transparent)]
    Download(#[from] crate::engine::source::SourceError),
    /// The tokenizer lacks a token Whisper needs.
    #[error("tokenizer.json has no `{0}` token")]
    MissingToken(&'static str),
    /// The weights do not fit the config, or inference failed.
    #[error("whisper: {0}")]
    Model(#[from] candle_core::Error),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WhisperError + '_ {
    move |source| WhisperError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// What Whisper heard in one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The words, trimmed.
    pub text: String,
    /// Whisper's probability that there was no speech at all.
    pub no_speech_prob: f32,
    /// Mean log-probability of the chosen tokens.
    pub avg_logprob: f32,
}

impl Transcript {
    /// Whether this is speech worth acting on: not empty, not what Whisper says for silence
    /// (no-speech probability above 0.6), not only a sound description such as
    /// "(water running)" or "[MUSIC]".
    pub fn is_speech(&self) -> bool {
        let words = strip_annotations(&self.text);
        if !words.chars().any(char::is_alphanumeric) {
            return false;
        }
        // Whisper's own rule also wants low confidence, but a short "you" over silence is
        // confident; a player addressing an NPC is never that doubtful that anyone spoke.
        self.no_speech_prob <= w::NO_SPEECH_THRESHOLD as f32
    }
}

/// The text without bracketed sound descriptions (`(laughs)`, `[MUSIC]`, `*coughs*`, `♪`).
pub fn strip_annotations(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0i32;
    let mut stars = false;
    for c in text.chars() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth = (depth - 1).max(0),
            '*' => stars = !stars,
            '♪' => {}
            c if depth == 0 && !stars => out.push(c),
            _ => {}
        }
    }
    out.trim().to_owned()
}

/// Where a token sequence ends in the same run twice (a run of at least 3 tokens, or one token
/// 4 times): the length to keep, without the repeat.
fn repeated_tail(t: &[u32]) -> Option<usize> {
    let n = t.len();
    if n >= 4 && t[n - 4..].iter().all(|&x| x == t[n - 1]) {
        return Some(n - 3);
    }
    (3..=n / 2)
        .find(|&len| t[n - len..] == t[n - 2 * len..n - len])
        .map(|len| n - len)
}

/// Where converted models are cached: `$BEVY_LLAMA_DIALOGUE_CACHE`, else
/// `$XDG_CACHE_HOME/bevy_llama_dialogue`, else `~/.cache/bevy_llama_dialogue`.
pub fn cache_root() -> PathBuf {
    if let Some(d) = std::env::var_os("BEVY_LLAMA_DIALOGUE_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("bevy_llama_dialogue");
    }
    std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".cache"))
        .unwrap_or_else(std::env::temp_dir)
        .join("bevy_llama_dialogue")
}

/// The Whisper model users get by default: `hf://openai/whisper-tiny.en`.
pub const DEFAULT_WHISPER: &str = "hf://openai/whisper-tiny.en";

/// Fetches a Whisper model from the Hugging Face hub (`config.json`, `tokenizer.json`,
/// `model.safetensors`) into hf-hub's cache, with a progress bar; returns its folder. Needs the
/// `download` feature (else an error saying so).
pub fn download_whisper(repo: &str) -> Result<PathBuf, WhisperError> {
    let mut folder = PathBuf::new();
    for file in ["config.json", "tokenizer.json", "model.safetensors"] {
        let path = crate::engine::source::download(repo, file)?;
        folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    }
    Ok(folder)
}

/// A Hugging Face layout folder for `dir`: `dir` itself; for `hf://owner/name`, that
/// repository fetched ([`download_whisper`]); for a CTranslate2 folder, its conversion (made
/// now unless cached under [`cache_root`], keyed by the model's size and a hash of its first
/// megabyte).
pub fn hugging_face_dir(dir: &Path) -> Result<PathBuf, WhisperError> {
    if let Some(repo) = dir.to_str().and_then(|d| d.strip_prefix("hf://")) {
        return download_whisper(repo);
    }
    if dir.join("model.safetensors").is_file() && dir.join("config.json").is_file() {
        return Ok(dir.to_path_buf());
    }
    let bin = dir.join("model.bin");
    if !bin.is_file() {
        return Err(WhisperError::NotAModel(dir.display().to_string()));
    }
    let key = {
        use sha2::Digest;
        use std::io::Read;
        let mut f = std::fs::File::open(&bin).map_err(io(&bin))?;
        let len = f.metadata().map_err(io(&bin))?.len();
        let mut head = vec![0u8; 1 << 20];
        let n = f.read(&mut head).map_err(io(&bin))?;
        let digest = sha2::Sha256::digest(&head[..n]);
        let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!("whisper-ct2-{len}-{hex}")
    };
    let out = cache_root().join(key);
    if !out.join("model.safetensors").is_file() {
        convert_ct2_dir(dir, &out)?;
    }
    Ok(out)
}

/// Converts a CTranslate2 Whisper folder (`model.bin`, `tokenizer.json`) into the Hugging
/// Face layout at `out` (`model.safetensors` in float16, `config.json`, `tokenizer.json`).
/// Written to a temporary folder and renamed, so a crash never leaves half a model.
pub fn convert_ct2_dir(dir: &Path, out: &Path) -> Result<(), WhisperError> {
    let bin = dir.join("model.bin");
    let model = Ct2Model::open(&bin).map_err(|source| WhisperError::Ct2 {
        path: bin.display().to_string(),
        source,
    })?;
    let (tensors, config) = whisper_from_ct2(&model).map_err(|source| WhisperError::Convert {
        path: bin.display().to_string(),
        source,
    })?;
    let tokenizer = dir.join("tokenizer.json");
    let tok_text = std::fs::read_to_string(&tokenizer).map_err(io(&tokenizer))?;
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tmp = parent.join(format!(
        ".{}.tmp-{}-{}",
        out.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("whisper"),
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    let half: std::collections::HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, t)| Ok((k, t.to_dtype(DType::F16)?)))
        .collect::<Result<_, candle_core::Error>>()?;
    candle_core::safetensors::save(&half, tmp.join("model.safetensors"))?;
    let cfg = serde_json::json!({
        "num_mel_bins": config.num_mel_bins,
        "max_source_positions": config.max_source_positions,
        "d_model": config.d_model,
        "encoder_attention_heads": config.encoder_attention_heads,
        "encoder_layers": config.encoder_layers,
        "vocab_size": config.vocab_size,
        "max_target_positions": config.max_target_positions,
        "decoder_attention_heads": config.decoder_attention_heads,
        "decoder_layers": config.decoder_layers,
        "converted_from": bin.display().to_string(),
    });
    let cfg_path = tmp.join("config.json");
    std::fs::write(&cfg_path, cfg.to_string()).map_err(io(&cfg_path))?;
    let tok_out = tmp.join("tokenizer.json");
    std::fs::write(&tok_out, tok_text).map_err(io(&tok_out))?;
    if out.join("model.safetensors").is_file() {
        // Another thread or process finished the same conversion first.
        let _ = std::fs::remove_dir_all(&tmp);
        return Ok(());
    }
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(io(out))?;
    }
    std::fs::rename(&tmp, out).map_err(io(out))
}

/// Whisper, loaded and ready to transcribe.
pub struct WhisperModel {
    model: w::model::Whisper,
    config: Config,
    tokens: WhisperTokens,
    filters: Vec<f32>,
    sot: u32,
    eot: u32,
    no_timestamps: u32,
    no_speech: Option<u32>,
    /// The folder the weights were read from.
    pub dir: PathBuf,
    /// Encode only the audio heard plus [`CONTEXT_PAD_FRAMES`] of silence instead of the
    /// full 30 s window Whisper was trained on (the encoder's cost grows with its input).
    pub trim_context: bool,
}

/// Silence kept after the audio when [`WhisperModel::trim_context`] is on (10 ms frames).
pub const CONTEXT_PAD_FRAMES: usize = 300;

/// Most tokens in one transcript (Whisper's context is 448).
const MAX_TOKENS: usize = 200;

impl WhisperModel {
    /// Loads a Whisper folder (either layout; see [`hugging_face_dir`]).
    pub fn load(dir: &Path) -> Result<Self, WhisperError> {
        let dir = hugging_face_dir(dir)?;
        let cfg_path = dir.join("config.json");
        let cfg_text = std::fs::read_to_string(&cfg_path).map_err(io(&cfg_path))?;
        let config: Config = serde_json::from_str(&cfg_text).map_err(|e| WhisperError::Json {
            path: cfg_path.display().to_string(),
            message: e.to_string(),
        })?;
        let tok_path = dir.join("tokenizer.json");
        let tok_text = std::fs::read_to_string(&tok_path).map_err(io(&tok_path))?;
        let tokens = WhisperTokens::from_json(&tok_text).map_err(|message| WhisperError::Json {
            path: tok_path.display().to_string(),
            message,
        })?;
        let weights = dir.join("model.safetensors");
        // SAFETY: the file is memory-mapped read-only; a concurrent writer would be a user
        // error (the cache is written by rename, never in place).
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights], DType::F32, &Device::Cpu)? };
        let model = w::model::Whisper::load(&vb, config.clone())?;
        let special =
            |name: &'static str| tokens.special(name).ok_or(WhisperError::MissingToken(name));
        Ok(Self {
            sot: special(w::SOT_TOKEN)?,
            eot: special(w::EOT_TOKEN)?,
            no_timestamps: special(w::NO_TIMESTAMPS_TOKEN)?,
            no_speech: w::NO_SPEECH_TOKENS.iter().find_map(|t| tokens.special(t)),
            filters: mel_filters(WHISPER_RATE as f64, w::N_FFT, config.num_mel_bins),
            model,
            config,
            tokens,
            dir,
            trim_context: true,
        })
    }

    /// Transcribes 16 kHz mono audio (up to 30 s; longer audio is cut), greedily, in English
    /// without timestamps.
    pub fn transcribe(&mut self, pcm: &[f32]) -> Result<Transcript, WhisperError> {
        let pcm = &pcm[..pcm.len().min(w::N_SAMPLES)];
        let mel = audio::pcm_to_mel(&self.config, pcm, &self.filters);
        let bins = self.config.num_mel_bins;
        let frames = mel.len() / bins;
        let mel = Tensor::from_vec(mel, (1, bins, frames), &Device::Cpu)?;
        let keep = if self.trim_context {
            // Whole 1 s steps, so a growing utterance (partial transcripts) reuses shapes.
            (pcm.len() / w::HOP_LENGTH + CONTEXT_PAD_FRAMES).div_ceil(100) * 100
        } else {
            w::N_FRAMES
        };
        let mel = mel.narrow(2, 0, frames.min(keep).min(w::N_FRAMES))?;
        let features = self.model.encoder.forward(&mel, true)?;
        let mut tokens = vec![self.sot, self.no_timestamps];
        let mut sum_logprob = 0f32;
        let mut no_speech_prob = 0f32;
        for step in 0..MAX_TOKENS {
            let input = Tensor::new(tokens.as_slice(), &Device::Cpu)?.unsqueeze(0)?;
            let ys = self.model.decoder.forward(&input, &features, step == 0)?;
            if step == 0
                && let Some(ns) = self.no_speech
            {
                let first = self.model.decoder.final_linear(&ys.i((.., 0..1))?)?;
                let probs = candle_nn::ops::softmax(&first.flatten_all()?, D::Minus1)?;
                no_speech_prob = probs.i(ns as usize)?.to_scalar::<f32>()?;
            }
            let seq = ys.dim(1)?;
            let logits = self
                .model
                .decoder
                .final_linear(&ys.i((.., seq - 1..seq))?)?
                .flatten_all()?;
            // Text tokens and the end only: no timestamps, no other special tokens.
            let allowed = logits.narrow(0, 0, self.eot as usize + 1)?;
            let logprobs = candle_nn::ops::log_softmax(&allowed, D::Minus1)?;
            let next = allowed.argmax(0)?.to_scalar::<u32>()?;
            sum_logprob += logprobs.i(next as usize)?.to_scalar::<f32>()?;
            if next == self.eot {
                break;
            }
            tokens.push(next);
            // Whisper's failure mode on short inputs: the same words again and again. A run
            // that repeats the one before it is cut and ends the transcript.
            if let Some(cut) = repeated_tail(&tokens[2..]) {
                tokens.truncate(2 + cut);
                break;
            }
        }
        let generated = &tokens[2..];
        let text = self.tokens.decode(generated).trim().to_owned();
        Ok(Transcript {
            text,
            no_speech_prob,
            avg_logprob: sum_logprob / (generated.len() + 1) as f32,
        })
    }

    /// The model's config.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_run_is_cut_once() {
        // "Open the gate, please." twice: keep the first.
        let t = [5, 6, 7, 8, 9, 5, 6, 7, 8, 9];
        assert_eq!(repeated_tail(&t), Some(5));
        assert_eq!(repeated_tail(&[1, 2, 3, 4, 5, 6]), None);
        assert_eq!(repeated_tail(&[1, 2, 2]), None, "a doubled word is speech");
        assert_eq!(repeated_tail(&[1, 2, 2, 2, 2]), Some(2));
        assert_eq!(strip_annotations("(water running)"), "");
        assert_eq!(strip_annotations("Open [MUSIC] the gate"), "Open  the gate");
    }
}
