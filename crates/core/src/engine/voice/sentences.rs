//! Splits a line streaming in chunk by chunk into sentences, so the first can be spoken
//! before the line is finished.

/// Collects streamed text and hands out whole sentences.
#[derive(Debug, Default, Clone)]
pub struct SentenceSplitter {
    pending: String,
}

/// Fewer characters than this are kept for the next sentence (an "Oh." alone sounds clipped).
const MIN_SENTENCE: usize = 12;

impl SentenceSplitter {
    /// A splitter with nothing pending.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a chunk; returns the sentences it completed. A sentence ends at `.`, `!`, `?` or
    /// `…` (with any closing quotes) followed by white space, or at a line break.
    pub fn push(&mut self, chunk: &str) -> Vec<String> {
        self.pending.push_str(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.boundary() {
            let sentence: String = self.pending.drain(..end).collect();
            let sentence = sentence.trim();
            if !sentence.is_empty() {
                out.push(sentence.to_owned());
            }
        }
        out
    }

    /// The rest of the line, once it has ended.
    pub fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = rest.trim();
        (!rest.is_empty()).then(|| rest.to_owned())
    }

    fn boundary(&self) -> Option<usize> {
        let text = &self.pending;
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '\n' && text[..i].trim().chars().count() >= 1 {
                return Some(i + 1);
            }
            if !matches!(c, '.' | '!' | '?' | '…') {
                continue;
            }
            let mut end = i + c.len_utf8();
            while let Some(&(j, q)) = chars.peek() {
                if matches!(q, '"' | '\'' | '”' | '’' | ')' | '.' | '!' | '?') {
                    end = j + q.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let followed_by_space = text[end..].chars().next().is_some_and(char::is_whitespace);
            if followed_by_space && text[..end].trim().chars().count() >= MIN_SENTENCE {
                return Some(end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_out_as_they_complete() {
        let mut s = SentenceSplitter::new();
        assert!(s.push("Well met, trav").is_empty());
        assert!(
            s.push("eller.").is_empty(),
            "not before the next word starts"
        );
        assert_eq!(s.push(" The lantern"), vec!["Well met, traveller."]);
        assert_eq!(
            s.push(" is gone!\" she said. "),
            vec!["The lantern is gone!\""]
        );
        assert_eq!(s.push("Oh. Yes"), vec!["she said. Oh."], "too short alone");
        assert_eq!(s.finish().as_deref(), Some("Yes"));
        assert_eq!(s.finish(), None);
    }
}
