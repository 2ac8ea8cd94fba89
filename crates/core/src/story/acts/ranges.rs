//! Regular expressions for numbers in a range, so that an action's numeric arguments are held to
//! their declared range by the grammar itself (and a float never runs on digit after digit).

/// Decimals a float argument may have.
pub(super) const DECIMALS: u32 = 2;
const SCALE: f64 = 100.0;

/// Whole numbers in `min..=max`, without leading zeros (`-0` excluded).
pub(super) fn int_range(min: i64, max: i64) -> String {
    signed(min, max, unsigned)
}

/// Numbers in `min..=max` written with at most [`DECIMALS`] decimals; `None` when no such
/// number lies in the range.
pub(super) fn decimal_range(min: f64, max: f64) -> Option<String> {
    // Tolerate the binary error of `0.07 * 100` and the like.
    let lo = (min * SCALE - 1e-6).ceil();
    let hi = (max * SCALE + 1e-6).floor();
    #[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN (from NaN bounds) is no range either
    if !(lo <= hi) || lo.abs() > 1e15 || hi.abs() > 1e15 {
        return None;
    }
    Some(signed(lo as i64, hi as i64, hundredths))
}

/// Splits a range at zero: the negative part is `-` and the positive form of its magnitudes.
fn signed(min: i64, max: i64, positive: impl Fn(u64, u64) -> String) -> String {
    let mut alts = Vec::new();
    if min < 0 {
        let (lo, hi) = (max.min(-1).unsigned_abs(), min.unsigned_abs());
        alts.push(format!("-({})", positive(lo, hi)));
    }
    if max >= 0 {
        alts.push(positive(min.max(0) as u64, max as u64));
    }
    group(&alts)
}

/// Scaled values `lo..=hi` (in hundredths) as `I`, `I.D` or `I.DD`.
fn hundredths(lo: u64, hi: u64) -> String {
    let (ilo, flo, ihi, fhi) = (lo / 100, lo % 100, hi / 100, hi % 100);
    if ilo == ihi {
        return format!("{}{}", ilo, fraction(flo, fhi));
    }
    let mut alts = vec![format!("{}{}", ilo, fraction(flo, 99))];
    if ihi - ilo >= 2 {
        alts.push(format!(
            "({}){}",
            unsigned(ilo + 1, ihi - 1),
            fraction(0, 99)
        ));
    }
    alts.push(format!("{}{}", ihi, fraction(0, fhi)));
    group(&alts)
}

/// The decimals of a fraction in `lo..=hi` hundredths: optional when 0 is allowed.
fn fraction(lo: u64, hi: u64) -> String {
    let mut alts = Vec::new();
    let ones: String = (0..10u64)
        .filter(|d| (lo..=hi).contains(&(d * 10)))
        .map(|d| d.to_string())
        .collect();
    if !ones.is_empty() {
        alts.push(format!("[{ones}]"));
    }
    for tens in 0..10u64 {
        let (a, b) = (lo.max(tens * 10), hi.min(tens * 10 + 9));
        if a <= b {
            alts.push(format!("{tens}[{}-{}]", a % 10, b % 10));
        }
    }
    let inner = format!("\\.{}", group(&alts));
    if lo == 0 {
        format!("({inner})?")
    } else {
        inner
    }
}

/// Non-negative whole numbers `lo..=hi`, without leading zeros.
fn unsigned(lo: u64, hi: u64) -> String {
    let mut alts = Vec::new();
    let (dlo, dhi) = (digits(lo), digits(hi));
    for len in dlo..=dhi {
        let floor = if len == 1 { 0 } else { 10u64.pow(len - 1) };
        let ceil = 10u64.saturating_pow(len).saturating_sub(1);
        let (a, b) = (lo.max(floor), hi.min(ceil));
        alts.push(same_length(
            a.to_string().as_bytes(),
            b.to_string().as_bytes(),
        ));
    }
    group(&alts)
}

fn digits(n: u64) -> u32 {
    n.checked_ilog10().unwrap_or(0) + 1
}

/// Digit strings of one length between `lo` and `hi`.
fn same_length(lo: &[u8], hi: &[u8]) -> String {
    let Some((&l, lrest)) = lo.split_first() else {
        return String::new();
    };
    let (h, hrest) = (hi[0], &hi[1..]);
    if l == h {
        return format!("{}{}", l as char, same_length(lrest, hrest));
    }
    let rest = lrest.len();
    if lrest.iter().all(|&c| c == b'0') && hrest.iter().all(|&c| c == b'9') {
        return format!("[{}-{}]{}", l as char, h as char, any(rest));
    }
    let mut alts = vec![format!(
        "{}{}",
        l as char,
        same_length(lrest, &vec![b'9'; rest])
    )];
    if h - l >= 2 {
        alts.push(format!(
            "[{}-{}]{}",
            (l + 1) as char,
            (h - 1) as char,
            any(rest)
        ));
    }
    alts.push(format!(
        "{}{}",
        h as char,
        same_length(&vec![b'0'; rest], hrest)
    ));
    group(&alts)
}

fn any(n: usize) -> String {
    match n {
        0 => String::new(),
        1 => "[0-9]".into(),
        n => format!("[0-9]{{{n}}}"),
    }
}

fn group(alts: &[String]) -> String {
    match alts {
        [one] => one.clone(),
        many => format!("({})", many.join("|")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(rx: &str) -> regex::Regex {
        regex::Regex::new(&format!("^(?:{rx})$")).unwrap()
    }

    #[test]
    fn whole_number_ranges_match_exactly_their_members() {
        for (lo, hi) in [
            (0, 0),
            (1, 3),
            (-3, 3),
            (7, 123),
            (-250, -17),
            (0, 1000),
            (95, 105),
        ] {
            let re = full(&int_range(lo, hi));
            for n in lo - 50..=hi + 50 {
                assert_eq!(
                    re.is_match(&n.to_string()),
                    (lo..=hi).contains(&n),
                    "{n} in {lo}..={hi}"
                );
            }
            assert!(!re.is_match("-0") && !re.is_match("01"), "{lo}..={hi}");
        }
    }

    #[test]
    fn decimal_ranges_match_two_decimal_numbers_in_range() {
        for (lo, hi) in [
            (0.0, 9.5),
            (-1.25, 2.0),
            (0.07, 0.3),
            (3.0, 3.0),
            (-12.5, -0.5),
            (0.0, 250.75),
        ] {
            let re = full(&decimal_range(lo, hi).unwrap());
            for k in -2000i64..=30000 {
                let x = k as f64 / 100.0;
                for text in [format!("{x}"), format!("{x:.2}"), format!("{x:.1}")] {
                    let Ok(v) = text.parse::<f64>() else { continue };
                    if v != x || text == "-0" || text.starts_with("-0.0") && v == 0.0 {
                        continue;
                    }
                    assert_eq!(
                        re.is_match(&text),
                        v >= lo && v <= hi,
                        "{text} in {lo}..={hi}"
                    );
                }
            }
            assert!(!re.is_match("1.234") && !re.is_match("1."), "{lo}..={hi}");
        }
        assert_eq!(decimal_range(0.001, 0.009), None);
    }
}
