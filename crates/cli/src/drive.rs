//! The loop `play` and `transcript` share: beats printed, inputs read, and the commands a
//! player may type instead of a move (`:save [FILE]`, `:quit`).

use std::io::Write;
use std::path::{Path, PathBuf};

use bevy_llama_dialogue_core::story::acts::{LinePart, MarkupSplitter};
use bevy_llama_dialogue_core::story::{Session, Step, StoryWait};

/// How a play-through stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An ending was reached.
    Ended,
    /// The inputs ran out first.
    InputsEnded,
    /// The player typed `:quit`.
    Quit,
}

/// What the player typed, once commands are handled.
enum Input {
    Move(String),
    Stop(Outcome),
}

/// Where a play-through reads and writes.
pub struct Driver<'a> {
    /// The next input line (`None`: no more).
    pub next_input: &'a mut dyn FnMut() -> Option<String>,
    /// Where the transcript goes.
    pub out: &'a mut dyn Write,
    /// Print each input after a `> ` (transcripts).
    pub echo: bool,
    /// Where `:save` writes when it names no file (`--save`).
    pub save_to: Option<PathBuf>,
    /// Every line a model was asked for, as it came out (`eval`).
    pub heard: Option<&'a mut Vec<HeardLine>>,
}

/// A line a model was asked for.
#[derive(Debug, Clone)]
pub struct HeardLine {
    /// The node it was for.
    pub node: String,
    /// The speaker's cast key.
    pub speaker: String,
    /// The words (markup read out), as the player sees them.
    pub text: String,
    /// A model wrote it (false: the authored fallback).
    pub generated: bool,
}

type DriveResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes a save of `s` to `path` and says so.
pub fn save(s: &Session, path: &Path, out: &mut dyn Write) -> DriveResult<()> {
    match s.conversation.runtime().save().write(path) {
        Ok(()) => writeln!(out, "[saved to {}]", path.display())?,
        Err(e) => writeln!(out, "[not saved: {e}]")?,
    }
    Ok(())
}

