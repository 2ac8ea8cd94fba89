//! Batched decoding (`LlamaModel::forward_batch`): several sequences, each with its own cache,
//! in one forward pass give the logits each would get alone, prompts of any length included
//! (long ones take several passes), on real and random-weight models at every kernel level;
//! bad input leaves every cache as it was.

use crate::common;

use bevy_llama_dialogue::engine::cpu::KernelLevel;
use bevy_llama_dialogue::engine::gguf::{GgufFile, TensorType};
use bevy_llama_dialogue::engine::model::{
    BatchSeq, KvCache, KvType, LlamaModel, ModelError, ModelOptions,
};
use bevy_llama_dialogue::engine::synth::{ModelShape, TestModelSpec, write_test_model};

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// Prompts of different lengths: one longer than a batched pass's share (128 / 3 rows).
fn prompts(vocab: usize) -> Vec<Vec<u32>> {
    let word = |i: usize| (3 + (i * 37) % (vocab - 3)) as u32;
    vec![
        (0..5).map(word).collect(),
        vec![1],
        (0..150).map(|i| word(i + 11)).collect(),
    ]
}

/// Each prompt alone on the model's own cache, then `steps` greedy tokens: every step's logits.
fn alone(model: &mut LlamaModel, prompt: &[u32], steps: usize) -> Vec<Vec<f32>> {
    model.clear_cache();
    let mut out = vec![model.forward_last(prompt).unwrap()];
    for _ in 0..steps {
        let next = argmax(out.last().unwrap());
        out.push(model.forward_last(&[next]).unwrap());
    }
    out
}

/// All prompts together, then `steps` greedy tokens each, one batched pass per step.
fn together(model: &LlamaModel, prompts: &[Vec<u32>], steps: usize) -> Vec<Vec<Vec<f32>>> {
    let mut caches: Vec<KvCache> = prompts.iter().map(|_| model.new_cache()).collect();
    let mut inputs: Vec<Vec<u32>> = prompts.to_vec();
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); prompts.len()];
    for _ in 0..=steps {
        let mut seqs: Vec<BatchSeq<'_>> = caches
            .iter_mut()
            .zip(&inputs)
            .map(|(cache, tokens)| BatchSeq { cache, tokens })
            .collect();
        let logits = model.forward_batch(&mut seqs).unwrap();
        assert_eq!(logits.len(), prompts.len());
        for ((o, l), input) in out.iter_mut().zip(logits).zip(&mut inputs) {
            *input = vec![argmax(&l)];
            o.push(l);
        }
    }
    for (cache, (p, o)) in caches.iter().zip(prompts.iter().zip(&out)) {
        assert_eq!(cache.len(), p.len() + o.len() - 1);
        assert_eq!(&cache.tokens()[..p.len()], p.as_slice());
    }
    out
}

/// Batched and alone agree: same greedy tokens, logits within `bound`.
fn check(model: &mut LlamaModel, bound: f32, what: &str) {
    let prompts = prompts(model.vocab_size());
    let steps = 6;
    let batched = together(model, &prompts, steps);
    for (i, prompt) in prompts.iter().enumerate() {
        let single = alone(model, prompt, steps);
        assert_eq!(single.len(), batched[i].len());
        let mut worst = 0f32;
        for (a, b) in single.iter().zip(&batched[i]) {
            assert_eq!(
                argmax(a),
                argmax(b),
                "{what}: sequence {i} chose another token"
            );
            for (x, y) in a.iter().zip(b) {
                worst = worst.max((x - y).abs());
            }
        }
        eprintln!("{what}: sequence {i}: max logit difference {worst:e}");
        assert!(worst <= bound, "{what}: sequence {i}: {worst} > {bound}");
    }
}

fn load(gguf: &GgufFile, kernels: Option<KernelLevel>, kv_type: KvType) -> LlamaModel {
    let options = ModelOptions {
        kernels,
        kv_type,
        ..ModelOptions::default()
    };
    LlamaModel::load(gguf, &options).unwrap()
}

#[test]
fn batched_equals_alone_on_stories260k() {
    for name in [
        "stories260K.gguf",
        "stories260K-Q8_0.gguf",
        "stories260K-Q4_0.gguf",
    ] {
        let gguf = GgufFile::open(common::model(name)).unwrap();
        // With an F32 cache, to float rounding. With the F16 cache a rounding-level difference
        // in candle's products (its F32 matmul blocks rows differently for other row counts)
        // can move a key or value across an F16 rounding boundary: a few thousandths.
        for (kv, bound) in [(KvType::F32, 1e-4), (KvType::F16, 2e-2)] {
            let mut model = load(&gguf, None, kv);
            check(&mut model, bound, &format!("{name} {kv:?}"));
        }
    }
}

