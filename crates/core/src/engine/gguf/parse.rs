//! A bounds-checked GGUF header parser over a byte slice.
//!
//! Every length read from the file is checked against the bytes that remain before anything is
//! allocated, so a hostile or truncated file produces [`GgufError`] and never a panic or a
//! multi-gigabyte allocation.

use std::collections::HashMap;

use super::{GgufError, TensorInfo, TensorType, Value};

/// ggml's limit on tensor dimensions.
const MAX_DIMS: u32 = 4;
/// Arrays may nest, but not without bound (recursion depth).
const MAX_NESTING: u32 = 8;
/// The GGUF default alignment of the tensor data section.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// The most elements reserved ahead of parsing them: a list grows past this only as its elements
/// are actually read from the file, so a count that lies costs no memory.
const MAX_RESERVE: u64 = 1024;

/// The fewest bytes one value of GGUF type `type_id` takes in a file (an unknown type is caught
/// when its first element is read).
fn min_encoded_size(type_id: u32) -> u64 {
    match type_id {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        // A string is its 8-byte length, an array its 4-byte type and 8-byte count.
        8 | 10..=12 => 8,
        9 => 12,
        _ => 1,
    }
}

/// A vector with room for `count` elements, but never more than [`MAX_RESERVE`] ahead.
fn reserve<T>(count: u64) -> Vec<T> {
    Vec::with_capacity(count.min(MAX_RESERVE) as usize)
}

/// The parsed front of a GGUF file: everything but the tensor bytes.
#[derive(Debug, Clone)]
pub struct Header {
    /// Container version (2 or 3).
    pub version: u32,
    /// Metadata in file order.
    pub metadata: Vec<(String, Value)>,
    /// Tensor descriptions in file order.
    pub tensors: Vec<TensorInfo>,
    /// Alignment of the data section (`general.alignment`, default 32).
    pub alignment: u64,
    /// Offset of the data section from the start of the file.
    pub data_start: u64,
    /// Tensor name → position in `tensors`, for look-ups in constant time.
    index: HashMap<String, usize>,
    /// Metadata key → position in `metadata` (the first, should a key repeat).
    keys: HashMap<String, usize>,
}

