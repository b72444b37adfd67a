//! The search index's side of the events' texts: how a text splits into words, which entries
//! (exact forms, folded forms, beginnings) an event gets, and writing them in the transaction that writes
//! the event. No dependency on the rest of the events domain: the cache's codec calls it.

use std::collections::{BTreeSet, HashSet};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use unicode_normalization::{UnicodeNormalization as _, char::is_combining_mark};
use uuid::Uuid;

use crate::{
    crypto::{BLIND_INDEX_LEN, BlindIndex, Cipher},
    entities::event_search_tokens,
    error::{AppError, AppResult},
};

/// Shortest indexed beginning of a word: one letter would match a large share of any calendar.
pub const MIN_PREFIX_CHARS: usize = 2;
/// Longest indexed beginning of a word: bounds the index at about 20 entries per distinct word.
pub const MAX_PREFIX_CHARS: usize = 20;
/// Distinct words indexed per event.
pub const MAX_WORDS_PER_EVENT: usize = 1_000;
/// Rows per multi-row insert of index entries (three values each: well under both databases' limits).
const INSERT_ROWS: usize = 1_000;
/// Event ids per `IN (...)` list.
const IDS_PER_STATEMENT: usize = 500;

// ---------------------------------------------------------------------------------------------------
// Words

/// One word of a text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Word {
    /// Lowercase, accents kept, NFC.
    pub exact: String,
    /// Lowercase, combining marks dropped.
    pub folded: String,
}

/// The words of `text`, in order, repeats included.
pub fn words(text: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut exact = String::new();
    let mut folded = String::new();
    let mut flush = |exact: &mut String, folded: &mut String| {
        if !folded.is_empty() {
            out.push(Word {
                exact: exact.nfc().collect(),
                folded: std::mem::take(folded),
            });
        }
        exact.clear();
        folded.clear();
    };
    for c in text.nfkd() {
        if is_combining_mark(c) {
            // A mark belongs to the letter before it; after a separator it is noise.
            if !folded.is_empty() {
                exact.push(c);
            }
        } else if c.is_alphanumeric() {
            for lower in c.to_lowercase() {
                exact.push(lower);
                if !is_combining_mark(lower) {
                    folded.push(lower);
                }
            }
        } else {
            flush(&mut exact, &mut folded);
        }
    }
    flush(&mut exact, &mut folded);
    out
}

/// What an index entry stands for; each kind is its own digest domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A word's exact form.
    Exact,
    /// A word's folded form.
    Folded,
    /// The beginning of a word's folded form.
    Prefix,
}

impl Kind {
    pub fn domain(self) -> &'static [u8] {
        match self {
            Kind::Exact => b"chronos-search/exact",
            Kind::Folded => b"chronos-search/word",
            Kind::Prefix => b"chronos-search/prefix",
        }
    }
}

/// The beginnings of a folded word that the index holds: its first 2 to 20 characters.
pub(super) fn prefixes(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .char_indices()
        .map(|(at, c)| at + c.len_utf8())
        .enumerate()
        .filter(|(count, _)| (MIN_PREFIX_CHARS..=MAX_PREFIX_CHARS).contains(&(count + 1)))
        .map(move |(_, end)| &folded[..end])
}

/// The index entries of an event's texts: every distinct word's exact and folded forms and beginnings.
pub fn entries<'a>(texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<(Kind, String)> {
    let mut seen: HashSet<Word> = HashSet::new();
    let mut out = BTreeSet::new();
    for word in texts.into_iter().flat_map(words) {
        if seen.len() >= MAX_WORDS_PER_EVENT {
            break;
        }
        if !seen.insert(word.clone()) {
            continue;
        }
        for prefix in prefixes(&word.folded) {
            out.insert((Kind::Prefix, prefix.to_owned()));
        }
        out.insert((Kind::Exact, word.exact));
        out.insert((Kind::Folded, word.folded));
    }
    out
}

/// The digests an event's texts are indexed under, deduplicated.
pub fn digests<'a>(
    index: &BlindIndex,
    texts: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<[u8; BLIND_INDEX_LEN]> {
    entries(texts)
        .into_iter()
        .map(|(kind, value)| index.digest(kind.domain(), &value))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Index maintenance

/// An event's texts to index, or `None` to leave it out of the index (tombstoned, cancelled).
pub type Texts<'a> = Option<[Option<&'a str>; 3]>;

