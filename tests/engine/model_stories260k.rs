//! The forward pass on the real stories260K model (F32, Q8_0, Q4_0): greedy continuation equal
//! to llama.cpp's, logits equal to candle-transformers' `quantized_llama`, and the KV cache's
//! truncate/snapshot/restore giving the same results as recomputing from scratch.

use crate::common;

use bevy_llama_dialogue::engine::gguf::GgufFile;
use bevy_llama_dialogue::engine::model::{KvType, LlamaModel, LogitsFor, ModelOptions};
use bevy_llama_dialogue::engine::tokenizer::Tokenizer;

/// The model with an F32 cache: candle-transformers keeps one, and exact comparisons (one
/// position at a time against all at once, truncate against recompute) need one. The default
/// F16 cache is tested on its own below.
fn open(name: &str) -> (GgufFile, LlamaModel, Tokenizer) {
    let path = common::model(name);
    let gguf = GgufFile::open(&path).unwrap();
    let options = ModelOptions {
        kv_type: KvType::F32,
        ..ModelOptions::default()
    };
    let model = LlamaModel::load(&gguf, &options).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    (gguf, model, tok)
}

fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best as u32
}

fn greedy(model: &mut LlamaModel, prompt: &[u32], n: usize) -> Vec<u32> {
    let mut logits = model.forward_last(prompt).unwrap();
    let mut out = Vec::new();
    for _ in 0..n {
        let next = argmax(&logits);
        out.push(next);
        logits = model.forward_last(&[next]).unwrap();
    }
    out
}

/// With llama.cpp's default F16 cache (ours too) and with an F32 one.
#[test]
fn greedy_continuation_equals_llama_cpp() {
    for kv_type in [KvType::F16, KvType::F32] {
        greedy_continuation_with(kv_type);
    }
}

fn greedy_continuation_with(kv_type: KvType) {
    let (gguf, _, tok) = open("stories260K.gguf");
    let options = ModelOptions {
        kv_type,
        ..ModelOptions::default()
    };
    let mut model = LlamaModel::load(&gguf, &options).unwrap();
    assert_eq!(model.cache().kv_type(), kv_type);
    let reference = common::reference();
    let r = &reference["greedy_stories260K"];
    let prompt = tok.encode(r["prompt"].as_str().unwrap(), true);
    let want_prompt: Vec<u32> = serde_json::from_value(r["prompt_ids"].clone()).unwrap();
    assert_eq!(prompt, want_prompt);
    let want: Vec<u32> = serde_json::from_value(r["generated_ids"].clone()).unwrap();
    let got = greedy(&mut model, &prompt, want.len());
    let matching = got.iter().zip(&want).take_while(|(a, b)| a == b).count();
    eprintln!(
        "stories260K greedy, {kv_type:?} cache: {matching}/{} tokens equal llama.cpp's",
        want.len()
    );
    assert_eq!(got, want);
    assert_eq!(
        tok.decode_pieces(&got),
        r["generated_text"].as_str().unwrap()
    );
}

/// Logits of every step of a prompt + greedy continuation, ours vs candle-transformers'.
fn compare_with_candle_transformers(name: &str, tolerance: f32) {
    let (_, mut ours, tok) = open(name);
    let prompt = tok.encode("Once upon a time, a little dog", true);
    let path = common::models_dir().join(name);
    let (worst, _) = crate::cross_check::max_logit_difference(&path, &mut ours, &prompt, 12);
    eprintln!("{name}: max |logit difference| vs candle-transformers over 12 steps: {worst:e}");
    assert!(
        worst <= tolerance,
        "{name}: max |logit difference| {worst} > {tolerance}"
    );
}

#[test]
fn logits_equal_candle_transformers_f32() {
    compare_with_candle_transformers("stories260K.gguf", 1e-4);
}

#[test]
fn logits_equal_candle_transformers_q8_0() {
    compare_with_candle_transformers("stories260K-Q8_0.gguf", 1e-3);
}

#[test]
fn logits_equal_candle_transformers_q4_0() {
    compare_with_candle_transformers("stories260K-Q4_0.gguf", 1e-3);
}

