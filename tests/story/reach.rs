//! Reachability that knows conditions: `check` explores every play-through (variables, the
//! visit counts conditions ask about, once-only picks, any free text) and warns about what
//! none of them does.

use std::path::Path;

use bevy_llama_dialogue::story::{Estimate, MAX_STATES, SourceText, StoryBundle, parse_story};

fn warnings_of(text: &str) -> Vec<String> {
    let src = SourceText::new("t.story.ron", text);
    let story = parse_story(&src).unwrap();
    let b = StoryBundle::from_parts(src, story, Default::default(), &Estimate)
        .unwrap_or_else(|d| panic!("{d}"));
    b.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn what_no_play_through_does_is_reported() {
    let path = Path::new("tests/fixtures/warn/conditions.story.ron");
    let b = StoryBundle::load(path, &Estimate).unwrap_or_else(|d| panic!("{d}"));
    let got: Vec<String> = b.warnings.iter().map(ToString::to_string).collect();
    let f = path.display();
    assert_eq!(
        got,
        [
            format!(
                "{f}:8:16: warning: in some play-through `hub` fails: evaluating `coins / d` failed: Error dividing 2 / 0"
            ),
            format!(
                "{f}:10:20: warning: option 2 of `hub` (\"Rich\") is never shown: no play-through opens it"
            ),
            format!(
                "{f}:19:16: warning: choice `gate` can be reached with none of its options open: the player would be stuck (add an option with `fallback: true`)"
            ),
            format!(
                "{f}:21:20: warning: option 2 of `gate` (\"Poor door\") is never shown: no play-through opens it"
            ),
            format!(
                "{f}:23:16: warning: ending `rich_end` is never reached: no play-through meets the conditions on the way (23 story states explored)"
            ),
        ]
    );
}

#[test]
fn visit_counts_and_typed_text_are_followed() {
    // `visits(hub) > 2` opens only on the third visit, `> 9` never; the typed name may be
    // anything, so both ways out of `door` count as reachable.
    let path = Path::new("tests/fixtures/warn/visits.story.ron");
    let b = StoryBundle::load(path, &Estimate).unwrap_or_else(|d| panic!("{d}"));
    let w: Vec<String> = b.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        w,
        [format!(
            "{}:11:20: warning: option 3 of `hub` (\"Never\") is never shown: no play-through opens it",
            path.display()
        )]
    );
}

#[test]
fn a_story_too_big_to_explore_gives_no_guesses() {
    // A counter that grows on every loop: more states than the explorer looks at, so it
    // says nothing about conditions (it cannot know), only what the graph shows.
    let story = r#"Story(
        id: "t", title: "T",
        variables: { "n": Int(0) },
        start: "hub",
        nodes: [
            Choice(id: "hub", options: [
                (text: "More", effects: [Add("n", 1)], next: "hub"),
                (text: "Huge", when: "n > 100000", next: "end"),
            ]),
            Ending(id: "end", title: "End"),
        ],
    )"#;
    const { assert!(MAX_STATES < 100_000) };
    let w = warnings_of(story);
    assert!(w.iter().all(|w| !w.contains("never")), "{w:?}");
}
