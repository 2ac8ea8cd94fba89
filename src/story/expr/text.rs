//! `{variable}` interpolation in authored text.

use std::collections::BTreeMap;

use crate::story::model::VarValue;

/// A piece of an interpolated text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Literal text.
    Text(&'a str),
    /// `{name}`.
    Var(&'a str),
}

/// Splits `text` at `{variable}` references; `{{` and `}}` are literal braces.
pub fn parse_interpolation(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let Some(i) = rest.find(['{', '}']) else {
            out.push(Piece::Text(rest));
            break;
        };
        if i > 0 {
            out.push(Piece::Text(&rest[..i]));
        }
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = after;
        } else if let Some(after) = tail.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = after;
        } else if tail.starts_with('}') {
            return Err("a lone `}`; write `}}` for a literal brace".into());
        } else {
            let Some(end) = tail.find('}') else {
                return Err("`{` is never closed; write `{{` for a literal brace".into());
            };
            let name = tail[1..end].trim();
            let valid = !name.is_empty()
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit());
            if !valid {
                return Err(format!("`{{{}}}` is not a variable name", &tail[1..end]));
            }
            out.push(Piece::Var(name));
            rest = &tail[end + 1..];
        }
    }
    Ok(out)
}

/// Fills `{variable}` references with their values (unknown ones stay as written).
pub fn interpolate(text: &str, vars: &BTreeMap<String, VarValue>) -> String {
    match parse_interpolation(text) {
        Ok(pieces) => pieces
            .into_iter()
            .map(|p| match p {
                Piece::Text(t) => t.to_owned(),
                Piece::Var(v) => vars
                    .get(v)
                    .map_or_else(|| format!("{{{v}}}"), |x| x.to_string()),
            })
            .collect(),
        Err(_) => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_parses_and_fills() {
        let vars: BTreeMap<String, VarValue> = [("n".to_owned(), VarValue::Int(3))].into();
        assert_eq!(interpolate("{n} coins {{not}}", &vars), "3 coins {not}");
        assert!(parse_interpolation("{n").is_err());
        assert!(parse_interpolation("a } b").is_err());
        assert!(parse_interpolation("{two words}").is_err());
    }
}
