//! Constrained decoding: whatever the weights, the output parses under the grammar. Each
//! constraint runs 200 seeded, high-temperature generations on the random-weight LLaMA-2 (the
//! worst case: it writes garbage) and on stories260K; every output is checked twice, by the
//! grammar engine and by an independent parser (the `regex` crate, `serde_json` + the schema's
//! rules by hand).

use crate::common;
use crate::common::constrain::{full_match, trade};

use std::ops::ControlFlow;
use std::path::PathBuf;

use std::sync::Arc;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, ConversationId, GenerateRequest, Prompt, RequestError,
};
use bevy_llama_dialogue::engine::chat::{ChatMessage, Role};
use bevy_llama_dialogue::engine::constrain::{Constraint, ConstraintError};
use bevy_llama_dialogue::engine::generate::FinishReason;
use bevy_llama_dialogue::engine::llama::Llama;
use bevy_llama_dialogue::engine::model::ModelOptions;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig};
use bevy_llama_dialogue::story::acts::{ActionDecl, ArgType, LineFormat, LinePart, MarkupSplitter};
use regex::Regex;

const SEEDS: u64 = 200;
const MODELS: [&str; 2] = ["llama-2-tiny-random.gguf", "stories260K.gguf"];

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/constrain").join(name)
}

/// Wild sampling: any of the 1000 likeliest allowed tokens, with a flat distribution.
fn params(seed: u64) -> SamplingParams {
    SamplingParams {
        temperature: 1.5,
        top_k: 1000,
        top_p: 1.0,
        min_p: 0.0,
        repeat_penalty: 1.0,
        seed: Some(seed),
        max_tokens: 256,
        ..SamplingParams::default()
    }
}

/// Runs `SEEDS` generations of `model` under `constraint`; checks each output with `valid`.
fn run_seeds(model: &str, constraint: &Constraint, valid: impl Fn(&str) -> Result<(), String>) {
    run_seeds_streamed(model, constraint, |text, _| valid(text));
}

/// [`run_seeds`], with `valid` also given the streamed chunks.
fn run_seeds_streamed(
    model: &str,
    constraint: &Constraint,
    valid: impl Fn(&str, &[String]) -> Result<(), String>,
) {
    let mut llama = Llama::load(common::model(model), &ModelOptions::default()).unwrap();
    let grammar = llama
        .constraint_compiler()
        .unwrap()
        .compile(constraint, "test")
        .unwrap();
    let mut distinct = std::collections::HashSet::new();
    for seed in 0..SEEDS {
        let mut chunks: Vec<String> = Vec::new();
        let g = llama
            .complete_guided(
                "Once upon a time",
                &params(seed),
                Some(grammar.guide()),
                &mut |t| {
                    chunks.push(t.to_owned());
                    ControlFlow::Continue(())
                },
            )
            .unwrap();
        assert_eq!(
            g.finish,
            FinishReason::Eos,
            "{model} seed {seed}: ended by {:?} with {:?}",
            g.finish,
            g.text
        );
        assert_eq!(
            chunks.concat(),
            g.text,
            "{model} seed {seed}: the stream is the text"
        );
        assert!(
            grammar.accepts(&g.tokens),
            "{model} seed {seed}: the grammar engine refuses its own output {:?}",
            g.text
        );
        if let Err(why) = valid(&g.text, &chunks) {
            panic!("{model} seed {seed}: {:?} is invalid: {why}", g.text);
        }
        distinct.insert(g.text);
    }
    // The weights still choose: a constraint that forced one output would pass trivially.
    assert!(
        distinct.len() > SEEDS as usize / 4,
        "{model}: only {} distinct outputs",
        distinct.len()
    );
}

#[test]
fn lark_grammar_output_always_parses() {
    let grammar = Constraint::lark_file(&fixture("npc_line.lark")).unwrap();
    // The grammar's language written as a regular expression, checked by another engine.
    let check =
        r#"\[(calm|angry|glad)\] "[A-Za-z ,.!?']{1,40}"( <(give|wave|follow):[a-z]{1,10}>)?"#;
    for model in MODELS {
        run_seeds(model, &grammar, full_match(check));
    }
}

