//! Typed GGUF metadata values.

use super::GgufError;

/// One metadata value of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// GGUF type 0.
    U8(u8),
    /// GGUF type 1.
    I8(i8),
    /// GGUF type 2.
    U16(u16),
    /// GGUF type 3.
    I16(i16),
    /// GGUF type 4.
    U32(u32),
    /// GGUF type 5.
    I32(i32),
    /// GGUF type 6.
    F32(f32),
    /// GGUF type 7.
    Bool(bool),
    /// GGUF type 8 (UTF-8).
    String(String),
    /// GGUF type 9: a homogeneous array.
    Array(Vec<Value>),
    /// GGUF type 10.
    U64(u64),
    /// GGUF type 11.
    I64(i64),
    /// GGUF type 12.
    F64(f64),
}

impl Value {
    /// The GGUF type id of this value.
    pub fn type_id(&self) -> u32 {
        match self {
            Value::U8(_) => 0,
            Value::I8(_) => 1,
            Value::U16(_) => 2,
            Value::I16(_) => 3,
            Value::U32(_) => 4,
            Value::I32(_) => 5,
            Value::F32(_) => 6,
            Value::Bool(_) => 7,
            Value::String(_) => 8,
            Value::Array(_) => 9,
            Value::U64(_) => 10,
            Value::I64(_) => 11,
            Value::F64(_) => 12,
        }
    }

    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::U8(_) => "u8",
            Value::I8(_) => "i8",
            Value::U16(_) => "u16",
            Value::I16(_) => "i16",
            Value::U32(_) => "u32",
            Value::I32(_) => "i32",
            Value::F32(_) => "f32",
            Value::Bool(_) => "bool",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::U64(_) => "u64",
            Value::I64(_) => "i64",
            Value::F64(_) => "f64",
        }
    }

    /// The value as a non-negative integer, whatever its integer width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a signed integer, whatever its integer width.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::I8(v) => Some(v.into()),
            Value::I16(v) => Some(v.into()),
            Value::I32(v) => Some(v.into()),
            Value::I64(v) => Some(v),
            _ => self.as_u64().and_then(|v| i64::try_from(v).ok()),
        }
    }

    /// The value as a float (from f32 or f64).
    pub fn as_f32(&self) -> Option<f32> {
        match *self {
            Value::F32(v) => Some(v),
            Value::F64(v) => Some(v as f32),
            _ => None,
        }
    }

    /// The value as a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(v) => Some(v),
            _ => None,
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(v) => Some(v),
            _ => None,
        }
    }

    /// A short human description: the value itself for scalars, type and length for arrays.
    pub fn describe(&self) -> String {
        match self {
            Value::String(s) if s.len() > 60 => {
                format!("{:?}… ({} bytes)", truncate(s, 60), s.len())
            }
            Value::String(s) => format!("{s:?}"),
            Value::Array(v) => {
                let inner = v.first().map_or("?", Value::type_name);
                format!("[{inner}; {}]", v.len())
            }
            Value::U8(v) => v.to_string(),
            Value::I8(v) => v.to_string(),
            Value::U16(v) => v.to_string(),
            Value::I16(v) => v.to_string(),
            Value::U32(v) => v.to_string(),
            Value::I32(v) => v.to_string(),
            Value::U64(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::F32(v) => v.to_string(),
            Value::F64(v) => v.to_string(),
            Value::Bool(v) => v.to_string(),
        }
    }
}

fn truncate(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Typed look-ups over a metadata map, each with an error naming the key.
pub trait MetadataExt {
    /// The raw value of `key`, if present.
    fn value(&self, key: &str) -> Option<&Value>;

    /// An integer value, or `None` when the key is absent; an error when it has another type.
    fn opt_u64(&self, key: &str) -> Result<Option<u64>, GgufError> {
        self.value(key)
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| wrong(key, "an unsigned integer", v))
            })
            .transpose()
    }

    /// A float value, or `None` when the key is absent; an error when it has another type.
    fn opt_f32(&self, key: &str) -> Result<Option<f32>, GgufError> {
        self.value(key)
            .map(|v| v.as_f32().ok_or_else(|| wrong(key, "a float", v)))
            .transpose()
    }

    /// A boolean value, or `None` when the key is absent; an error when it has another type.
    fn opt_bool(&self, key: &str) -> Result<Option<bool>, GgufError> {
        self.value(key)
            .map(|v| v.as_bool().ok_or_else(|| wrong(key, "a boolean", v)))
            .transpose()
    }

    /// A string value, or `None` when the key is absent; an error when it has another type.
    fn opt_str(&self, key: &str) -> Result<Option<&str>, GgufError> {
        self.value(key)
            .map(|v| v.as_str().ok_or_else(|| wrong(key, "a string", v)))
            .transpose()
    }

    /// An array value, or `None` when the key is absent; an error when it has another type.
    fn opt_array(&self, key: &str) -> Result<Option<&[Value]>, GgufError> {
        self.value(key)
            .map(|v| v.as_array().ok_or_else(|| wrong(key, "an array", v)))
            .transpose()
    }
}

/// The error for a metadata value of the wrong type.
pub fn wrong(key: &str, expected: &'static str, found: &Value) -> GgufError {
    GgufError::WrongValueType {
        key: key.to_owned(),
        expected,
        found: format!("{} {}", found.type_name(), found.describe()),
    }
}
