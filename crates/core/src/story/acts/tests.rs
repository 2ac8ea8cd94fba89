use std::collections::BTreeMap;

use super::*;

fn trader() -> LineFormat {
    let mut actions = BTreeMap::new();
    actions.insert(
        "give_item".to_owned(),
        ActionDecl {
            description: "hand the player an item.".into(),
            args: BTreeMap::from([
                (
                    "item".into(),
                    ArgType::OneOf(vec!["key".into(), "bread".into()]),
                ),
                ("count".into(), ArgType::Int { min: 1, max: 3 }),
            ]),
        },
    );
    actions.insert(
        "wave".to_owned(),
        ActionDecl {
            description: "wave".into(),
            args: BTreeMap::new(),
        },
    );
    LineFormat::new(vec!["calm".into(), "glad".into()], actions)
}

fn split_all(chunks: &[&str]) -> Vec<LinePart> {
    let mut s = MarkupSplitter::new();
    let mut parts: Vec<LinePart> = chunks.iter().flat_map(|c| s.push(c)).collect();
    parts.extend(s.finish());
    // Merge adjacent words, as a reader of the stream would.
    let mut merged: Vec<LinePart> = Vec::new();
    for p in parts {
        match (merged.last_mut(), p) {
            (Some(LinePart::Words(a)), LinePart::Words(b)) => a.push_str(&b),
            (_, p) => merged.push(p),
        }
    }
    merged
}

#[test]
fn every_split_of_a_line_gives_the_same_parts() {
    // A `>` inside an argument's text does not close the call.
    let line = r#"[glad] Here, take it. <give_item {"count":2,"item":"k\">y"}> Bye."#;
    let want = vec![
        LinePart::Emotion("glad".into()),
        LinePart::Words("Here, take it. ".into()),
        LinePart::Call(r#"give_item {"count":2,"item":"k\">y"}"#.into()),
        LinePart::Words(" Bye.".into()),
    ];
    for cut in 0..=line.len() {
        assert_eq!(
            split_all(&[&line[..cut], &line[cut..]]),
            want,
            "cut at {cut}"
        );
    }
    let by_char: Vec<String> = line.chars().map(String::from).collect();
    let by_char: Vec<&str> = by_char.iter().map(String::as_str).collect();
    assert_eq!(split_all(&by_char), want);
}

#[test]
fn text_out_of_format_stays_words() {
    assert_eq!(
        split_all(&["Just words."]),
        vec![LinePart::Words("Just words.".into())]
    );
    let long = format!("[{}", "x".repeat(40));
    assert_eq!(split_all(&[&long]), vec![LinePart::Words(long.clone())]);
    assert_eq!(split_all(&["[sad"]), vec![LinePart::Words("[sad".into())]);
    assert_eq!(
        split_all(&["Look <wave"]),
        vec![
            LinePart::Words("Look ".into()),
            LinePart::Call("wave".into())
        ]
    );
}

#[test]
fn calls_are_validated_and_typed() {
    let f = trader();
    let a = f.action(r#"give_item {"item":"bread","count":3}"#).unwrap();
    assert_eq!(a.arg::<i64>("count"), Some(3));
    assert_eq!(a.arg::<String>("item").as_deref(), Some("bread"));
    assert_eq!(a.arg::<bool>("count"), None);
    assert_eq!(a.to_string(), r#"give_item {"count":3,"item":"bread"}"#);
    assert_eq!(f.action("wave").unwrap().to_string(), "wave");
    let err = |call: &str| f.action(call).unwrap_err().to_string();
    assert_eq!(
        err("dance"),
        "`dance` is not an action allowed here (allowed: give_item, wave)"
    );
    assert_eq!(
        err(r#"give_item {"item":"key","count":9}"#),
        "action `give_item`: argument `count` is 9, outside 1..=3"
    );
    assert_eq!(
        err(r#"give_item {"item":"sword","count":1}"#),
        r#"action `give_item`: argument `item` should be one of key, bread, not "sword""#
    );
    assert_eq!(
        err(r#"give_item {"item":"key"}"#),
        "action `give_item`: argument `count` is missing"
    );
    assert_eq!(
        err(r#"give_item {"item":"key","count":1,"to":"me"}"#),
        "action `give_item`: argument `to` is not declared"
    );
    assert!(err("give_item {oops").starts_with("action `give_item`: the arguments are not"));
    assert_eq!(f.emotion("glad"), Some("glad"));
    assert_eq!(f.emotion("sad"), None);
}

#[test]
fn the_prompt_describes_emotions_and_actions() {
    assert_eq!(
        trader().instructions(),
        "Begin with how you feel in brackets, one of: calm, glad. If you do something, end \
         with one action in angle brackets: <give_item {\"count\": a whole number from 1 to 3, \
         \"item\": one of key, bread}> to hand the player an item; <wave> to wave."
    );
    assert!(LineFormat::default().is_plain());
}

#[test]
fn declarations_with_no_values_are_problems() {
    assert!(ArgType::Int { min: 3, max: 1 }.problem().is_some());
    assert!(ArgType::OneOf(vec![]).problem().is_some());
    assert!(
        ArgType::Float {
            min: 0.0,
            max: f64::NAN
        }
        .problem()
        .is_some()
    );
    assert_eq!(ArgType::Bool.problem(), None);
}
