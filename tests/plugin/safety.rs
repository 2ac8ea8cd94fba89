//! Safety in the plugin: hostile player text gets the authored deflection and leaves the story
//! as it was; long text is cut or refused with `PlayerInputLimited`; a streamed line that breaks
//! a rule is replaced before any banned word reaches a `LineChunk` (scripted backend: the
//! plugin's stream guard; stories260K: the decoder's bans); a game's own `Moderator`; the audit
//! log and `llama-dialogue audit`.

use crate::common;

use std::path::PathBuf;

use crate::app::*;
use bevy::prelude::*;
use bevy_llama_dialogue::engine::sampler::SamplingParams;
use bevy_llama_dialogue::engine::source::ModelSource;
use bevy_llama_dialogue::plugin::*;
use bevy_llama_dialogue::story::VarValue;
use bevy_llama_dialogue::story::safety::{
    AuditConfig, Direction, Flag, ModerationContext, Moderator,
};

/// A fresh folder for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("plugin-safety-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The plugin with the bundled story and the rules in `rules` (written to a file).
fn with_rules(name: &str, rules: &str) -> LlamaDialoguePlugin {
    let path = scratch(name).join("safety.ron");
    std::fs::write(&path, rules).unwrap();
    LlamaDialoguePlugin {
        safety: SafetyConfig {
            rules_file: Some(path),
            ..SafetyConfig::default()
        },
        ..lantern_plugin()
    }
}

/// Plays the bundled story to Mara's free-text question; returns (app, mara).
fn at_maras_question(plugin: LlamaDialoguePlugin) -> (App, Entity) {
    let mut app = app(plugin, false);
    let wren = spawn_npc(&mut app, "wren", -3.0);
    let mara = spawn_npc(&mut app, "mara", -5.0);
    run_until_loaded(&mut app);
    send(&mut app, TalkTo { npc: wren });
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 1));
    send(
        &mut app,
        ChoicePicked {
            npc: wren,
            index: 0,
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Input") == 1));
    (app, mara)
}

/// The story's node, variables and Mara's memory, to compare before and after.
fn snapshot(app: &mut App) -> (String, VarValue, usize) {
    let s = story(app);
    let state = s.state().unwrap();
    let turns = state.memories.get("mara").map_or(0, |m| m.turns.len());
    (
        state.node.clone(),
        state.variables["trust_mara"].clone(),
        turns,
    )
}

#[test]
fn hostile_player_text_gets_the_deflection_and_the_story_does_not_move() {
    let (mut app, mara) = at_maras_question(lantern_plugin());
    let before = snapshot(&mut app);
    // The bundled safety.ron; a zero-width space inside the word and a Cyrillic letter.
    for hostile in ["you f\u{200B}ucking miller", "what a bitсh"] {
        let finished = log(&app).count("Finished");
        send(
            &mut app,
            PlayerSaid {
                npc: mara,
                text: hostile.into(),
            },
        );
        assert!(run_until(&mut app, |a| log(a).count("Finished") == finished + 1));
        let (who, said) = log(&app).last("Finished").unwrap().clone();
        assert_eq!(
            (who, said.as_str()),
            (mara, "Finished: Let's speak of other things, traveller.")
        );
        let (_, flag) = log(&app).last("Flagged").unwrap();
        assert!(flag.starts_with("Flagged: profanity Input"), "{flag}");
        assert_eq!(snapshot(&mut app), before, "the story did not move");
        assert_eq!(
            story(&mut app).wait(),
            StoryWait::Input,
            "it still waits for text"
        );
    }
    // The rule's own deflection.
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "my phone number is 0123 456 789".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Flagged") == 3));
    assert!(
        log(&app)
            .last("Finished")
            .unwrap()
            .1
            .contains("Walls have ears")
    );
    // Then a plain answer moves the story on as it always did.
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "Thanks for seeing me. How are you?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 2));
    let (node, trust, _) = snapshot(&mut app);
    assert_eq!((node.as_str(), trust), ("mara_confides", VarValue::Int(1)));
}

#[test]
fn long_player_text_is_cut_or_refused() {
    let long = format!("Thanks for seeing me. How are you? {}", "la ".repeat(300));
    let (mut app, mara) = at_maras_question(lantern_plugin());
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: long.clone(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Choices") == 2));
    let (_, limited) = log(&app).last("Limited").unwrap();
    assert_eq!(
        limited,
        &format!("Limited: {}/400 refused=false", long.chars().count())
    );
    let s = story(&mut app);
    let said = &s.state().unwrap().memories["mara"].turns;
    assert!(said.iter().all(|t| t.content.chars().count() <= 400));

    let plugin = with_rules(
        "refuse",
        "Safety(input: (max_chars: 40, over_limit: Refuse))",
    );
    let (mut app, mara) = at_maras_question(plugin);
    let before = snapshot(&mut app);
    let finished = log(&app).count("Finished");
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: long.clone(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Limited") == 1));
    for _ in 0..20 {
        app.update();
    }
    assert_eq!(
        log(&app).last("Limited").unwrap().1,
        format!("Limited: {}/40 refused=true", long.chars().count())
    );
    assert_eq!(snapshot(&mut app), before);
    assert_eq!(
        log(&app).count("Finished"),
        finished,
        "no answer to a refused message"
    );
}

/// The chunks `npc` streamed, joined.
fn chunks_of(app: &App, npc: Entity) -> String {
    log(app)
        .kinds_for(npc)
        .iter()
        .filter_map(|k| k.strip_prefix("Chunk: "))
        .collect()
}

/// Free chat with Mara outside any story; returns her chunks joined and her finished line.
fn free_chat(plugin: LlamaDialoguePlugin, mara_says: &str) -> (App, Entity, String, String) {
    let mut app = app(
        LlamaDialoguePlugin {
            story: None,
            ..plugin
        },
        false,
    );
    let mara = spawn_npc(&mut app, "mara", -2.0);
    run_until_loaded(&mut app);
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: mara_says.into(),
        },
    );
    let done = run_until(&mut app, |a| log(a).count("Finished") == 1);
    assert!(done, "{:#?}", log(&app).0);
    let chunks = chunks_of(&app, mara);
    let finished = log(&app).last("Finished").unwrap().1.clone();
    (app, mara, chunks, finished)
}

#[test]
fn a_streamed_line_that_breaks_a_rule_is_replaced_before_the_word_is_shown() {
    // Without a model Mara streams her sample line word by word: "Always. Flour doesn't grind
    // itself." The plugin's guard holds back "grind" and replaces the line.
    let rules = r#"Safety(rules: [
        Rule(id: "no_grinding", words: ["GRIND"], fallback: "Hm. Busy, busy."),
    ])"#;
    let (app, mara, chunks, finished) = free_chat(with_rules("scripted", rules), "Busy night?");
    assert!(!chunks.to_lowercase().contains("grind"), "{chunks:?}");
    assert!(
        chunks.starts_with("Always."),
        "the safe start streamed: {chunks:?}"
    );
    assert_eq!(finished, "Finished: Hm. Busy, busy.");
    let (who, flag) = log(&app).last("Flagged").unwrap();
    assert_eq!(*who, mara);
    assert_eq!(
        flag,
        "Flagged: no_grinding Output \"grind\" by safety.ron -> Hm. Busy, busy."
    );
    // A rule for another persona leaves her alone.
    let rules = r#"Safety(rules: [Rule(id: "x", words: ["grind"], personas: ["tobin"])])"#;
    let (app, _, chunks, _) = free_chat(with_rules("other", rules), "Busy night?");
    assert!(chunks.contains("grind"));
    assert_eq!(log(&app).count("Flagged"), 0);
}