#[test]
fn regex_output_always_matches() {
    let rx = r"(yes|no|maybe), [0-9]{1,2} (coins|keys)\.";
    for model in MODELS {
        run_seeds(model, &Constraint::Regex(rx.into()), full_match(rx));
    }
}

#[test]
fn json_schema_output_always_validates() {
    let schema = Constraint::json_schema_file(&fixture("trade.schema.json")).unwrap();
    for model in MODELS {
        run_seeds(model, &schema, trade);
    }
}

#[test]
fn a_grammar_that_does_not_compile_names_the_file_and_place() {
    let llama = Llama::load(common::model("stories260K.gguf"), &ModelOptions::default()).unwrap();
    let compiler = llama.constraint_compiler().unwrap();
    let path = fixture("broken.lark");
    let name = path.display().to_string();
    let err = compiler
        .compile(&Constraint::lark_file(&path).unwrap(), &name)
        .unwrap_err();
    let ConstraintError::Invalid { line, column, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!((*line, *column), (Some(3), Some(7)), "{err}");
    assert!(
        err.to_string().starts_with(&format!("{name}:3:7: ")),
        "{err}"
    );
    assert!(err.to_string().contains("NAME"), "{err}");
    // A bad regex and a schema that is not JSON are named too.
    let err = compiler
        .compile(&Constraint::Regex("(unclosed".into()), "--regex")
        .unwrap_err();
    assert!(err.to_string().starts_with("--regex: "), "{err}");
    let bad = common::temp_dir("constrain-bad-json").join("bad.json");
    std::fs::write(&bad, "{\n  \"type\": \"object\",\n  oops\n}").unwrap();
    let err = Constraint::json_schema_file(&bad).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:3:3: not JSON", bad.display())),
        "{err}"
    );
}

#[test]
fn worker_batches_constrained_and_free_lines_together() {
    let mut config = WorkerConfig::new(ModelSource::path(common::model("stories260K.gguf")));
    config.threads = Some(1);
    config.max_batch = 4;
    let mut w = Worker::spawn(config);
    w.wait_ready(common::HANG_GUARD).expect("model loads");
    let schema = Arc::new(Constraint::json_schema_file(&fixture("trade.schema.json")).unwrap());
    let rx = r"(yes|no|maybe), [0-9]{1,2} (coins|keys)\.";
    let regex = Arc::new(Constraint::Regex(rx.into()));
    let broken = Arc::new(Constraint::Regex("(unclosed".into()));
    let kinds = |id: u64| match id % 4 {
        0 => Some(schema.clone()),
        1 => Some(regex.clone()),
        2 => None,
        _ if id == 7 => Some(broken.clone()),
        _ => Some(schema.clone()),
    };
    for id in 0..12u64 {
        w.submit(BackendRequest::Generate(GenerateRequest {
            id,
            conversation: ConversationId(id),
            prompt: Prompt {
                system: "You are a trader in the village.".into(),
                turns: vec![ChatMessage::new(Role::User, "What will you sell me?")],
            },
            params: SamplingParams {
                max_tokens: 200,
                ..params(id)
            },
            priority: 0,
            fallback: None,
            constraint: kinds(id),
            banned: None,
        }))
        .unwrap();
    }
    let mut left: Vec<u64> = (0..12).collect();
    while !left.is_empty() {
        let e = w
            .events()
            .recv_timeout(common::HANG_GUARD)
            .expect("an event");
        match e {
            BackendEvent::Finished {
                id, text, reason, ..
            } => {
                left.retain(|&i| i != id);
                let kind = kinds(id);
                match kind.as_deref() {
                    Some(Constraint::JsonSchema(_)) => {
                        assert_eq!(reason, FinishReason::Eos, "{id}: {text:?}");
                        trade(&text).unwrap_or_else(|why| panic!("{id}: {text:?}: {why}"));
                    }
                    Some(Constraint::Regex(_)) => {
                        assert_eq!(reason, FinishReason::Eos, "{id}: {text:?}");
                        full_match(rx)(&text).unwrap_or_else(|why| panic!("{id}: {text:?}: {why}"));
                    }
                    _ => assert!(id % 4 == 2, "{id} finished: {text:?}"),
                }
            }
            BackendEvent::Error {
                id: Some(id),
                error,
            } => {
                left.retain(|&i| i != id);
                assert_eq!(id, 7, "{error}");
                assert!(matches!(error, RequestError::Constraint(_)), "{error:?}");
                assert!(error.to_string().contains("regex"), "{error}");
            }
            _ => {}
        }
    }
}

