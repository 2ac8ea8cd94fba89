//! Reasoning kept out of what a character says: text between `<think>` and `</think>` (Qwen3,
//! DeepSeek-R1 distils, and servers that pass the tags through) never reaches a line, a chunk
//! or a transcript. Dialogue turns thinking off in the template (`enable_thinking = false`);
//! this is the guarantee when a model thinks anyway.

/// The tag that opens a reasoning block.
pub const OPEN: &str = "<think>";
/// The tag that closes it.
pub const CLOSE: &str = "</think>";

/// Filters streamed text: everything from `<think>` to `</think>` is dropped, with the
/// whitespace after the block, and a tag split across chunks is recognised (text that could
/// still be the start of a tag is held back until it is sure, as stop strings are).
#[derive(Debug, Clone, Default)]
pub struct ThinkFilter {
    held: String,
    inside: bool,
    /// Just after a block: leading whitespace is dropped when nothing was shown yet or what
    /// was shown ends in whitespace.
    after: bool,
    /// The last character shown.
    last: Option<char>,
}

impl ThinkFilter {
    /// A filter outside any block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the text so far ends inside a reasoning block.
    pub fn is_thinking(&self) -> bool {
        self.inside
    }

    /// Takes the next chunk; returns the text that is safe to show now.
    pub fn push(&mut self, text: &str) -> String {
        self.held.push_str(text);
        let mut out = String::new();
        loop {
            let tag = if self.inside { CLOSE } else { OPEN };
            if let Some(at) = find_ascii_ci(&self.held, tag) {
                if !self.inside {
                    self.emit(&mut out, at);
                }
                self.held.drain(..at + tag.len());
                self.inside = !self.inside;
                self.after = !self.inside;
                continue;
            }
            // No whole tag: keep what could begin one, pass (or drop) the rest.
            let keep = partial_suffix(&self.held, tag);
            let cut = self.held.len() - keep;
            if !self.inside {
                self.emit(&mut out, cut);
            }
            self.held.drain(..cut);
            return out;
        }
    }

    /// The end of the text: a held partial tag outside a block is released; an unclosed block
    /// stays dropped.
    pub fn finish(&mut self) -> String {
        let mut out = String::new();
        if !self.inside {
            let n = self.held.len();
            self.emit(&mut out, n);
        }
        self.held.clear();
        out
    }

    /// Moves `held[..n]` to `out`, without the whitespace that follows a block where it would
    /// start the line or double a space.
    fn emit(&mut self, out: &mut String, n: usize) {
        let mut text = &self.held[..n];
        if self.after {
            if self.last.is_none_or(char::is_whitespace) {
                text = text.trim_start();
            }
            if !text.is_empty() {
                self.after = false;
            }
        }
        if let Some(c) = text.chars().next_back() {
            self.last = Some(c);
        }
        out.push_str(text);
    }
}

/// Where `tag` (ASCII) first occurs in `text`, ignoring ASCII case.
fn find_ascii_ci(text: &str, tag: &str) -> Option<usize> {
    let (t, g) = (text.as_bytes(), tag.as_bytes());
    (0..=t.len().checked_sub(g.len())?).find(|&i| t[i..i + g.len()].eq_ignore_ascii_case(g))
}

/// The length of the longest suffix of `text` that is a proper prefix of `tag` (ASCII case
/// ignored); always on a character boundary, since the tag is ASCII.
fn partial_suffix(text: &str, tag: &str) -> usize {
    let (t, g) = (text.as_bytes(), tag.as_bytes());
    (1..g.len().min(t.len() + 1))
        .rev()
        .find(|&n| t[t.len() - n..].eq_ignore_ascii_case(&g[..n]))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::ThinkFilter;

    fn run(chunks: &[&str]) -> String {
        let mut f = ThinkFilter::new();
        let mut out: String = chunks.iter().map(|c| f.push(c)).collect();
        out.push_str(&f.finish());
        out
    }

    #[test]
    fn a_block_and_the_space_after_it_are_dropped() {
        assert_eq!(
            run(&["<think>\nplan the answer\n</think>\n\nHello there."]),
            "Hello there."
        );
        assert_eq!(run(&["Hi. <think>hm</think> Bye."]), "Hi. Bye.");
    }

    #[test]
    fn tags_split_across_chunks_and_in_any_case_are_found() {
        assert_eq!(
            run(&[
                "<",
                "th",
                "ink>secret",
                " plan</th",
                "INK>",
                " ",
                "Well, ",
                "hello."
            ]),
            "Well, hello."
        );
        assert_eq!(run(&["<THINK>x</Think>ok"]), "ok");
    }

    #[test]
    fn text_that_only_looks_like_a_tag_is_released() {
        assert_eq!(run(&["a <thin", "g> and <b>"]), "a <thing> and <b>");
        assert_eq!(run(&["ends with <thi"]), "ends with <thi");
    }

    #[test]
    fn an_unclosed_block_never_leaks() {
        assert_eq!(run(&["Sure. <think>I should not say", " this"]), "Sure. ");
    }

    #[test]
    fn every_split_of_a_line_gives_the_same_text() {
        let line = "Yes.<think> a </think>  No <thinking> is fine </think> done";
        let want = run(&[line]);
        assert_eq!(want, "Yes.  No <thinking> is fine </think> done");
        for i in 0..line.len() {
            for j in i..line.len() {
                let got = run(&[&line[..i], &line[i..j], &line[j..]]);
                assert_eq!(got, want, "split at {i}, {j}");
            }
        }
    }
}
