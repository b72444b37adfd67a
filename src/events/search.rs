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
//! rewritten in the transaction that writes the event ([`index::reindex`]), emptied when it is tombstoned or
//! cancelled ([`index::forget`]), and its rows go with the event (ON DELETE CASCADE), so with its calendar,
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

use std::collections::HashMap;

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, QueryFilter, QuerySelect, Select,
};
use uuid::Uuid;

pub mod index;

pub use index::{Kind, MAX_PREFIX_CHARS, MAX_WORDS_PER_EVENT, MIN_PREFIX_CHARS, Texts, Word, words};

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

/// The decrypted texts of a row as [`index::reindex`] takes them: none for a cancelled row.
pub fn texts_of(event: &store::StoredEvent) -> Texts<'_> {
    (event.status != EventStatus::Cancelled && !event.is_tombstone()).then_some([
        event.summary.as_deref(),
        event.description.as_deref(),
        event.location.as_deref(),
    ])
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

/// Candidate events per metadata statement. PostgreSQL answers a long list of bound ids tens of
/// milliseconds late (measured with `search_bench`: 2,000 ids cost about 50 ms, ten lists of 200 a few),
/// SQLite pays per statement instead.
fn candidates_per_statement(backend: DbBackend) -> usize {
    match backend {
        DbBackend::Postgres => 200,
        _ => 2_000,
    }
}

/// What the order and the time filter need of a candidate event (no texts: nothing is decrypted).
#[derive(Debug, FromQueryResult)]
struct Candidate {
    id: Uuid,
    calendar_id: Uuid,
    start_date: Option<NaiveDate>,
    start_date_time: Option<DateTime<Utc>>,
    end_date: Option<NaiveDate>,
    end_date_time: Option<DateTime<Utc>>,
    recurrence: Option<serde_json::Value>,
    recurring_event_id: Option<String>,
}

impl Candidate {
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

/// The index lookup: which events hold which of `digests`. It reads the `(token, event_id)` index alone
/// (a covering index scan); which of those events are live, the user's and in the bounds is asked of
/// `events` afterwards, for the events that matched every word only.
pub fn lookup_select<'a>(
    digests: impl IntoIterator<Item = &'a [u8; BLIND_INDEX_LEN]>,
) -> Select<event_search_tokens::Entity> {
    event_search_tokens::Entity::find()
        .select_only()
        .column(event_search_tokens::Column::EventId)
        .column(event_search_tokens::Column::Token)
        .filter(event_search_tokens::Column::Token.is_in(digests.into_iter().map(|d| d.to_vec())))
}

/// The live, not cancelled events among `ids` in `calendar_ids` whose stored range overlaps the bounds.
fn candidates_select(
    ids: &[Uuid],
    calendar_ids: impl IntoIterator<Item = Uuid>,
    time_min: Option<DateTime<Utc>>,
    time_max: Option<DateTime<Utc>>,
) -> Select<events::Entity> {
    let mut select = events::Entity::find()
        .select_only()
        .column(events::Column::Id)
        .column(events::Column::CalendarId)
        .column(events::Column::StartDate)
        .column(events::Column::StartDateTime)
        .column(events::Column::EndDate)
        .column(events::Column::EndDateTime)
        .column(events::Column::Recurrence)
        .column(events::Column::RecurringEventId)
        .filter(events::Column::Id.is_in(ids.iter().copied()))
        .filter(events::Column::CalendarId.is_in(calendar_ids))
        .filter(events::Column::DeletedAt.is_null())
        .filter(events::Column::Status.ne(EventStatus::Cancelled));
    if let Some(max) = time_max {
        select = select.filter(events::Column::RangeStart.lt(max));
    }
    if let Some(min) = time_min {
        select = select.filter(events::Column::RangeEnd.gt(min));
    }
    select
}

/// One page of the user's events matching the query, best first. Statements: the calendars, the index
/// lookup, one per 2,000 (PostgreSQL: 200) events that match every word (their times, no texts), and the
/// page's rows. Only the page is decrypted.
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
    let zones: HashMap<Uuid, Option<&str>> =
        calendars.iter().map(|c| (c.id, c.time_zone.as_deref())).collect();
    let indexes = cipher
        .blind_indexes(user_id)
        .map_err(|e| AppError::internal(anyhow::anyhow!("search key: {e}")))?;
    let probes = query_probes(&words, &indexes);

    let entries: Vec<(Uuid, Vec<u8>)> = lookup_select(probes.keys()).into_tuple().all(db).await?;
    let mut by_event: HashMap<Uuid, Vec<&[u8]>> = HashMap::new();
    for (event_id, token) in &entries {
        by_event.entry(*event_id).or_default().push(token.as_slice());
    }
    let ranked: HashMap<Uuid, Rank> = by_event
        .into_iter()
        .filter_map(|(id, found)| Some((id, rank(&best_matches(&probes, words.len(), found))?)))
        .collect();
    let ids: Vec<Uuid> = ranked.keys().copied().collect();
    let mut found: Vec<SortKey> = Vec::new();
    for chunk in ids.chunks(candidates_per_statement(db.get_database_backend())) {
        let candidates = candidates_select(chunk, zones.keys().copied(), query.time_min, query.time_max)
            .into_model::<Candidate>()
            .all(db)
            .await?;
        for candidate in candidates {
            let zone = zones.get(&candidate.calendar_id).copied().flatten();
            let Some((start, end)) = candidate.times() else {
                continue;
            };
            // The stored range of an all-day event spans every zone; its dates are read in the calendar's.
            // A series master is found by its whole range (its instances are not expanded here).
            if !candidate.is_series_master() && !recurrence::overlaps(&start, &end, zone, window) {
                continue;
            }
            let Some(rank) = ranked.get(&candidate.id).copied() else {
                continue;
            };
            found.push(SortKey {
                rank,
                start: start.to_instant(zone),
                id: candidate.id,
            });
        }
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
    use super::index::digests;
    use super::*;
    use crate::crypto::KeyRing;

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
        assert_eq!(
            rank(&[Some(Exact), Some(Exact)]),
            Some(Rank {
                tier: 0,
                prefix_only: 0
            })
        );
        assert_eq!(
            rank(&[Some(Exact), Some(Folded)]),
            Some(Rank {
                tier: 1,
                prefix_only: 0
            })
        );
        assert_eq!(
            rank(&[Some(Exact), Some(Prefix)]),
            Some(Rank {
                tier: 2,
                prefix_only: 1
            })
        );
        assert_eq!(
            rank(&[Some(Prefix), Some(Prefix)]),
            Some(Rank {
                tier: 2,
                prefix_only: 2
            })
        );
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
