//! A real instruct model, SmolLM2-135M-Instruct (Q4_1, byte-level BPE `smollm` vocabulary,
//! 9 query / 3 KV heads, tied embeddings), against llama.cpp on the same file
//! (`tests/models/smollm2_reference.json`, made by `scripts/smollm2_reference.py`).

use crate::common;

use std::ops::ControlFlow;

use bevy_llama_dialogue::engine::chat::{ChatMessage, ChatTemplate, Role};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::gguf::{GgufFile, MetadataExt};
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::{LlamaModel, LogitsFor, ModelOptions};
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::tokenizer::{PreTokenizer, Tokenizer};
use serde_json::Value;

fn reference() -> Value {
    let path = common::models_dir().join("smollm2_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    serde_json::from_value(v.clone()).unwrap()
}

fn open() -> (GgufFile, Tokenizer) {
    let gguf = GgufFile::open(common::smollm2()).unwrap();
    let tok = Tokenizer::from_gguf(&gguf).unwrap();
    (gguf, tok)
}

#[test]
fn smollm2_tokenizes_as_llama_cpp() {
    let (_, tok) = open();
    assert_eq!(tok.pre_tokenizer(), Some(PreTokenizer::Smollm));
    let r = reference();
    let cases = r["tokenize"].as_array().unwrap();
    assert!(cases.len() > 40);
    for c in cases {
        let text = c["text"].as_str().unwrap();
        assert_eq!(
            tok.encode_trusted(text, false),
            ids(&c["ids"]),
            "ids of {text:?}"
        );
    }
}

#[test]
fn smollm2_chat_prompt_is_llama_cpps() {
    let (gguf, tok) = open();
    let r = reference();
    let jinja = gguf.opt_str("tokenizer.chat_template").unwrap();
    let name = gguf.opt_str("general.name").unwrap();
    // The file's own Jinja template, and the hand-written ChatML it is detected as.
    let template = ChatTemplate::for_vocabulary(&tok, jinja, name);
    assert_eq!(template, ChatTemplate::Jinja);
    assert_eq!(ChatTemplate::detect(jinja, name), ChatTemplate::ChatMl);
    let messages = [
        ChatMessage::new(Role::System, r["chat"]["system"].as_str().unwrap()),
        ChatMessage::new(Role::User, r["chat"]["user"].as_str().unwrap()),
    ];
    for t in [ChatTemplate::Jinja, ChatTemplate::ChatMl] {
        let prompt = t.render(&tok, &messages).unwrap();
        assert_eq!(prompt, ids(&r["chat"]["prompt_ids"]), "{t:?}");
    }
    let stops = template.stop_tokens(&tok);
    assert!(stops.contains(&tok.token_id("<|im_end|>").unwrap()));
}

/// Teacher-forced along llama.cpp's own sequence: the mean KL divergence from llama.cpp's
/// distribution to ours (over its 64 most likely tokens and the rest as one bucket: a lower
/// bound of the full KL) and the share of positions with the same top token.
#[test]
fn smollm2_logits_match_llama_cpp_teacher_forced() {
    let (gguf, _) = open();
    let mut model = LlamaModel::load(&gguf, &ModelOptions::default()).unwrap();
    let r = reference();
    let seq = ids(&r["teacher_forced"]["sequence"]);
    let positions = r["teacher_forced"]["positions"].as_array().unwrap();
    let logits = model
        .forward(&seq[..seq.len() - 1], LogitsFor::All)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    assert_eq!(logits.len(), positions.len());
    let a = common::kl::compare(&logits, positions);
    eprintln!("SmolLM2 Q4_1 vs llama.cpp, {a}");
    // llama.cpp against itself on this file (its batched prompt path against its one-token
    // path, same sequence, recorded by scripts/smollm2_reference.py): mean KL 3.3e-3, same top
    // token at 111/114. Ours is held to that scale.
    let own = &r["llama_cpp_batched_vs_one_token"];
    eprintln!(
        "llama.cpp batched vs one token at a time: mean KL {:.2e}, same top token {}/{}",
        own["mean_kl"].as_f64().unwrap(),
        own["same_top"],
        own["positions"]
    );
    assert!(
        own["mean_kl"].as_f64().unwrap() > 1e-3,
        "the recorded scale"
    );
    assert!(a.mean_kl <= 1e-2, "{a}");
    assert!(a.top_share() >= 0.95, "{a}");
}

/// The engine's chat turn with SmolLM2: ChatML from the file, greedy, the line ends at
/// `<|im_end|>` by itself, no markup in it, and its first tokens are llama.cpp's greedy ones
/// (after them the two may part at a near-tie: the teacher-forced test above is the measure).
#[test]
fn smollm2_answers_in_character_and_stops_by_itself() {
    let mut llama = Llama::load(common::smollm2(), &ModelOptions::default()).unwrap();
    let r = reference();
    let messages = [
        ChatMessage::new(Role::System, r["chat"]["system"].as_str().unwrap()),
        ChatMessage::new(Role::User, r["chat"]["user"].as_str().unwrap()),
    ];
    let params = SamplingParams {
        max_tokens: 200,
        ..SamplingParams::greedy()
    };
    let mut streamed = String::new();
    let out = llama
        .chat(&messages, &params, &mut |t| {
            streamed.push_str(t);
            ControlFlow::Continue(())
        })
        .unwrap();
    eprintln!("SmolLM2 (ours, greedy): {:?} [{:?}]", out.text, out.finish);
    eprintln!(
        "SmolLM2 (llama.cpp, greedy): {:?}",
        r["chat"]["greedy_text"].as_str().unwrap()
    );
    assert_eq!(streamed, out.text);
    assert_eq!(
        out.finish,
        FinishReason::Eos,
        "the answer ends with <|im_end|>"
    );
    assert!(out.text.split_whitespace().count() >= 5, "{:?}", out.text);
    assert!(!out.text.contains("<|"), "no markup: {:?}", out.text);
    let theirs = ids(&r["chat"]["greedy_ids"]);
    let same = out
        .tokens
        .iter()
        .zip(&theirs)
        .take_while(|(a, b)| a == b)
        .count();
    eprintln!("the first {same} tokens are llama.cpp's");
    assert!(same >= 5, "only {same} tokens agree with llama.cpp");
}
