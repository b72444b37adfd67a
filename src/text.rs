//! Plain text: what may be stored in a text column. C0 control characters other than tab and newline
//! (and DEL) have no place in names, titles or notes, and PostgreSQL refuses NUL outright, so they are
//! refused from clients and removed from what Google sends.

/// A character plain text may not hold.
pub fn is_forbidden(c: char) -> bool {
    (c.is_ascii_control() && c != '\t' && c != '\n') || c == '\u{7f}'
}

/// `text` without the characters plain text may not hold.
pub fn cleaned(text: &str) -> String {
    text.chars().filter(|c| !is_forbidden(*c)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tab_newline_and_unicode_are_text_other_controls_are_not() {
        for c in ['\t', '\n', ' ', 'é', '日', '\u{85}'] {
            assert!(!is_forbidden(c), "{c:?}");
        }
        for c in ['\0', '\r', '\u{1b}', '\u{7f}', '\u{1f}'] {
            assert!(is_forbidden(c), "{c:?}");
        }
    }

    #[test]
    fn cleaning_removes_only_forbidden_characters() {
        assert_eq!(cleaned("Te\0am\r\n\tcal\u{1b}endar é"), "Team\n\tcalendar é");
        assert_eq!(cleaned("plain"), "plain");
    }
}