#[test]
fn all_position_logits_match_one_at_a_time() {
    let (gguf, mut model, tok) = open("stories260K.gguf");
    all_positions_against_one_at_a_time(&mut model, &tok, 1e-4);
    // The F16 cache rounds what a prompt and single steps compute in different orders.
    let mut f16 = LlamaModel::load(&gguf, &ModelOptions::default()).unwrap();
    all_positions_against_one_at_a_time(&mut f16, &tok, 2e-3);
}

fn all_positions_against_one_at_a_time(model: &mut LlamaModel, tok: &Tokenizer, bound: f32) {
    let prompt = tok.encode("The cat sat on the mat and looked at the bird.", true);
    let all = model.forward(&prompt, LogitsFor::All).unwrap();
    assert_eq!(all.dims(), &[prompt.len(), model.vocab_size()]);
    model.clear_cache();
    for (i, &t) in prompt.iter().enumerate() {
        let one = model.forward_last(&[t]).unwrap();
        let row: Vec<f32> = all.get(i).unwrap().to_vec1().unwrap();
        let diff = one
            .iter()
            .zip(&row)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(diff < bound, "position {i}: {diff}");
    }
}

/// A prompt longer than one step (128 positions) goes through in chunks: all-position logits
/// keep every row, and match computing it in two calls.
#[test]
fn long_prompts_go_through_in_chunks() {
    let (_, mut model, tok) = open("stories260K.gguf");
    let text = "Tim had a red ball. He liked to play with it in the park every day. ".repeat(12);
    let prompt = tok.encode(&text, true);
    assert!(prompt.len() > 256, "{}", prompt.len());
    let all = model.forward(&prompt, LogitsFor::All).unwrap();
    assert_eq!(all.dims(), &[prompt.len(), model.vocab_size()]);
    assert_eq!(model.cache().len(), prompt.len());
    model.clear_cache();
    model.forward_last(&prompt[..200]).unwrap();
    let last = model.forward_last(&prompt[200..]).unwrap();
    let row: Vec<f32> = all.get(prompt.len() - 1).unwrap().to_vec1().unwrap();
    let diff = last
        .iter()
        .zip(&row)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(diff < 1e-4, "{diff}");
}

#[test]
fn truncate_and_reprefill_equals_from_scratch() {
    let (_, mut model, tok) = open("stories260K.gguf");
    let prompt = tok.encode("Once upon a time", true);
    let scratch = greedy(&mut model, &prompt, 40);
    // Generate something else, then cut back to the prompt and generate again.
    model.clear_cache();
    let other = tok.encode("Tim had a red ball. He liked to", true);
    let _ = greedy(&mut model, &other, 20);
    model.truncate(0);
    let again = greedy(&mut model, &prompt, 40);
    assert_eq!(again, scratch);
    // Cut in the middle of a generation: keep the prompt + 10 tokens, re-prefill the rest.
    model.truncate(prompt.len() + 10);
    assert_eq!(
        model.cache().tokens(),
        &[&prompt[..], &scratch[..10]].concat()[..]
    );
    let mut logits = model.forward_last(&scratch[10..11]).unwrap();
    let mut tail = vec![scratch[10]];
    for _ in 0..28 {
        let next = argmax(&logits);
        tail.push(next);
        logits = model.forward_last(&[next]).unwrap();
    }
    assert_eq!(&tail[..], &scratch[10..39]);
}

/// A context shift keeps what follows the dropped range as it was computed (with the range in
/// view, as llama.cpp's shift does), moved to its new positions: the cache holds the kept
/// tokens, and generation goes on from there. (The re-rotation itself is checked exactly in
/// `kv_cache`'s unit tests.) Dropping the tail is exactly a truncation.
#[test]
fn discarding_a_range_keeps_the_rest_in_place() {
    let (_, mut model, tok) = open("stories260K.gguf");
    let persona = tok.encode("Once upon a time, there was a big dog.", true);
    let dropped = tok.encode_fragment_vec(" Tim had a red ball and he liked to play.", false);
    let kept = tok.encode_fragment_vec(" The dog ran to the park", false);
    let without: Vec<u32> = persona.iter().chain(&kept).copied().collect();
    let with: Vec<u32> = persona
        .iter()
        .chain(&dropped)
        .chain(&kept)
        .copied()
        .collect();
    model.forward_last(&with).unwrap();
    model.discard(persona.len()..persona.len() + dropped.len());
    assert_eq!(model.cache().tokens(), &without[..]);
    let logits = model.forward_last(&kept[kept.len() - 1..]).unwrap();
    assert!(logits.iter().all(|v| v.is_finite()));
    assert_eq!(model.cache().len(), without.len() + 1);
    // The tail: the same as truncating.
    model.clear_cache();
    let want = greedy(&mut model, &persona, 10);
    model.clear_cache();
    model.forward_last(&with).unwrap();
    model.discard(persona.len()..with.len());
    assert_eq!(model.cache().tokens(), &persona[..]);
    model.truncate(persona.len() - 1);
    assert_eq!(greedy(&mut model, &persona[persona.len() - 1..], 10), want);
    // Out-of-range and empty ranges change nothing.
    model.discard(5..5);
    model.discard(1000..2000);
    assert_eq!(model.cache().len(), persona.len() + 10);
}

