//! Streamed text held back until it cannot start a banned phrase, for any backend.

use std::sync::Arc;

use super::phrases::{BanHit, BannedPhrases};

/// What [`StreamGuard::push`] decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Guarded {
    /// Text that is safe to show now.
    pub emit: String,
    /// A banned phrase was completed: nothing from it on may be shown. `start`/`end` are byte
    /// offsets in the whole streamed text.
    pub hit: Option<BanHit>,
    /// The banned text itself, as written (empty without a hit).
    pub matched: String,
}

/// Holds back as little streamed text as possible (at most the longest banned phrase) and
/// reports a banned phrase before any of it is shown.
#[derive(Debug, Clone)]
pub struct StreamGuard {
    set: Arc<BannedPhrases>,
    /// Bytes shown so far.
    shown: usize,
    /// The last character shown (context: does the held text start a word?).
    last: Option<char>,
    held: String,
    blocked: bool,
}

impl StreamGuard {
    /// A guard for `set`.
    pub fn new(set: Arc<BannedPhrases>) -> Self {
        Self {
            set,
            shown: 0,
            last: None,
            held: String::new(),
            blocked: false,
        }
    }

    /// The phrases it guards against.
    pub fn phrases(&self) -> &Arc<BannedPhrases> {
        &self.set
    }

    /// Adds streamed text; returns what may be shown now, or the banned phrase it completed.
    /// After a hit, everything is held (the line is over).
    pub fn push(&mut self, text: &str) -> Guarded {
        self.held.push_str(text);
        self.scan(false)
    }

    /// The stream ended: releases the held text unless it ends in a banned phrase.
    pub fn finish(&mut self) -> Guarded {
        self.scan(true)
    }

    fn scan(&mut self, complete: bool) -> Guarded {
        if self.blocked {
            return Guarded::default();
        }
        let mut window = String::with_capacity(self.held.len() + 4);
        if let Some(c) = self.last {
            window.push(c);
        }
        let ctx = window.len();
        window.push_str(&self.held);
        if let Some(mut hit) = self.set.find(&window, ctx, complete) {
            self.blocked = true;
            let matched = window[hit.start..hit.end].to_owned();
            hit.start = hit.start - ctx + self.shown;
            hit.end = hit.end - ctx + self.shown;
            return Guarded {
                emit: String::new(),
                hit: Some(hit),
                matched,
            };
        }
        let keep = if complete {
            window.len()
        } else {
            self.set.hold_from(&window, ctx)
        };
        let emit: String = self.held.drain(..keep - ctx).collect();
        self.shown += emit.len();
        if let Some(c) = emit.chars().next_back() {
            self.last = Some(c);
        }
        Guarded {
            emit,
            hit: None,
            matched: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(chunks: &[&str]) -> (String, Option<BanHit>) {
        let mut set = BannedPhrases::new();
        set.add("moon key", 0, true);
        let mut g = StreamGuard::new(Arc::new(set));
        let mut shown = String::new();
        for c in chunks {
            let o = g.push(c);
            shown.push_str(&o.emit);
            if o.hit.is_some() {
                return (shown, o.hit);
            }
        }
        let o = g.finish();
        shown.push_str(&o.emit);
        (shown, o.hit)
    }

    #[test]
    fn a_phrase_split_across_chunks_is_never_shown() {
        let (shown, hit) = stream(&["The m", "oo", "n k", "ey is here"]);
        assert_eq!(shown, "The ");
        assert_eq!(hit.map(|h| (h.start, h.end)), Some((4, 12)));
    }

    #[test]
    fn harmless_text_is_released_as_soon_as_it_cannot_match() {
        let mut set = BannedPhrases::new();
        set.add("moon key", 0, true);
        let mut g = StreamGuard::new(Arc::new(set));
        assert_eq!(g.push("The moo").emit, "The ");
        assert_eq!(g.push("d is").emit, "mood is");
        assert_eq!(stream(&["a moon", " kite"]), ("a moon kite".into(), None));
        assert_eq!(stream(&["moon", "keys"]), ("moonkeys".into(), None));
    }

    #[test]
    fn a_phrase_ending_the_stream_is_caught() {
        let (shown, hit) = stream(&["give me the MOON ", "KEY"]);
        assert_eq!(shown, "give me the ");
        assert!(hit.is_some());
    }
}
