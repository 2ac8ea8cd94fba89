//! The [`Moderator`] trait: what checks player text and generated lines, with the authored
//! rules as the first implementation. A game adds its own (a classifier, local or remote).

use serde::{Deserialize, Serialize};

use super::rules::{Applies, SafetyRules};
use crate::engine::safety::{BannedPhrases, fold};

/// Which way the text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the player to a character.
    Input,
    /// From a character (generated) to the player.
    Output,
}

/// Who is talking where, for rules scoped to personas and stories.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModerationContext<'a> {
    /// The character's persona id.
    pub persona: Option<&'a str>,
    /// The story's id (`None`: free chat).
    pub story: Option<&'a str>,
}

/// A rule broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flag {
    /// The rule's id (or a classifier's label).
    pub rule: String,
    /// Which way the text went.
    pub direction: Direction,
    /// The text that broke it.
    pub matched: String,
    /// The moderator that flagged it.
    pub by: String,
}

/// Checks what players say and what characters say. Called on the frame thread, so it must
/// return quickly: a slow classifier should run on its own thread and answer from what it has
/// decided.
pub trait Moderator: Send + Sync + 'static {
    /// A short name (in flags and the audit log).
    fn name(&self) -> &str;
    /// Player text, before it reaches a prompt or the story's routing.
    fn check_input(&self, text: &str, ctx: &ModerationContext<'_>) -> Option<Flag>;
    /// A generated line: all of it so far, before the newest part is shown. With
    /// [`whole_lines`](Self::whole_lines), only complete lines, held until then.
    fn check_output(&self, line: &str, ctx: &ModerationContext<'_>) -> Option<Flag>;
    /// Whether the moderator judges only complete lines (the line is then not streamed: it is
    /// shown when it is complete and passed).
    fn whole_lines(&self) -> bool {
        false
    }
}

impl SafetyRules {
    fn phrases(&self, direction: Direction, ctx: &ModerationContext<'_>) -> BannedPhrases {
        let mut set = BannedPhrases::new();
        for (i, rule) in self.file.rules.iter().enumerate() {
            let wanted = match direction {
                Direction::Input => rule.applies_to != Applies::Output,
                Direction::Output => rule.applies_to != Applies::Input,
            };
            if !wanted || !rule.covers(ctx.persona, ctx.story) {
                continue;
            }
            for w in &rule.words {
                set.add(w, i, true);
            }
            for f in &rule.fragments {
                set.add(f, i, false);
            }
        }
        set
    }

    fn flag(&self, rule: usize, direction: Direction, matched: &str) -> Flag {
        Flag {
            rule: self.rule(rule).map_or_else(String::new, |r| r.id.clone()),
            direction,
            matched: matched.to_owned(),
            by: self.name().to_owned(),
        }
    }

    /// The deflection line for a flag on player text.
    pub fn deflection(&self, flag: &Flag) -> &str {
        self.file
            .rules
            .iter()
            .find(|r| r.id == flag.rule)
            .and_then(|r| r.deflection.as_deref())
            .unwrap_or(&self.file.deflection)
    }
}

impl Moderator for SafetyRules {
    fn name(&self) -> &str {
        "safety.ron"
    }

    fn check_input(&self, text: &str, ctx: &ModerationContext<'_>) -> Option<Flag> {
        let set = self.phrases(Direction::Input, ctx);
        if let Some(hit) = set.find(text, 0, true) {
            return Some(self.flag(hit.rule, Direction::Input, &text[hit.start..hit.end]));
        }
        // Patterns see the text as typed and as folded (look-alikes and spellings undone).
        let folded = fold(text).text;
        for (i, rule) in self.file.rules.iter().enumerate() {
            if rule.applies_to == Applies::Output || !rule.covers(ctx.persona, ctx.story) {
                continue;
            }
            for p in self.patterns.get(i).into_iter().flatten() {
                if let Some(m) = p.find(text).or_else(|| p.find(&folded)) {
                    return Some(self.flag(i, Direction::Input, m.as_str()));
                }
            }
        }
        None
    }

    fn check_output(&self, line: &str, ctx: &ModerationContext<'_>) -> Option<Flag> {
        let hit = self.phrases(Direction::Output, ctx).find(line, 0, true)?;
        Some(self.flag(hit.rule, Direction::Output, &line[hit.start..hit.end]))
    }
}
