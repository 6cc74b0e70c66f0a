//! Masking key ids and keeping Config annotations within AWS's limit.

/// AWS Config rejects an evaluation whose annotation is longer than this.
pub const ANNOTATION_MAX_CHARS: usize = 256;

/// Masks an access key id to its first and last four characters: `AKIA…WXYZ`.
///
/// Ids of 8 characters or fewer are masked completely (`…`), so no caller can leak a short
/// identifier by accident.
pub fn mask_key_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 8 {
        return "…".into();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Cuts `text` to at most `max` characters (never inside a character), ending with `…` when
/// something was cut.
pub fn truncate_annotation(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_key_id("AKIAIOSFODNN7EXAMPLE"), "AKIA…MPLE");
        assert_eq!(mask_key_id("AKIA1234"), "…");
        assert_eq!(mask_key_id(""), "…");
    }

    #[test]
    fn truncates_on_char_boundaries() {
        let s = "é".repeat(300);
        let t = truncate_annotation(&s, 256);
        assert_eq!(t.chars().count(), 256);
        assert!(t.ends_with('…'));
        assert_eq!(truncate_annotation("short", 256), "short");
        assert_eq!(truncate_annotation(&"a".repeat(256), 256), "a".repeat(256));
    }
}
