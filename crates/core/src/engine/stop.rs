//! Stop strings matched across token boundaries, never leaked into the output.

/// Holds back streamed text that could be the start of a stop string until it is sure.
///
/// `"Hello [IN"` is held at `"[IN"` while `"[INST]"` is a stop string; if the next chunk is
/// `"ST]"` generation stops and `"[IN"` is never emitted; if it is `"side]"`, the held text is
/// released.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOutcome {
    /// Text that is safe to show now.
    pub emit: String,
    /// A stop string was found: nothing after it should be generated.
    pub stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new<S: AsRef<str>>(stops: impl IntoIterator<Item = S>) -> Self {
        let stops = stops
            .into_iter()
            .map(|s| s.as_ref().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        Self {
            stops,
            held: String::new(),
        }
    }

    /// Adds streamed text; returns what can be shown and whether a stop string was reached.
    pub fn push(&mut self, text: &str) -> StopOutcome {
        self.held.push_str(text);
        let first = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min();
        if let Some(at) = first {
            let emit = self.held[..at].to_owned();
            self.held.clear();
            return StopOutcome {
                emit,
                stopped: true,
            };
        }
        let keep_from = self
            .held
            .char_indices()
            .map(|(i, _)| i)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len());
        let emit = self.held[..keep_from].to_owned();
        self.held.drain(..keep_from);
        StopOutcome {
            emit,
            stopped: false,
        }
    }

    /// Releases the held text at the end of generation (it turned out not to be a stop).
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], chunks: &[&str]) -> (String, bool) {
        let mut m = StopMatcher::new(stops.iter().copied());
        let mut out = String::new();
        for c in chunks {
            let o = m.push(c);
            out.push_str(&o.emit);
            if o.stopped {
                return (out, true);
            }
        }
        out.push_str(&m.finish());
        (out, false)
    }

    #[test]
    fn stop_split_across_chunks_is_not_leaked() {
        assert_eq!(
            run(&["[INST]"], &["Hello", " [I", "NS", "T] more"]),
            ("Hello ".into(), true)
        );
    }

    #[test]
    fn false_alarm_is_released() {
        assert_eq!(
            run(&["[INST]"], &["a [IN", "side] b"]),
            ("a [INside] b".into(), false)
        );
        assert_eq!(run(&["\n\n"], &["x\n"]), ("x\n".into(), false));
    }

    #[test]
    fn earliest_of_several_stops_wins_and_unicode_is_safe() {
        assert_eq!(run(&["ZZ", "é!"], &["café! ZZ"]), ("caf".into(), true));
        assert_eq!(run(&["日本"], &["日", "日本語"]), ("日".into(), true));
    }

    #[test]
    fn no_stops_passes_everything() {
        assert_eq!(run(&[], &["a", "b"]), ("ab".into(), false));
    }
}