fn trader() -> LineFormat {
    let give = ActionDecl {
        description: "hand the player something from your stall".into(),
        args: [
            (
                "item".to_owned(),
                ArgType::OneOf(vec!["key".into(), "bread".into(), "map".into()]),
            ),
            ("count".to_owned(), ArgType::Int { min: 1, max: 3 }),
            ("price".to_owned(), ArgType::Float { min: 0.0, max: 9.5 }),
            ("gift".to_owned(), ArgType::Bool),
            ("note".to_owned(), ArgType::Text { max_len: 12 }),
        ]
        .into(),
    };
    let wave = ActionDecl {
        description: "wave".into(),
        args: Default::default(),
    };
    let mut format = LineFormat::new(
        vec!["calm".into(), "glad".into(), "worried".into()],
        [("give_item".to_owned(), give), ("wave".to_owned(), wave)].into(),
    );
    format.max_chars = 120;
    format
}

#[test]
fn action_format_always_parses_and_the_words_never_show_markup() {
    let format = trader();
    let constraint = format.constraint();
    // Independently of the grammar engine: the line's shape as a regular expression.
    let shape = Regex::new(
        r#"^\[(calm|glad|worried)\] [^ \[\]<>{}\n][^\[\]<>{}\n]{0,119}(<(wave|give_item \{.*\})>)?$"#,
    )
    .unwrap();
    // (emotions, actions) seen: the optional parts must really occur.
    let seen = std::cell::Cell::new((0, 0));
    let check = |text: &str, chunks: &[String]| -> Result<(), String> {
        if !shape.is_match(text) {
            return Err("not in the line format".into());
        }
        let mut splitter = MarkupSplitter::new();
        let mut parts: Vec<LinePart> = chunks.iter().flat_map(|c| splitter.push(c)).collect();
        parts.extend(splitter.finish());
        let mut words = String::new();
        for part in parts {
            match part {
                LinePart::Words(w) => {
                    if w.contains(['[', ']', '<', '>', '{', '}']) {
                        return Err(format!("markup in the words {w:?}"));
                    }
                    words.push_str(&w);
                }
                LinePart::Emotion(e) => {
                    format.emotion(&e).ok_or(format!("emotion {e}"))?;
                    seen.set((seen.get().0 + 1, seen.get().1));
                }
                LinePart::Call(call) => {
                    let action = format.action(&call).map_err(|e| e.to_string())?;
                    seen.set((seen.get().0, seen.get().1 + 1));
                    if action.name == "give_item" {
                        let count = action.arg::<i64>("count").ok_or("count")?;
                        let price = action.arg::<f64>("price").ok_or("price")?;
                        action.arg::<bool>("gift").ok_or("gift")?;
                        if !(1..=3).contains(&count) || !(0.0..=9.5).contains(&price) {
                            return Err(format!("{action}"));
                        }
                    }
                }
            }
        }
        if words.trim().is_empty() {
            return Err("no words".into());
        }
        Ok(())
    };
    for model in MODELS {
        seen.set((0, 0));
        run_seeds_streamed(model, &constraint, check);
        let (emotions, actions) = seen.get();
        assert!(
            emotions > 10 && actions > 10,
            "{model}: {emotions} emotions, {actions} actions"
        );
    }
}
