//! GraphQL types and resolvers of the events domain. Resolvers parse, call the domain, and map.

use crate::graphql::{
    ContextExt as _, change, list_complexity, parse_id, relay_connection,
    scalars::{Date, DateTime as GqlDateTime},
    unpaged_complexity,
};
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, SimpleObject, Subscription};
use futures::{Stream, StreamExt as _};
use uuid::Uuid;

use super::{
    feed,
    free_busy::{self, Interval, SlotQuery, WorkingHours},
    lookup::{self, EventRef, EventView},
    recurrence::EventTime as Time,
    search::{self, SearchQuery},
    validate,
    window::{self, WindowQuery},
    write::{
        self, EventPatch, NewEvent,
        scoped::{self, Scope},
    },
};
use crate::{
    calendars::{Calendar, CalendarLoader},
    entities::enums::EventStatus as DbEventStatus,
    error::{AppError, AppResult},
};

/// When an event starts or ends: exactly one of `date` (all-day; end dates are exclusive) and `dateTime`.
#[derive(SimpleObject, Clone, Debug, PartialEq, Eq)]
#[graphql(name = "EventTime")]
pub struct EventTimeValue {
    /// The day of an all-day event.
    pub date: Option<Date>,
    /// The instant of a timed event.
    pub date_time: Option<GqlDateTime>,
    /// The IANA zone the event was scheduled in (recurrences repeat in it).
    pub time_zone: Option<String>,
}

impl From<&Time> for EventTimeValue {
    fn from(value: &Time) -> Self {
        match value {
            Time::Date(date) => Self {
                date: Some(Date(*date)),
                date_time: None,
                time_zone: None,
            },
            Time::DateTime { instant, time_zone } => Self {
                date: None,
                date_time: Some((*instant).into()),
                time_zone: time_zone.clone(),
            },
        }
    }
}

/// Whether an event takes place.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum EventStatus {
    /// It takes place.
    Confirmed,
    /// It probably takes place.
    Tentative,
    /// A deleted instance of a series (a cancelled exception).
    Cancelled,
}

