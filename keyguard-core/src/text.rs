//! Text an account's users control (user names, paths, tags, CloudTrail's user agents), made
//! safe for where keyguard writes it: printable and bounded for any output, and neutralized for
//! a spreadsheet. HTML escaping is the templates' (handlebars escapes every value).

use std::borrow::Cow;

/// `text` without control characters (newlines, escapes, bells become a space) and cut to at
/// most `max` characters, ending with `…` when something was cut; borrowed when it already is.
pub fn printable_cow(text: &str, max: usize) -> Cow<'_, str> {
    // Printable ASCII (most user agents and every address) is checked byte by byte.
    let ascii = text.bytes().all(|b| (0x20..0x7f).contains(&b));
    if text.len() <= max && (ascii || text.chars().all(|c| !c.is_control())) {
        return Cow::Borrowed(text);
    }
    let chars = text.chars().count();
    let mut out: String = text
        .chars()
        .take(if chars > max {
            max.saturating_sub(1)
        } else {
            max
        })
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if chars > max {
        out.push('…');
    }
    Cow::Owned(out)
}

/// [`printable_cow`], owned.
pub fn printable(text: &str, max: usize) -> String {
    printable_cow(text, max).into_owned()
}

/// A CSV cell a spreadsheet will not run as a formula: text starting with `=`, `+`, `-`, `@`, a
/// tab or a carriage return gets a leading `'` (OWASP's advice for CSV injection).
pub fn csv_cell(text: &str) -> Cow<'_, str> {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{text}")),
        _ => Cow::Borrowed(text),
    }
}

/// Whether `s` has the shape of an access key id (`AKIA…` long-term, `ASIA…` a session's):
/// 16–128 upper-case letters and digits (IAM's AccessKeyId constraints).
pub fn is_access_key_id(s: &str) -> bool {
    (s.starts_with("AKIA") || s.starts_with("ASIA"))
        && (16..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `text` with every access key id in it (`AKIA…`/`ASIA…` and 16 upper-case letters or digits)
/// masked as keyguard shows keys (`AKIA…WXYZ`): for text keyguard passes on from elsewhere (an
/// AWS Health event's description names the key in full).
pub fn mask_key_ids(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let id_len = rest
            .bytes()
            .take_while(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            .count();
        if (rest.starts_with("AKIA") || rest.starts_with("ASIA")) && id_len >= 20 {
            out.push_str(&crate::annotation::mask_key_id(&rest[..id_len]));
            i += id_len;
        } else {
            let c = rest.chars().next().expect("not at the end");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralized_and_text_is_kept() {
        for f in ["=1+1", "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx"] {
            assert!(csv_cell(f).starts_with('\''), "{f:?}");
        }
        assert_eq!(csv_cell("ci-deploy"), "ci-deploy");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn key_ids_in_passed_on_text_are_masked() {
        let masked = mask_key_ids("key AKIAIOSFODNN7EXAMPLE of ci, not AKIA1 nor é");
        assert_eq!(
            masked,
            format!(
                "key {} of ci, not AKIA1 nor é",
                crate::annotation::mask_key_id("AKIAIOSFODNN7EXAMPLE")
            )
        );
        assert!(!masked.contains("IOSFODNN7"));
    }

    #[test]
    fn control_characters_go_and_long_text_is_cut() {
        assert_eq!(printable("a\nb\u{1b}[31m", 20), "a b [31m");
        let long = "é".repeat(300);
        let cut = printable(&long, 10);
        assert_eq!(cut.chars().count(), 10);
        assert!(cut.ends_with('…'));
        assert!(matches!(
            printable_cow("aws-cli/2.15", 20),
            Cow::Borrowed(_)
        ));
    }
}
