//! Authored text with inline logic: `{variable}`, `{if cond: then | otherwise}`, and the
//! alternatives `{seq: a | b}`, `{cycle: a | b}`, `{shuffle: a | b}`, `{once: a | b}`. Blocks
//! nest. `{{` is a literal `{` everywhere; outside blocks `}}` is a literal `}`; inside a block
//! `||` is a literal `|` and `}` always closes. See docs/AUTHORING.md, "Text".

/// Deepest nesting of blocks inside one text.
pub const MAX_TEXT_DEPTH: usize = 16;

/// How an alternatives block picks its item, by how many times the node was entered before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AltKind {
    /// `seq`: one item per visit, then the last one forever.
    Sequence,
    /// `cycle`: one item per visit, round and round.
    Cycle,
    /// `shuffle`: every item once per round, in an order that is random but the same for
    /// every play-through.
    Shuffle,
    /// `once`: one item per visit, then nothing.
    Once,
}

impl AltKind {
    fn from_word(word: &str) -> Option<Self> {
        Some(match word {
            "seq" => Self::Sequence,
            "cycle" => Self::Cycle,
            "shuffle" => Self::Shuffle,
            "once" => Self::Once,
            _ => return None,
        })
    }
}

/// A piece of an authored text.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// `{name}`: a variable's value.
    Var(String),
    /// `{if cond: then | otherwise}` (the `| otherwise` part may be left out).
    If {
        /// The condition's source.
        cond: String,
        /// Shown when it holds.
        then: Vec<Piece>,
        /// Shown otherwise.
        otherwise: Vec<Piece>,
    },
    /// `{seq: a | b | c}` and the other alternatives.
    Alt {
        /// How an item is picked.
        kind: AltKind,
        /// Where the block starts in the text (a shuffle's seed).
        at: usize,
        /// The items.
        items: Vec<Vec<Piece>>,
    },
}

/// What ended a run of pieces.
#[derive(Debug, PartialEq)]
enum End {
    Eof,
    Bar,
    Close,
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

/// Parses an authored text into pieces; the error says what is wrong, in words.
pub fn parse_text(text: &str) -> Result<Vec<Piece>, String> {
    let mut p = Parser { text, pos: 0 };
    let (pieces, end) = p.run(0)?;
    debug_assert_eq!(end, End::Eof);
    Ok(pieces)
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    /// Pieces up to the end of the text (depth 0) or to a `|` / `}` of the enclosing block.
    fn run(&mut self, depth: usize) -> Result<(Vec<Piece>, End), String> {
        let mut out: Vec<Piece> = Vec::new();
        let mut literal = String::new();
        let specials: &[char] = if depth == 0 {
            &['{', '}']
        } else {
            &['{', '}', '|']
        };
        loop {
            let rest = self.rest();
            let Some(i) = rest.find(specials) else {
                if depth > 0 {
                    return Err("a `{` block is never closed with `}`".into());
                }
                literal.push_str(rest);
                self.pos = self.text.len();
                flush(&mut out, &mut literal);
                return Ok((out, End::Eof));
            };
            literal.push_str(&rest[..i]);
            self.pos += i;
            let tail = self.rest();
            if tail.starts_with("{{") {
                literal.push('{');
                self.pos += 2;
            } else if depth == 0 && tail.starts_with("}}") {
                literal.push('}');
                self.pos += 2;
            } else if depth > 0 && tail.starts_with("||") {
                literal.push('|');
                self.pos += 2;
            } else if tail.starts_with('}') {
                if depth == 0 {
                    return Err("a lone `}`; write `}}` for a literal brace".into());
                }
                self.pos += 1;
                flush(&mut out, &mut literal);
                return Ok((out, End::Close));
            } else if tail.starts_with('|') {
                self.pos += 1;
                flush(&mut out, &mut literal);
                return Ok((out, End::Bar));
            } else {
                flush(&mut out, &mut literal);
                out.push(self.block(depth + 1)?);
            }
        }
    }

    /// A `{…}` block; `self.pos` is at its `{`.
    fn block(&mut self, depth: usize) -> Result<Piece, String> {
        if depth > MAX_TEXT_DEPTH {
            return Err(format!("blocks nest deeper than {MAX_TEXT_DEPTH}"));
        }
        let at = self.pos;
        self.pos += 1;
        let rest = self.rest();
        let body = rest.trim_start();
        let word_len = body
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let word = &body[..word_len];
        let after = &body[word_len..];
        let lead = rest.len() - body.len();
        if let Some(kind) = AltKind::from_word(word)
            && after.trim_start().starts_with(':')
        {
            let colon = after.find(':').unwrap_or(0);
            self.pos += lead + word_len + colon + 1;
            let items = self.items(depth)?;
            return Ok(Piece::Alt { kind, at, items });
        }
        if word == "if" && after.starts_with(char::is_whitespace) {
            self.pos += lead + word_len;
            let cond = self.condition()?;
            let mut items = self.items(depth)?;
            if items.len() > 2 {
                return Err(format!(
                    "`{{if {cond}: …}}` has {} parts; it takes `then | otherwise` (write `||` \
                     for a literal `|`)",
                    items.len()
                ));
            }
            let otherwise = if items.len() == 2 {
                items.pop().unwrap_or_default()
            } else {
                Vec::new()
            };
            let then = items.pop().unwrap_or_default();
            return Ok(Piece::If {
                cond,
                then,
                otherwise,
            });
        }
        let Some(end) = rest.find('}') else {
            return Err("`{` is never closed; write `{{` for a literal brace".into());
        };
        let name = rest[..end].trim().to_owned();
        let valid = !name.is_empty()
            && name.chars().all(|c| c.is_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid {
            return Err(format!(
                "`{{{}}}` is not a variable name, an `{{if cond: …}}` or a `{{seq: …}}` block",
                &rest[..end]
            ));
        }
        self.pos += end + 1;
        Ok(Piece::Var(name))
    }

    /// The condition of an `if`, up to its `:` (outside string literals).
    fn condition(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let mut quoted = false;
        let mut escaped = false;
        for (i, c) in rest.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ':' if !quoted => {
                    let cond = rest[..i].trim().to_owned();
                    if cond.is_empty() {
                        return Err("`{if: …}` has no condition".into());
                    }
                    self.pos += i + 1;
                    return Ok(cond);
                }
                '{' | '}' if !quoted => break,
                _ => {}
            }
        }
        Err("an `{if …}` block needs `:` after its condition".into())
    }

