//! Which way of routing free player text onto a story's authored edges picks the edge the
//! writer meant more often: scoring each edge's intent as a continuation (what the plugin and
//! `play` do), a constrained choice (the model writes one of the intents, held to them by a
//! grammar, greedy), or keywords (no model). 40 hand-written player lines for the five edges of
//! the bundled lantern story's two free-input nodes, plus lines that match none.
//!
//! `cargo run --release --example route_compare -- [--model M.gguf]` (default: stories260K).
//! The last line is `route_compare scored=…/N scored_no_threshold=…/N constrained=…/N
//! keywords=…/N` (scored: with the node's threshold, as the story routes; no threshold: the
//! best-scored edge or "none", as the constrained choice picks).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bevy_llama_dialogue::engine::backend::{
    BackendEvent, BackendRequest, ChooseRequest, ConversationId, GenerateRequest,
};
use bevy_llama_dialogue::engine::constrain::Constraint;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::engine::worker::{Worker, WorkerConfig};
use bevy_llama_dialogue::story::{
    Estimate, NONE_OF_THESE, Node, StoryBundle, pick_keywords, pick_scored, route_prompt,
};

/// (node, intended edge index or `None` for "none of these", what the player says).
const CASES: &[(&str, Option<usize>, &str)] = &[
    ("mara_talk", Some(0), "Where is the lantern?"),
    ("mara_talk", Some(0), "Who took the festival light?"),
    (
        "mara_talk",
        Some(0),
        "I heard something went missing at dusk.",
    ),
    ("mara_talk", Some(0), "Do you know who the thief is?"),
    ("mara_talk", Some(0), "Tell me what happened to the lamp."),
    (
        "mara_talk",
        Some(0),
        "Has anyone seen where the lantern went?",
    ),
    ("mara_talk", Some(1), "How are you tonight?"),
    ("mara_talk", Some(1), "Thank you for talking to me."),
    (
        "mara_talk",
        Some(1),
        "You look tired, is everything all right?",
    ),
    (
        "mara_talk",
        Some(1),
        "I'm sorry to bother you, you seem worried.",
    ),
    ("mara_talk", Some(1), "That's a lovely mill you keep."),
    ("mara_talk", Some(1), "Can I help you carry those sacks?"),
    ("mara_talk", Some(2), "Hurry up, I don't have all night."),
    ("mara_talk", Some(2), "You're a liar and everyone knows it."),
    ("mara_talk", Some(2), "Answer me or else."),
    ("mara_talk", Some(2), "Stupid miller, stop wasting my time."),
    ("mara_talk", Some(2), "Talk now or you'll regret it."),
    ("mara_talk", Some(2), "Shut up and listen to me."),
    ("mara_talk", None, "What a nice evening for a walk."),
    ("mara_talk", None, "I like bread."),
    (
        "tobin_confront",
        Some(0),
        "You stole the lantern, didn't you?",
    ),
    ("tobin_confront", Some(0), "I saw you take it to the forge."),
    ("tobin_confront", Some(0), "Admit it, you're the thief."),
    ("tobin_confront", Some(0), "You took the festival lantern."),
    ("tobin_confront", Some(0), "Caught you. Give it back."),
    ("tobin_confront", Some(0), "Everyone will know you did it."),
    ("tobin_confront", Some(0), "Why did you steal it?"),
    ("tobin_confront", Some(1), "Let me help you fix it."),
    (
        "tobin_confront",
        Some(1),
        "We can mend it together before moonrise.",
    ),
    (
        "tobin_confront",
        Some(1),
        "I promise I won't tell, let's repair it.",
    ),
    ("tobin_confront", Some(1), "Don't worry, I'll help you."),
    (
        "tobin_confront",
        Some(1),
        "I know a way to make it right, come with me.",
    ),
    (
        "tobin_confront",
        Some(1),
        "Whatever broke, we can put it back together.",
    ),
    ("tobin_confront", Some(1), "I'm on your side, Tobin."),
    ("tobin_confront", None, "Nice hammer."),
    ("tobin_confront", None, "Is it always this hot in here?"),
    ("tobin_confront", None, "What time is it?"),
    ("tobin_confront", None, "I like your boots."),
    ("mara_talk", None, "The river is high this year."),
    ("mara_talk", None, "Do you sell flour?"),
];

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let model =
        arg("--model").map_or_else(|| root.join("tests/models/stories260K.gguf"), PathBuf::from);
    let bundle = StoryBundle::load(&root.join("stories/lantern.story.ron"), &Estimate)
        .map_err(|d| d.to_string())?;
    let mut config = WorkerConfig::new(ModelSource::path(&model));
    config.threads = Some(2);
    let mut w = Worker::spawn(config);
    w.wait_ready(Duration::from_secs(600))?;
    let wait = |w: &Worker, id: u64| -> Result<BackendEvent, String> {
        loop {
            let e = w
                .events()
                .recv_timeout(Duration::from_secs(600))
                .map_err(|e| e.to_string())?;
            if e.is_final() && e.id() == Some(id) {
                return Ok(e);
            }
        }
    };
    let (mut scored, mut best, mut constrained, mut keywords) = (0, 0, 0, 0);
    for (n, &(node, want, player)) in CASES.iter().enumerate() {
        let Some(Node::FreeInput {
            edges,
            text,
            threshold,
            ..
        }) = bundle.story.node(node)
        else {
            return Err(format!("no free-input node `{node}`").into());
        };
        let intents: Vec<&str> = edges.iter().map(|e| e.intent.as_str()).collect();
        let (prompt, candidates) = route_prompt(text.as_deref(), player, &intents);
        let threshold = threshold.unwrap_or(bundle.story.settings.route_threshold);
        let id = 2 * n as u64 + 1;
        w.submit(BackendRequest::Choose(ChooseRequest {
            id,
            prompt: prompt.clone(),
            candidates: candidates.clone(),
            priority: 0,
        }))?;
        // With the node's threshold (as the story routes), and the plain best (as the
        // constrained choice picks, without a threshold).
        let (by_score, by_best) = match wait(&w, id)? {
            BackendEvent::Scores { scores, .. } => (
                pick_scored(&scores, threshold).0,
                pick_scored(&scores, 0.0).0,
            ),
            e => return Err(format!("{e:?}").into()),
        };
        // The same candidates as a grammar: the model writes one of them, greedy.
        let alternatives: Vec<String> = candidates
            .iter()
            .map(|c| serde_json::Value::String(c.trim_start().to_owned()).to_string())
            .collect();
        let grammar = format!("start: \" \"? ({})", alternatives.join(" | "));
        w.submit(BackendRequest::Generate(GenerateRequest {
            id: id + 1,
            conversation: ConversationId(id + 1),
            prompt,
            params: SamplingParams {
                max_tokens: 48,
                ..SamplingParams::greedy()
            },
            priority: 0,
            fallback: None,
            constraint: Some(Arc::new(Constraint::Lark(grammar))),
            banned: None,
        }))?;
        let by_grammar = match wait(&w, id + 1)? {
            BackendEvent::Finished { text, .. } => {
                let written = text.trim();
                candidates
                    .iter()
                    .position(|c| c.trim() == written)
                    .filter(|&i| !candidates[i].ends_with(NONE_OF_THESE))
            }
            e => return Err(format!("{e:?}").into()),
        };
        let words: Vec<&[String]> = edges.iter().map(|e| e.keywords.as_slice()).collect();
        let by_keywords = pick_keywords(player, &words);
        scored += usize::from(by_score == want);
        best += usize::from(by_best == want);
        constrained += usize::from(by_grammar == want);
        keywords += usize::from(by_keywords == want);
        println!(
            "{node:15} want {want:?}: scored {by_score:?} (best {by_best:?}), constrained {by_grammar:?}, keywords {by_keywords:?}  {player:?}"
        );
    }
    let n = CASES.len();
    println!("model {}", model.display());
    println!(
        "route_compare scored={scored}/{n} scored_no_threshold={best}/{n} constrained={constrained}/{n} keywords={keywords}/{n}"
    );
    Ok(())
}
