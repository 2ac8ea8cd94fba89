//! The beat loop both drivers share (`story::Conversation`): steps in order, the wait state,
//! stale and cancelled answers, refused picks, routing, and a load. No Bevy, no model.

use std::path::Path;
use std::sync::Arc;

use bevy_llama_dialogue::story::{
    Conversation, Estimate, PickError, Step, StoryBundle, StoryRuntime, StoryWait,
};

fn lantern() -> Conversation {
    let b = StoryBundle::load(Path::new("stories/lantern.story.ron"), &Estimate).unwrap();
    Conversation::new(StoryRuntime::new(Arc::new(b)).unwrap())
}

/// Steps until the conversation waits, as short labels.
fn steps(c: &mut Conversation) -> Vec<String> {
    let mut out = Vec::new();
    // Bounded, so that a loop fails the test instead of hanging it.
    for _ in 0..1000 {
        let Some(step) = c.next() else { return out };
        out.push(match step {
            Step::Entered { node, .. } => format!("enter {node}"),
            Step::Say { speaker, .. } => format!("say {}", speaker.unwrap_or_default()),
            Step::Generate(r) => format!("generate {}", r.speaker),
            Step::Choices { options, .. } => format!("choices {}", options.len()),
            Step::Input { speaker, .. } => format!("input {speaker}"),
            Step::Ended { title, .. } => format!("ended {title}"),
            Step::Failed(e) => format!("failed {e}"),
        });
    }
    panic!("1000 steps without waiting: {out:?}");
}

#[test]
fn the_loop_waits_for_each_answer() {
    let mut c = lantern();
    // Idle until resumed.
    assert_eq!(c.wait(), StoryWait::Idle);
    assert_eq!(c.next(), None);
    assert!(c.resume());
    assert_eq!(
        steps(&mut c),
        [
            "enter arrival",
            "say ",
            "enter wren_greets",
            "say wren",
            "enter wren_plea",
            "generate wren"
        ]
    );
    // A line never sent leaves the conversation idle: resuming asks for it again.
    assert_eq!(c.wait(), StoryWait::Idle);
    assert!(c.resume());
    assert_eq!(steps(&mut c), ["generate wren"]);
    c.line_sent(7);
    assert_eq!(c.wait(), StoryWait::Line(7));
    // A stale answer (another request) is ignored; a cancel of this one pauses.
    assert_eq!(c.line_done(Some(6), "stale"), Ok(None));
    c.cancelled(7);
    assert_eq!(c.wait(), StoryWait::Idle);
    c.resume();
    assert_eq!(steps(&mut c), ["generate wren"]);
    c.line_sent(8);
    let line = c.line_done(Some(8), "Find it, please.").unwrap().unwrap();
    assert_eq!(
        (line.words.as_str(), line.action.as_ref()),
        ("Find it, please.", None)
    );
    let wren = &c.runtime().state().memories["wren"].turns;
    assert_eq!(wren.last().unwrap().content, "Find it, please.");
    assert_eq!(steps(&mut c), ["enter hub", "choices 5"]);
    assert_eq!(c.wait(), StoryWait::Choice);
    assert_eq!(c.presented(), &[0, 1, 2, 3, 4]);
    // Out of range: refused, the choices stay on offer.
    assert_eq!(
        c.pick(9),
        Err(PickError::NotPresented { index: 9, shown: 5 })
    );
    assert_eq!(c.wait(), StoryWait::Choice);
    // Asked again: the same choices come back.
    assert!(c.ask_again());
    assert_eq!(steps(&mut c), ["choices 5"]);
    c.pick(0).unwrap();
    assert_eq!(
        steps(&mut c),
        [
            "enter mara_intro",
            "say mara",
            "enter mara_talk",
            "input mara"
        ]
    );
    assert_eq!(c.pick(0), Err(PickError::NoChoice));
    // Routing: a cancelled scoring waits for text again; keywords route it.
    c.route_sent(3);
    assert!(c.routing(3));
    c.cancelled(3);
    assert_eq!(c.wait(), StoryWait::Input);
    let routed = c.routed("Where is the lantern?", None).unwrap();
    assert_eq!(routed.target, "mara_lantern");
    assert_eq!(steps(&mut c), ["enter mara_lantern", "generate mara"]);
}

#[test]
fn a_load_reports_where_it_resumes() {
    let mut c = lantern();
    c.resume();
    let _ = steps(&mut c);
    c.line_sent(1);
    c.line_done(Some(1), "Please.").unwrap();
    let _ = steps(&mut c);
    let save = c.runtime().save();
    let bundle = c.runtime().bundle().clone();
    c.pick(3).unwrap(); // the road out: an ending
    assert_eq!(steps(&mut c).last().unwrap(), "ended The Road Goes On");
    assert_eq!(c.wait(), StoryWait::Ended);
    // Loading puts the saved state in place, idle; the node is reported again on resume.
    c.replace(StoryRuntime::restore(bundle, save).unwrap());
    assert_eq!(c.wait(), StoryWait::Idle);
    c.resume();
    assert_eq!(steps(&mut c), ["enter hub", "choices 5"]);
}
