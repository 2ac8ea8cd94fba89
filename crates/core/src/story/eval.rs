//! What a player notices in a generated line, checked by rules that need no judge model: markup
//! and role labels that leaked, the speaker's own name in front of its line, assistant talk, a
//! line cut mid-sentence, repetition within the line or of the NPC's earlier lines, and the
//! persona's own description said back. `llama-dialogue eval` runs these over play-throughs.

use std::collections::HashSet;

/// One problem found in a line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "check", content = "detail", rename_all = "snake_case")]
pub enum Finding {
    /// Nothing but whitespace.
    Empty,
    /// Template or markup text (`<|im_end|>`, `[INST]`, `</s>`, a role label…).
    Markup(String),
    /// A heading of the prompt itself ("What you want:", "Your next line:"…): the model went on
    /// writing its instructions instead of speaking.
    PromptEcho(String),
    /// The speaker's own name in front of its line ("Tobin: …").
    SpeakerPrefix(String),
    /// Talk of an assistant, not a character ("as an AI", "language model"…).
    OutOfCharacter(String),
    /// The line stops mid-sentence (no closing punctuation).
    Cut(String),
    /// A run of words said twice in the line, or a line (or a long run of it) the NPC said before.
    Repeats(String),
    /// A long run of words from the persona's own description.
    EchoesPersona(String),
}

impl Finding {
    /// The check's name, as in reports.
    pub fn check(&self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Markup(_) => "markup",
            Self::PromptEcho(_) => "prompt_echo",
            Self::SpeakerPrefix(_) => "speaker_prefix",
            Self::OutOfCharacter(_) => "out_of_character",
            Self::Cut(_) => "cut",
            Self::Repeats(_) => "repeats",
            Self::EchoesPersona(_) => "echoes_persona",
        }
    }

    /// Every check, in report order.
    pub const CHECKS: [&'static str; 8] = [
        "empty",
        "markup",
        "prompt_echo",
        "speaker_prefix",
        "out_of_character",
        "cut",
        "repeats",
        "echoes_persona",
    ];
}

/// What a line is checked against.
#[derive(Debug, Clone, Default)]
pub struct LineContext<'a> {
    /// Names the speaker goes by (its display name, its cast key).
    pub names: Vec<&'a str>,
    /// The persona's own text (description, backstory, speaking style).
    pub persona: &'a str,
    /// The lines this NPC said before, oldest first.
    pub earlier: &'a [String],
}

/// Words in a row that count as repetition within a line, or as an echo of the persona.
const RUN: usize = 4;
/// Words in a row that count as repeating an earlier line.
const EARLIER_RUN: usize = 6;

const MARKUP: [&str; 14] = [
    "<|",
    "|>",
    "[inst]",
    "[/inst]",
    "<<sys>>",
    "<</sys>>",
    "<s>",
    "</s>",
    "<think>",
    "</think>",
    "<start_of_turn>",
    "<end_of_turn>",
    "### instruction",
    "### response",
];
/// The headings `Persona::system_text` and the story prompt use (lowercase).
const HEADINGS: [&str; 12] = [
    "what you want:",
    "you refuse to talk about:",
    "your next line:",
    "the story so far:",
    "how you feel:",
    "your past:",
    "how you speak:",
    "personality:",
    "examples of how you talk",
    "[notes for your next line",
    "what you know now:",
    "the player says:",
];
const ROLES: [&str; 6] = ["assistant:", "user:", "system:", "player:", "human:", "ai:"];
const ASSISTANT: [&str; 10] = [
    "as an ai",
    "an ai language model",
    "language model",
    "i'm an ai",
    "i am an ai",
    "i cannot help with",
    "i can't help with",
    "as a helpful assistant",
    "my instructions",
    "my programming",
];