    /// The `|`-separated items of a block, up to its `}`.
    fn items(&mut self, depth: usize) -> Result<Vec<Vec<Piece>>, String> {
        let mut items = Vec::new();
        loop {
            let (mut item, end) = self.run(depth)?;
            trim_item(&mut item);
            items.push(item);
            if end == End::Close {
                return Ok(items);
            }
        }
    }
}

fn flush(out: &mut Vec<Piece>, literal: &mut String) {
    if !literal.is_empty() {
        out.push(Piece::Text(std::mem::take(literal)));
    }
}

/// The space around `|` and after `:` is layout, not text: `{seq: a | b}` gives "a", "b".
fn trim_item(item: &mut Vec<Piece>) {
    if let Some(Piece::Text(t)) = item.first_mut() {
        *t = t.trim_start().to_owned();
    }
    if let Some(Piece::Text(t)) = item.last_mut() {
        *t = t.trim_end().to_owned();
    }
    item.retain(|p| !matches!(p, Piece::Text(t) if t.is_empty()));
}

/// Every `{variable}` a text reads, blocks included (for checks).
pub fn vars_read(pieces: &[Piece], out: &mut Vec<String>) {
    for p in pieces {
        match p {
            Piece::Text(_) => {}
            Piece::Var(v) => out.push(v.clone()),
            Piece::If {
                then, otherwise, ..
            } => {
                vars_read(then, out);
                vars_read(otherwise, out);
            }
            Piece::Alt { items, .. } => items.iter().for_each(|i| vars_read(i, out)),
        }
    }
}

/// Every `{if …}` condition of a text, blocks included (for checks).
pub fn conditions(pieces: &[Piece], out: &mut Vec<String>) {
    for p in pieces {
        match p {
            Piece::Text(_) | Piece::Var(_) => {}
            Piece::If {
                cond,
                then,
                otherwise,
            } => {
                out.push(cond.clone());
                conditions(then, out);
                conditions(otherwise, out);
            }
            Piece::Alt { items, .. } => items.iter().for_each(|i| conditions(i, out)),
        }
    }
}

/// Whether a text reads as authored text must: blocks parse, every variable is declared, every
/// `{if}` condition type-checks. The error says what is wrong, in words.
pub fn check_text(text: &str, env: &super::TypeEnv) -> Result<(), String> {
    let pieces = parse_text(text)?;
    let mut read = Vec::new();
    vars_read(&pieces, &mut read);
    if let Some(v) = read.iter().find(|v| !env.contains_key(*v)) {
        return Err(format!("`{{{v}}}` is not a declared variable"));
    }
    let mut conds = Vec::new();
    conditions(&pieces, &mut conds);
    for c in conds {
        super::Expr::parse(&c)
            .and_then(|e| e.check_condition(env))
            .map_err(|e| format!("condition: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Piece {
        Piece::Text(s.into())
    }

    #[test]
    fn parses_blocks_and_escapes() {
        assert_eq!(
            parse_text("{n} coins {{not}}").unwrap(),
            vec![Piece::Var("n".into()), text(" coins {not}")]
        );
        let p = parse_text("A {if clues > 2: You know {n}. | Go home.} B").unwrap();
        assert_eq!(
            p[1],
            Piece::If {
                cond: "clues > 2".into(),
                then: vec![text("You know "), Piece::Var("n".into()), text(".")],
                otherwise: vec![text("Go home.")],
            }
        );
        let p = parse_text("{cycle: a || b | {seq: x | y}}").unwrap();
        let Piece::Alt { kind, items, at } = &p[0] else {
            panic!("{p:?}")
        };
        assert_eq!((*kind, *at, items.len()), (AltKind::Cycle, 0, 2));
        assert_eq!(items[0], vec![text("a | b")]);
        assert!(matches!(items[1][0], Piece::Alt { at: 17, .. }));
        let p = parse_text("{if name == \"a:b\": yes}").unwrap();
        assert!(matches!(&p[0], Piece::If { cond, otherwise, .. }
            if cond == "name == \"a:b\"" && otherwise.is_empty()));
    }

    #[test]
    fn refuses_what_cannot_be_read() {
        for (bad, want) in [
            ("{n", "never closed"),
            ("a } b", "lone `}`"),
            ("{two words}", "not a variable name"),
            ("{seq: a | b", "never closed"),
            ("{if x a | b}", "needs `:`"),
            ("{if x: a | b | c}", "3 parts"),
            ("{if : a}", "no condition"),
        ] {
            let e = parse_text(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        let deep = "{seq: ".repeat(MAX_TEXT_DEPTH + 1) + &"}".repeat(MAX_TEXT_DEPTH + 1);
        assert!(parse_text(&deep).unwrap_err().contains("deeper"));
        let ok = "{seq: ".repeat(MAX_TEXT_DEPTH) + &"}".repeat(MAX_TEXT_DEPTH);
        parse_text(&ok).unwrap();
    }
}