impl From<DbEventStatus> for EventStatus {
    fn from(status: DbEventStatus) -> Self {
        match status {
            DbEventStatus::Confirmed => Self::Confirmed,
            DbEventStatus::Tentative => Self::Tentative,
            DbEventStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// An event of one of the user's Google calendars, as cached.
pub struct Event(pub EventView);

/// An event of one of the user's Google calendars, as cached: a single event, a series master, an
/// exception of a series (a changed or cancelled instance), or an instance generated from a series master.
#[Object]
impl Event {
    /// Opaque id; `event(id:)` resolves it. Instances of a series have ids of their own.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// The calendar holding the event.
    async fn calendar_id(&self) -> ID {
        ID(self.0.event.calendar_id.to_string())
    }

    /// The calendar holding the event (through the request's calendar loader: one query per request).
    async fn calendar(&self, ctx: &Context<'_>) -> async_graphql::Result<Calendar> {
        Ok(CalendarLoader::load_in(ctx, self.0.event.calendar_id)
            .await?
            .ok_or(AppError::NotFound("calendar"))?)
    }

    /// Google's id of the event (`<series id>_<original start>` for an instance).
    async fn google_event_id(&self) -> &str {
        &self.0.event.google_event_id
    }

    /// The title.
    async fn summary(&self) -> Option<&str> {
        self.0.event.summary.as_deref()
    }

    /// Free text, as Google holds it (may contain HTML from Google Calendar).
    async fn description(&self) -> Option<&str> {
        self.0.event.description.as_deref()
    }

    /// Where it takes place, as free text.
    async fn location(&self) -> Option<&str> {
        self.0.event.location.as_deref()
    }

    /// When it starts.
    async fn start(&self) -> EventTimeValue {
        (&self.0.event.start).into()
    }

    /// Exclusive: an all-day event on one day ends on the next date.
    async fn end(&self) -> EventTimeValue {
        (&self.0.event.end).into()
    }

    /// Whether start and end are dates.
    async fn all_day(&self) -> bool {
        self.0.event.start.is_all_day()
    }

    /// RRULE / EXRULE / RDATE / EXDATE lines of a series master.
    async fn recurrence(&self) -> Option<&[String]> {
        self.0.event.recurrence.as_deref()
    }

    /// Google's id of the series, on instances and exceptions.
    async fn recurring_event_id(&self) -> Option<&str> {
        self.0.event.recurring_event_id.as_deref()
    }

    /// Which instance of the series this is (its start before any change), on instances and exceptions.
    async fn original_start_time(&self) -> Option<EventTimeValue> {
        self.0.event.original_start.as_ref().map(EventTimeValue::from)
    }

    /// CONFIRMED or TENTATIVE; CANCELLED only on a cancelled instance of a series (delta feed, `event`).
    async fn status(&self) -> EventStatus {
        self.0.event.status.into()
    }

    /// `opaque` (busy) or `transparent` (free).
    async fn transparency(&self) -> Option<&str> {
        self.0.event.transparency.as_deref()
    }

    /// `default`, `public`, `private` or `confidential`.
    async fn visibility(&self) -> Option<&str> {
        self.0.event.visibility.as_deref()
    }

    /// Google's event colour, `"1"` to `"11"`.
    async fn color_id(&self) -> Option<&str> {
        self.0.event.color_id.as_deref()
    }

    /// When the event last changed at Google.
    async fn updated(&self) -> GqlDateTime {
        self.0.event.updated().into()
    }

    /// The sync config that wrote this event as a copy; null for an ordinary event, and once the config
    /// is deleted.
    async fn mirror_of(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<crate::sync::SyncConfig>> {
        match self.0.event.mirror_config_id {
            Some(config_id) => crate::sync::SyncConfigLoader::load_in(ctx, config_id).await,
            None => Ok(None),
        }
    }
}

relay_connection! {
    /// An event in a page of events.
    edge EventEdge {
        /// Opaque; pass it as `after` to continue after this event.
        cursor,
        /// The event.
        node: Event,
    }
    /// A page of events (Relay connection).
    connection EventConnection {
        /// The events of this page, in order.
        edges,
        /// Whether more events follow, and the cursors to get them.
        page_info,
    }
}

/// One change of the delta feed: the event as it now is, or its deletion.
#[derive(SimpleObject)]
pub struct EventChange {
    /// The event as it now is; null when it was deleted.
    pub event: Option<Event>,
    /// The changed event's id.
    pub event_id: ID,
    /// The event no longer exists: drop it.
    pub deleted: bool,
}

/// A page of the delta feed.
#[derive(SimpleObject)]
pub struct EventChangeFeed {
    /// In the order they happened.
    pub changes: Vec<EventChange>,
    /// Pass as `since` to continue after these changes.
    pub cursor: String,
    /// More changes are waiting: call again right away.
    pub has_more: bool,
}

impl From<feed::FeedPage> for EventChangeFeed {
    fn from(page: feed::FeedPage) -> Self {
        Self {
            changes: page
                .changes
                .into_iter()
                .map(|change| EventChange {
                    event_id: ID(change.event_id.to_string()),
                    deleted: change.event.is_none(),
                    event: change.event.map(|event| Event(EventView::stored(event))),
                })
                .collect(),
            cursor: page.cursor,
            has_more: page.has_more,
        }
    }
}

/// Which instances of a recurring series `updateEvent` and `deleteEvent` change, given an instance id.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum RecurrenceScope {
    /// That one instance (the default). On a single event or a series master: the event itself.
    This,
    /// The instance and every later one: the series ends before the instance (its rule gets an UNTIL or
    /// a smaller COUNT) and a new series with the change starts at it, taking the later exceptions along.
    /// On the series' first instance it is ALL. Refused on a single event, a series master, and a copy
    /// a one-way sync keeps equal to its origin.
    ThisAndFollowing,
    /// The whole series, from any of its instances (or its master).
    All,
}

impl From<RecurrenceScope> for Scope {
    fn from(scope: RecurrenceScope) -> Self {
        match scope {
            RecurrenceScope::This => Self::This,
            RecurrenceScope::ThisAndFollowing => Self::ThisAndFollowing,
            RecurrenceScope::All => Self::All,
        }
    }
}

/// A start or end to write: exactly one of `date` and `dateTime`.
#[derive(InputObject, Clone, Debug)]
pub struct EventTimeInput {
    /// All-day: the day (as an end, the day after the last day).
    pub date: Option<Date>,
    /// Timed: the instant (RFC 3339 with offset).
    pub date_time: Option<GqlDateTime>,
    /// IANA zone (`Europe/Berlin`); required for recurring timed events.
    pub time_zone: Option<String>,
}

impl EventTimeInput {
    fn into_time(self, field: &str) -> AppResult<Time> {
        if let Some(zone) = &self.time_zone {
            validate::time_zone(&format!("{field}.timeZone"), zone)?;
        }
        match (self.date, self.date_time) {
            (Some(date), None) => Ok(Time::Date(date.0)),
            (None, Some(instant)) => Ok(Time::DateTime {
                instant: instant.into(),
                time_zone: self.time_zone,
            }),
            _ => Err(AppError::bad_input(
                field,
                "give exactly one of date and dateTime",
            )),
        }
    }
}

/// A new event.
#[derive(InputObject, Clone, Debug)]
pub struct CreateEventInput {
    /// A calendar of the user that the account may write to (owner or writer).
    pub calendar_id: ID,
    /// At most 1024 characters.
    pub summary: Option<String>,
    /// At most 8192 characters.
    pub description: Option<String>,
    /// At most 1024 characters.
    pub location: Option<String>,
    /// When it starts.
    pub start: EventTimeInput,
    /// After `start`, of the same kind (both dates or both date-times).
    pub end: EventTimeInput,
    /// RRULE / EXRULE / RDATE / EXDATE lines (no DTSTART).
    pub recurrence: Option<Vec<String>>,
    /// `opaque` or `transparent`.
    pub transparency: Option<String>,
    /// `default`, `public`, `private` or `confidential`.
    pub visibility: Option<String>,
    /// `"1"` to `"11"`.
    pub color_id: Option<String>,
}

/// Changes to an event; omitted fields stay as they are, `null` clears a text, the colour or the recurrence.
#[derive(InputObject, Clone, Debug)]
pub struct UpdateEventInput {
    /// At most 1024 characters; null removes it.
    pub summary: MaybeUndefined<String>,
    /// At most 8192 characters; null removes it.
    pub description: MaybeUndefined<String>,
    /// At most 1024 characters; null removes it.
    pub location: MaybeUndefined<String>,
    /// The new start (the end must still come after it).
    pub start: Option<EventTimeInput>,
    /// The new end, of the same kind as the start.
    pub end: Option<EventTimeInput>,
    /// Only on series masters and single events; `null` or `[]` ends the repetition.
    pub recurrence: MaybeUndefined<Vec<String>>,
    /// `opaque` or `transparent`.
    pub transparency: Option<String>,
    /// `default`, `public`, `private` or `confidential`.
    pub visibility: Option<String>,
    /// `"1"` to `"11"`; null returns to the calendar's colour.
    pub color_id: MaybeUndefined<String>,
}

/// A stretch of time in which the user is busy.
#[derive(SimpleObject, Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusyInterval {
    /// When it starts (inclusive).
    pub start: GqlDateTime,
    /// When it ends (exclusive).
    pub end: GqlDateTime,
}

impl From<Interval> for BusyInterval {
    fn from(interval: Interval) -> Self {
        Self {
            start: interval.start.into(),
            end: interval.end.into(),
        }
    }
}

/// A free stretch of working hours: nothing busy overlaps it, and it is as long as it can be within its
/// working day.
#[derive(SimpleObject, Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeSlot {
    /// When it starts (inclusive).
    pub start: GqlDateTime,
    /// When it ends (exclusive).
    pub end: GqlDateTime,
}

impl From<Interval> for TimeSlot {
    fn from(interval: Interval) -> Self {
        Self {
            start: interval.start.into(),
            end: interval.end.into(),
        }
    }
}

/// When the user works: the same local hours on each of the given weekdays.
#[derive(InputObject, Clone, Debug)]
pub struct WorkingHoursInput {
    /// Local start of the working day, `"HH:MM"` (00:00 to 23:59).
    pub start: String,
    /// Local end of the working day, `"HH:MM"`, after `start` on the same day.
    pub end: String,
    /// ISO weekdays worked, 1 = Monday to 7 = Sunday; Monday to Friday when omitted.
    pub weekdays: Option<Vec<i32>>,
}

/// What a `freeBusy` or `freeSlots` field costs: its intervals, and the series it may have to expand
/// (as an `events` field).
fn free_busy_complexity(child_complexity: usize) -> usize {
    unpaged_complexity(FREE_BUSY_ITEMS, child_complexity).saturating_add(EXPANSION_COMPLEXITY)
}

/// The intervals a `freeBusy` or `freeSlots` answer is costed at.
const FREE_BUSY_ITEMS: usize = 100;

/// What an `events` field costs on top of its page: the series it may have to expand, which the document
/// does not show (the work budget bounds the expansion itself when it runs). Caps a document at about ten
/// `events` fields.
const EXPANSION_COMPLEXITY: usize = 3_000;

fn page_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    list_complexity(
        first,
        window::DEFAULT_PAGE_SIZE,
        window::MAX_PAGE_SIZE,
        child_complexity,
    )
    .saturating_add(EXPANSION_COMPLEXITY)
}