/// Rewrites the index entries of events in the caller's transaction, under the primary key: each
/// event's entries are replaced by those of its texts (none for `None`). Events in `inserted` were
/// inserted by this transaction and hold no entries yet: nothing is deleted for them, so a batch of new
/// events costs only the inserts, however many entries the rest of the index holds. One statement per
/// [`IDS_PER_STATEMENT`] events that held entries, plus one per [`INSERT_ROWS`] entries.
pub async fn reindex<C: ConnectionTrait>(
    txn: &C,
    cipher: &Cipher,
    user_id: Uuid,
    events: &[(Uuid, Texts<'_>)],
    inserted: &HashSet<Uuid>,
) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let index = cipher
        .blind_index(user_id)
        .map_err(|e| AppError::internal(anyhow::anyhow!("search key: {e}")))?;
    let held: Vec<Uuid> = events
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !inserted.contains(id))
        .collect();
    forget(txn, &held).await?;
    let mut rows = Vec::new();
    for (event_id, texts) in events {
        let Some(texts) = texts else { continue };
        for digest in digests(&index, texts.iter().flatten().copied()) {
            rows.push(event_search_tokens::ActiveModel {
                event_id: sea_orm::ActiveValue::Set(*event_id),
                token: sea_orm::ActiveValue::Set(digest.to_vec()),
                key_id: sea_orm::ActiveValue::Set(index.key_id().to_owned()),
            });
        }
    }
    while !rows.is_empty() {
        let rest = rows.split_off(rows.len().min(INSERT_ROWS));
        event_search_tokens::Entity::insert_many(std::mem::replace(&mut rows, rest))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Removes the index entries of events (tombstoned ones), in the caller's transaction.
pub async fn forget<C: ConnectionTrait>(txn: &C, event_ids: &[Uuid]) -> AppResult<()> {
    for chunk in event_ids.chunks(IDS_PER_STATEMENT) {
        event_search_tokens::Entity::delete_many()
            .filter(event_search_tokens::Column::EventId.is_in(chunk.iter().copied()))
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folded(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.folded).collect()
    }

    fn exact(text: &str) -> Vec<String> {
        words(text).into_iter().map(|w| w.exact).collect()
    }

    #[test]
    fn words_are_lowercased_and_split_on_everything_but_letters_and_digits() {
        assert_eq!(folded("Team Sync"), ["team", "sync"]);
        assert_eq!(
            folded("Q3-planning: budget/2027, (draft)!"),
            ["q3", "planning", "budget", "2027", "draft"]
        );
        assert_eq!(folded("  \t\n"), Vec::<String>::new());
        assert_eq!(folded("!!! ... ---"), Vec::<String>::new());
        assert_eq!(folded("e-mail o'clock"), ["e", "mail", "o", "clock"]);
        assert_eq!(folded("snake_case_name"), ["snake", "case", "name"]);
        assert_eq!(folded("dentist🦷appointment"), ["dentist", "appointment"]);
        assert_eq!(folded("ROOM 4B"), ["room", "4b"]);
    }

    #[test]
    fn accents_are_folded_and_kept_in_the_exact_form() {
        assert_eq!(folded("Café Crème"), ["cafe", "creme"]);
        assert_eq!(exact("Café Crème"), ["café", "crème"]);
        // Decomposed input reads the same as precomposed.
        assert_eq!(words("Cafe\u{301}"), words("Café"));
        assert_eq!(folded("Ärztin Übung Öl"), ["arztin", "ubung", "ol"]);
        assert_eq!(folded("ŻÓŁW São Paulo"), ["zołw", "sao", "paulo"]);
        assert_eq!(folded("Ελληνικά"), ["ελληνικα"]);
        // Letters that do not decompose stay themselves.
        assert_eq!(folded("Straße"), ["straße"]);
        // A mark after a separator belongs to no word.
        assert_eq!(folded("a \u{301}b"), ["a", "b"]);
    }

    #[test]
    fn compatibility_forms_fold_to_their_plain_letters() {
        assert_eq!(folded("ﬁnance"), ["finance"]);
        assert_eq!(folded("ＡＢＣ１２"), ["abc12"]);
        assert_eq!(folded("İstanbul"), ["istanbul"]);
    }

    #[test]
    fn prefixes_run_from_two_to_twenty_characters() {
        assert_eq!(prefixes("a").count(), 0);
        assert_eq!(prefixes("ab").collect::<Vec<_>>(), ["ab"]);
        assert_eq!(prefixes("café").collect::<Vec<_>>(), ["ca", "caf", "café"]);
        let long = "abcdefghijklmnopqrstuvwxyz";
        let all: Vec<&str> = prefixes(long).collect();
        assert_eq!(all.len(), MAX_PREFIX_CHARS - 1);
        assert_eq!(all.last().copied(), Some(&long[..MAX_PREFIX_CHARS]));
    }

    #[test]
    fn entries_cover_every_distinct_word_once() {
        let entries = entries(["Café café", "CAFE"]);
        let expected: BTreeSet<(Kind, String)> = [
            (Kind::Exact, "café"),
            (Kind::Exact, "cafe"),
            (Kind::Folded, "cafe"),
            (Kind::Prefix, "ca"),
            (Kind::Prefix, "caf"),
            (Kind::Prefix, "cafe"),
        ]
        .into_iter()
        .map(|(k, v)| (k, v.to_owned()))
        .collect();
        assert_eq!(entries, expected);
    }

    #[test]
    fn entries_stop_after_the_word_cap() {
        let text: String = (0..MAX_WORDS_PER_EVENT + 50).map(|n| format!("w{n} ")).collect();
        let entries = entries([text.as_str()]);
        let exact = entries.iter().filter(|(k, _)| *k == Kind::Exact).count();
        assert_eq!(exact, MAX_WORDS_PER_EVENT);
    }
}
