//! `searchEvents`: finds the user's cached events by the words of their summary, description and
//! location, through a blind index, so that no word is stored in plaintext and no event is decrypted
//! to be searched.
//!
//! # Words
//! A text is read in Unicode compatibility decomposition (NFKD), lowercased and split on every character
//! that is neither a letter nor a digit (nor a combining mark following one). Each word has an exact form
//! (lowercase, accents kept, recomposed to NFC) and a folded form (combining marks dropped: "Café" folds
//! to "cafe"). A word's beginnings are its folded form's first 2 to [`MAX_PREFIX_CHARS`] characters.
//!
//! # Index
//! For every live, not cancelled event, `event_search_tokens` holds the keyed digests
//! ([`crate::crypto::BlindIndex`]) of each distinct word's exact form, folded form and beginnings, each
//! under its own domain tag, so the three never collide and a match tells which kind it is. The index is
//! rewritten in the transaction that writes the event ([`reindex`]), emptied when it is tombstoned or
//! cancelled ([`forget`]), and its rows go with the event (ON DELETE CASCADE), so with its calendar,
//! account and user.
//!
//! # Ranking
//! An event matches when every word of the query matches one of its words: the same word, the same word
//! once accents are ignored, or the beginning of a word. Results come in this order:
//! 1. every query word matched a word exactly (accents included);
//! 2. every query word matched a whole word, some only with accents ignored;
//! 3. some query words matched only the beginning of a word; fewer such words first;
//!
//! then by start (all-day dates at midnight in the calendar's zone), then by id.
//!
//! # Limits
//! A query has 1 to [`MAX_QUERY_CHARS`] characters and at most [`MAX_QUERY_WORDS`] words. A query word
//! longer than [`MAX_PREFIX_CHARS`] characters matches whole words only, and a one-character word
//! matches whole words only. An event's words past its first [`MAX_WORDS_PER_EVENT`] distinct ones are
//! not indexed. Characters that do not decompose (`ß`, `ø`, `ł`) are kept as they are.

use std::collections::{BTreeSet, HashMap, HashSet};

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QuerySelect,
    RelationTrait,
};
use unicode_normalization::{UnicodeNormalization as _, char::is_combining_mark};
use uuid::Uuid;

use super::{
    lookup::{EventView, user_calendars},
    recurrence::{self, EventTime, Window},
    store,
    window::WindowPage,
};
use crate::{
    crypto::{BLIND_INDEX_LEN, BlindIndex, Cipher},
    entities::{enums::EventStatus, event_search_tokens, events},
    error::{AppError, AppResult},
};

/// Longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 8;
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
    fn domain(self) -> &'static [u8] {
        match self {
            Kind::Exact => b"chronos-search/exact",
            Kind::Folded => b"chronos-search/word",
            Kind::Prefix => b"chronos-search/prefix",
        }
    }
}

/// The beginnings of a folded word that the index holds: its first 2 to 20 characters.
fn prefixes(folded: &str) -> impl Iterator<Item = &str> {
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
pub fn digests<'a>(index: &BlindIndex, texts: impl IntoIterator<Item = &'a str>) -> BTreeSet<[u8; BLIND_INDEX_LEN]> {
    entries(texts)
        .into_iter()
        .map(|(kind, value)| index.digest(kind.domain(), &value))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// Queries and ranking

/// How one query word matched an event, best last.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Match {
    Prefix,
    Folded,
    Exact,
}