fn feed_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    list_complexity(
        first,
        feed::DEFAULT_FEED_SIZE,
        feed::MAX_FEED_SIZE,
        child_complexity,
    )
}

fn search_complexity(first: Option<i32>, child_complexity: usize) -> usize {
    list_complexity(
        first,
        window::DEFAULT_PAGE_SIZE,
        window::MAX_PAGE_SIZE,
        child_complexity,
    )
}

/// A `calendarIds` argument; an id that is not one of ours is NOT_FOUND.
fn parse_calendar_ids(ids: Option<Vec<ID>>) -> AppResult<Option<Vec<Uuid>>> {
    ids.map(|ids| ids.iter().map(|id| parse_id(id, "calendar")).collect())
        .transpose()
}

/// An event id argument; anything that is not one of ours is NOT_FOUND.
fn parse_event_id(id: &ID) -> AppResult<EventRef> {
    EventRef::parse(id.as_str()).ok_or(AppError::NotFound("event"))
}

#[derive(Default)]
pub struct EventsQuery;

#[Object]
impl EventsQuery {
    /// The events of the user's calendars (all, or those of `calendarIds`) that overlap the window: they
    /// start before `timeMax` and end after `timeMin` (all-day dates read in the calendar's zone). Series
    /// are expanded into their instances. Ordered by start, then id. Reads the local cache only.
    /// `first` is 1 to 500 (default 100); the window spans at most 367 days.
    #[graphql(complexity = "page_complexity(first, child_complexity)")]
    async fn events(
        &self,
        ctx: &Context<'_>,
        calendar_ids: Option<Vec<ID>>,
        time_min: GqlDateTime,
        time_max: GqlDateTime,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<EventConnection> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let calendar_ids = parse_calendar_ids(calendar_ids)?;
        let query = WindowQuery {
            calendar_ids: calendar_ids.as_deref(),
            window: window::window(time_min.0, time_max.0)?,
            first: window::page_size(first, window::DEFAULT_PAGE_SIZE, window::MAX_PAGE_SIZE)?,
            after: after.as_deref(),
        };
        let budget = ctx.work_budget()?;
        let page = window::events_in_window(&state.db, &state.cipher, user_id, query, budget).await?;
        let nodes = page.edges.into_iter().map(|(cursor, view)| (cursor, Event(view)));
        Ok(EventConnection::of(
            nodes,
            page.has_previous_page,
            page.has_next_page,
        ))
    }