/// A game's own classifier: flags any message or line mentioning the moon.
struct MoonClassifier;

impl Moderator for MoonClassifier {
    fn name(&self) -> &str {
        "moon-classifier"
    }
    fn check_input(&self, text: &str, _: &ModerationContext<'_>) -> Option<Flag> {
        text.contains("moon").then(|| Flag {
            rule: "moon".into(),
            direction: Direction::Input,
            matched: "moon".into(),
            by: self.name().into(),
        })
    }
    fn check_output(&self, line: &str, _: &ModerationContext<'_>) -> Option<Flag> {
        line.contains("Flour").then(|| Flag {
            rule: "flour".into(),
            direction: Direction::Output,
            matched: "Flour".into(),
            by: self.name().into(),
        })
    }
}

#[test]
fn a_games_own_moderator_judges_both_ways_and_the_audit_log_records_it() {
    let dir = scratch("audit");
    let log_path = dir.join("audit.jsonl");
    let plugin = LlamaDialoguePlugin {
        story: None,
        safety: SafetyConfig {
            audit: Some(AuditConfig::new(&log_path)),
            ..default()
        },
        ..lantern_plugin()
    };
    let mut app = app(plugin, false);
    app.world_mut()
        .resource_mut::<DialogueSafety>()
        .add_moderator(MoonClassifier);
    let mara = spawn_npc(&mut app, "mara", -2.0);
    run_until_loaded(&mut app);
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "where is the moon key?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 1));
    assert!(
        log(&app)
            .last("Flagged")
            .unwrap()
            .1
            .starts_with("Flagged: moon Input")
    );
    send(
        &mut app,
        PlayerSaid {
            npc: mara,
            text: "Busy night?".into(),
        },
    );
    assert!(run_until(&mut app, |a| log(a).count("Finished") == 2));
    let chunks = chunks_of(&app, mara);
    assert!(!chunks.contains("Flour"), "{chunks:?}");
    assert!(
        log(&app)
            .last("Flagged")
            .unwrap()
            .1
            .starts_with("Flagged: flour Output \"Flour\" by moon-classifier")
    );
    drop(app); // closes the log
    // What `llama-dialogue audit --flagged` reads (its output is tested in tests/cli).
    let (s, flagged) = bevy_llama_dialogue::story::safety::summarize(&log_path).unwrap();
    assert_eq!(
        (
            s.records,
            s.files,
            s.lines,
            s.flagged,
            s.input_flags,
            s.output_flags
        ),
        (2, 1, 1, 2, 1, 1),
        "{s:?}"
    );
    let moon: Vec<_> = flagged
        .iter()
        .flat_map(|r| &r.flags)
        .filter(|f| f.rule == "moon")
        .collect();
    assert_eq!(moon.len(), 1, "{flagged:?}");
    assert_eq!(
        (moon[0].by.as_str(), moon[0].matched.as_str()),
        ("moon-classifier", "moon")
    );
    let raw = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        raw.contains("\"player_text\":\"where is the moon key?\""),
        "{raw}"
    );
}