/// The words of a query: 1 to [`MAX_QUERY_WORDS`] distinct words, from at most [`MAX_QUERY_CHARS`]
/// characters.
pub fn parse_query(raw: &str) -> AppResult<Vec<Word>> {
    if raw.chars().count() > MAX_QUERY_CHARS {
        return Err(AppError::bad_input(
            "query",
            format!("must be at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut distinct = Vec::new();
    for word in words(raw) {
        if !distinct.contains(&word) {
            distinct.push(word);
        }
    }
    if distinct.is_empty() {
        return Err(AppError::bad_input("query", "must contain a letter or a digit"));
    }
    if distinct.len() > MAX_QUERY_WORDS {
        return Err(AppError::bad_input(
            "query",
            format!("must have at most {MAX_QUERY_WORDS} words"),
        ));
    }
    Ok(distinct)
}

/// What each query word looks for: (kind, value, what a hit means).
fn probes(word: &Word) -> Vec<(Kind, &str, Match)> {
    let mut out = vec![
        (Kind::Exact, word.exact.as_str(), Match::Exact),
        (Kind::Folded, word.folded.as_str(), Match::Folded),
    ];
    let length = word.folded.chars().count();
    if (MIN_PREFIX_CHARS..=MAX_PREFIX_CHARS).contains(&length) {
        out.push((Kind::Prefix, word.folded.as_str(), Match::Prefix));
    }
    out
}

/// Digest -> (query word, what a hit means), under each of the indexes (a ring during rotation).
pub type Probes = HashMap<[u8; BLIND_INDEX_LEN], Vec<(usize, Match)>>;

/// The digests a query looks up.
pub fn query_probes(words: &[Word], indexes: &[BlindIndex]) -> Probes {
    let mut out: Probes = HashMap::new();
    for index in indexes {
        for (position, word) in words.iter().enumerate() {
            for (kind, value, meaning) in probes(word) {
                let entry = out.entry(index.digest(kind.domain(), value)).or_default();
                if !entry.contains(&(position, meaning)) {
                    entry.push((position, meaning));
                }
            }
        }
    }
    out
}

/// Where an event stands in the results; ascending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Rank {
    /// 0: every word exact; 1: every word whole; 2: some words only as beginnings.
    pub tier: u8,
    /// Query words matched only as the beginning of a word.
    pub prefix_only: u8,
}

/// The rank of an event given each query word's best match; `None` when a word did not match.
pub fn rank(best: &[Option<Match>]) -> Option<Rank> {
    let best: Vec<Match> = best.iter().copied().collect::<Option<_>>()?;
    let prefix_only = best.iter().filter(|m| **m == Match::Prefix).count();
    let tier = if best.iter().all(|m| *m == Match::Exact) {
        0
    } else if prefix_only == 0 {
        1
    } else {
        2
    };
    Some(Rank {
        tier,
        prefix_only: u8::try_from(prefix_only).unwrap_or(u8::MAX),
    })
}

/// Each query word's best match, from the digests an event was found under.
pub fn best_matches<'a>(
    probes: &Probes,
    words: usize,
    found: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<Option<Match>> {
    let mut best = vec![None; words];
    for digest in found {
        let Ok(digest) = <[u8; BLIND_INDEX_LEN]>::try_from(digest) else {
            continue;
        };
        for (position, meaning) in probes.get(&digest).into_iter().flatten() {
            if let Some(slot) = best.get_mut(*position) {
                *slot = (*slot).max(Some(*meaning));
            }
        }
    }
    best
}

/// The order of the results: rank, start, id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SortKey {
    pub rank: Rank,
    pub start: DateTime<Utc>,
    pub id: Uuid,
}

impl SortKey {
    /// The opaque cursor of this position.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "s1|{}|{}|{}|{}",
            self.rank.tier,
            self.rank.prefix_only,
            self.start.to_rfc3339_opts(SecondsFormat::Nanos, true),
            self.id
        ))
    }

    /// Reads a cursor; anything else is BAD_USER_INPUT naming `after`.
    pub fn decode(raw: &str) -> AppResult<Self> {
        let invalid = || AppError::bad_input("after", "not a cursor of this query");
        let bytes = URL_SAFE_NO_PAD.decode(raw.trim()).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let parts: Vec<&str> = text.split('|').collect();
        let ["s1", tier, prefix_only, start, id] = parts[..] else {
            return Err(invalid());
        };
        let tier: u8 = tier.parse().map_err(|_| invalid())?;
        if tier > 2 {
            return Err(invalid());
        }
        Ok(Self {
            rank: Rank {
                tier,
                prefix_only: prefix_only.parse().map_err(|_| invalid())?,
            },
            start: DateTime::parse_from_rfc3339(start)
                .map_err(|_| invalid())?
                .with_timezone(&Utc),
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        })
    }
}