    /// When the user is busy between `timeMin` and `timeMax`: merged intervals (sorted, none overlapping or
    /// touching another), cut to the window. Reads the calendars of `calendarIds` (an unknown id or
    /// another user's is NOT_FOUND), else every calendar with `includeInFreeBusy`. Computed from the
    /// local cache only, with series expanded as in `events`. Busy: confirmed and tentative events
    /// (all-day ones from midnight to midnight in their calendar's zone); free: `transparent` events,
    /// cancelled instances and invitations the user declined. A copy written by a sync config counts
    /// only when the calendar it copies from is not read (the original counts once). The window spans at
    /// most 367 days, as in `events`.
    #[graphql(complexity = "free_busy_complexity(child_complexity)")]
    async fn free_busy(
        &self,
        ctx: &Context<'_>,
        time_min: GqlDateTime,
        time_max: GqlDateTime,
        calendar_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<Vec<BusyInterval>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let calendar_ids = parse_calendar_ids(calendar_ids)?;
        let window = free_busy::window(time_min.0, time_max.0)?;
        let budget = ctx.work_budget()?;
        let busy = free_busy::busy(&state.db, user_id, calendar_ids.as_deref(), window, budget).await?;
        Ok(busy.into_iter().map(BusyInterval::from).collect())
    }

