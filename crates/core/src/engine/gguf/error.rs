//! Errors raised while reading or writing GGUF files.

use std::path::PathBuf;

/// Everything that can go wrong while opening, parsing or writing a GGUF file.
///
/// Each variant names the place in the file (a byte offset, a key or a tensor name) so that a
/// user can tell a truncated download from a foreign file or an unsupported quantisation.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    /// The file could not be opened, mapped or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file in question.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic bytes.
    #[error(
        "not a GGUF file: it starts with {found:02x?}, a GGUF file starts with the bytes \"GGUF\""
    )]
    NotGguf {
        /// The first bytes of the file (at most 4).
        found: Vec<u8>,
    },
    /// The GGUF container version is not one this crate reads.
    #[error(
        "GGUF version {0} is not supported (versions 2 and 3 are); re-convert the model with a current llama.cpp"
    )]
    UnsupportedVersion(u32),
    /// The file ends before a field it announces.
    #[error(
        "the file is truncated: {what} at byte {offset} needs {needed} bytes, but the file is only {len} bytes long (an incomplete download?)"
    )]
    Truncated {
        /// The field being read.
        what: String,
        /// Where it starts.
        offset: u64,
        /// How many bytes it needs.
        needed: u64,
        /// The file's length.
        len: u64,
    },
    /// A field holds a value the format does not allow.
    #[error("malformed GGUF at byte {offset}: {reason}")]
    Malformed {
        /// Where the bad field starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor uses a ggml type that this crate cannot compute with.
    #[error(
        "tensor `{name}` has type {type_name}, which is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K); re-quantize the model, e.g. to Q4_K_M"
    )]
    UnsupportedTensorType {
        /// The tensor's name.
        name: String,
        /// The ggml type's name, or its numeric id when unknown.
        type_name: String,
    },
    /// A tensor the model needs is not in the file.
    #[error("tensor `{0}` is missing from the GGUF file")]
    MissingTensor(String),
    /// A metadata value could not be converted to what the caller asked for.
    #[error("metadata key `{key}` should be {expected}, found {found}")]
    WrongValueType {
        /// The metadata key.
        key: String,
        /// What the caller expected.
        expected: &'static str,
        /// What the file holds.
        found: String,
    },
    /// candle refused to build a tensor from validated bytes (should not happen).
    #[error("cannot build tensor `{name}`: {source}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// candle's error.
        source: candle_core::Error,
    },
}