impl Driver<'_> {
    /// The next move, after any commands.
    fn input(&mut self, s: &Session) -> DriveResult<Input> {
        loop {
            let Some(line) = (self.next_input)() else {
                return Ok(Input::Stop(Outcome::InputsEnded));
            };
            if self.echo {
                writeln!(self.out, "> {line}")?;
            }
            let trimmed = line.trim();
            if trimmed == ":quit" {
                return Ok(Input::Stop(Outcome::Quit));
            }
            if trimmed == ":save" || trimmed.starts_with(":save ") {
                let named = trimmed[5..].trim();
                match (named.is_empty(), &self.save_to) {
                    (false, _) => save(s, Path::new(named), self.out)?,
                    (true, Some(p)) => save(s, &p.clone(), self.out)?,
                    (true, None) => writeln!(
                        self.out,
                        "[:save needs a file: `:save FILE`, or start with --save FILE]"
                    )?,
                }
                continue;
            }
            return Ok(Input::Move(line));
        }
    }

    /// Plays until an ending, the end of the inputs, or `:quit`: the story's own beat loop
    /// ([`Conversation::next`](bevy_llama_dialogue_core::story::Conversation::next), the one the
    /// plugin drives), waiting on each line and reading each answer.
    pub fn run(&mut self, s: &mut Session) -> DriveResult<Outcome> {
        let title = s.conversation.runtime().bundle().story.title.clone();
        writeln!(self.out, "== {title} ==")?;
        if s.has_model() {
            writeln!(self.out, "[lines written by {}]", s.backend().label())?;
        } else {
            writeln!(
                self.out,
                "[no model: generated lines use the authored fallback lines]"
            )?;
        }
        s.conversation.resume();
        loop {
            let Some(step) = s.conversation.next() else {
                match s.conversation.wait() {
                    StoryWait::Choice => {
                        if let Some(stop) = self.pick(s)? {
                            return Ok(stop);
                        }
                    }
                    StoryWait::Input => {
                        if let Some(stop) = self.say(s)? {
                            return Ok(stop);
                        }
                    }
                    StoryWait::Ended => return Ok(Outcome::Ended),
                    other => return Err(format!("the story stopped, waiting for {other:?}").into()),
                }
                continue;
            };
            let name = |k: &str| s.conversation.runtime().display_name(k);
            match step {
                Step::Entered { .. } => {}
                Step::Say { speaker, text, .. } => match speaker {
                    Some(k) => writeln!(self.out, "{}: {text}", name(&k))?,
                    None => writeln!(self.out, "{text}")?,
                },
                Step::Generate(req) => {
                    write!(self.out, "{}: ", name(&req.speaker))?;
                    self.out.flush()?;
                    let out = &mut *self.out;
                    // Under a line format only the words are streamed; the emotion shows as
                    // `[glad]`, the action after the line.
                    let mut splitter = req.format.as_ref().map(|_| MarkupSplitter::new());
                    let mut show = |parts: Vec<LinePart>| {
                        for part in parts {
                            let _ = match part {
                                LinePart::Words(w) => write!(out, "{w}"),
                                LinePart::Emotion(e) => write!(out, "[{e}] "),
                                LinePart::Call(_) => Ok(()),
                            };
                        }
                        let _ = out.flush();
                    };
                    let spoken = s.speak(&req, &mut |t| match &mut splitter {
                        Some(sp) => show(sp.push(t)),
                        None => show(vec![LinePart::Words(t.to_owned())]),
                    });
                    if let Some(sp) = &mut splitter {
                        show(sp.finish());
                    }
                    writeln!(self.out)?;
                    if let Some(e) = &spoken.error {
                        writeln!(self.out, "[model failed, fallback line used: {e}]")?;
                    }
                    let line = s.conversation.line_done(None, &spoken.text)?;
                    if let Some(heard) = &mut self.heard {
                        heard.push(HeardLine {
                            node: req.node.clone(),
                            speaker: req.speaker.clone(),
                            text: line
                                .as_ref()
                                .map_or_else(|| spoken.text.clone(), |l| l.words.clone()),
                            generated: spoken.generated,
                        });
                    }
                    if let Some(line) = line {
                        if let Some(a) = &line.action {
                            writeln!(self.out, "[action {a}]")?;
                        }
                        if let Some(e) = &line.refused {
                            writeln!(self.out, "[action refused: {e}]")?;
                        }
                    }
                }
                Step::Choices {
                    speaker,
                    text,
                    options,
                    ..
                } => {
                    if let Some(t) = text {
                        match &speaker {
                            Some(k) => writeln!(self.out, "{}: {t}", name(k))?,
                            None => writeln!(self.out, "{t}")?,
                        }
                    }
                    for (n, o) in options.iter().enumerate() {
                        writeln!(self.out, "  {}) {}", n + 1, o.text)?;
                    }
                }
                Step::Input { speaker, text, .. } => {
                    if let Some(t) = text {
                        writeln!(self.out, "{}: {t}", name(&speaker))?;
                    }
                    writeln!(self.out, "  (say anything)")?;
                }
                Step::Ended { title, text, .. } => {
                    if let Some(t) = text {
                        writeln!(self.out, "{t}")?;
                    }
                    writeln!(self.out, "== Ending: {title} ==")?;
                    return Ok(Outcome::Ended);
                }
                Step::Failed(e) => return Err(e.into()),
            }
        }
    }

    /// Reads the player's pick of the options on offer; `Some` when the play-through stops.
    fn pick(&mut self, s: &mut Session) -> DriveResult<Option<Outcome>> {
        let shown = s.conversation.presented().len();
        let pick = loop {
            let input = match self.input(s)? {
                Input::Move(m) => m,
                Input::Stop(o) => return Ok(Some(o)),
            };
            match input.trim().parse::<usize>() {
                Ok(n) if (1..=shown).contains(&n) => break n - 1,
                _ => writeln!(self.out, "(type a number from 1 to {shown})")?,
            }
        };
        // A run-time error (an effect dividing by zero) leaves the story where it was: say
        // so and ask again.
        if let Err(e) = s.conversation.pick(pick) {
            writeln!(self.out, "[error: {e}; the story stays here]")?;
            s.conversation.ask_again();
        }
        Ok(None)
    }

    /// Reads the player's free text and routes it; `Some` when the play-through stops.
    fn say(&mut self, s: &mut Session) -> DriveResult<Option<Outcome>> {
        let input = match self.input(s)? {
            Input::Move(m) => m,
            Input::Stop(o) => return Ok(Some(o)),
        };
        let routed = match s.route(&input) {
            Ok(r) => r,
            Err(e) => {
                writeln!(self.out, "[error: {e}; the story stays here]")?;
                s.conversation.ask_again();
                return Ok(None);
            }
        };
        let how = match (routed.edge, routed.probability, routed.by_model) {
            (Some(e), Some(p), true) => format!("edge {} (model, p={p:.2})", e + 1),
            (Some(e), Some(p), false) => format!(
                "edge {} (keywords; the model was unsure, best p={p:.2})",
                e + 1
            ),
            (Some(e), None, _) => format!("edge {} (keywords)", e + 1),
            (None, Some(p), _) => format!("no edge matched (model best p={p:.2})"),
            (None, None, _) => "no edge matched".to_owned(),
        };
        writeln!(self.out, "  [{how} -> {}]", routed.target)?;
        Ok(None)
    }
}