/// Checks the optional bounds: `timeMax` after `timeMin` when both are given.
pub fn time_bounds(time_min: Option<DateTime<Utc>>, time_max: Option<DateTime<Utc>>) -> AppResult<Window> {
    if let (Some(min), Some(max)) = (time_min, time_max)
        && max <= min
    {
        return Err(AppError::bad_input("timeMax", "must be after timeMin"));
    }
    Ok(Window::new(
        time_min.unwrap_or(DateTime::<Utc>::MIN_UTC),
        time_max.unwrap_or(DateTime::<Utc>::MAX_UTC),
    ))
}

// ---------------------------------------------------------------------------------------------------
// Index maintenance

/// An event's texts to index, or `None` to leave it out of the index (tombstoned, cancelled).
pub type Texts<'a> = Option<[Option<&'a str>; 3]>;

/// Rewrites the index entries of events in the caller's transaction, under the primary key: each
/// event's entries are replaced by those of its texts (none for `None`). Two statements per
/// [`IDS_PER_STATEMENT`] events plus one per [`INSERT_ROWS`] entries.
pub async fn reindex<C: ConnectionTrait>(
    txn: &C,
    cipher: &Cipher,
    user_id: Uuid,
    events: &[(Uuid, Texts<'_>)],
) -> AppResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let index = cipher
        .blind_index(user_id)
        .map_err(|e| AppError::internal(anyhow::anyhow!("search key: {e}")))?;
    let ids: Vec<Uuid> = events.iter().map(|(id, _)| *id).collect();
    forget(txn, &ids).await?;
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

/// The decrypted texts of a row as [`reindex`] takes them: none for a cancelled row.
pub fn texts_of(event: &store::StoredEvent) -> Texts<'_> {
    (event.status != EventStatus::Cancelled && !event.is_tombstone()).then(|| {
        [
            event.summary.as_deref(),
            event.description.as_deref(),
            event.location.as_deref(),
        ]
    })
}

// ---------------------------------------------------------------------------------------------------
// Search

/// What a search asks.
#[derive(Debug, Clone)]
pub struct SearchQuery<'a> {
    pub text: &'a str,
    /// `None`: every calendar of the user.
    pub calendar_ids: Option<&'a [Uuid]>,
    pub time_min: Option<DateTime<Utc>>,
    pub time_max: Option<DateTime<Utc>>,
    pub first: usize,
    /// The cursor of the last event of the previous page.
    pub after: Option<&'a str>,
}

/// An index entry found, with what the order and the time filter need of its event.
#[derive(Debug, FromQueryResult)]
struct Hit {
    event_id: Uuid,
    token: Vec<u8>,
    calendar_id: Uuid,
    start_date: Option<NaiveDate>,
    start_date_time: Option<DateTime<Utc>>,
    end_date: Option<NaiveDate>,
    end_date_time: Option<DateTime<Utc>>,
    recurrence: Option<serde_json::Value>,
    recurring_event_id: Option<String>,
}

impl Hit {
    fn is_series_master(&self) -> bool {
        self.recurring_event_id.is_none()
            && self
                .recurrence
                .as_ref()
                .and_then(serde_json::Value::as_array)
                .is_some_and(|lines| !lines.is_empty())
    }

    fn times(&self) -> Option<(EventTime, EventTime)> {
        let time = |date: Option<NaiveDate>, instant: Option<DateTime<Utc>>| match (instant, date) {
            (Some(instant), _) => Some(EventTime::DateTime {
                instant,
                time_zone: None,
            }),
            (None, Some(date)) => Some(EventTime::Date(date)),
            (None, None) => None,
        };
        Some((
            time(self.start_date, self.start_date_time)?,
            time(self.end_date, self.end_date_time)?,
        ))
    }
}