impl Header {
    /// The description of tensor `name`, in constant time.
    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.index.get(name).map(|&i| &self.tensors[i])
    }

    /// The value of metadata key `key`, in constant time.
    pub fn metadata_value(&self, key: &str) -> Option<&Value> {
        self.keys.get(key).map(|&i| &self.metadata[i].1)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], GgufError> {
        let remaining = (self.bytes.len() - self.pos) as u64;
        if n > remaining {
            return Err(GgufError::Truncated {
                what: what.to_owned(),
                offset: self.pos as u64,
                needed: n,
                len: self.bytes.len() as u64,
            });
        }
        let n = n as usize;
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn malformed(&self, at: usize, reason: impl Into<String>) -> GgufError {
        GgufError::Malformed {
            offset: at as u64,
            reason: reason.into(),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, GgufError> {
        let at = self.pos;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| self.malformed(at, format!("{what} is not valid UTF-8")))
    }

    fn value(&mut self, type_id: u32, what: &str, depth: u32) -> Result<Value, GgufError> {
        let at = self.pos;
        Ok(match type_id {
            0 => Value::U8(self.array::<1>(what)?[0]),
            1 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            7 => match self.array::<1>(what)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => {
                    return Err(
                        self.malformed(at, format!("{what}: boolean byte is {b}, not 0 or 1"))
                    );
                }
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth >= MAX_NESTING {
                    return Err(self.malformed(
                        at,
                        format!("{what}: arrays nested deeper than {MAX_NESTING}"),
                    ));
                }
                let inner = self.u32(what)?;
                let count = self.u64(what)?;
                // Every element takes at least `min_encoded_size` bytes: a count beyond what the
                // remaining bytes can hold is a truncated (or lying) file, caught before reading.
                let remaining = (self.bytes.len() - self.pos) as u64;
                let needed = count.saturating_mul(min_encoded_size(inner));
                if needed > remaining {
                    return Err(GgufError::Truncated {
                        what: format!("{what} ({count} elements)"),
                        offset: self.pos as u64,
                        needed,
                        len: self.bytes.len() as u64,
                    });
                }
                let mut items = reserve(count);
                for _ in 0..count {
                    items.push(self.value(inner, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            other => return Err(self.malformed(at, format!("{what}: unknown value type {other}"))),
        })
    }
}

/// Parses the header of a GGUF file held in `bytes` and checks that every tensor's data lies
/// inside `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Header, GgufError> {
    let mut c = Cursor { bytes, pos: 0 };
    let magic = bytes.get(..4).unwrap_or(bytes);
    if magic != b"GGUF" {
        if magic.len() < 4 && b"GGUF".starts_with(magic) {
            return Err(GgufError::Truncated {
                what: "magic".into(),
                offset: 0,
                needed: 4,
                len: bytes.len() as u64,
            });
        }
        return Err(GgufError::NotGguf {
            found: magic.to_vec(),
        });
    }
    c.pos = 4;
    let version = c.u32("version")?;
    if version != 2 && version != 3 {
        return Err(GgufError::UnsupportedVersion(version));
    }
    let n_tensors = c.u64("tensor count")?;
    let n_kv = c.u64("metadata count")?;
    let remaining = (bytes.len() - c.pos) as u64;
    // A key-value pair takes at least 13 bytes, a tensor description at least 24.
    if n_kv > remaining / 13 || n_tensors > remaining / 24 {
        return Err(GgufError::Truncated {
            what: format!("{n_kv} metadata entries and {n_tensors} tensor descriptions"),
            offset: c.pos as u64,
            needed: n_kv
                .saturating_mul(13)
                .saturating_add(n_tensors.saturating_mul(24)),
            len: bytes.len() as u64,
        });
    }
    let mut metadata = reserve(n_kv);
    for i in 0..n_kv {
        let key = c.string(&format!("metadata key #{i}"))?;
        let ty = c.u32(&format!("type of `{key}`"))?;
        let value = c.value(ty, &format!("value of `{key}`"), 0)?;
        metadata.push((key, value));
    }
    let alignment = match metadata.iter().find(|(k, _)| k == "general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some((_, v)) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a,
            _ => {
                return Err(c.malformed(
                    0,
                    format!("general.alignment is {}, not a power of two", v.describe()),
                ));
            }
        },
    };
    let mut tensors = reserve(n_tensors);
    for i in 0..n_tensors {
        let at = c.pos;
        let name = c.string(&format!("tensor name #{i}"))?;
        let n_dims = c.u32(&format!("dimension count of `{name}`"))?;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(c.malformed(
                at,
                format!("tensor `{name}` has {n_dims} dimensions (1 to {MAX_DIMS} allowed)"),
            ));
        }
        let mut dims = reserve(u64::from(n_dims));
        for _ in 0..n_dims {
            dims.push(c.u64(&format!("dimensions of `{name}`"))?);
        }
        let ty = TensorType(c.u32(&format!("type of `{name}`"))?);
        let offset = c.u64(&format!("data offset of `{name}`"))?;
        if offset % alignment != 0 {
            return Err(c.malformed(at, format!("tensor `{name}` data offset {offset} is not a multiple of the alignment {alignment}")));
        }
        tensors.push(TensorInfo {
            name,
            dims,
            ty,
            offset,
        });
    }
    let data_start = (c.pos as u64).div_ceil(alignment) * alignment;
    let mut keys = HashMap::with_capacity(metadata.len());
    for (i, (key, _)) in metadata.iter().enumerate() {
        keys.entry(key.clone()).or_insert(i);
    }
    let mut header = Header {
        version,
        metadata,
        tensors,
        alignment,
        data_start,
        index: HashMap::new(),
        keys,
    };
    header.index = check_tensors(&header, bytes.len() as u64)?;
    Ok(header)
}

/// Checks that tensor names are unique and that each tensor's data lies inside the file and
/// overlaps no other's; returns the name index.
fn check_tensors(h: &Header, file_len: u64) -> Result<HashMap<String, usize>, GgufError> {
    let mut index = HashMap::with_capacity(h.tensors.len());
    let mut spans = Vec::with_capacity(h.tensors.len());
    for (i, t) in h.tensors.iter().enumerate() {
        if index.insert(t.name.clone(), i).is_some() {
            return Err(GgufError::Malformed {
                offset: 0,
                reason: format!("tensor `{}` appears twice", t.name),
            });
        }
        let Some(size) = t.byte_size() else {
            // Unknown layout: the size cannot be checked, the tensor cannot be used either; the
            // error comes when (and if) the model asks for it.
            continue;
        };
        let end = h
            .data_start
            .checked_add(t.offset)
            .and_then(|s| s.checked_add(size));
        match end {
            Some(end) if end <= file_len => {}
            _ => {
                return Err(GgufError::Truncated {
                    what: format!("data of tensor `{}` ({} {:?})", t.name, t.ty, t.dims),
                    offset: h.data_start.saturating_add(t.offset),
                    needed: size,
                    len: file_len,
                });
            }
        }
        if size > 0 {
            spans.push((t.offset, t.offset + size, i));
        }
    }
    // Two tensors sharing bytes would let a write through one (a repack, a release) show in
    // the other: llama.cpp's writer never produces it, so it is a damaged or crafted file.
    spans.sort_unstable();
    for pair in spans.windows(2) {
        let ((_, end, a), (start, _, b)) = (pair[0], pair[1]);
        if start < end {
            return Err(GgufError::Malformed {
                offset: h.data_start.saturating_add(start),
                reason: format!(
                    "the data of tensors `{}` and `{}` overlap",
                    h.tensors[a].name, h.tensors[b].name
                ),
            });
        }
    }
    Ok(index)
}
