//! ggml tensor types: ids, names, block sizes, and which ones this crate computes with.

use candle_core::quantized::GgmlDType;

/// A ggml tensor type id as stored in a GGUF tensor header, with its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TensorType(pub u32);

/// ggml's type ids and names (ggml.h `enum ggml_type`), including the ones we cannot run, so
/// that an error can name them.
const NAMES: &[(u32, &str)] = &[
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (6, "Q5_0"),
    (7, "Q5_1"),
    (8, "Q8_0"),
    (9, "Q8_1"),
    (10, "Q2_K"),
    (11, "Q3_K"),
    (12, "Q4_K"),
    (13, "Q5_K"),
    (14, "Q6_K"),
    (15, "Q8_K"),
    (16, "IQ2_XXS"),
    (17, "IQ2_XS"),
    (18, "IQ3_XXS"),
    (19, "IQ1_S"),
    (20, "IQ4_NL"),
    (21, "IQ3_S"),
    (22, "IQ2_S"),
    (23, "IQ4_XS"),
    (24, "I8"),
    (25, "I16"),
    (26, "I32"),
    (27, "I64"),
    (28, "F64"),
    (29, "IQ1_M"),
    (30, "BF16"),
    (34, "TQ1_0"),
    (35, "TQ2_0"),
    (39, "MXFP4"),
];

impl TensorType {
    /// F32.
    pub const F32: Self = Self(0);
    /// F16.
    pub const F16: Self = Self(1);
    /// Q4_0: 32 weights in 18 bytes.
    pub const Q4_0: Self = Self(2);
    /// Q4_1: 32 weights in 20 bytes.
    pub const Q4_1: Self = Self(3);
    /// Q8_0: 32 weights in 34 bytes.
    pub const Q8_0: Self = Self(8);
    /// Q4_K: 256 weights in 144 bytes.
    pub const Q4_K: Self = Self(12);
    /// Q5_K: 256 weights in 176 bytes.
    pub const Q5_K: Self = Self(13);
    /// Q6_K: 256 weights in 210 bytes.
    pub const Q6_K: Self = Self(14);

    /// ggml's name for the type, e.g. `Q4_K`, or `type 99` when unknown.
    pub fn name(self) -> String {
        NAMES
            .iter()
            .find(|(id, _)| *id == self.0)
            .map_or_else(|| format!("type {}", self.0), |(_, n)| (*n).to_owned())
    }

    /// Parses a name such as `q4_0` or `Q4_K` (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        NAMES
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(id, _)| Self(*id))
    }

    /// The candle type used to compute with it, when this crate supports it.
    pub fn candle(self) -> Option<GgmlDType> {
        Some(match self.0 {
            0 => GgmlDType::F32,
            1 => GgmlDType::F16,
            2 => GgmlDType::Q4_0,
            3 => GgmlDType::Q4_1,
            6 => GgmlDType::Q5_0,
            7 => GgmlDType::Q5_1,
            8 => GgmlDType::Q8_0,
            10 => GgmlDType::Q2K,
            11 => GgmlDType::Q3K,
            12 => GgmlDType::Q4K,
            13 => GgmlDType::Q5K,
            14 => GgmlDType::Q6K,
            30 => GgmlDType::BF16,
            _ => return None,
        })
    }

    /// The type of a candle dtype.
    pub fn from_candle(dtype: GgmlDType) -> Self {
        Self(match dtype {
            GgmlDType::F32 => 0,
            GgmlDType::F16 => 1,
            GgmlDType::Q4_0 => 2,
            GgmlDType::Q4_1 => 3,
            GgmlDType::Q5_0 => 6,
            GgmlDType::Q5_1 => 7,
            GgmlDType::Q8_0 => 8,
            GgmlDType::Q8_1 => 9,
            GgmlDType::Q2K => 10,
            GgmlDType::Q3K => 11,
            GgmlDType::Q4K => 12,
            GgmlDType::Q5K => 13,
            GgmlDType::Q6K => 14,
            GgmlDType::Q8K => 15,
            GgmlDType::BF16 => 30,
        })
    }

    /// (elements per block, bytes per block), for the types whose layout we know.
    pub fn block_layout(self) -> Option<(u64, u64)> {
        let d = self.candle()?;
        Some((d.block_size() as u64, d.type_size() as u64))
    }
}

impl std::fmt::Display for TensorType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}
