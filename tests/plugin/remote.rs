//! The plugin with a remote backend. A server does not know our banned phrases: the plugin's
//! stream guard holds its stream back and replaces a line that breaks a rule, so no banned word
//! reaches a `LineChunk` (against llama-cpp-python's server serving stories260K on 127.0.0.1).
//! A server that fails in the middle of a story line (HTTP 500, a stream that breaks off) gives
//! a `DialogueError` naming it and the authored fallback, and the story goes on exactly as it
//! does without a model.

use crate::common;

use crate::app::*;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;
use common::server::{Server, broken_peer};

fn plugin(url: &str, rules_file: Option<std::path::PathBuf>) -> LlamaDialoguePlugin {
    LlamaDialoguePlugin {
        model: ModelSource::Remote {
            url: url.to_owned(),
            model: None,
            api_key_env: None,
        },
        sampling: SamplingParams {
            max_tokens: 40,
            seed: Some(7),
            ..SamplingParams::greedy()
        },
        story: None,
        safety: SafetyConfig {
            rules_file,
            ..SafetyConfig::default()
        },
        ..lantern_plugin()
    }
}

/// Mara's free line from the server: (chunks joined, finished line, flags logged).
fn mara_line(plugin: LlamaDialoguePlugin) -> (String, String, Vec<String>) {
    let mut app = app(plugin, false);
    let mara = spawn_npc(&mut app, "mara", -2.0);
    run_until_loaded(&mut app);
    assert!(run_until(&mut app, |a| log(a).count("ModelReady") == 1));
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "Busy night?".into(),
        },
    );
    let done = run_until(&mut app, |a| log(a).count("Finished") == 1);
    assert!(done, "{:#?}", log(&app).0);
    let kinds = log(&app).kinds_for(mara);
    let chunks = kinds
        .iter()
        .filter_map(|k| k.strip_prefix("Chunk: "))
        .collect();
    let finished = log(&app).last("Finished").unwrap().1.clone();
    let flags = kinds
        .iter()
        .filter(|k| k.starts_with("Flagged"))
        .cloned()
        .collect();
    (chunks, finished, flags)
}

#[test]
fn a_servers_line_with_a_banned_word_is_held_back_and_replaced() {
    let server = Server::start("stories260K-Q8_0.gguf");
    let (free, _, flags) = mara_line(plugin(&server.url, None));
    assert!(flags.is_empty());
    let word = free
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .nth(1)
        .unwrap_or_else(|| panic!("a few words: {free:?}"))
        .to_lowercase();
    let dir = std::env::temp_dir().join(format!("plugin-remote-safety-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("safety.ron");
    std::fs::write(
        &rules,
        format!("Safety(fallback: \"Hm.\", rules: [Rule(id: \"w\", words: [\"{word}\"])])"),
    )
    .unwrap();
    let (chunks, finished, flags) = mara_line(plugin(&server.url, Some(rules)));
    let words: Vec<String> = chunks
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    assert!(
        !words.contains(&word),
        "{word:?} reached a chunk: {chunks:?}"
    );
    assert!(
        free.starts_with(&chunks),
        "what streamed is the free line's start"
    );
    assert_eq!(finished, "Finished: Hm.");
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert!(flags[0].starts_with("Flagged: w Output"), "{flags:?}");
}

/// The lantern story up to Wren's first choices; returns the app and Wren.
fn to_wrens_choices(model: ModelSource) -> (bevy::app::App, bevy::ecs::entity::Entity) {
    let mut app = app(
        LlamaDialoguePlugin {
            model,
            ..lantern_plugin()
        },
        false,
    );
    let wren = spawn_npc(&mut app, "wren", -3.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    let done = run_until(&mut app, |a| log(a).count("Choices") == 1);
    assert!(done, "{:#?}", log(&app).0);
    (app, wren)
}

#[test]
fn a_server_failing_mid_line_gives_the_fallback_and_the_story_goes_on_as_without_a_model() {
    let (mut plain, wren0) = to_wrens_choices(ModelSource::None);
    let expected_state = story(&mut plain).state().unwrap().clone();
    let expected_lines: Vec<String> = log(&plain)
        .kinds_for(wren0)
        .into_iter()
        .filter(|k| k.starts_with("Finished") || k.starts_with("Choices"))
        .collect();
    let cases: [(&'static str, &str); 2] = [
        (
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 14\r\nConnection: close\r\n\r\nmodel exploded",
            "answered HTTP 500: model exploded",
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"Well met\"}}]}\n\n",
            "ended without a finish reason",
        ),
    ];
    for (answer, why) in cases {
        let url = broken_peer(answer);
        let model = ModelSource::Remote {
            url: url.clone(),
            model: None,
            api_key_env: None,
        };
        let (mut app, wren) = to_wrens_choices(model);
        let errors: Vec<String> = log(&app)
            .kinds_for(wren)
            .into_iter()
            .filter(|k| k.starts_with("Error"))
            .collect();
        assert!(
            errors.iter().any(|e| e.contains(why) && e.contains(&url)),
            "{why}: {errors:?}"
        );
        let lines: Vec<String> = log(&app)
            .kinds_for(wren)
            .into_iter()
            .filter(|k| k.starts_with("Finished") || k.starts_with("Choices"))
            .collect();
        assert_eq!(
            lines, expected_lines,
            "the fallback lines, then the same choices"
        );
        assert_eq!(
            story(&mut app).state().unwrap(),
            &expected_state,
            "nothing lost"
        );
    }
}