/// The problems of `line` (empty when it passes every check).
pub fn check_line(line: &str, ctx: &LineContext<'_>) -> Vec<Finding> {
    let text = line.trim();
    if text.is_empty() {
        return vec![Finding::Empty];
    }
    let lower = text.to_lowercase();
    let mut found = Vec::new();
    if let Some(m) = MARKUP.iter().find(|m| lower.contains(*m)) {
        found.push(Finding::Markup((*m).to_owned()));
    } else if let Some(r) = lower
        .lines()
        .map(str::trim_start)
        .find_map(|l| ROLES.iter().find(|r| l.starts_with(*r)))
    {
        found.push(Finding::Markup((*r).to_owned()));
    }
    if let Some(h) = HEADINGS.iter().find(|h| lower.contains(*h)) {
        found.push(Finding::PromptEcho((*h).to_owned()));
    }
    for name in ctx.names.iter().filter(|n| !n.is_empty()) {
        let prefix = format!("{}:", name.to_lowercase());
        if lower.starts_with(&prefix) {
            found.push(Finding::SpeakerPrefix(text[..prefix.len()].to_owned()));
            break;
        }
    }
    if let Some(a) = ASSISTANT.iter().find(|a| lower.contains(*a)) {
        found.push(Finding::OutOfCharacter((*a).to_owned()));
    }
    let end = text.trim_end_matches(['"', '\'', '”', '’', ')', '*', '_']);
    if !end.ends_with(['.', '!', '?', '…', '~', '♪']) {
        let tail: String = last_words(text, 3);
        found.push(Finding::Cut(tail));
    }
    let words = words(&lower);
    if let Some(run) = repeated_run(&words, RUN) {
        found.push(Finding::Repeats(run));
    } else if let Some(run) = ctx.earlier.iter().find_map(|e| {
        let earlier = e.to_lowercase();
        shared_run(&words, &self::words(&earlier), EARLIER_RUN)
    }) {
        found.push(Finding::Repeats(run));
    }
    let persona = ctx.persona.to_lowercase();
    let persona = self::words(&persona);
    if let Some(run) = shared_run(&words, &persona, RUN + 2) {
        found.push(Finding::EchoesPersona(run));
    }
    found
}

/// Lowercased words (letters, digits and apostrophes).
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .collect()
}

fn last_words(text: &str, n: usize) -> String {
    let w: Vec<&str> = text.split_whitespace().collect();
    w[w.len().saturating_sub(n)..].join(" ")
}

/// A run of `n` words that occurs twice in `words` (without overlapping).
fn repeated_run(words: &[&str], n: usize) -> Option<String> {
    let mut seen = std::collections::HashMap::new();
    for (i, run) in words.windows(n).enumerate() {
        match seen.get(run) {
            Some(&j) if i >= j + n => return Some(run.join(" ")),
            Some(_) => {}
            None => {
                seen.insert(run, i);
            }
        }
    }
    None
}

/// A run of `n` words that `a` shares with `b`.
fn shared_run(a: &[&str], b: &[&str], n: usize) -> Option<String> {
    let runs: HashSet<&[&str]> = b.windows(n).collect();
    a.windows(n).find(|r| runs.contains(r)).map(|r| r.join(" "))
}

#[cfg(test)]
mod tests {
    use super::{Finding, LineContext, check_line};

    fn checks(line: &str, earlier: &[String]) -> Vec<&'static str> {
        let ctx = LineContext {
            names: vec!["Tobin", "tobin"],
            persona: "Tobin is the village smith, gruff but kind, who lost his brother at sea.",
            earlier,
        };
        check_line(line, &ctx).iter().map(Finding::check).collect()
    }

    #[test]
    fn a_good_line_passes() {
        assert!(checks("Aye, the forge is hot tonight. Mind your sleeves!", &[]).is_empty());
        assert!(checks("\"Go on, then,\" he says.", &[]).is_empty());
    }

    #[test]
    fn each_check_catches_its_problem() {
        assert_eq!(checks("   ", &[]), ["empty"]);
        assert_eq!(checks("Welcome<|im_end|> friend.", &[]), ["markup"]);
        assert_eq!(checks("Fine.\nUser: and you?", &[]), ["markup"]);
        assert_eq!(
            checks("Tobin: Tobin: the forge is hot.", &[]),
            ["speaker_prefix"]
        );
        assert_eq!(
            checks("I will.\nWhat you want: keep the forge lit.", &[]),
            ["prompt_echo"]
        );
        assert_eq!(
            checks("As an AI, I have no forge.", &[]),
            ["out_of_character"]
        );
        assert_eq!(
            checks("The forge is hot on the tender, which", &[]),
            ["cut"]
        );
        assert_eq!(
            checks("I am fine, I am fine, I am fine, I am fine.", &[]),
            ["repeats"]
        );
        let earlier = ["The sea took my brother one grey winter morning.".to_owned()];
        assert_eq!(
            checks("Aye. The sea took my brother one grey winter.", &earlier),
            ["repeats"]
        );
        assert_eq!(
            checks(
                "I am the village smith, gruff but kind, who lost his brother.",
                &[]
            ),
            ["echoes_persona"]
        );
    }
}
