//! How `check` (load + validate) scales with a story's size: generated stories of N nodes (a
//! choice every tenth node, a comment every node, a condition on every choice option), each
//! loaded and validated as `llama-dialogue check` does, timed.
//!
//! `cargo run --release --example check_scaling [-- 640 1280 10000]`
//! One line per size: `check_scaling nodes=N bytes=B ms=T diagnostics=D`.

use std::fmt::Write as _;
use std::time::Instant;

use bevy_llama_dialogue::story::{Estimate, SourceText, StoryBundle, parse_story};

/// A valid story of `n` nodes.
fn story(n: usize) -> String {
    let mut s = String::from(
        "// generated\nStory(\n    id: \"big\",\n    title: \"Big\",\n    variables: { \"n\": Int(0) },\n    start: \"n0\",\n    nodes: [\n",
    );
    for i in 0..n {
        let next = if i + 1 == n {
            "end".to_owned()
        } else {
            format!("n{}", i + 1)
        };
        let _ = writeln!(s, "        // node {i}");
        if i % 10 == 5 {
            let _ = writeln!(
                s,
                "        Choice(id: \"n{i}\", text: \"Pick {i}.\", options: [\n            (text: \"on\", when: \"n >= 0\", effects: [Add(\"n\", 1)], next: \"{next}\"),\n            (text: \"stay\", next: \"{next}\"),\n        ]),"
            );
        } else {
            let _ = writeln!(
                s,
                "        Line(id: \"n{i}\", text: \"Line {i}, n is {{n}}.\", next: \"{next}\"),"
            );
        }
    }
    s.push_str("        Ending(id: \"end\", title: \"End\"),\n    ],\n)\n");
    s
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![640, 1280, 2560, 10_000]
    } else {
        sizes
    };
    for n in sizes {
        let text = story(n);
        let bytes = text.len();
        let start = Instant::now();
        let src = SourceText::new("big.story.ron", text);
        let parsed = match parse_story(&src) {
            Ok(p) => p,
            Err(d) => {
                eprintln!("the generated story does not parse: {d}");
                std::process::exit(1);
            }
        };
        let diagnostics = match StoryBundle::from_parts(src, parsed, Default::default(), &Estimate)
        {
            Ok(_) => 0,
            Err(found) => found.0.len(),
        };
        let ms = start.elapsed().as_secs_f64() * 1000.0;
        println!("check_scaling nodes={n} bytes={bytes} ms={ms:.1} diagnostics={diagnostics}");
    }
}
