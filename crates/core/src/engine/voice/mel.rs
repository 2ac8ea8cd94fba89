//! Whisper's log-mel input: the filter bank (Slaney mel scale with area normalisation, as
//! librosa's default that Whisper was trained with), computed here rather than shipped.

/// The mel filter bank: `n_mels` rows of `n_fft / 2 + 1` weights, row-major.
pub fn mel_filters(sample_rate: f64, n_fft: usize, n_mels: usize) -> Vec<f32> {
    // Slaney's scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
    let step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |f: f64| {
        if f < 1000.0 {
            3.0 * f / 200.0
        } else {
            15.0 + (f / 1000.0).ln() / step
        }
    };
    let mel_to_hz = |m: f64| {
        if m < 15.0 {
            200.0 * m / 3.0
        } else {
            1000.0 * ((m - 15.0) * step).exp()
        }
    };
    let bins = n_fft / 2 + 1;
    let top = hz_to_mel(sample_rate / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut out = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
        let area = 2.0 / (hi - lo);
        for k in 0..bins {
            let f = k as f64 * sample_rate / n_fft as f64;
            let rise = (f - lo) / (mid - lo);
            let fall = (hi - f) / (hi - mid);
            out[m * bins + k] = (rise.min(fall).max(0.0) * area) as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triangles_cover_the_band_in_order() {
        let f = mel_filters(16000.0, 400, 80);
        assert_eq!(f.len(), 80 * 201);
        let peak = |m: usize| {
            (0..201)
                .max_by(|&a, &b| f[m * 201 + a].total_cmp(&f[m * 201 + b]))
                .unwrap()
        };
        for m in 1..80 {
            assert!(
                peak(m) >= peak(m - 1),
                "filter {m} peaks after filter {}",
                m - 1
            );
        }
        assert!(f.iter().all(|w| *w >= 0.0));
        // Area normalisation: the low (narrow, linear-scale) filters are the tallest.
        let max = |m: usize| {
            f[m * 201..(m + 1) * 201]
                .iter()
                .cloned()
                .fold(0.0, f32::max)
        };
        assert!(max(0) > max(79));
    }
}
