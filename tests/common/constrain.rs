//! Independent checks of constrained output, shared by the engine's and the command line's tests.

use regex::Regex;
use serde_json::Value;

/// A check that the whole text matches the regular expression `rx` (the `regex` crate, not the
/// grammar engine under test).
pub fn full_match(rx: &str) -> impl Fn(&str) -> Result<(), String> {
    let re = Regex::new(&format!("^(?:{rx})$")).unwrap();
    move |text| {
        re.is_match(text)
            .then_some(())
            .ok_or_else(|| format!("does not match /{rx}/"))
    }
}

/// The rules of `tests/fixtures/constrain/trade.schema.json`, by hand.
pub fn trade(text: &str) -> Result<(), String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let o = v.as_object().ok_or("not an object")?;
    let allowed = ["name", "mood", "trust", "price", "item", "tags"];
    if let Some(k) = o.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown key {k}"));
    }
    let name = o["name"].as_str().ok_or("name is not a string")?;
    if name.chars().count() > 16 {
        return Err("name longer than 16".into());
    }
    let mood = o["mood"].as_str().ok_or("mood is not a string")?;
    if !["calm", "angry", "glad"].contains(&mood) {
        return Err(format!("mood {mood}"));
    }
    // JSON's `-0` is a whole number too.
    let whole = |v: &Value| {
        v.as_i64()
            .or(v.as_f64().filter(|x| x.fract() == 0.0).map(|x| x as i64))
    };
    let trust = whole(&o["trust"]).ok_or("trust is not an integer")?;
    if !(-3..=3).contains(&trust) {
        return Err(format!("trust {trust}"));
    }
    let price = o["price"].as_f64().ok_or("price is not a number")?;
    if !(0.0..=100.0).contains(&price) {
        return Err(format!("price {price}"));
    }
    let item = o["item"].as_object().ok_or("item is not an object")?;
    if item.len() != 2 {
        return Err("item has other keys".into());
    }
    let kind = item["kind"].as_str().ok_or("item.kind")?;
    if !["key", "coin", "map"].contains(&kind) {
        return Err(format!("item.kind {kind}"));
    }
    let count = whole(&item["count"]).ok_or("item.count")?;
    if !(1..=9).contains(&count) {
        return Err(format!("item.count {count}"));
    }
    if let Some(tags) = o.get("tags") {
        let tags = tags.as_array().ok_or("tags is not an array")?;
        if tags.len() > 3 || tags.iter().any(|t| t != "old" && t != "new") {
            return Err(format!("tags {tags:?}"));
        }
    }
    Ok(())
}