/// One page of the user's events matching the query, best first. Three statements whatever the number
/// of results: the calendars, the index lookup, the page's rows. Only the page is decrypted.
pub async fn search<C: ConnectionTrait>(
    db: &C,
    cipher: &Cipher,
    user_id: Uuid,
    query: SearchQuery<'_>,
) -> AppResult<WindowPage> {
    let words = parse_query(query.text)?;
    let window = time_bounds(query.time_min, query.time_max)?;
    let after = query.after.map(SortKey::decode).transpose()?;
    let calendars = user_calendars(db, user_id, query.calendar_ids).await?;
    if calendars.is_empty() {
        return Ok(WindowPage {
            has_previous_page: after.is_some(),
            ..WindowPage::default()
        });
    }
    let zones: HashMap<Uuid, Option<&str>> = calendars
        .iter()
        .map(|c| (c.id, c.time_zone.as_deref()))
        .collect();
    let indexes = cipher
        .blind_indexes(user_id)
        .map_err(|e| AppError::internal(anyhow::anyhow!("search key: {e}")))?;
    let probes = query_probes(&words, &indexes);

    let mut select = event_search_tokens::Entity::find()
        .select_only()
        .column(event_search_tokens::Column::EventId)
        .column(event_search_tokens::Column::Token)
        .join(JoinType::InnerJoin, event_search_tokens::Relation::Events.def())
        .column(events::Column::CalendarId)
        .column(events::Column::StartDate)
        .column(events::Column::StartDateTime)
        .column(events::Column::EndDate)
        .column(events::Column::EndDateTime)
        .column(events::Column::Recurrence)
        .column(events::Column::RecurringEventId)
        .filter(event_search_tokens::Column::Token.is_in(probes.keys().map(|d| d.to_vec())))
        .filter(events::Column::CalendarId.is_in(zones.keys().copied()))
        .filter(events::Column::DeletedAt.is_null())
        .filter(events::Column::Status.ne(EventStatus::Cancelled));
    if let Some(max) = query.time_max {
        select = select.filter(events::Column::RangeStart.lt(max));
    }
    if let Some(min) = query.time_min {
        select = select.filter(events::Column::RangeEnd.gt(min));
    }
    let hits = select.into_model::<Hit>().all(db).await?;

    let mut by_event: HashMap<Uuid, Vec<&Hit>> = HashMap::new();
    for hit in &hits {
        by_event.entry(hit.event_id).or_default().push(hit);
    }
    let mut found: Vec<SortKey> = Vec::new();
    for (id, hits) in by_event {
        let best = best_matches(&probes, words.len(), hits.iter().map(|h| h.token.as_slice()));
        let Some(rank) = rank(&best) else { continue };
        let first = hits[0];
        let zone = zones.get(&first.calendar_id).copied().flatten();
        let Some((start, end)) = first.times() else { continue };
        // The stored range of an all-day event spans every zone; its dates are read in the calendar's.
        // A series master is found by its whole range (its instances are not expanded here).
        if !first.is_series_master() && !recurrence::overlaps(&start, &end, zone, window) {
            continue;
        }
        found.push(SortKey {
            rank,
            start: start.to_instant(zone),
            id,
        });
    }
    found.sort_unstable();
    let from = after.map_or(0, |cursor| found.partition_point(|key| *key <= cursor));
    let has_next_page = found.len() > from + query.first;
    let page: Vec<SortKey> = found.into_iter().skip(from).take(query.first).collect();

    let mut rows: HashMap<Uuid, events::Model> = HashMap::new();
    if !page.is_empty() {
        rows = events::Entity::find()
            .filter(events::Column::Id.is_in(page.iter().map(|key| key.id)))
            .all(db)
            .await?
            .into_iter()
            .map(|row| (row.id, row))
            .collect();
    }
    let mut edges = Vec::with_capacity(page.len());
    for key in page {
        // A row tombstoned since the lookup is left out rather than shown.
        let Some(row) = rows.get(&key.id).filter(|row| row.deleted_at.is_none()) else {
            continue;
        };
        let event = store::decode(cipher, user_id, row)?;
        edges.push((key.encode(), EventView::stored(event)));
    }
    Ok(WindowPage {
        edges,
        has_next_page,
        has_previous_page: after.is_some(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::KeyRing;

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

    #[test]
    fn queries_are_bounded_and_need_a_word() {
        for empty in ["", "   ", "?!", "- / -"] {
            match parse_query(empty) {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "query"),
                other => panic!("{empty:?}: expected BAD_USER_INPUT, got {other:?}"),
            }
        }
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        assert!(matches!(parse_query(&long), Err(AppError::BadUserInput { field, .. }) if field == "query"));
        assert!(parse_query(&"a".repeat(MAX_QUERY_CHARS)).is_ok());
        let many = "a b c d e f g h i";
        assert!(matches!(parse_query(many), Err(AppError::BadUserInput { field, .. }) if field == "query"));
        assert_eq!(parse_query("a b c d e f g h").unwrap().len(), MAX_QUERY_WORDS);
        // Repeats count once.
        assert_eq!(parse_query("Lunch lunch LUNCH").unwrap().len(), 1);
        assert_eq!(parse_query("café cafe").unwrap().len(), 2);
    }

    fn index() -> BlindIndex {
        Cipher::new(KeyRing::generate("k1").unwrap())
            .blind_index(Uuid::from_u128(1))
            .unwrap()
    }

    /// Each query word's best match against an event with these texts.
    fn matches(query: &str, texts: &[&str]) -> Vec<Option<Match>> {
        let index = index();
        let words = parse_query(query).unwrap();
        let probes = query_probes(&words, std::slice::from_ref(&index));
        let stored = digests(&index, texts.iter().copied());
        best_matches(&probes, words.len(), stored.iter().map(|d| d.as_slice()))
    }

    #[test]
    fn a_word_matches_exactly_folded_or_as_a_beginning() {
        use Match::*;
        assert_eq!(matches("dentist", &["Dentist appointment"]), [Some(Exact)]);
        assert_eq!(matches("DENTIST", &["dentist"]), [Some(Exact)]);
        assert_eq!(matches("cafe", &["Café Central"]), [Some(Folded)]);
        assert_eq!(matches("café", &["Cafe Central"]), [Some(Folded)]);
        assert_eq!(matches("café", &["Café Central"]), [Some(Exact)]);
        assert_eq!(matches("dent", &["Dentist"]), [Some(Prefix)]);
        assert_eq!(matches("dént", &["Dentist"]), [Some(Prefix)]);
        assert_eq!(matches("tist", &["Dentist"]), [None]);
        assert_eq!(matches("dentists", &["Dentist"]), [None]);
        // One letter matches whole words only.
        assert_eq!(matches("d", &["Dentist"]), [None]);
        assert_eq!(matches("b", &["Room 4 b"]), [Some(Exact)]);
        // Past twenty characters a word matches whole words only.
        let long = "internationalisations";
        assert_eq!(matches(&long[..20], &[long]), [Some(Prefix)]);
        assert_eq!(matches(long, &[long]), [Some(Exact)]);
        assert_eq!(matches(long, &[&format!("{long}x")]), [None]);
        // Across fields, and word by word.
        assert_eq!(
            matches("lunch berlin", &["Lunch", "", "Berlin Mitte"]),
            [Some(Exact), Some(Exact)]
        );
        assert_eq!(matches("lunch paris", &["Lunch in Berlin"]), [Some(Exact), None]);
    }

    #[test]
    fn another_key_or_user_matches_nothing() {
        let words = parse_query("dentist").unwrap();
        let mine = index();
        let stored = digests(&mine, ["dentist"]);
        for other in [
            Cipher::new(KeyRing::generate("k1").unwrap())
                .blind_index(Uuid::from_u128(1))
                .unwrap(),
            Cipher::new(KeyRing::generate("k1").unwrap())
                .blind_index(Uuid::from_u128(2))
                .unwrap(),
        ] {
            let probes = query_probes(&words, &[other]);
            assert_eq!(
                best_matches(&probes, 1, stored.iter().map(|d| d.as_slice())),
                [None]
            );
        }
        let probes = query_probes(&words, &[mine]);
        assert_eq!(
            best_matches(&probes, 1, stored.iter().map(|d| d.as_slice())),
            [Some(Match::Exact)]
        );
    }

    #[test]
    fn ranks_put_whole_words_before_beginnings() {
        use Match::*;
        assert_eq!(rank(&[Some(Exact), Some(Exact)]), Some(Rank { tier: 0, prefix_only: 0 }));
        assert_eq!(rank(&[Some(Exact), Some(Folded)]), Some(Rank { tier: 1, prefix_only: 0 }));
        assert_eq!(rank(&[Some(Exact), Some(Prefix)]), Some(Rank { tier: 2, prefix_only: 1 }));
        assert_eq!(rank(&[Some(Prefix), Some(Prefix)]), Some(Rank { tier: 2, prefix_only: 2 }));
        assert_eq!(rank(&[Some(Exact), None]), None);
        let order = [
            rank(&[Some(Exact), Some(Exact)]),
            rank(&[Some(Folded), Some(Exact)]),
            rank(&[Some(Prefix), Some(Exact)]),
            rank(&[Some(Prefix), Some(Prefix)]),
        ];
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{order:?}");
    }

    #[test]
    fn sort_keys_order_by_rank_then_start_then_id_and_round_trip_as_cursors() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let key = |tier, prefix_only, start: &str, id: u128| SortKey {
            rank: Rank { tier, prefix_only },
            start: at(start),
            id: Uuid::from_u128(id),
        };
        let mut keys = vec![
            key(2, 1, "2026-01-01T00:00:00Z", 1),
            key(0, 0, "2027-01-01T00:00:00Z", 9),
            key(0, 0, "2026-01-01T00:00:00Z", 5),
            key(0, 0, "2026-01-01T00:00:00Z", 3),
            key(1, 0, "2020-01-01T00:00:00Z", 1),
        ];
        keys.sort();
        let ids: Vec<u128> = keys.iter().map(|k| k.id.as_u128()).collect();
        assert_eq!(ids, [3, 5, 9, 1, 1]);
        assert_eq!(keys[3].rank.tier, 1);
        for key in &keys {
            assert_eq!(SortKey::decode(&key.encode()).unwrap(), *key);
        }
        let nanos = key(2, 3, "2026-03-29T01:30:00.000000001Z", 7);
        assert_eq!(SortKey::decode(&nanos.encode()).unwrap(), nanos);
        for garbage in [
            "".to_owned(),
            "!!".to_owned(),
            URL_SAFE_NO_PAD.encode("s1|0|0|2026-01-01T00:00:00Z"),
            URL_SAFE_NO_PAD.encode("s1|7|0|2026-01-01T00:00:00Z|00000000-0000-0000-0000-000000000001"),
            URL_SAFE_NO_PAD.encode("w1|0|0|2026-01-01T00:00:00Z|00000000-0000-0000-0000-000000000001"),
            URL_SAFE_NO_PAD.encode("s1|0|0|soon|00000000-0000-0000-0000-000000000001"),
            URL_SAFE_NO_PAD.encode("s1|0|0|2026-01-01T00:00:00Z|nope"),
        ] {
            match SortKey::decode(&garbage) {
                Err(AppError::BadUserInput { field, .. }) => assert_eq!(field, "after"),
                other => panic!("{garbage:?}: expected BAD_USER_INPUT, got {other:?}"),
            }
        }
    }

    #[test]
    fn time_bounds_are_optional_but_ordered() {
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let min = at("2026-01-01T00:00:00Z");
        assert!(time_bounds(None, None).is_ok());
        assert!(time_bounds(Some(min), None).is_ok());
        assert!(time_bounds(None, Some(min)).is_ok());
        assert!(time_bounds(Some(min), Some(at("2030-01-01T00:00:00Z"))).is_ok());
        for max in [min, at("2025-01-01T00:00:00Z")] {
            assert!(
                matches!(time_bounds(Some(min), Some(max)), Err(AppError::BadUserInput { field, .. }) if field == "timeMax")
            );
        }
    }
}
