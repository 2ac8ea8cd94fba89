//! Stable line ids and translations. Every authored text a player sees gets an id derived from
//! its node and its role (`wren_greets`, `hub.prompt`, `hub.to.road`), so reordering nodes or
//! options and editing the text keep it. A [`Translation`] (a CSV table, one per locale) maps
//! ids to text in another language; [`localize`] gives the story in that language, falling back
//! to the authored text for every line not translated.

mod table;

pub use table::{StringsError, TranslatedLine, Translation, translation_path};

use std::collections::BTreeMap;

use super::expr::check_text;
use super::model::{ChoiceOption, Node, Story, VarType};

/// One authored text and where it belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoredLine {
    /// The stable id.
    pub id: String,
    /// The node it belongs to (empty for the story's title).
    pub node: String,
    /// Who says it, if a cast member does.
    pub speaker: Option<String>,
    /// The authored text.
    pub text: String,
}

/// The id of the story's title.
pub const TITLE_ID: &str = "story:title";

/// The ids of a choice's options: `node.to.<next>`, and `node.to.<next>.2`, `.3`, … for
/// later options leading to the same node. Reordering options that lead to different nodes
/// keeps every id.
pub fn option_ids(node: &str, options: &[ChoiceOption]) -> Vec<String> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    options
        .iter()
        .map(|o| {
            let n = seen.entry(o.next.as_str()).or_insert(0);
            *n += 1;
            if *n == 1 {
                format!("{node}.to.{}", o.next)
            } else {
                format!("{node}.to.{}.{n}", o.next)
            }
        })
        .collect()
}

/// What [`visit`] calls: id, node, speaker, and the text to read or replace.
type TextVisitor<'a> = dyn FnMut(&str, &str, Option<&str>, &mut String) + 'a;

/// Calls `f` with the id, node, speaker and a mutable reference of every authored text the
/// player sees, in file order. Directives and remembered facts go to the model, not the
/// player, and have no id.
fn visit(story: &mut Story, f: &mut TextVisitor<'_>) {
    f(TITLE_ID, "", None, &mut story.title);
    for node in &mut story.nodes {
        match node {
            Node::Line {
                id, speaker, text, ..
            } => f(id, id, speaker.as_deref(), text),
            Node::Generate {
                id,
                speaker,
                fallback,
                ..
            } => f(&format!("{id}.fallback"), id, Some(speaker), fallback),
            Node::Choice {
                id,
                speaker,
                text,
                options,
                ..
            } => {
                if let Some(t) = text {
                    f(&format!("{id}.prompt"), id, speaker.as_deref(), t);
                }
                for (oid, o) in option_ids(id, options).iter().zip(options.iter_mut()) {
                    f(oid, id, None, &mut o.text);
                }
            }
            Node::FreeInput {
                id, speaker, text, ..
            } => {
                if let Some(t) = text {
                    f(&format!("{id}.prompt"), id, Some(speaker), t);
                }
            }
            Node::Branch { .. } => {}
            Node::Ending {
                id, title, text, ..
            } => {
                f(&format!("{id}.title"), id, None, title);
                if let Some(t) = text {
                    f(&format!("{id}.text"), id, None, t);
                }
            }
        }
    }
}

/// Every authored text the player sees, with its id, in file order.
pub fn authored_lines(story: &Story) -> Vec<AuthoredLine> {
    let mut copy = story.clone();
    let mut out = Vec::new();
    visit(&mut copy, &mut |id, node, speaker, text| {
        out.push(AuthoredLine {
            id: id.to_owned(),
            node: node.to_owned(),
            speaker: speaker.map(str::to_owned),
            text: text.clone(),
        });
    });
    out
}

/// The story with every translated line in place of the authored one (untranslated lines
/// keep the authored text). Check the translation first with [`check_translation`].
pub fn localize(story: &Story, translation: &Translation) -> Story {
    let mut out = story.clone();
    visit(&mut out, &mut |id, _, _, text| {
        if let Some(t) = translation.lines.get(id)
            && !t.text.trim().is_empty()
        {
            *text = t.text.clone();
        }
    });
    out
}

impl super::StoryBundle {
    /// This story with `translation`'s lines in place of the authored ones (see [`localize`]);
    /// the cast, source and warnings stay.
    pub fn localized(&self, translation: &Translation) -> Self {
        Self {
            story: localize(&self.story, translation),
            ..self.clone()
        }
    }
}

/// What is wrong or out of date in a translation of `story`, one message per finding, each
/// starting with the table's `file:line`. Errors: a translated text that does not read (a bad
/// `{…}` block, an undeclared variable, a condition that does not type-check). Warnings: ids
/// the story no longer has, lines whose authored text changed since they were translated,
/// lines not translated yet.
pub fn check_translation(story: &Story, translation: &Translation) -> TranslationReport {
    let env: BTreeMap<String, VarType> = story
        .variables
        .iter()
        .map(|(k, v)| (k.clone(), v.var_type()))
        .collect();
    let lines = authored_lines(story);
    let mut report = TranslationReport::default();
    let at = |id: &str| {
        let row = translation.lines.get(id).map_or(0, |l| l.row);
        format!("{}:{row}", translation.path.display())
    };
    for line in &lines {
        let Some(t) = translation.lines.get(&line.id) else {
            report.untranslated.push(line.id.clone());
            continue;
        };
        if t.text.trim().is_empty() {
            report.untranslated.push(line.id.clone());
            continue;
        }
        if t.source != line.text {
            report.warnings.push(format!(
                "{}: `{}`: the authored text changed since it was translated (now {:?}); \
                 check the translation, then copy the new text into `source`",
                at(&line.id),
                line.id,
                line.text
            ));
        }
        if let Err(why) = check_text(&t.text, &env) {
            report
                .errors
                .push(format!("{}: `{}`: {why}", at(&line.id), line.id));
        }
    }
    let known: std::collections::HashSet<&str> = lines.iter().map(|l| l.id.as_str()).collect();
    for (id, t) in &translation.lines {
        if !known.contains(id.as_str()) {
            report.warnings.push(format!(
                "{}:{}: `{id}` is not a line of story `{}` (removed or renamed?); it is ignored",
                translation.path.display(),
                t.row,
                story.id
            ));
        }
    }
    report
}

/// The findings of [`check_translation`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TranslationReport {
    /// Translated texts that cannot be used.
    pub errors: Vec<String>,
    /// Lines of the table the story no longer has, and stale translations.
    pub warnings: Vec<String>,
    /// Ids with no translation (their authored text is used).
    pub untranslated: Vec<String>,
}