/// Random weights of a real layout in the formats with our own kernels, at every level this
/// CPU has: the tiled prompt kernels and the decode kernels both run batched.
#[test]
fn batched_equals_alone_with_own_kernels() {
    for quant in ["Q4_0", "Q8_0", "Q4_K", "Q6_K"] {
        let dir = common::temp_dir(&format!("batch-{quant}"));
        let path = dir.join("tiny.gguf");
        let spec = TestModelSpec {
            shape: ModelShape::by_name("tiny").unwrap(),
            quant: TensorType::from_name(quant).unwrap(),
            seed: 11,
        };
        write_test_model(&spec, None, &path, &mut |_, _| {}).unwrap();
        let gguf = GgufFile::open(&path).unwrap();
        let levels = KernelLevel::ALL.into_iter().filter(|l| l.is_supported());
        for level in levels {
            let mut model = load(&gguf, Some(level), KvType::F16);
            assert_eq!(model.kernel_level(), level);
            // Our kernels compute each activation row the same way whatever the rows around
            // it: equal. candle's (the generic level) take other paths for one row and for
            // several, and each product quantizes its input, so a rounding-level difference
            // can move one activation by a quantization step (as in model_quant_types).
            let bound = if level == KernelLevel::Generic {
                0.15
            } else {
                1e-4
            };
            check(&mut model, bound, &format!("{quant} {level}"));
        }
    }
}

#[test]
fn the_models_own_cache_is_not_touched() {
    let gguf = GgufFile::open(common::model("stories260K.gguf")).unwrap();
    let mut model = load(&gguf, None, KvType::F32);
    model.forward_last(&[1, 50, 60]).unwrap();
    let mut cache = model.new_cache();
    let mut seqs = [BatchSeq {
        cache: &mut cache,
        tokens: &[1, 70],
    }];
    model.forward_batch(&mut seqs).unwrap();
    assert_eq!(model.cache().tokens(), &[1, 50, 60]);
    assert_eq!(cache.tokens(), &[1, 70]);
}

/// A bad sequence fails the whole call before anything is computed, and no cache changes.
#[test]
fn bad_input_leaves_every_cache_as_it_was() {
    let gguf = GgufFile::open(common::model("stories260K.gguf")).unwrap();
    let model = load(&gguf, None, KvType::F32);
    let vocab = model.vocab_size() as u32;
    let context = model.context_length();
    let (mut a, mut b) = (model.new_cache(), model.new_cache());
    {
        let mut seqs = [
            BatchSeq {
                cache: &mut a,
                tokens: &[1, 2],
            },
            BatchSeq {
                cache: &mut b,
                tokens: &[1],
            },
        ];
        model.forward_batch(&mut seqs).unwrap();
    }
    let long = vec![5u32; context];
    type Expected = fn(&ModelError) -> bool;
    let cases: [(&[u32], Expected); 3] = [
        (&[7, vocab], |e| {
            matches!(e, ModelError::TokenOutOfRange { .. })
        }),
        (&long, |e| matches!(e, ModelError::ContextFull { .. })),
        (&[], |e| matches!(e, ModelError::EmptyInput)),
    ];
    for (bad, expected) in cases {
        let mut seqs = [
            BatchSeq {
                cache: &mut a,
                tokens: &[9],
            },
            BatchSeq {
                cache: &mut b,
                tokens: bad,
            },
        ];
        let err = model.forward_batch(&mut seqs).unwrap_err();
        assert!(expected(&err), "unexpected error: {err}");
        assert_eq!(a.tokens(), &[1, 2]);
        assert_eq!(b.tokens(), &[1]);
    }
    // A cache made by a model with another context is refused.
    let small = ModelOptions {
        max_context: Some(64),
        kv_type: KvType::F32,
        ..ModelOptions::default()
    };
    let other = LlamaModel::load(&gguf, &small).unwrap();
    let mut foreign = other.new_cache();
    let mut seqs = [BatchSeq {
        cache: &mut foreign,
        tokens: &[1],
    }];
    let err = model.forward_batch(&mut seqs).unwrap_err();
    assert!(matches!(err, ModelError::ForeignCache), "{err}");
    assert!(foreign.is_empty());
}
