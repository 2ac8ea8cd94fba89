//! What happens to an expression's text before it is parsed: limits that keep the parser and
//! checker from recursing too deep, and `visits(node)` / `seen(node)` rewritten into
//! identifiers the evaluator reads from the visit counts.

use super::ExprError;

/// The longest expression accepted, in bytes.
pub const MAX_EXPR_LEN: usize = 4096;
/// The deepest nesting of parentheses accepted.
pub const MAX_EXPR_DEPTH: usize = 32;
/// The most operators accepted in one expression (a long `&&` chain nests as deep as it is
/// long in the parser's tree).
pub const MAX_EXPR_OPERATORS: usize = 128;

/// Refuses, before parsing, expressions whose parse or check would recurse too deep: a
/// hostile or generated file must give an error, never overflow the stack.
pub(super) fn limits(source: &str) -> Result<(), ExprError> {
    let too = |reason: String| {
        let mut start: String = source.chars().take(40).collect();
        if start.len() < source.len() {
            start.push('…');
        }
        Err(ExprError::TooComplex {
            expr: start,
            reason,
        })
    };
    if source.len() > MAX_EXPR_LEN {
        return too(format!(
            "{} bytes long (at most {MAX_EXPR_LEN})",
            source.len()
        ));
    }
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in source.chars() {
        match c {
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_EXPR_DEPTH {
        return too(format!(
            "parentheses nested {deepest} deep (at most {MAX_EXPR_DEPTH})"
        ));
    }
    // Operators are runs of operator characters (`>=`, `&&` …), except that every `!` (but
    // the one of `!=`) and every `-` counts alone: a run of them is that many nested unary
    // operators (`!!!!` is four), each a level of the parsed tree.
    let is_op = |c: char| "+-*/%^<>=!&|".contains(c);
    let mut operators = 0;
    let mut in_op = false;
    let mut chars = source.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '-' || (c == '!' && chars.peek() != Some(&'=')) {
            operators += 1;
            in_op = false;
            continue;
        }
        operators += usize::from(is_op(c) && !in_op);
        in_op = is_op(c);
    }
    if operators > MAX_EXPR_OPERATORS {
        return too(format!(
            "{operators} operators (at most {MAX_EXPR_OPERATORS})"
        ));
    }
    Ok(())
}

/// What `visits(node)` and `seen(node)` become inside the parsed tree (identifiers a story
/// variable cannot have: variable names cannot start with `__`).
pub(super) const VISITS: &str = "__visits__";
pub(super) const SEEN: &str = "__seen__";

/// Rewrites `visits(node)` (times the node was entered, an int) and `seen(node)` (entered at
/// least once, a bool) into identifiers the evaluator reads from the visit counts.
pub(super) fn visit_calls(source: &str) -> Result<String, ExprError> {
    let mut out = String::with_capacity(source.len());
    let mut rest = source;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while let Some(i) = rest.find(['v', 's']) {
        let (before, tail) = rest.split_at(i);
        out.push_str(before);
        let boundary = !out.chars().next_back().is_some_and(ident);
        let call = [("visits", VISITS), ("seen", SEEN)]
            .into_iter()
            .find(|(name, _)| boundary && tail.starts_with(name))
            .and_then(|(name, prefix)| {
                let args = tail[name.len()..].trim_start().strip_prefix('(')?;
                let close = args.find(')')?;
                Some((prefix, args[..close].trim(), &args[close + 1..], name))
            });
        match call {
            Some((prefix, node, after, name)) => {
                if node.is_empty() || !node.chars().all(ident) {
                    return Err(ExprError::Syntax {
                        expr: source.to_owned(),
                        reason: format!("`{name}(..)` takes one node id, e.g. `{name}(hub)`"),
                    });
                }
                out.push_str(prefix);
                out.push_str(node);
                rest = after;
            }
            None => {
                let c = tail.chars().next().map_or(1, char::len_utf8);
                out.push_str(&tail[..c]);
                rest = &tail[c..];
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}