#[test]
fn snapshot_restore_equals_from_scratch() {
    let (_, mut model, tok) = open("stories260K.gguf");
    let prefix = tok.encode("Once upon a time, there was a big dog.", true);
    model.forward_last(&prefix).unwrap();
    let snap = model.snapshot(prefix.len()).unwrap();
    assert_eq!(snap.tokens(), &prefix[..]);
    let line = tok.encode_fragment_vec(" The dog", false);
    let fresh = {
        model.clear_cache();
        let all: Vec<u32> = prefix.iter().chain(&line).copied().collect();
        greedy(&mut model, &all, 30)
    };
    // Pollute the cache, then restore the prefix and prefill only the new line.
    model.clear_cache();
    greedy(
        &mut model,
        &tok.encode("Lily and Ben went to the park", true),
        50,
    );
    model.restore(&snap).unwrap();
    assert_eq!(model.cache().len(), prefix.len());
    let restored = greedy(&mut model, &line, 30);
    assert_eq!(restored, fresh);
}

#[test]
fn cache_grows_in_blocks_and_context_is_enforced() {
    let path = common::model("stories260K.gguf");
    let gguf = GgufFile::open(&path).unwrap();
    let mut model = LlamaModel::load(
        &gguf,
        &ModelOptions {
            max_context: Some(300),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(model.cache().capacity(), 0);
    model.forward_last(&[1, 403, 407]).unwrap();
    assert_eq!(model.cache().capacity(), 256);
    let long: Vec<u32> = (0..298).map(|i| 300 + (i % 100)).collect();
    let err = model.forward_last(&long).unwrap_err();
    assert!(
        matches!(
            err,
            bevy_llama_dialogue::engine::model::ModelError::ContextFull {
                needed: 301,
                context: 300
            }
        ),
        "{err}"
    );
    assert_eq!(
        model.cache().len(),
        3,
        "a failed forward leaves the cache as it was"
    );
    model.forward_last(&long[..297]).unwrap();
    assert_eq!(model.cache().capacity(), 300);
    model.truncate(10);
    let err = model.forward_last(&[5000]).unwrap_err();
    assert!(matches!(
        err,
        bevy_llama_dialogue::engine::model::ModelError::TokenOutOfRange { id: 5000, .. }
    ));
}

/// Loading releases the file's mapped pages of each tensor once copied: the bytes are still
/// there (read again from the file), and a second model loaded from the same open file computes
/// the same logits.
#[test]
fn released_pages_lose_nothing() {
    let path = common::model("stories260K-Q8_0.gguf");
    let gguf = GgufFile::open(&path).unwrap();
    let before = gguf.tensor_bytes("blk.0.attn_q.weight").unwrap().to_vec();
    let mut first = LlamaModel::load(&gguf, &ModelOptions::default()).unwrap();
    gguf.release("blk.0.attn_q.weight");
    gguf.release("no.such.tensor");
    assert_eq!(
        gguf.tensor_bytes("blk.0.attn_q.weight").unwrap(),
        &before[..]
    );
    let mut second = LlamaModel::load(&gguf, &ModelOptions::default()).unwrap();
    let prompt = [1, 403, 407, 261, 378];
    assert_eq!(
        first.forward_last(&prompt).unwrap(),
        second.forward_last(&prompt).unwrap()
    );
}
