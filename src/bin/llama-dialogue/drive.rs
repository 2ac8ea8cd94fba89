//! The loop `play` and `transcript` share: beats printed, inputs read, and the commands a
//! player may type instead of a move (`:save [FILE]`, `:quit`).

use std::io::Write;
use std::path::{Path, PathBuf};

use bevy_llama_dialogue::story::{Beat, Session};

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
}

type DriveResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes a save of `s` to `path` and says so.
pub fn save(s: &Session, path: &Path, out: &mut dyn Write) -> DriveResult<()> {
    match s.runtime.save().write(path) {
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

    /// Plays until an ending, the end of the inputs, or `:quit`.
    pub fn run(&mut self, s: &mut Session) -> DriveResult<Outcome> {
        let title = s.runtime.bundle().story.title.clone();
        writeln!(self.out, "== {title} ==")?;
        if s.has_model() {
            writeln!(self.out, "[lines written by {}]", s.backend().label())?;
        } else {
            writeln!(
                self.out,
                "[no model: generated lines use the authored fallback lines]"
            )?;
        }
        loop {
            match s.runtime.beat()? {
                Beat::Line { speaker, text, .. } => {
                    match speaker {
                        Some(k) => writeln!(self.out, "{}: {text}", s.runtime.display_name(&k))?,
                        None => writeln!(self.out, "{text}")?,
                    }
                    s.runtime.advance()?;
                }
                Beat::Generate(req) => {
                    write!(self.out, "{}: ", s.runtime.display_name(&req.speaker))?;
                    self.out.flush()?;
                    let out = &mut *self.out;
                    let spoken = s.speak(&req, &mut |t| {
                        let _ = write!(out, "{t}");
                        let _ = out.flush();
                    });
                    writeln!(self.out)?;
                    if let Some(e) = &spoken.error {
                        writeln!(self.out, "[model failed, fallback line used: {e}]")?;
                    }
                    s.runtime.finish_line(&spoken.text)?;
                }
                Beat::Choice {
                    speaker,
                    text,
                    options,
                    ..
                } => {
                    if let Some(t) = text {
                        match &speaker {
                            Some(k) => writeln!(self.out, "{}: {t}", s.runtime.display_name(k))?,
                            None => writeln!(self.out, "{t}")?,
                        }
                    }
                    for (n, o) in options.iter().enumerate() {
                        writeln!(self.out, "  {}) {}", n + 1, o.text)?;
                    }
                    let pick = loop {
                        let input = match self.input(s)? {
                            Input::Move(m) => m,
                            Input::Stop(o) => return Ok(o),
                        };
                        match input.trim().parse::<usize>() {
                            Ok(n) if (1..=options.len()).contains(&n) => {
                                break options[n - 1].index;
                            }
                            _ => writeln!(self.out, "(type a number from 1 to {})", options.len())?,
                        }
                    };
                    // A run-time error (an effect dividing by zero) leaves the story where it
                    // was: say so and ask again.
                    if let Err(e) = s.runtime.choose(pick) {
                        writeln!(self.out, "[error: {e}; the story stays here]")?;
                    }
                }
                Beat::FreeInput { speaker, text, .. } => {
                    if let Some(t) = text {
                        writeln!(self.out, "{}: {t}", s.runtime.display_name(&speaker))?;
                    }
                    writeln!(self.out, "  (say anything)")?;
                    let input = match self.input(s)? {
                        Input::Move(m) => m,
                        Input::Stop(o) => return Ok(o),
                    };
                    let routed = match s.route(&input) {
                        Ok(r) => r,
                        Err(e) => {
                            writeln!(self.out, "[error: {e}; the story stays here]")?;
                            continue;
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
                }
                Beat::Ended { title, text, .. } => {
                    if let Some(t) = text {
                        writeln!(self.out, "{t}")?;
                    }
                    writeln!(self.out, "== Ending: {title} ==")?;
                    return Ok(Outcome::Ended);
                }
            }
        }
    }
}
