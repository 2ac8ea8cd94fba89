//! Filling an authored text: variables, `{if …}` conditions and alternatives picked by how
//! many times the node was entered.

use std::collections::BTreeMap;

use crate::story::model::VarValue;

use super::text::{AltKind, Piece, parse_text};
use super::{Expr, ExprError};

/// What a text is filled from.
#[derive(Debug, Clone, Copy)]
pub struct TextScope<'a> {
    /// Variable values.
    pub vars: &'a BTreeMap<String, VarValue>,
    /// Visit counts by node (for `visits(..)` in conditions and for alternatives).
    pub visits: &'a BTreeMap<String, u32>,
    /// The node the text belongs to: its visit count picks alternatives.
    pub node: &'a str,
}

/// Fills `text`; an `{if}` condition that fails to evaluate is an error. Unknown variables stay
/// as written (checks report them before a story runs).
pub fn render(text: &str, scope: &TextScope<'_>) -> Result<String, ExprError> {
    let pieces = parse_text(text).map_err(|reason| ExprError::Syntax {
        expr: text.to_owned(),
        reason,
    })?;
    // The visit that is showing the text: the first entry is visit 0.
    let visit = scope.visits.get(scope.node).copied().unwrap_or(1).max(1) - 1;
    let mut out = String::new();
    fill(&pieces, scope, visit as usize, &mut out)?;
    let blocks = pieces
        .iter()
        .any(|p| matches!(p, Piece::If { .. } | Piece::Alt { .. }));
    if blocks {
        // A part that shows nothing leaves its spaces around: "A {once: B} C" → "A C".
        out = collapse_spaces(&out);
    }
    Ok(out)
}

fn collapse_spaces(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(out.trim_end_matches(' ').len());
    out
}

/// Fills `{variable}` references and blocks with no visit counts (every node unvisited);
/// a text that cannot be read or evaluated comes back as written.
pub fn interpolate(text: &str, vars: &BTreeMap<String, VarValue>) -> String {
    let visits = BTreeMap::new();
    let scope = TextScope {
        vars,
        visits: &visits,
        node: "",
    };
    render(text, &scope).unwrap_or_else(|_| text.to_owned())
}

fn fill(
    pieces: &[Piece],
    scope: &TextScope<'_>,
    visit: usize,
    out: &mut String,
) -> Result<(), ExprError> {
    for p in pieces {
        match p {
            Piece::Text(t) => out.push_str(t),
            Piece::Var(v) => match scope.vars.get(v) {
                Some(x) => out.push_str(&x.to_string()),
                None => {
                    out.push('{');
                    out.push_str(v);
                    out.push('}');
                }
            },
            Piece::If {
                cond,
                then,
                otherwise,
            } => {
                let holds = Expr::parse(cond)?.holds_in(scope.vars, scope.visits)?;
                fill(if holds { then } else { otherwise }, scope, visit, out)?;
            }
            Piece::Alt { kind, at, items } => {
                if let Some(item) = pick(*kind, *at, items.len(), scope.node, visit) {
                    fill(&items[item], scope, visit, out)?;
                }
            }
        }
    }
    Ok(())
}

/// Which item an alternatives block shows on `visit` (0-based), if any.
fn pick(kind: AltKind, at: usize, len: usize, node: &str, visit: usize) -> Option<usize> {
    if len == 0 {
        return None;
    }
    match kind {
        AltKind::Sequence => Some(visit.min(len - 1)),
        AltKind::Cycle => Some(visit % len),
        AltKind::Once => (visit < len).then_some(visit),
        AltKind::Shuffle => {
            let round = (visit / len) as u64;
            let mut order: Vec<usize> = (0..len).collect();
            let mut seed = mix(hash(node) ^ mix(at as u64) ^ mix(round.wrapping_add(1)));
            // Fisher–Yates with a SplitMix64 stream: the same order in every play-through.
            for i in (1..len).rev() {
                seed = mix(seed);
                let j = (seed % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            Some(order[visit % len])
        }
    }
}

fn hash(s: &str) -> u64 {
    // FNV-1a: stable across runs and platforms (std's hasher is not).
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show(text: &str, visits: u32) -> String {
        let vars: BTreeMap<String, VarValue> = [
            ("n".to_owned(), VarValue::Int(3)),
            ("d".to_owned(), VarValue::Int(0)),
        ]
        .into();
        let visits: BTreeMap<String, u32> = [("hub".to_owned(), visits)].into();
        let scope = TextScope {
            vars: &vars,
            visits: &visits,
            node: "hub",
        };
        render(text, &scope).unwrap()
    }

    #[test]
    fn alternatives_follow_the_visits() {
        let seq: Vec<String> = (1..=4).map(|v| show("{seq: a | b | c}", v)).collect();
        assert_eq!(seq, ["a", "b", "c", "c"]);
        let cycle: Vec<String> = (1..=4).map(|v| show("{cycle: a | b | c}", v)).collect();
        assert_eq!(cycle, ["a", "b", "c", "a"]);
        let once: Vec<String> = (1..=3).map(|v| show("x{once: a | b}", v)).collect();
        assert_eq!(once, ["xa", "xb", "x"]);
        assert_eq!(show("A {once: B} C", 2), "A C", "no doubled space");
        for round in 0..3 {
            let mut got: Vec<String> = (1..=5)
                .map(|v| show("{shuffle: a|b|c|d|e}", round * 5 + v))
                .collect();
            got.sort();
            assert_eq!(got, ["a", "b", "c", "d", "e"], "round {round}");
        }
        let first_rounds: Vec<String> = (1..=10).map(|v| show("{shuffle: a|b|c|d|e}", v)).collect();
        assert_ne!(first_rounds[..5], first_rounds[5..], "rounds reshuffle");
    }

    #[test]
    fn conditions_and_nesting() {
        assert_eq!(show("{if n > 2: many ({n}) | few}", 1), "many (3)");
        assert_eq!(show("{if visits(hub) > 1: back | new}", 1), "new");
        assert_eq!(show("{if visits(hub) > 1: back | new}", 2), "back");
        assert_eq!(show("{seq: {if n < 0: neg} | second}", 1), "");
        let vars: BTreeMap<String, VarValue> = [("d".to_owned(), VarValue::Int(0))].into();
        let visits = BTreeMap::new();
        let scope = TextScope {
            vars: &vars,
            visits: &visits,
            node: "x",
        };
        let e = render("{if 1 / d > 0: x}", &scope).unwrap_err();
        assert!(matches!(e, ExprError::Eval { .. }), "{e}");
        assert_eq!(interpolate("{missing} {{", &vars), "{missing} {");
    }
}
