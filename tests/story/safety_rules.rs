//! `safety.ron`: the bundled file loads; every mistake is refused at its `file:line:col`;
//! player text is judged through case, look-alike letters, spellings and tokens split anyhow;
//! scopes per persona and story; the input limit.

use bevy_llama_dialogue::story::SourceText;
use bevy_llama_dialogue::story::safety::{
    Direction, ModerationContext, Moderator, OverLimit, SafetyRules,
};

fn rules(text: &str) -> SafetyRules {
    SafetyRules::from_source(&SourceText::new("safety.ron", text)).unwrap()
}

fn errors(text: &str) -> Vec<String> {
    SafetyRules::from_source(&SourceText::new("safety.ron", text))
        .unwrap_err()
        .0
        .iter()
        .map(|d| d.to_string())
        .collect()
}

const ANY: ModerationContext<'static> = ModerationContext {
    persona: None,
    story: None,
};

#[test]
fn the_bundled_rules_load_and_catch_hostile_player_text() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("stories/safety.ron");
    let r = SafetyRules::load(&path).unwrap();
    let flagged = |t: &str| r.check_input(t, &ANY).map(|f| f.rule);
    assert_eq!(flagged("where is the lantern?"), None);
    assert_eq!(
        flagged("a classic glass of ale"),
        None,
        "no match inside words"
    );
    for hostile in [
        "say FUCK",
        "say f u c k",
        "say fսck", // Armenian
        "say fuсk", // Cyrillic с
        "say f\u{200B}uck",
        "say ｆｕｃｋ",
        "$h1t happens",
    ] {
        let got = flagged(hostile);
        if hostile == "say f u c k" || hostile == "say fսck" {
            // Spaced letters and scripts outside the look-alike table are not caught: stated
            // in docs/AUTHORING.md; a `Moderator` classifier can cover them.
            assert_eq!(got, None, "{hostile:?}");
        } else {
            assert_eq!(got.as_deref(), Some("profanity"), "{hostile:?}");
        }
    }
    assert_eq!(
        flagged("mail me at jo.doe+x@example.co.uk").as_deref(),
        Some("personal_details")
    );
    assert_eq!(
        flagged("call +44 20 7946 0958").as_deref(),
        Some("personal_details")
    );
    // Output-only rules leave player text alone, and the other way round.
    assert_eq!(flagged("are you a language model?"), None);
    let out = |t: &str| r.check_output(t, &ANY).map(|f| f.rule);
    assert_eq!(
        out("As an AI, I cannot say.").as_deref(),
        Some("out_of_character")
    );
    assert_eq!(out("My phone number? I have none."), None);
    let f = r.check_input("I want to kill myself", &ANY).unwrap();
    assert_eq!(f.direction, Direction::Input);
    assert_eq!(f.matched, "kill myself");
    assert!(r.deflection(&f).contains("helpline"));
    let f = r.check_input("shit", &ANY).unwrap();
    assert_eq!(r.deflection(&f), "Let's speak of other things, traveller.");
    assert_eq!(r.file.input.max_chars, 400);
    assert_eq!(r.file.input.over_limit, OverLimit::Cut);
}

#[test]
fn rules_apply_to_their_personas_and_stories_only() {
    let r = rules(
        r#"Safety(rules: [
            Rule(id: "no_gold", words: ["gold"], personas: ["wren"], stories: ["lantern"]),
        ])"#,
    );
    let ctx = |persona, story| ModerationContext { persona, story };
    assert!(
        r.check_output("the gold", &ctx(Some("wren"), Some("lantern")))
            .is_some()
    );
    assert!(
        r.check_output("the gold", &ctx(Some("tobin"), Some("lantern")))
            .is_none()
    );
    assert!(
        r.check_output("the gold", &ctx(Some("wren"), None))
            .is_none()
    );
    assert!(r.banned_output(Some("wren"), Some("lantern")).is_some());
    assert!(r.banned_output(Some("mara"), Some("lantern")).is_none());
}

#[test]
fn mistakes_are_refused_at_their_position() {
    assert_eq!(
        errors("Safety(rules: [Rule(id: \"a\", words: [\"x\"], colour: 1)])"),
        [
            "safety.ron:1:44: error: Unexpected field named `colour` in `Rule`, expected one of `id`, `words`, `fragments`, `patterns`, `applies_to`, `personas`, `stories`, `deflection`, or `fallback` instead (help: check the spelling; docs/AUTHORING.md lists each kind's fields)"
        ]
    );
    assert_eq!(
        errors("Safety(rules: [\n  Rule(id: \"pii\", patterns: [\"ok\", \"(unclosed\"]),\n])"),
        ["safety.ron:2:36: error: rule `pii`: bad pattern: unclosed group"]
    );
    assert_eq!(
        errors(
            "Safety(rules: [\n  Rule(id: \"a\", words: [\"x\"]),\n  Rule(id: \"a\", words: [\"?!\"]),\n])"
        ),
        [
            "safety.ron:3:8: error: rule `a` is defined twice (help: give each rule its own id)",
            "safety.ron:3:25: error: rule `a`: \"?!\" has no letters or digits (help: punctuation alone is ignored when matching; remove it)",
        ]
    );
    assert_eq!(
        errors("Safety(rules: [Rule(id: \"b\")])"),
        [
            "safety.ron:1:21: error: rule `b` bans nothing (help: give it `words`, `fragments` or `patterns`)"
        ]
    );
    assert_eq!(
        errors("Safety(rules: [Rule(id: \"c\", patterns: [\"x\"], applies_to: Output)])"),
        [
            "safety.ron:1:21: error: rule `c`: `patterns` apply to player text only (help: use `words` or `fragments` for what characters say)"
        ]
    );
}

#[test]
fn the_input_limit_cuts_or_refuses() {
    let r = rules("Safety(input: (max_chars: 10, over_limit: Refuse))");
    assert!(r.file.input.apply("0123456789").is_ok());
    let e = r.file.input.apply("0123456789x").unwrap_err();
    assert_eq!(
        e.to_string(),
        "the message has 11 characters; at most 10 are accepted"
    );
    let r = rules("Safety()");
    let long = "word ".repeat(200);
    let cut = r.file.input.apply(&long).unwrap();
    assert!(cut.text.chars().count() <= 400 && cut.cut >= 600);
}
