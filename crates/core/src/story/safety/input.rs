//! The player's message against the input limit.

use super::rules::{InputLimit, OverLimit};

/// A message over the limit that was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the message has {chars} characters; at most {max} are accepted")]
pub struct InputRefused {
    /// Its length in characters.
    pub chars: usize,
    /// The limit.
    pub max: usize,
}

/// What became of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// The text to use.
    pub text: String,
    /// Characters cut off the end (0: the message was within the limit).
    pub cut: usize,
}

impl InputLimit {
    /// Applies the limit: the message as it is, cut (at a space within the last 32 characters
    /// before the limit, if there is one), or refused.
    pub fn apply(&self, text: &str) -> Result<Limited, InputRefused> {
        let chars = text.chars().count();
        if chars <= self.max_chars {
            return Ok(Limited {
                text: text.to_owned(),
                cut: 0,
            });
        }
        if self.over_limit == OverLimit::Refuse {
            return Err(InputRefused {
                chars,
                max: self.max_chars,
            });
        }
        let end = text
            .char_indices()
            .nth(self.max_chars)
            .map_or(text.len(), |(i, _)| i);
        let head = &text[..end];
        let near = head
            .char_indices()
            .rev()
            .take(32)
            .find(|(_, c)| c.is_whitespace())
            .map(|(i, _)| i);
        let kept = head[..near.unwrap_or(end)].trim_end();
        Ok(Limited {
            text: kept.to_owned(),
            cut: chars - kept.chars().count(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max_chars: usize, over_limit: OverLimit) -> InputLimit {
        InputLimit {
            max_chars,
            over_limit,
        }
    }

    #[test]
    fn short_messages_pass_long_ones_are_cut_at_a_word_or_refused() {
        let l = limit(12, OverLimit::Cut);
        assert_eq!(l.apply("hello").unwrap().cut, 0);
        let cut = l.apply("open the gate please").unwrap();
        assert_eq!(cut.text, "open the");
        assert_eq!(cut.cut, 12);
        let cut = l.apply("ééééééééééééééé").unwrap();
        assert_eq!(
            cut.text.chars().count(),
            12,
            "no space: cut at the limit, on a character"
        );
        let r = limit(5, OverLimit::Refuse).apply("too long here");
        assert_eq!(r, Err(InputRefused { chars: 13, max: 5 }));
    }
}
