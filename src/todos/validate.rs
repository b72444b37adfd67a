//! Input rules of the todos domain: pure functions, each naming the field it checks.

use crate::error::{AppError, AppResult};

pub const MAX_LIST_NAME_CHARS: usize = 200;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_NOTES_CHARS: usize = 10_000;
/// Todos per page of the `todos` connection when `first` is not given.
pub const DEFAULT_PAGE_SIZE: i32 = 50;
/// The largest `first` accepted.
pub const MAX_PAGE_SIZE: i32 = 200;

/// A list name, trimmed: 1 to 200 characters.
pub fn list_name(raw: &str) -> AppResult<String> {
    required_text("name", raw, MAX_LIST_NAME_CHARS)
}

/// A todo title, trimmed: 1 to 500 characters.
pub fn title(raw: &str) -> AppResult<String> {
    required_text("title", raw, MAX_TITLE_CHARS)
}

/// Notes are kept as written (whitespace may be meaningful), up to 10,000 characters.
pub fn notes(raw: &str) -> AppResult<String> {
    if raw.chars().count() > MAX_NOTES_CHARS {
        return Err(AppError::bad_input(
            "notes",
            format!("must be at most {MAX_NOTES_CHARS} characters"),
        ));
    }
    Ok(raw.to_owned())
}

/// A colour `#rrggbb`, stored in lower case.
pub fn color(raw: &str) -> AppResult<String> {
    let hex = raw.strip_prefix('#').unwrap_or_default();
    if raw.len() != 7 || hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(AppError::bad_input("color", "must be #rrggbb (six hex digits)"));
    }
    Ok(raw.to_ascii_lowercase())
}

/// A list's new index; larger than the last index means "at the end".
pub fn list_position(position: i32) -> AppResult<usize> {
    usize::try_from(position).map_err(|_| AppError::bad_input("position", "must be 0 or more"))
}

/// The page size: `first`, or the default; 0 to 200.
pub fn page_size(first: Option<i32>) -> AppResult<u64> {
    let first = first.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(0..=MAX_PAGE_SIZE).contains(&first) {
        return Err(AppError::bad_input(
            "first",
            format!("must be between 0 and {MAX_PAGE_SIZE}"),
        ));
    }
    u64::try_from(first).map_err(|_| AppError::bad_input("first", "must not be negative"))
}

/// A todo is due on a day or at an instant, never both.
pub fn single_due(has_date: bool, has_at: bool) -> AppResult<()> {
    if has_date && has_at {
        return Err(AppError::bad_input(
            "dueAt",
            "give either dueDate or dueAt, not both",
        ));
    }
    Ok(())
}

fn required_text(field: &'static str, raw: &str, max_chars: usize) -> AppResult<String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if trimmed.chars().count() > max_chars {
        return Err(AppError::bad_input(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(result: AppResult<impl std::fmt::Debug>) -> String {
        match result {
            Err(AppError::BadUserInput { field, .. }) => field,
            other => panic!("expected BAD_USER_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn names_are_trimmed_and_bounded_in_characters() {
        assert_eq!(list_name("  Groceries ").expect("valid"), "Groceries");
        assert_eq!(field_of(list_name("   ")), "name");
        assert_eq!(
            list_name(&"é".repeat(200)).expect("200 chars").chars().count(),
            200
        );
        assert_eq!(field_of(list_name(&"é".repeat(201))), "name");
    }

    #[test]
    fn titles_are_required_and_bounded() {
        assert_eq!(title(" Buy milk\n").expect("valid"), "Buy milk");
        assert_eq!(field_of(title("")), "title");
        assert!(title(&"x".repeat(500)).is_ok());
        assert_eq!(field_of(title(&"x".repeat(501))), "title");
    }

    #[test]
    fn notes_are_kept_verbatim_up_to_the_limit() {
        assert_eq!(notes("  indented\n").expect("valid"), "  indented\n");
        assert!(notes(&"x".repeat(10_000)).is_ok());
        assert_eq!(field_of(notes(&"x".repeat(10_001))), "notes");
    }

    #[test]
    fn colors_are_six_hex_digits() {
        assert_eq!(color("#A0b1C2").expect("valid"), "#a0b1c2");
        for bad in ["a0b1c2", "#a0b1c", "#a0b1c2d", "#g0b1c2", "", "#", "##a0b1c"] {
            assert_eq!(field_of(color(bad)), "color", "{bad:?}");
        }
    }

    #[test]
    fn due_date_and_due_at_are_exclusive() {
        assert!(single_due(true, false).is_ok());
        assert!(single_due(false, true).is_ok());
        assert!(single_due(false, false).is_ok());
        assert_eq!(field_of(single_due(true, true)), "dueAt");
    }

    #[test]
    fn page_sizes_default_to_50_and_stop_at_200() {
        assert_eq!(page_size(None).expect("default"), 50);
        assert_eq!(page_size(Some(0)).expect("empty page"), 0);
        assert_eq!(page_size(Some(200)).expect("max"), 200);
        assert_eq!(field_of(page_size(Some(201))), "first");
        assert_eq!(field_of(page_size(Some(-1))), "first");
    }

    #[test]
    fn positions_are_not_negative() {
        assert_eq!(list_position(3).expect("valid"), 3);
        assert_eq!(field_of(list_position(-1)), "position");
    }
}
