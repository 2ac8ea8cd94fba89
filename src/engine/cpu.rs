//! Start-up check of the CPU features the build was compiled for.
//!
//! `.cargo/config.toml` builds for x86-64-v3 (AVX2, FMA, F16C) so candle's quantized kernels use
//! SIMD. On an older CPU those instructions would crash the process with SIGILL; checking first
//! turns that into [`MissingCpuFeature`].

/// A CPU feature this build needs but the processor lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "this build needs the CPU feature `{feature}`, which this processor lacks; rebuild without `-C target-cpu=x86-64-v3` (remove it from .cargo/config.toml) to run on this machine, more slowly"
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