    /// Free slots of at least `durationMinutes` (1 to 1440) between `timeMin` and `timeMax`: the gaps in
    /// the busy time of `freeBusy` (every calendar with `includeInFreeBusy`) within the working hours
    /// (default 09:00 to 17:00, Monday to Friday), read in `timeZone` (an IANA zone; default the zone of
    /// the user's primary calendar, else UTC). Each slot is a maximal free interval within one working
    /// day's hours: a free stretch is not split into `durationMinutes` pieces, and one running past the
    /// end of a working day ends there. Working hours keep their local times across DST changes. In
    /// order; the window spans at most 367 days.
    #[graphql(complexity = "free_busy_complexity(child_complexity)")]
    async fn free_slots(
        &self,
        ctx: &Context<'_>,
        duration_minutes: i32,
        time_min: GqlDateTime,
        time_max: GqlDateTime,
        working_hours: Option<WorkingHoursInput>,
        time_zone: Option<String>,
    ) -> async_graphql::Result<Vec<TimeSlot>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let query = SlotQuery {
            duration: free_busy::duration(duration_minutes)?,
            window: free_busy::window(time_min.0, time_max.0)?,
            hours: match working_hours {
                Some(hours) => WorkingHours::parse(&hours.start, &hours.end, hours.weekdays.as_deref())?,
                None => WorkingHours::default(),
            },
            time_zone: time_zone.as_deref().map(free_busy::time_zone).transpose()?,
        };
        let budget = ctx.work_budget()?;
        let slots = free_busy::slots(&state.db, user_id, query, budget).await?;
        Ok(slots.into_iter().map(TimeSlot::from).collect())
    }

    /// The user's stored events (single events, series masters, exceptions; not generated instances nor
    /// cancelled instances) whose summary, description or location contain every word of `query`,
    /// ignoring case and accents; a word also matches the beginning of a longer word (from two
    /// characters on, query words of up to 20 characters). Best matches first: every word found as an
    /// exact word, then every word found as a word with accents ignored, then fewer words found only as a
    /// beginning; then by start, then id. Optionally only events of `calendarIds` (any unknown or foreign
    /// id is NOT_FOUND), overlapping `timeMin`..`timeMax` (a series by its whole span). `query` is 1 to
    /// 256 characters and at most 8 words; `first` is 1 to 500 (default 100). Reads the local cache only.
    #[graphql(complexity = "search_complexity(first, child_complexity)")]
    #[allow(clippy::too_many_arguments)]
    async fn search_events(
        &self,
        ctx: &Context<'_>,
        query: String,
        time_min: Option<GqlDateTime>,
        time_max: Option<GqlDateTime>,
        calendar_ids: Option<Vec<ID>>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<EventConnection> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let calendar_ids = parse_calendar_ids(calendar_ids)?;
        let query = SearchQuery {
            text: &query,
            calendar_ids: calendar_ids.as_deref(),
            time_min: time_min.map(|t| t.0),
            time_max: time_max.map(|t| t.0),
            first: window::page_size(first, window::DEFAULT_PAGE_SIZE, window::MAX_PAGE_SIZE)?,
            after: after.as_deref(),
        };
        let page = search::search(&state.db, &state.cipher, user_id, query).await?;
        let nodes = page.edges.into_iter().map(|(cursor, view)| (cursor, Event(view)));
        Ok(EventConnection::of(
            nodes,
            page.has_previous_page,
            page.has_next_page,
        ))
    }

    /// One event of the user (also an instance id). Null when it does not exist, was deleted, or is
    /// another user's.
    async fn event(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Option<Event>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let Some(event) = EventRef::parse(id.as_str()) else {
            return Ok(None);
        };
        Ok(lookup::find(&state.db, &state.cipher, user_id, event)
            .await?
            .map(Event))
    }

    /// The changes to the user's stored events (single events, series masters, exceptions; not generated
    /// instances) after `since` (a previous `cursor`; null: from the beginning), oldest first. Applying
    /// them by `eventId` keeps a local copy equal to the server's. `first` is 1 to 1000 (default 500).
    #[graphql(complexity = "feed_complexity(first, child_complexity)")]
    async fn event_changes(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<EventChangeFeed> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let first = window::page_size(first, feed::DEFAULT_FEED_SIZE, feed::MAX_FEED_SIZE)?;
        let page = feed::changes(&state.db, &state.cipher, user_id, since.as_deref(), first).await?;
        Ok(page.into())
    }

    /// The cursor of the latest change to the user's stored events, as of now: `eventChanges` (query or
    /// subscription) from it returns only what changes from here on. For a client that reads the view it
    /// shows itself (a week of `events`) and only wants to hear of later changes: read this cursor
    /// first, then the view, then subscribe from the cursor, and nothing is missed.
    async fn event_changes_cursor(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        Ok(feed::latest_cursor(&state.db, user_id).await?)
    }
}

