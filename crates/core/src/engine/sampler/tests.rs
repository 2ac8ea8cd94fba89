//! Sampler unit tests on small logit vectors.

use super::*;

fn params(f: impl FnOnce(&mut SamplingParams)) -> SamplingParams {
    let mut p = SamplingParams {
        top_k: 0,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        seed: Some(42),
        ..SamplingParams::default()
    };
    f(&mut p);
    p
}

fn draw(p: SamplingParams, logits: &[f32], n: usize) -> Vec<u32> {
    let mut s = Sampler::new(p).unwrap();
    (0..n)
        .map(|_| s.sample(&mut logits.to_vec(), &[], None).unwrap())
        .collect()
}

#[test]
fn greedy_takes_the_highest_logit_lowest_id_on_ties() {
    assert_eq!(
        draw(SamplingParams::greedy(), &[0.1, 0.2, 0.3, 0.4], 1),
        vec![3]
    );
    assert_eq!(
        draw(SamplingParams::greedy(), &[0.5, 0.9, 0.9, 0.1], 1),
        vec![1]
    );
    assert_eq!(greedy(&[f32::NAN, f32::NEG_INFINITY, -3.0]), Ok(2));
}

#[test]
fn seeded_runs_are_deterministic_and_seeds_differ() {
    let logits = [1.0, 1.1, 0.9, 1.05, 1.0, 0.95];
    let a = draw(params(|_| {}), &logits, 50);
    let b = draw(params(|_| {}), &logits, 50);
    let c = draw(params(|p| p.seed = Some(7)), &logits, 50);
    assert_eq!(a, b);
    assert_ne!(a, c);
    // With near-equal logits, several tokens come out.
    let distinct: std::collections::HashSet<_> = a.iter().collect();
    assert!(distinct.len() >= 4, "{a:?}");
}

#[test]
fn top_k_one_is_greedy() {
    let out = draw(params(|p| p.top_k = 1), &[0.1, 2.0, 1.9, -1.0], 30);
    assert!(out.iter().all(|&t| t == 1));
}

#[test]
fn top_p_keeps_the_smallest_set_reaching_p() {
    // probabilities ≈ [0.64, 0.24, 0.09, 0.03]: top_p 0.7 keeps the first two only.
    let out = draw(params(|p| p.top_p = 0.7), &[3.0, 2.0, 1.0, 0.0], 400);
    assert!(out.iter().all(|&t| t == 0 || t == 1));
    assert!(out.contains(&1));
}

#[test]
fn min_p_drops_unlikely_tokens() {
    // p1/p0 = e^-1 ≈ 0.37 survives min_p 0.3; p2/p0 = e^-3 ≈ 0.05 does not.
    let out = draw(params(|p| p.min_p = 0.3), &[5.0, 4.0, 2.0, 2.0], 400);
    assert!(out.iter().all(|&t| t <= 1));
    assert!(out.contains(&1));
}

#[test]
fn low_temperature_sharpens() {
    let logits = [1.0, 1.5, 0.5];
    let hot = draw(params(|p| p.temperature = 5.0), &logits, 300);
    let cold = draw(params(|p| p.temperature = 0.05), &logits, 300);
    assert!(cold.iter().all(|&t| t == 1));
    assert!(hot.iter().filter(|&&t| t != 1).count() > 50);
}

#[test]
fn repetition_penalty_divides_positive_and_multiplies_negative() {
    let s = Sampler::new(params(|p| {
        p.repeat_penalty = 2.0;
        p.repeat_last_n = 2;
    }))
    .unwrap();
    let mut logits = vec![4.0, -1.0, 3.0, 3.0];
    // Token 3 is outside the window of 2.
    s.apply_penalties(&mut logits, &[3, 0, 1]);
    assert_eq!(logits, vec![2.0, -2.0, 3.0, 3.0]);
}

#[test]
fn presence_and_frequency_penalties() {
    let s = Sampler::new(params(|p| {
        p.presence_penalty = 0.5;
        p.frequency_penalty = 0.25;
    }))
    .unwrap();
    let mut logits = vec![1.0, 1.0, 1.0];
    s.apply_penalties(&mut logits, &[0, 0, 0, 2]);
    assert_eq!(logits, vec![1.0 - 0.75 - 0.5, 1.0, 1.0 - 0.25 - 0.5]);
}

#[test]
fn penalty_changes_the_greedy_pick() {
    let mut s = Sampler::new(SamplingParams {
        repeat_penalty: 2.0,
        ..SamplingParams::greedy()
    })
    .unwrap();
    assert_eq!(s.sample(&mut [3.0, 2.0], &[0], None).unwrap(), 1);
}

#[test]
fn logit_bias_and_mask() {
    let mut p = SamplingParams::greedy();
    p.logit_bias.insert(0, -100.0);
    let mut s = Sampler::new(p).unwrap();
    assert_eq!(s.sample(&mut [5.0, 1.0, 0.0], &[], None).unwrap(), 1);
    let mut only_two = |l: &mut [f32]| {
        for (i, x) in l.iter_mut().enumerate() {
            if i != 2 {
                *x = f32::NEG_INFINITY;
            }
        }
    };
    assert_eq!(
        s.sample(&mut [5.0, 1.0, 0.0], &[], Some(&mut only_two))
            .unwrap(),
        2
    );
    let mut none = |l: &mut [f32]| l.fill(f32::NEG_INFINITY);
    assert_eq!(
        s.sample(&mut [5.0, 1.0], &[], Some(&mut none)),
        Err(SamplerError::NoCandidates)
    );
    let mut s = Sampler::new(params(|_| {})).unwrap();
    assert_eq!(
        s.sample(&mut [f32::NAN, f32::NEG_INFINITY], &[], None),
        Err(SamplerError::NoCandidates)
    );
}

#[test]
fn invalid_parameters_are_rejected() {
    for p in [
        params(|p| p.top_p = 0.0),
        params(|p| p.min_p = 2.0),
        params(|p| p.temperature = f32::NAN),
        params(|p| p.stop = vec![String::new()]),
    ] {
        assert!(matches!(
            Sampler::new(p),
            Err(SamplerError::InvalidParams { .. })
        ));
    }
}

#[test]
fn params_round_trip_through_json_with_defaults() {
    let p: SamplingParams =
        serde_json::from_str(r#"{"temperature":0.2,"logit_bias":{"5":-3.0},"stop":["\n"]}"#)
            .unwrap();
    assert_eq!(p.temperature, 0.2);
    assert_eq!(p.top_k, 40);
    assert_eq!(p.logit_bias.get(&5), Some(&-3.0));
    let back: SamplingParams = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
    assert!(serde_json::from_str::<SamplingParams>(r#"{"temprature":1}"#).is_err());
}
