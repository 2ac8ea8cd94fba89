//! Every malformed file in `tests/fixtures/bad/` produces its exact error; the bundled stories
//! are clean.

use crate::common;

use std::path::{Path, PathBuf};

use bevy_llama_dialogue::story::{
    Diagnostics, Estimate, ModelCounter, StoryBundle, TokenCounter, parse_persona, read_source,
};

fn first_error(path: &Path, counter: &dyn TokenCounter) -> Option<String> {
    let name = path.to_string_lossy();
    let found = if name.ends_with(".story.ron") {
        match StoryBundle::load(path, counter) {
            Ok(_) => Diagnostics::default(),
            Err(d) => d,
        }
    } else {
        match read_source(path).and_then(|s| parse_persona(&s).map(|_| ())) {
            Ok(()) => Diagnostics::default(),
            Err(d) => Diagnostics(vec![d]),
        }
    };
    found.errors().next().map(ToString::to_string)
}

#[test]
fn each_bad_fixture_gives_its_exact_error() {
    let dir = Path::new("tests/fixtures/bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ron"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "only {} bad fixtures", files.len());
    for f in &files {
        let expected_path = f.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", f.display()));
        let got = first_error(f, &Estimate)
            .unwrap_or_else(|| panic!("{} loaded without an error", f.display()));
        assert_eq!(got, expected.trim_end(), "{}", f.display());
        assert!(
            got.starts_with(&format!("{}:", f.display()))
                || got.starts_with("tests/fixtures/bad/personas/"),
            "errors name the file first: {got}"
        );
    }
}

#[test]
fn bundled_stories_are_clean() {
    for story in ["stories/lantern.story.ron", "stories/tutorial.story.ron"] {
        let b = StoryBundle::load(Path::new(story), &Estimate)
            .unwrap_or_else(|d| panic!("{story}:\n{d}"));
        assert!(b.warnings.is_empty(), "{story}: {:?}", b.warnings);
    }
}

#[test]
fn bundled_story_fits_llama2_context_by_the_real_tokenizer() {
    let vocab = common::model("ggml-vocab-llama-spm.gguf");
    let counter = ModelCounter::open(&vocab).unwrap();
    assert_eq!(counter.context(), Some(4096));
    let b = StoryBundle::load(Path::new("stories/lantern.story.ron"), &counter)
        .unwrap_or_else(|d| panic!("{d}"));
    assert!(b.warnings.is_empty());
    // The estimate is conservative: it counts more than the real tokenizer on the bundled text.
    let persona = b.persona("mara").unwrap().system_text();
    assert!(Estimate.count(&persona) > counter.count(&persona));
}

#[test]
fn budget_lint_uses_the_models_context() {
    // stories260K has a 2048-token context (LLaMA-2: 4096). A tutorial with a 40-turn history
    // window fits the default 4096 but not this model, and the lint says so.
    let model = common::model("stories260K.gguf");
    let dir = common::temp_dir("budget-lint");
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    std::fs::copy(
        "stories/personas/guide.persona.ron",
        dir.join("personas/guide.persona.ron"),
    )
    .unwrap();
    let text = std::fs::read_to_string("stories/tutorial.story.ron")
        .unwrap()
        .replace(
            "start: \"hello\",",
            "start: \"hello\",\n    settings: (history_turns: 40),",
        );
    let story = dir.join("long.story.ron");
    std::fs::write(&story, text).unwrap();
    StoryBundle::load(&story, &Estimate).unwrap_or_else(|d| panic!("{d}"));
    let counter = ModelCounter::open(&model).unwrap();
    let err = StoryBundle::load(&story, &counter).unwrap_err();
    let first = err.errors().next().unwrap().to_string();
    assert!(
        first.contains("the worst-case prompt of `generated`")
            && first.contains("the context holds 2048")
            && first.contains("40 history turns"),
        "{first}"
    );
}

/// One bad `next` is one error: the nodes only it led to are not also reported as unreachable
/// (a cascade that buried the real mistake under dozens of warnings).
#[test]
fn one_bad_edge_is_one_diagnostic() {
    let dir = common::temp_dir("cascade");
    std::fs::create_dir_all(dir.join("personas")).unwrap();
    for e in std::fs::read_dir("stories/personas").unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, dir.join("personas").join(p.file_name().unwrap())).unwrap();
    }
    let story = std::fs::read_to_string("stories/lantern.story.ron").unwrap();
    assert!(story.contains(r#"next: "wren_plea","#));
    let broken = story.replacen(r#"next: "wren_plea","#, r#"next: "wren_pleaa","#, 1);
    let path = dir.join("lantern.story.ron");
    std::fs::write(&path, broken).unwrap();
    let found = StoryBundle::load(&path, &Estimate).unwrap_err();
    assert_eq!(found.0.len(), 1, "{found}");
    let only = found.errors().next().unwrap().to_string();
    assert!(only.contains("wren_pleaa"), "{only}");
}

/// Positions in a large file come from an index built once (they used to rescan the file for
/// each node, 8× slower per doubling); they stay exact, and ids inside comments are skipped.
#[test]
fn positions_in_a_large_story_are_exact() {
    use bevy_llama_dialogue::story::{SourceText, parse_story};
    let mut text = String::from(
        "Story(\n    id: \"big\",\n    title: \"Big\",\n    start: \"n0\",\n    nodes: [\n",
    );
    let mut bad_line = 0;
    for i in 0..3000 {
        let next = if i == 1500 {
            "nn1501".to_owned() // the typo
        } else if i + 1 == 3000 {
            "end".to_owned()
        } else {
            format!("n{}", i + 1)
        };
        text.push_str(&format!(
            "        /* Line(id: \"n{i}\", text: \"old\", next: \"x\"), */\n"
        ));
        if i == 1500 {
            bad_line = text.lines().count() + 1;
        }
        text.push_str(&format!(
            "        Line(id: \"n{i}\", text: \"Line {i}.\", next: \"{next}\"),\n"
        ));
    }
    text.push_str("        Ending(id: \"end\", title: \"End\"),\n    ],\n)\n");
    let src = SourceText::new("big.story.ron", text);
    let story = parse_story(&src).unwrap();
    let found = StoryBundle::from_parts(src, story, Default::default(), &Estimate).unwrap_err();
    let errors: Vec<String> = found.errors().map(|d| d.to_string()).collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!("big.story.ron:{bad_line}:")),
        "{} (expected line {bad_line})",
        errors[0]
    );
    assert!(errors[0].contains("did you mean `n1501`?"), "{}", errors[0]);
}