#[derive(Default)]
pub struct EventsMutation;

#[Object]
impl EventsMutation {
    /// Creates an event in Google Calendar, then returns it as cached from Google's answer.
    async fn create_event(&self, ctx: &Context<'_>, input: CreateEventInput) -> async_graphql::Result<Event> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let new = NewEvent {
            calendar_id: parse_id(&input.calendar_id, "calendar")?,
            summary: input.summary,
            description: input.description,
            location: input.location,
            start: input.start.into_time("start")?,
            end: input.end.into_time("end")?,
            recurrence: input.recurrence,
            transparency: input.transparency,
            visibility: input.visibility,
            color_id: input.color_id,
        };
        Ok(Event(write::create(state, user_id, new).await?))
    }

    /// Changes an event in Google Calendar (only if it did not change there since it was cached: else
    /// CONFLICT, and the cache takes Google's version). On an instance id, `scope` says which instances
    /// change: THIS (the default) that one, answering with it; THIS_AND_FOLLOWING splits the series at it
    /// and answers with the new series' master (the change may give the instances another time of day or
    /// length, not another date, and not a new rule); ALL changes the series (a new start or end of the
    /// instance moves the series' start alike) and answers with its master. On a series master only ALL
    /// (or no scope) applies; on a single event THIS_AND_FOLLOWING does not.
    async fn update_event(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateEventInput,
        #[graphql(desc = "Which instances of a series change when `id` names an instance; default THIS.")]
        scope: Option<RecurrenceScope>,
    ) -> async_graphql::Result<Event> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        let event = parse_event_id(&id)?;
        let patch = EventPatch {
            summary: change(input.summary),
            description: change(input.description),
            location: change(input.location),
            start: input.start.map(|t| t.into_time("start")).transpose()?,
            end: input.end.map(|t| t.into_time("end")).transpose()?,
            recurrence: change(input.recurrence),
            transparency: input.transparency,
            visibility: input.visibility,
            color_id: change(input.color_id),
        };
        Ok(Event(
            scoped::update(state, user_id, event, patch, scope.map(Scope::from)).await?,
        ))
    }

    /// Deletes an event in Google Calendar (a whole series on a master's id, one instance on an instance
    /// id). Already gone at Google counts as deleted. On an instance id, `scope` THIS_AND_FOLLOWING ends
    /// the series before the instance (and removes the later exceptions; on the first instance the whole
    /// series goes) and ALL deletes the whole series. On a series master only ALL (or no scope) applies;
    /// on a single event THIS_AND_FOLLOWING does not.
    async fn delete_event(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(
            desc = "Which instances of a series go when `id` names an instance; default THIS."
        )]
        scope: Option<RecurrenceScope>,
    ) -> async_graphql::Result<bool> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?;
        scoped::delete(state, user_id, parse_event_id(&id)?, scope.map(Scope::from)).await?;
        Ok(true)
    }
}

#[derive(Default)]
pub struct EventsSubscription;

#[Subscription]
impl EventsSubscription {
    /// The changes to the user's stored events, live: the first message holds the changes after `since`
    /// (a cursor of `eventChanges`; null: from the beginning; possibly none, with the cursor to go on
    /// from), then a message follows each later batch of changes, whatever made them (a change at Google
    /// announced by push, a write through any Chronos instance, a sync run), in order. Entries and
    /// cursors are those of `Query.eventChanges`: after a disconnect, subscribe again with the last
    /// cursor received to miss nothing and see nothing twice. A message holds at most 500 changes; when
    /// `hasMore` is true the next follows at once. Nothing is queued for a client that reads slowly: it
    /// gets what changed meanwhile in full pages when it reads again.
    #[graphql(complexity = "feed_complexity(None, child_complexity)")]
    async fn event_changes(
        &self,
        ctx: &Context<'_>,
        since: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<EventChangeFeed>> + use<>> {
        let user_id = ctx.user_id()?;
        let state = ctx.state()?.clone();
        let pages = feed::live(state, user_id, since.as_deref())?;
        Ok(pages.map(|page| page.map(EventChangeFeed::from).map_err(Into::into)))
    }
}
