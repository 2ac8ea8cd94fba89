//! The CPU: which kernel level a model uses ([`KernelLevel`], chosen at run time), and a
//! start-up check of the features a build was compiled for.
//!
//! The crate needs no compile-time CPU flags: every hot path (our kernels, attention, candle's
//! quantized kernels) detects the CPU at run time, so a game that builds it for the baseline
//! x86-64 target runs as fast as this repository's build. A build made with `-C target-cpu=…`
//! (say `native`) and run on an older CPU would crash with SIGILL; [`check_cpu`] turns that into
//! [`MissingCpuFeature`] instead.

/// A CPU feature this build needs but the processor lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this build needs the CPU feature `{feature}`, which this processor lacks; rebuild without `-C target-cpu=…` (RUSTFLAGS or .cargo/config.toml) to run on this machine"
)]
pub struct MissingCpuFeature {
    /// The missing feature, e.g. `avx2`.
    pub feature: &'static str,
}

/// Checks that the processor has every SIMD feature this binary was compiled to use.
pub fn check_cpu() -> Result<(), MissingCpuFeature> {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! need {
            ($f:tt) => {
                if cfg!(target_feature = $f) && !std::arch::is_x86_feature_detected!($f) {
                    return Err(MissingCpuFeature { feature: $f });
                }
            };
        }
        need!("avx");
        need!("avx2");
        need!("fma");
        need!("f16c");
    }
    Ok(())
}

/// The SIMD features compiled into this build, for `inspect` and bug reports.
pub fn compiled_features() -> Vec<&'static str> {
    let mut out = Vec::new();
    if cfg!(target_feature = "avx2") {
        out.push("avx2");
    }
    if cfg!(target_feature = "fma") {
        out.push("fma");
    }
    if cfg!(target_feature = "f16c") {
        out.push("f16c");
    }
    if cfg!(target_feature = "avx512f") {
        out.push("avx512f");
    }
    if cfg!(target_feature = "neon") {
        out.push("neon");
    }
    out
}

/// Which matrix kernels a model uses, chosen at run time from what the CPU has (see
/// [`KernelLevel::choose`]). Every level computes the same products to float rounding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KernelLevel {
    /// Our kernels with 512-bit AVX-512 F/BW/DQ/VNNI (Intel Ice Lake, Sapphire Rapids, AMD Zen 4
    /// and later).
    Avx512,
    /// Our kernels with 256-bit AVX2 + FMA + F16C, using AVX-VNNI's `vpdpbusd` where the CPU has
    /// it (Intel Alder Lake and later) and `vpmaddubsw` otherwise (Haswell and later, Zen).
    Avx2,
    /// candle's quantized kernels for every tensor type (the last resort, and the reference).
    Generic,
}

/// The environment variable that forces a kernel level (`avx512`, `avx2` or `generic`).
pub const KERNEL_LEVEL_VAR: &str = "LLAMA_DIALOGUE_CPU";

/// A kernel level that cannot be used here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelLevelError {
    /// The name is not a level.
    #[error("unknown kernel level `{0}` (expected avx512, avx2 or generic)")]
    Unknown(String),
    /// The CPU lacks the level's instructions.
    #[error("kernel level `{0}` was asked for, but this CPU lacks its instructions (it supports: {supported})", supported = KernelLevel::supported_names())]
    Unsupported(KernelLevel),
}

impl KernelLevel {
    /// Every level, fastest first.
    pub const ALL: [KernelLevel; 3] = [Self::Avx512, Self::Avx2, Self::Generic];

    /// The level's name, as `LLAMA_DIALOGUE_CPU` and `bench --json` spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Avx512 => "avx512",
            Self::Avx2 => "avx2",
            Self::Generic => "generic",
        }
    }

    /// Whether this CPU can run the level.
    pub fn is_supported(self) -> bool {
        match self {
            Self::Avx512 => detect::avx512_vnni(),
            Self::Avx2 => detect::avx2_fma_f16c(),
            Self::Generic => true,
        }
    }

    /// The fastest level this CPU supports.
    pub fn best() -> Self {
        Self::ALL
            .into_iter()
            .find(|l| l.is_supported())
            .unwrap_or(Self::Generic)
    }

    /// The level to use: `forced` (from [`ModelOptions`](crate::engine::model::ModelOptions)),
    /// else `LLAMA_DIALOGUE_CPU`, else the best this CPU supports. A forced level the CPU lacks
    /// is an error, never an illegal instruction.
    pub fn choose(forced: Option<Self>) -> Result<Self, KernelLevelError> {
        let forced = match forced {
            Some(level) => Some(level),
            None => match std::env::var(KERNEL_LEVEL_VAR) {
                Ok(name) if !name.trim().is_empty() => Some(name.parse()?),
                _ => None,
            },
        };
        match forced {
            Some(level) if !level.is_supported() => Err(KernelLevelError::Unsupported(level)),
            Some(level) => Ok(level),
            None => Ok(Self::best()),
        }
    }

    fn supported_names() -> String {
        Self::ALL
            .into_iter()
            .filter(|l| l.is_supported())
            .map(Self::name)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl std::fmt::Display for KernelLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for KernelLevel {
    type Err = KernelLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or(KernelLevelError::Unknown(s))
    }
}

/// Run-time CPU feature detection (always false off x86-64).
pub(crate) mod detect {
    /// AVX-512 F/BW/DQ/VNNI.
    pub(crate) fn avx512_vnni() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vnni")
                && avx2_fma_f16c()
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// AVX2, FMA and F16C.
    pub(crate) fn avx2_fma_f16c() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }

    /// AVX-VNNI (the 256-bit `vpdpbusd` without AVX-512).
    pub(crate) fn avx_vnni() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("avxvnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{KernelLevel, KernelLevelError};

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for level in KernelLevel::ALL {
            assert_eq!(level.name().parse::<KernelLevel>(), Ok(level));
        }
        assert_eq!(" AVX2 ".parse::<KernelLevel>(), Ok(KernelLevel::Avx2));
        assert_eq!(
            "sse".parse::<KernelLevel>(),
            Err(KernelLevelError::Unknown("sse".into()))
        );
    }

    #[test]
    fn forced_levels_are_checked_against_the_cpu() {
        assert!(KernelLevel::Generic.is_supported());
        assert!(KernelLevel::best().is_supported());
        for level in KernelLevel::ALL {
            let chosen = KernelLevel::choose(Some(level));
            if level.is_supported() {
                assert_eq!(chosen, Ok(level));
            } else {
                assert_eq!(chosen, Err(KernelLevelError::Unsupported(level)));
            }
        }
    }
}
