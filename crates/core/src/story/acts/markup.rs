//! Splitting a streamed line into its emotion, its words and its action call, chunk by chunk,
//! so that the words can be shown as they come and the markup never is.

/// A piece of a line in the [`LineFormat`](super::LineFormat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinePart {
    /// The emotion the line opens with (`[glad]`), without brackets; as soon as it is closed.
    Emotion(String),
    /// Spoken words, streamed: the parts of one line add up to its text without markup.
    Words(String),
    /// The action call (`give_item {"item":"key"}`), without angle brackets; when closed, or
    /// at the end of the line if it never closes.
    Call(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing seen yet.
    Start,
    /// Inside `[`…`]` at the start.
    Emotion,
    /// Right after the emotion: one space is skipped.
    AfterEmotion,
    Words,
    /// Inside `<`…`>`.
    Call,
    /// Inside a JSON string of a call's arguments (where `>` is text).
    CallString,
    /// After a backslash in such a string.
    CallEscape,
}

/// The longest emotion name taken as one: a longer `[…` at the start is words.
const MAX_EMOTION: usize = 32;

/// Splits streamed text into [`LinePart`]s. Lenient: text that does not follow the format
/// (a model or server without the grammar) comes out as words, except that `<` always opens
/// a call, which the caller validates.
#[derive(Debug, Clone)]
pub struct MarkupSplitter {
    state: State,
    held: String,
}

impl Default for MarkupSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl MarkupSplitter {
    /// A splitter at the start of a line.
    pub fn new() -> Self {
        Self {
            state: State::Start,
            held: String::new(),
        }
    }

    /// Takes the next chunk of the line; returns what it completes.
    pub fn push(&mut self, chunk: &str) -> Vec<LinePart> {
        let mut out = Vec::new();
        let mut words = String::new();
        for c in chunk.chars() {
            match self.state {
                State::Start if c == '[' => self.state = State::Emotion,
                State::Start => {
                    self.state = State::Words;
                    self.word(c, &mut words, &mut out);
                }
                State::Emotion if c == ']' => {
                    out.push(LinePart::Emotion(std::mem::take(&mut self.held)));
                    self.state = State::AfterEmotion;
                }
                State::Emotion if self.held.len() >= MAX_EMOTION || c == '\n' => {
                    words.push('[');
                    words.push_str(&std::mem::take(&mut self.held));
                    self.state = State::Words;
                    self.word(c, &mut words, &mut out);
                }
                State::Emotion => self.held.push(c),
                State::AfterEmotion => {
                    self.state = State::Words;
                    if c != ' ' {
                        self.word(c, &mut words, &mut out);
                    }
                }
                State::Words => self.word(c, &mut words, &mut out),
                State::Call if c == '>' => {
                    out.push(LinePart::Call(std::mem::take(&mut self.held)));
                    self.state = State::Words;
                }
                State::Call | State::CallString | State::CallEscape => {
                    self.held.push(c);
                    self.state = match (self.state, c) {
                        (State::Call, '"') | (State::CallEscape, _) => State::CallString,
                        (State::CallString, '"') => State::Call,
                        (State::CallString, '\\') => State::CallEscape,
                        (s, _) => s,
                    };
                }
            }
        }
        if !words.is_empty() {
            out.push(LinePart::Words(words));
        }
        out
    }

    fn word(&mut self, c: char, words: &mut String, out: &mut Vec<LinePart>) {
        if c == '<' {
            if !words.is_empty() {
                out.push(LinePart::Words(std::mem::take(words)));
            }
            self.state = State::Call;
        } else {
            words.push(c);
        }
    }

    /// The line ended: releases what is still held (an unclosed call as a call, an unclosed
    /// `[` as words).
    pub fn finish(&mut self) -> Vec<LinePart> {
        let held = std::mem::take(&mut self.held);
        let state = std::mem::replace(&mut self.state, State::Start);
        match state {
            State::Emotion => vec![LinePart::Words(format!("[{held}"))],
            State::Call | State::CallString | State::CallEscape => vec![LinePart::Call(held)],
            _ => Vec::new(),
        }
    }
}
