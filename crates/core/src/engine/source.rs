//! Where a model file comes from: a local path, or a Hugging Face repository (downloaded once
//! into the Hugging Face cache, with a progress bar).

use std::path::PathBuf;
#[cfg(feature = "download")]
use std::time::Duration;

/// A model to load.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ModelSource {
    /// No model: games play on authored fallback lines (the plugin uses the scripted backend).
    #[default]
    None,
    /// A GGUF file on disk.
    Path(PathBuf),
    /// A file of a Hugging Face model repository (cargo feature `download`, on by default).
    HuggingFace {
        /// Repository, e.g. `TheBloke/Llama-2-7B-Chat-GGUF`.
        repo: String,
        /// File in it, e.g. `llama-2-7b-chat.Q4_K_M.gguf`.
        file: String,
    },
    /// A model served by an OpenAI-compatible server (cargo feature `remote`, on by default):
    /// the plugin streams lines from it ([`OpenAiCompatible`](crate::engine::remote)) instead
    /// of loading a file. The defaults of
    /// [`RemoteConfig`](crate::engine::remote) apply to everything not given here.
    Remote {
        /// The server's base address, e.g. `http://127.0.0.1:8080`.
        url: String,
        /// The model name to ask for; `None`: the first one the server lists.
        model: Option<String>,
        /// The environment variable that holds the API key, if the server needs one.
        api_key_env: Option<String>,
    },
}

/// The chat model [`ModelSource::default_chat`] names.
pub const DEFAULT_CHAT_REPO: &str = "TheBloke/Llama-2-7B-Chat-GGUF";
/// Its file: Q4_K_M, 4.08 GB, Llama 2 Community License (accept Meta's licence before use).
pub const DEFAULT_CHAT_FILE: &str = "llama-2-7b-chat.Q4_K_M.gguf";

/// Why a model file could not be obtained.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The host cannot be reached (offline, firewall).
    #[error(
        "cannot reach {host} to download {repo}/{file}: {reason}. Download the file by hand and use ModelSource::Path"
    )]
    Offline {
        /// The host.
        host: String,
        /// The repository.
        repo: String,
        /// The file.
        file: String,
        /// What the network said.
        reason: String,
    },
    /// The download failed.
    #[error("downloading {repo}/{file} failed: {reason}")]
    Download {
        /// The repository.
        repo: String,
        /// The file.
        file: String,
        /// Why.
        reason: String,
    },
    /// This build has no download support.
    #[error("this build has no download support (cargo feature `download`); use ModelSource::Path")]
    NoDownloadSupport,
    /// [`ModelSource::Remote`] was asked for a file (it is served by a server, not loaded).
    #[error(
        "the model at {url} is served remotely and has no local file (the plugin uses the remote backend; a build without the `remote` feature cannot)"
    )]
    Remote {
        /// The server's address.
        url: String,
    },
    /// [`ModelSource::None`] was asked for a file.
    #[error("no model is configured (ModelSource::None): set a model path to generate lines")]
    NoModel,
}

impl ModelSource {
    /// A local file.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        Self::Path(path.into())
    }

    /// A Hugging Face file.
    pub fn hugging_face(repo: impl Into<String>, file: impl Into<String>) -> Self {
        Self::HuggingFace {
            repo: repo.into(),
            file: file.into(),
        }
    }

    /// LLaMA-2-7B-chat Q4_K_M ([`DEFAULT_CHAT_REPO`]/[`DEFAULT_CHAT_FILE`]).
    pub fn default_chat() -> Self {
        Self::hugging_face(DEFAULT_CHAT_REPO, DEFAULT_CHAT_FILE)
    }

    /// A short name for logs and UIs.
    pub fn label(&self) -> String {
        match self {
            Self::Path(p) => p.file_name().map_or_else(
                || p.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
            Self::HuggingFace { repo, file } => format!("{repo}/{file}"),
            Self::Remote { url, model, .. } => match model {
                Some(m) => format!("{m} at {url}"),
                None => url.clone(),
            },
            Self::None => "no model".into(),
        }
    }

    /// The local path of the file, downloading it first when needed. Blocks: call it on a
    /// worker thread (the local backend does).
    pub fn resolve(&self) -> Result<PathBuf, SourceError> {
        match self {
            Self::Path(p) => Ok(p.clone()),
            Self::HuggingFace { repo, file } => download(repo, file),
            Self::Remote { url, .. } => Err(SourceError::Remote { url: url.clone() }),
            Self::None => Err(SourceError::NoModel),
        }
    }
}

/// Fetches one file of a Hugging Face repository into hf-hub's cache (or finds it there),
/// with a progress bar; fails fast when the hub is unreachable.
#[cfg(feature = "download")]
pub(crate) fn download(repo: &str, file: &str) -> Result<PathBuf, SourceError> {
    use hf_hub::api::sync::ApiBuilder;
    // Already in the cache: no network needed.
    let cache = hf_hub::Cache::from_env();
    if let Some(path) = cache.model(repo.to_owned()).get(file) {
        return Ok(path);
    }
    // Fail fast when offline instead of hanging in the HTTP client.
    let host = "huggingface.co";
    reachable(host, Duration::from_secs(5)).map_err(|reason| SourceError::Offline {
        host: host.into(),
        repo: repo.into(),
        file: file.into(),
        reason,
    })?;
    let err = |e: hf_hub::api::sync::ApiError| SourceError::Download {
        repo: repo.into(),
        file: file.into(),
        reason: e.to_string(),
    };
    let api = ApiBuilder::from_env()
        .with_progress(true)
        .build()
        .map_err(err)?;
    api.model(repo.to_owned()).get(file).map_err(err)
}

#[cfg(not(feature = "download"))]
pub(crate) fn download(_repo: &str, _file: &str) -> Result<PathBuf, SourceError> {
    Err(SourceError::NoDownloadSupport)
}

#[cfg(feature = "download")]
fn reachable(host: &str, timeout: Duration) -> Result<(), String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let addrs = (host, 443)
        .to_socket_addrs()
        .map_err(|e| format!("name lookup failed ({e})"))?;
    let mut last = String::from("no address");
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}
