//! The tokenizer reproduces llama.cpp's token ids on the real LLaMA-2 vocabulary and on
//! stories260K's 512-token vocabulary (expectations from `tests/models/REFERENCE.md`).

use crate::common;

use bevy_llama_dialogue::engine::gguf::GgufFile;
use bevy_llama_dialogue::engine::tokenizer::Tokenizer;

fn tokenizer(file: &str) -> Tokenizer {
    let gguf = GgufFile::open(common::model(file)).expect("open vocab");
    Tokenizer::from_gguf(&gguf).expect("build tokenizer")
}

fn check_vocab(file: &str) {
    let tok = tokenizer(file);
    let reference = common::reference();
    let cases = reference["vocabs"][file].as_array().expect("cases");
    assert!(cases.len() >= 10);
    let mut agree = 0;
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let got = tok.encode(text, true);
        assert_eq!(got, want, "{file}: ids of {text:?}");
        // llama.cpp's pieces joined, without BOS, keep SentencePiece's leading space...
        assert_eq!(
            tok.decode_pieces(&got[1..]),
            case["pieces_without_bos"].as_str().unwrap()
        );
        // ...and decode() removes it again: a round trip.
        assert_eq!(tok.decode(&got), text, "{file}: round trip of {text:?}");
        if let Some(special) = case.get("ids_parse_special") {
            let want: Vec<u32> = serde_json::from_value(special.clone()).unwrap();
            assert_eq!(
                tok.encode_trusted(text, true),
                want,
                "{file}: trusted ids of {text:?}"
            );
        }
        agree += 1;
    }
    eprintln!(
        "{file}: {agree}/{} REFERENCE.md strings agree with llama.cpp",
        cases.len()
    );
}

#[test]
fn llama2_vocab_matches_llama_cpp() {
    check_vocab("ggml-vocab-llama-spm.gguf");
}

#[test]
fn stories260k_vocab_matches_llama_cpp() {
    check_vocab("stories260K.gguf");
}
