//! Promoting a generated line to an authored one: a `Generate` node becomes a `Line` with the
//! text the writer picked (a line the model wrote that they liked), keeping its id, speaker,
//! effects and `next`. The rest of the file is left exactly as it was.

use super::diagnostic::SourceText;
use super::model::{Node, Story};

/// Why a node cannot be promoted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromoteError {
    /// No node has this id.
    #[error("no node `{0}` in the story")]
    NoSuchNode(String),
    /// The node leads elsewhere when an action is taken; an authored line takes none.
    #[error("`{0}` has `on_action` edges, which an authored line cannot take; remove them first")]
    HasActionEdges(String),
    /// The node is not a `Generate` node.
    #[error("`{node}` is a {kind} node; only Generate nodes hold generated lines")]
    NotGenerated {
        /// The node.
        node: String,
        /// Its kind.
        kind: &'static str,
    },
    /// The node's text could not be found in the file (it was edited since it was parsed).
    #[error("cannot find node `{0}` in the file's text")]
    NotInText(String),
    /// The line is empty.
    #[error("the line is empty")]
    Empty,
}

fn quote(s: &str) -> String {
    let mut out = String::from('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The offset just past the `)` that closes the `(` at `open`, skipping strings and comments.
fn closing(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, open);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i = text[i..].find("*/").map_or(bytes.len(), |n| i + n + 1);
            }
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The story file's text with `Generate` node `id` turned into a `Line` saying `text`.
pub fn promote_generated(
    source: &SourceText,
    story: &Story,
    id: &str,
    text: &str,
) -> Result<String, PromoteError> {
    let node = story
        .node(id)
        .ok_or_else(|| PromoteError::NoSuchNode(id.to_owned()))?;
    let Node::Generate {
        speaker,
        directive,
        effects,
        next,
        on_action,
        ..
    } = node
    else {
        return Err(PromoteError::NotGenerated {
            node: id.to_owned(),
            kind: node.kind_name(),
        });
    };
    if !on_action.is_empty() {
        return Err(PromoteError::HasActionEdges(id.to_owned()));
    }
    let text = text.trim();
    if text.is_empty() {
        return Err(PromoteError::Empty);
    }
    let missing = || PromoteError::NotInText(id.to_owned());
    let nodes = source.find_field("nodes", 0).unwrap_or(0);
    let (_, id_at) = source
        .id_fields(nodes)
        .into_iter()
        .find(|(x, _)| x == id)
        .ok_or_else(missing)?;
    let start = source.text[..id_at].rfind("Generate").ok_or_else(missing)?;
    let open = start + source.text[start..].find('(').ok_or_else(missing)?;
    let end = closing(&source.text, open).ok_or_else(missing)?;
    // Indent the fields as the node's first field was.
    let line_start = source.text[..id_at].rfind('\n').map_or(0, |n| n + 1);
    let field_indent: String = source.text[line_start..id_at]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let node_line = source.text[..start].rfind('\n').map_or(0, |n| n + 1);
    let node_indent: String = source.text[node_line..start]
        .chars()
        .take_while(|c| c.is_whitespace())
        .collect();
    let (nl, ind) = if field_indent.is_empty() {
        (" ", String::new())
    } else {
        ("\n", field_indent)
    };
    let mut line = format!(
        "Line({nl}{ind}// Promoted from a generated line; its directive was: {}\n",
        directive.replace('\n', " ")
    );
    if nl == " " {
        line.push_str(&node_indent);
    }
    line.push_str(&format!("{ind}id: {},{nl}", quote(id)));
    line.push_str(&format!("{ind}speaker: {},{nl}", quote(speaker)));
    line.push_str(&format!("{ind}text: {},{nl}", quote(text)));
    if !effects.is_empty() {
        let written = ron::to_string(effects).unwrap_or_default();
        line.push_str(&format!("{ind}effects: {written},{nl}"));
    }
    line.push_str(&format!("{ind}next: {},{nl}", quote(next)));
    if nl == "\n" {
        line.push_str(&node_indent);
    }
    line.push(')');
    Ok(format!(
        "{}{line}{}",
        &source.text[..start],
        &source.text[end..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closing_skips_strings_and_comments() {
        let t = r#"G(a: "x)", /* ) */ b: (1), // )
        c: 2) tail"#;
        let end = closing(t, 1).unwrap();
        assert_eq!(&t[end..], " tail");
        assert_eq!(quote("a \"b\" \\"), r#""a \"b\" \\""#);
    }
}