/// stories260K writes Mara's free line; a word it wrote is then banned: the decoder steers
/// around it, so no chunk ever holds it and nothing needs replacing.
#[test]
fn a_real_model_never_streams_a_banned_word() {
    let model = || LlamaDialoguePlugin {
        model: ModelSource::path(common::model("stories260K.gguf")),
        threads: Some(1),
        sampling: SamplingParams {
            max_tokens: 40,
            ..SamplingParams::greedy()
        },
        ..lantern_plugin()
    };
    let (_, _, free, _) = free_chat(model(), "Busy night?");
    let word = free
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 4)
        .nth(2)
        .unwrap_or_else(|| panic!("a few words: {free:?}"))
        .to_lowercase();
    let rules = format!("Safety(rules: [Rule(id: \"w\", words: [\"{word}\"])])");
    let plugin = LlamaDialoguePlugin {
        safety: with_rules("real", &rules).safety,
        ..model()
    };
    let (app, _, chunks, finished) = free_chat(plugin, "Busy night?");
    let words: Vec<String> = chunks
        .split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .collect();
    assert!(!words.contains(&word), "{word:?} in {chunks:?}");
    assert_ne!(chunks, free);
    assert_eq!(log(&app).count("Flagged"), 0, "{finished}");
}

/// A `safety.ron` that does not load fails closed: every player message gets the deflection
/// line (flagged `RULES_NOT_LOADED`) and nothing reaches the story, until the file is fixed on
/// disk; a later edit that breaks it again keeps the last good rules in force.
#[test]
fn a_broken_rules_file_fails_closed_until_it_loads() {
    let broken = "Safety(rules: [Rule(id: \"x\", words: [\"moon\"]),";
    let plugin = with_rules("closed", broken);
    let path = plugin.safety.rules_file.clone().unwrap();
    let (mut app, mara) = at_maras_question(plugin);
    let error = app
        .world()
        .resource::<DialogueSafety>()
        .load_error()
        .map(str::to_owned);
    assert!(
        error
            .as_deref()
            .is_some_and(|e| e.contains("safety.ron:1:")),
        "{error:?}"
    );
    let before = snapshot(&mut app);
    let say = |app: &mut App, text: &str| {
        let flagged = log(app).count("Flagged");
        let finished = log(app).count("Finished");
        send(
            app,
            PlayerSaid {
                npc: mara,
                text: text.into(),
            },
        );
        assert!(run_until(app, |a| log(a).count("Finished") > finished
            || log(a).count("Choices") == 2));
        log(app).count("Flagged") > flagged
    };
    assert!(say(&mut app, "Thanks for seeing me. How are you?"));
    let (_, flag) = log(&app).last("Flagged").unwrap();
    assert!(
        flag.starts_with(&format!("Flagged: {RULES_NOT_LOADED} Input")),
        "{flag}"
    );
    assert_eq!(
        log(&app).last("Finished").unwrap().1,
        "Finished: I would rather not talk about that."
    );
    assert_eq!(snapshot(&mut app), before, "the story did not move");

    // Fixed on disk: the rules load on the next frames and free text is open again, under them.
    std::fs::write(
        &path,
        "Safety(rules: [Rule(id: \"moon\", words: [\"moon\"])])",
    )
    .unwrap();
    assert!(run_until(&mut app, |a| a
        .world()
        .resource::<DialogueSafety>()
        .load_error()
        .is_none()));
    assert!(
        say(&mut app, "Tell me about the moon"),
        "the new rule holds"
    );
    // Broken again: the last good rules stay.
    std::fs::write(
        &path,
        "Safety(rules: [Rule(id: \"moon\", words: [\"moon\"]),",
    )
    .unwrap();
    for _ in 0..20 {
        app.update();
    }
    let safety = app.world().resource::<DialogueSafety>();
    assert!(safety.load_error().is_none());
    assert_eq!(safety.rules().file.rules.len(), 1);
    assert!(
        say(&mut app, "the moon again"),
        "the last good rule still holds"
    );
    assert!(!say(&mut app, "Thanks for seeing me. How are you?"));
    assert_eq!(snapshot(&mut app).0, "mara_confides");
}
