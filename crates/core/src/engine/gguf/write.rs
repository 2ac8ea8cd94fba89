//! A streaming GGUF (version 3) writer: the header first, then each tensor's bytes in order, so
//! a multi-gigabyte file never has to sit in memory.

use std::io::Write;

use super::{GgufError, TensorInfo, TensorType, Value, parse::DEFAULT_ALIGNMENT};

/// What the writer needs to know about a tensor before its bytes exist.
#[derive(Debug, Clone)]
pub struct TensorSpec {
    /// The tensor's name.
    pub name: String,
    /// Dimensions in ggml order (row length first).
    pub dims: Vec<u64>,
    /// The ggml type its bytes will have.
    pub ty: TensorType,
}

/// A tensor of an existing file, to write again (a re-quantisation, an edited copy).
impl From<&TensorInfo> for TensorSpec {
    fn from(t: &TensorInfo) -> Self {
        Self {
            name: t.name.clone(),
            dims: t.dims.clone(),
            ty: t.ty,
        }
    }
}

/// Writes a GGUF file: [`GgufWriter::write_header`], then [`GgufWriter::write_tensor`] once per
/// tensor in the order they were declared.
pub struct GgufWriter<W: Write> {
    out: W,
    infos: Vec<TensorInfo>,
    next: usize,
    written: u64,
}

impl<W: Write> GgufWriter<W> {
    /// Writes the header (metadata and tensor descriptions) and returns a writer that expects
    /// the tensors' bytes.
    pub fn write_header(
        mut out: W,
        metadata: &[(String, Value)],
        tensors: &[TensorSpec],
    ) -> Result<Self, GgufError> {
        let mut infos = Vec::with_capacity(tensors.len());
        let mut offset = 0u64;
        for t in tensors {
            let info = TensorInfo {
                name: t.name.clone(),
                dims: t.dims.clone(),
                ty: t.ty,
                offset,
            };
            let size = info
                .byte_size()
                .ok_or_else(|| GgufError::UnsupportedTensorType {
                    name: t.name.clone(),
                    type_name: format!(
                        "{} with row length {}",
                        t.ty,
                        t.dims.first().copied().unwrap_or(0)
                    ),
                })?;
            offset += size.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
            infos.push(info);
        }
        let mut head = Vec::new();
        head.extend_from_slice(b"GGUF");
        head.extend_from_slice(&3u32.to_le_bytes());
        head.extend_from_slice(&(infos.len() as u64).to_le_bytes());
        head.extend_from_slice(&(metadata.len() as u64).to_le_bytes());
        for (key, value) in metadata {
            put_string(&mut head, key);
            head.extend_from_slice(&value.type_id().to_le_bytes());
            put_value(&mut head, value);
        }
        for info in &infos {
            put_string(&mut head, &info.name);
            head.extend_from_slice(&(info.dims.len() as u32).to_le_bytes());
            for d in &info.dims {
                head.extend_from_slice(&d.to_le_bytes());
            }
            head.extend_from_slice(&info.ty.0.to_le_bytes());
            head.extend_from_slice(&info.offset.to_le_bytes());
        }
        let padded = (head.len() as u64).div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT;
        head.resize(padded as usize, 0);
        out.write_all(&head).map_err(io)?;
        Ok(Self {
            out,
            infos,
            next: 0,
            written: 0,
        })
    }

    /// Writes the next tensor's bytes; their length must match its declared type and shape.
    pub fn write_tensor(&mut self, bytes: &[u8]) -> Result<(), GgufError> {
        let info = self
            .infos
            .get(self.next)
            .ok_or_else(|| GgufError::Malformed {
                offset: self.written,
                reason: "more tensors written than declared".into(),
            })?;
        let size = info.byte_size().unwrap_or(0);
        if bytes.len() as u64 != size {
            return Err(GgufError::Malformed {
                offset: self.written,
                reason: format!(
                    "tensor `{}` should have {size} bytes, got {}",
                    info.name,
                    bytes.len()
                ),
            });
        }
        self.out.write_all(bytes).map_err(io)?;
        let pad = size.div_ceil(DEFAULT_ALIGNMENT) * DEFAULT_ALIGNMENT - size;
        self.out.write_all(&vec![0u8; pad as usize]).map_err(io)?;
        self.written += size + pad;
        self.next += 1;
        Ok(())
    }

    /// Checks every declared tensor was written, flushes and returns the inner writer.
    pub fn finish(mut self) -> Result<W, GgufError> {
        if self.next != self.infos.len() {
            return Err(GgufError::Malformed {
                offset: self.written,
                reason: format!("{} of {} tensors written", self.next, self.infos.len()),
            });
        }
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

fn io(source: std::io::Error) -> GgufError {
    GgufError::Io {
        path: "<output>".into(),
        source,
    }
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u64).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn put_value(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::U8(x) => out.push(*x),
        Value::I8(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::U32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::Bool(x) => out.push(u8::from(*x)),
        Value::String(s) => put_string(out, s),
        Value::Array(items) => {
            let inner = items.first().map_or(4, Value::type_id);
            out.extend_from_slice(&inner.to_le_bytes());
            out.extend_from_slice(&(items.len() as u64).to_le_bytes());
            for item in items {
                put_value(out, item);
            }
        }
        Value::U64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::I64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Value::F64(x) => out.extend_from_slice(&x.to_le_bytes()),
    }
}
