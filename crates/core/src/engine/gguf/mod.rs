//! Reading and writing GGUF files (the llama.cpp model format).
//!
//! [`GgufFile::open`] memory-maps a file, parses its header with a bounds-checked parser and
//! hands out metadata and tensors. Nothing here panics on bad input: truncated, foreign and
//! hostile files produce a [`GgufError`].
#![allow(unsafe_code)] // the file is memory-mapped; each unsafe block says why it is sound

mod error;
mod parse;
mod types;
mod value;
mod write;

use std::path::{Path, PathBuf};

use candle_core::Device;
use candle_core::quantized::QTensor;

pub use error::GgufError;
pub use parse::{DEFAULT_ALIGNMENT, Header, parse};
pub use types::TensorType;
pub use value::{MetadataExt, Value, wrong as value_error};
pub use write::{GgufWriter, TensorSpec};

/// The description of one tensor in a GGUF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The tensor's name, e.g. `blk.0.attn_q.weight`.
    pub name: String,
    /// Dimensions in ggml order: `dims[0]` is the row length (innermost).
    pub dims: Vec<u64>,
    /// The ggml type.
    pub ty: TensorType,
    /// Offset of the data from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of elements, `None` on overflow.
    pub fn elem_count(&self) -> Option<u64> {
        self.dims
            .iter()
            .try_fold(1u64, |acc, &d| acc.checked_mul(d))
    }

    /// Size of the data in bytes, when the type's layout is known and the row length is a whole
    /// number of blocks.
    pub fn byte_size(&self) -> Option<u64> {
        let (block, bytes) = self.ty.block_layout()?;
        if self.dims.first()? % block != 0 {
            return None;
        }
        self.elem_count()?.checked_div(block)?.checked_mul(bytes)
    }

    /// Shape in row-major (candle) order: the reverse of [`dims`](Self::dims).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// An open, memory-mapped GGUF file with a validated header.
pub struct GgufFile {
    path: PathBuf,
    map: memmap2::Mmap,
    header: Header,
}

impl std::fmt::Debug for GgufFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufFile")
            .field("path", &self.path)
            .field("version", &self.header.version)
            .field("tensors", &self.header.tensors.len())
            .finish()
    }
}

impl GgufFile {
    /// Opens and validates `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, GgufError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| GgufError::Io {
            path: path.clone(),
            source,
        };
        let file = std::fs::File::open(&path).map_err(io)?;
        // SAFETY: the map is read-only and private to this process. Another process truncating
        // the file while it is mapped could fault; model files are not expected to change
        // under a running game, and llama.cpp and candle map them the same way.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io)?;
        let header = parse(&map)?;
        Ok(Self { path, map, header })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's size in bytes.
    pub fn file_size(&self) -> u64 {
        self.map.len() as u64
    }

    /// The parsed header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Metadata in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.header.metadata
    }

    /// Tensor descriptions in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.header.tensors
    }

    /// The description of tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Option<&TensorInfo> {
        self.header.tensor(name)
    }

    /// The raw bytes of tensor `name`.
    pub fn tensor_bytes(&self, name: &str) -> Result<&[u8], GgufError> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| GgufError::MissingTensor(name.to_owned()))?;
        let size = info.byte_size().ok_or_else(|| unsupported(info))?;
        // Bounds were checked at parse time.
        let start = (self.header.data_start + info.offset) as usize;
        Ok(&self.map[start..start + size as usize])
    }

    /// Drops this process's mapped pages of tensor `name` once its data has been copied into a
    /// model, so that the file and the copy are not both resident (which would double the
    /// peak memory of a load). The bytes stay readable: a later read faults them back in from
    /// the file. Does nothing for unknown names or where the OS refuses.
    pub fn release(&self, name: &str) {
        let Some(info) = self.tensor_info(name) else {
            return;
        };
        let Some(size) = info.byte_size() else {
            return;
        };
        let start = (self.header.data_start + info.offset) as usize;
        #[cfg(unix)]
        // SAFETY: the map is read-only and backed by the file, so `MADV_DONTNEED` discards no
        // data: it only unmaps the pages, and any later access reads the same bytes again.
        // Bounds were checked at parse time.
        let _ = unsafe {
            self.map.unchecked_advise_range(
                memmap2::UncheckedAdvice::DontNeed,
                start,
                size as usize,
            )
        };
        #[cfg(not(unix))]
        let _ = (start, size);
    }

    /// Loads tensor `name` as a candle quantized tensor on `device`.
    pub fn qtensor(&self, name: &str, device: &Device) -> Result<QTensor, GgufError> {
        let info = self
            .tensor_info(name)
            .ok_or_else(|| GgufError::MissingTensor(name.to_owned()))?;
        let dtype = info.ty.candle().ok_or_else(|| unsupported(info))?;
        let bytes = self.tensor_bytes(name)?;
        // candle reinterprets the bytes as blocks that contain f16/f32 fields: make sure the
        // start is 4-byte aligned (a file may declare an alignment of 1 or 2).
        let aligned: Vec<u32>;
        let bytes = if (bytes.as_ptr() as usize).is_multiple_of(4) {
            bytes
        } else {
            let mut words = vec![0u32; bytes.len().div_ceil(4)];
            bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(bytes);
            aligned = words;
            &bytemuck::cast_slice::<u32, u8>(&aligned)[..bytes.len()]
        };
        candle_core::quantized::ggml_file::qtensor_from_ggml(dtype, bytes, info.shape(), device)
            .map_err(|source| GgufError::Tensor {
                name: name.to_owned(),
                source,
            })
    }
}

impl MetadataExt for GgufFile {
    fn value(&self, key: &str) -> Option<&Value> {
        self.header.value(key)
    }
}

impl MetadataExt for Header {
    fn value(&self, key: &str) -> Option<&Value> {
        self.metadata_value(key)
    }
}

fn unsupported(info: &TensorInfo) -> GgufError {
    if info.ty.candle().is_some() {
        GgufError::Malformed {
            offset: 0,
            reason: format!(
                "tensor `{}` row length {} is not a whole number of {} blocks",
                info.name, info.dims[0], info.ty
            ),
        }
    } else {
        GgufError::UnsupportedTensorType {
            name: info.name.clone(),
            type_name: info.ty.name(),
        }
    }
}
