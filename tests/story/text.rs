//! Inline logic in authored text (conditions, sequences, cycles, shuffles, once-only parts) as
//! the runtime shows it, and translations: stable line ids, a localized story, checked tables.

use std::path::Path;
use std::sync::Arc;

use bevy_llama_dialogue::story::{
    Beat, Estimate, Node, SourceText, StoryBundle, StoryRuntime, Translation, authored_lines,
    check_translation, option_ids, parse_story, translation_path,
};

fn bundle(text: &str) -> Arc<StoryBundle> {
    let src = SourceText::new("t.story.ron", text);
    let story = parse_story(&src).unwrap();
    Arc::new(
        StoryBundle::from_parts(src, story, Default::default(), &Estimate)
            .unwrap_or_else(|d| panic!("{d}")),
    )
}

const LOOP: &str = r#"Story(
    id: "t", title: "T",
    variables: { "coins": Int(0), "name": String("Ada") },
    start: "hub",
    nodes: [
        Choice(id: "hub",
            text: "{seq: First. | Second. | Later.} {cycle: A | B} {once: New!} {if visits(hub) > 2 && coins > 0: Rich {name}. | Poor.}",
            options: [
                (text: "Earn {shuffle: a | b | c}", effects: [Add("coins", 1)], next: "hub"),
                (text: "Leave", next: "end"),
            ]),
        Ending(id: "end", title: "End"),
    ],
)"#;

fn prompt_and_first_option(rt: &mut StoryRuntime) -> (String, String) {
    match rt.beat().unwrap() {
        Beat::Choice { text, options, .. } => (text.unwrap(), options[0].text.clone()),
        other => panic!("expected the hub, got {other:?}"),
    }
}

#[test]
fn inline_logic_follows_visits_and_variables() {
    let mut rt = StoryRuntime::new(bundle(LOOP)).unwrap();
    let mut prompts = Vec::new();
    let mut earned = Vec::new();
    for _ in 0..6 {
        let (prompt, option) = prompt_and_first_option(&mut rt);
        prompts.push(prompt);
        earned.push(option);
        rt.choose(0).unwrap();
    }
    assert_eq!(
        prompts,
        [
            "First. A New! Poor.",
            "Second. B Poor.",
            "Later. A Rich Ada.",
            "Later. B Rich Ada.",
            "Later. A Rich Ada.",
            "Later. B Rich Ada.",
        ]
    );
    // A shuffle shows every part once per round of visits.
    let mut round: Vec<&str> = earned[..3].iter().map(String::as_str).collect();
    round.sort_unstable();
    assert_eq!(round, ["Earn a", "Earn b", "Earn c"]);
    // The same in every play-through, and after a save.
    let mut again = StoryRuntime::new(bundle(LOOP)).unwrap();
    for want in &earned[..4] {
        assert_eq!(&prompt_and_first_option(&mut again).1, want);
        again.choose(0).unwrap();
    }
    let mut restored = StoryRuntime::restore(bundle(LOOP), again.save()).unwrap();
    assert_eq!(prompt_and_first_option(&mut restored).1, earned[4]);
}

#[test]
fn option_ids_survive_reordering_and_text_edits() {
    let b = bundle(LOOP);
    let ids: Vec<String> = authored_lines(&b.story).into_iter().map(|l| l.id).collect();
    assert_eq!(
        ids,
        [
            "story:title",
            "hub.prompt",
            "hub.to.hub",
            "hub.to.end",
            "end.title"
        ]
    );
    let swapped = LOOP.replace(
        r#"(text: "Earn {shuffle: a | b | c}", effects: [Add("coins", 1)], next: "hub"),
                (text: "Leave", next: "end"),"#,
        r#"(text: "Go", next: "end"),
                (text: "Work", effects: [Add("coins", 1)], next: "hub"),"#,
    );
    assert_ne!(swapped, LOOP);
    let b2 = bundle(&swapped);
    let Node::Choice { options, .. } = &b2.story.nodes[0] else {
        panic!()
    };
    assert_eq!(option_ids("hub", options), ["hub.to.end", "hub.to.hub"]);
}

#[test]
fn the_bundled_french_translation_is_complete_and_plays() {
    let story = Path::new("stories/lantern.story.ron");
    let b = StoryBundle::load(story, &Estimate).unwrap();
    let table = Translation::read(&translation_path(story, "fr")).unwrap();
    let report = check_translation(&b.story, &table);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert!(report.untranslated.is_empty(), "{:?}", report.untranslated);
    let fr = Arc::new(b.localized(&table));
    assert_eq!(fr.story.title, "La Lanterne de Millbrook");
    let mut rt = StoryRuntime::new(fr).unwrap();
    let first = match rt.beat().unwrap() {
        Beat::Line { text, .. } => text,
        other => panic!("{other:?}"),
    };
    assert!(first.starts_with("Le soir tombe sur Millbrook."), "{first}");
}

#[test]
fn a_bad_translation_is_refused_with_its_line() {
    let b = bundle(LOOP);
    let table = "id,speaker,source,translation\n\
                 hub.to.end,,Leave,Partir {gold}\n\
                 gone,,Old,Vieux\n\
                 end.title,,Finish,Fin\n";
    let t = Translation::from_csv(Path::new("t.fr.strings.csv"), table).unwrap();
    let report = check_translation(&b.story, &t);
    assert_eq!(
        report.errors,
        ["t.fr.strings.csv:2: `hub.to.end`: `{gold}` is not a declared variable"]
    );
    assert_eq!(report.warnings.len(), 2, "{:?}", report.warnings);
    assert!(
        report.warnings[0]
            .starts_with("t.fr.strings.csv:4: `end.title`: the authored text changed")
    );
    assert!(report.warnings[1].starts_with("t.fr.strings.csv:3: `gone` is not a line"));
    assert_eq!(
        report.untranslated,
        ["story:title", "hub.prompt", "hub.to.hub"]
    );
    // Untranslated lines keep the authored text.
    let localized = b.localized(&t);
    assert_eq!(localized.story.title, "T");
    let Node::Ending { title, .. } = &localized.story.nodes[1] else {
        panic!()
    };
    assert_eq!(title, "Fin");
}
