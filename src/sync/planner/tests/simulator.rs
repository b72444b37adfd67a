//! A tiny in-memory model of two Google calendars, the link table and an executor, to apply plans the way
//! the real executor will: deterministic ids, 409 -> PUT, If-Match -> 412, instance ids turning into
//! exceptions, deleted events keeping their ids, and Google's rewrites on write (date-times re-rendered in
//! another offset, default values left out) that must never read as changes.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::super::*;
use crate::events::store::time_to_google;
use crate::google::EventDateTime;
use crate::sync::mirror::{is_mirror, is_valid_event_id};

/// How a run's listing of one calendar went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    Complete,
    /// Failed at once: nothing new.
    Stale,
    /// Failed after some pages (the seed picks which events those pages held).
    Partial(u64),
    /// The cache is gone (a 410 whose full resync failed).
    Lost,
}

/// Whether an event was on the pages a partial listing got through.
fn page_of(id: &str, seed: u64) -> bool {
    let hash = id
        .bytes()
        .fold(seed | 1, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
    hash % 2 == 0
}

/// Why a simulated Google call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    NotFound,
    PreconditionFailed,
    /// Injected (a 5xx, a dropped batch part).
    Injected,
}

#[derive(Debug, Clone, Default)]
pub struct SimCalendar {
    pub events: BTreeMap<String, google::Event>,
    pub time_zone: Option<String>,
}

impl SimCalendar {
    pub fn live(&self) -> impl Iterator<Item = &google::Event> {
        self.events.values().filter(|e| !e.is_cancelled())
    }
}

pub struct World {
    pub config: PlanConfig,
    pub now: DateTime<Utc>,
    pub source: SimCalendar,
    pub destination: SimCalendar,
    /// `(origin side, source_event_id)` -> link, like the table's unique key.
    pub links: BTreeMap<(Side, String), Link>,
    /// `mirror_event_id` -> the link holding it (the table's other unique key).
    mirror_ids: HashMap<String, (Side, String)>,
    pub guard: DeleteGuard,
    pub allow_mass_delete: bool,
    /// The planner's cache of each side: replaced by a successful listing, updated by every write that
    /// lands (as the executor stores Google's answers), blind to users' changes until the next listing.
    cache_source: BTreeMap<String, CalendarEvent>,
    cache_destination: BTreeMap<String, CalendarEvent>,
    etag_seq: u64,
    id_seq: u64,
}

impl World {
    pub fn new(config: PlanConfig, now: DateTime<Utc>) -> Self {
        Self {
            config,
            now,
            source: SimCalendar {
                time_zone: Some("America/New_York".into()),
                ..SimCalendar::default()
            },
            destination: SimCalendar {
                time_zone: Some("Europe/Berlin".into()),
                ..SimCalendar::default()
            },
            links: BTreeMap::new(),
            mirror_ids: HashMap::new(),
            guard: DeleteGuard::default(),
            allow_mass_delete: false,
            cache_source: BTreeMap::new(),
            cache_destination: BTreeMap::new(),
            etag_seq: 0,
            id_seq: 0,
        }
    }

    pub fn calendar(&self, side: Side) -> &SimCalendar {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    fn calendar_mut(&mut self, side: Side) -> &mut SimCalendar {
        match side {
            Side::Source => &mut self.source,
            Side::Destination => &mut self.destination,
        }
    }

    /// Every event of a side as the cache would hand it to the planner (tombstones included).
    pub fn listing(&self, side: Side) -> Vec<CalendarEvent> {
        self.calendar(side)
            .events
            .values()
            .filter_map(CalendarEvent::from_google)
            .collect()
    }

    pub fn side_state(&self, side: Side) -> SideState {
        SideState {
            events: self.listing(side),
            complete: true,
            time_zone: self.calendar(side).time_zone.clone(),
        }
    }

    pub fn input(&self) -> PlanInput {
        PlanInput {
            config: self.config.clone(),
            now: self.now,
            source: self.side_state(Side::Source),
            destination: self.side_state(Side::Destination),
            links: self.links.values().cloned().collect(),
            guard: self.guard,
            allow_mass_delete: self.allow_mass_delete,
        }
    }

    fn cache_mut(&mut self, side: Side) -> &mut BTreeMap<String, CalendarEvent> {
        match side {
            Side::Source => &mut self.cache_source,
            Side::Destination => &mut self.cache_destination,
        }
    }

    /// The input of a run whose listings may fail. A complete listing refreshes the cache; a failed one
    /// leaves the planner the cache as earlier listings and our own writes left it ([`Listing::Stale`]),
    /// that cache with some fresh pages merged in ([`Listing::Partial`]), or nothing at all
    /// ([`Listing::Lost`]); either way the side is incomplete.
    pub fn input_with_listings(&mut self, source: Listing, destination: Listing) -> PlanInput {
        let mut input = self.input();
        for (side, listing) in [(Side::Source, source), (Side::Destination, destination)] {
            let state = match side {
                Side::Source => &mut input.source,
                Side::Destination => &mut input.destination,
            };
            let fresh: Vec<CalendarEvent> = std::mem::take(&mut state.events);
            let cache = self.cache_mut(side);
            match listing {
                Listing::Complete => {
                    *cache = fresh.iter().map(|e| (e.google_id.clone(), e.clone())).collect();
                }
                Listing::Stale => state.complete = false,
                Listing::Partial(seed) => {
                    for event in fresh {
                        if page_of(&event.google_id, seed) {
                            cache.insert(event.google_id.clone(), event);
                        }
                    }
                    state.complete = false;
                }
                Listing::Lost => {
                    cache.clear();
                    state.complete = false;
                }
            }
            state.events = cache.values().cloned().collect();
        }
        input
    }

    pub fn plan(&self) -> Plan {
        plan(&self.input())
    }

    /// Plans from fresh listings and applies everything.
    pub fn sync(&mut self) -> Plan {
        let plan = self.plan();
        let failures = self.apply(&plan, |_| false);
        assert!(failures.is_empty(), "operations failed: {failures:?}\n{plan:#?}");
        plan
    }

    /// Applies a plan as the executor does: standalone link changes at once, each operation's link
    /// change once it landed. `fail` injects failures. Returns the failures.
    pub fn apply(
        &mut self,
        plan: &Plan,
        mut fail: impl FnMut(&PlannedOperation) -> bool,
    ) -> Vec<(Operation, Failure)> {
        for change in &plan.link_changes {
            self.record(change);
        }
        let mut failures = Vec::new();
        for batch in plan.batches(50) {
            assert!(batch.windows(2).all(|w| w[0].phase == w[1].phase));
            // Google runs the parts of a batch in any order: the reverse order is the adversary.
            for planned in batch.iter().rev() {
                let outcome = if fail(planned) {
                    Err(Failure::Injected)
                } else {
                    self.execute(&planned.operation)
                };
                match outcome {
                    Ok(()) => {
                        if let Some(change) = &planned.link {
                            self.record(change);
                        }
                        self.cache_answer(planned.operation.side(), planned.operation.event_id());
                    }
                    Err(failure) => failures.push((planned.operation.clone(), failure)),
                }
            }
        }
        failures
    }

    /// Loses the link table (links must rebuild from the calendars alone).
    pub fn forget_links(&mut self) {
        self.links.clear();
        self.mirror_ids.clear();
    }

    /// The executor stores Google's answer to a write (a delete answers nothing: the row is tombstoned).
    fn cache_answer(&mut self, side: Side, event_id: &str) {
        let answer = self
            .calendar(side)
            .events
            .get(event_id)
            .and_then(CalendarEvent::from_google);
        let cache = self.cache_mut(side);
        match answer {
            Some(event) if event.status != EventStatus::Cancelled || cache.contains_key(event_id) => {
                cache.insert(event_id.to_owned(), event);
            }
            _ => {}
        }
    }

    fn record(&mut self, change: &LinkChange) {
        match change {
            LinkChange::Upsert(link) => {
                let key = (Side::from(link.origin), link.source_event_id.clone());
                let holder = self.mirror_ids.get(&link.mirror_event_id);
                assert!(
                    holder.is_none_or(|k| *k == key),
                    "unique (config, mirror_event_id) violated by {link:?}"
                );
                if let Some(old) = self.links.insert(key.clone(), link.clone()) {
                    self.mirror_ids.remove(&old.mirror_event_id);
                }
                self.mirror_ids.insert(link.mirror_event_id.clone(), key);
            }
            LinkChange::Remove {
                origin,
                source_event_id,
                ..
            } => {
                if let Some(old) = self.links.remove(&(Side::from(*origin), source_event_id.clone())) {
                    self.mirror_ids.remove(&old.mirror_event_id);
                }
            }
        }
    }

    /// One Google call, as the executor makes it (a 409 on insert becomes a PUT of the same body).
    pub fn execute(&mut self, operation: &Operation) -> Result<(), Failure> {
        match operation {
            Operation::Insert { side, event_id, body } => {
                assert!(is_valid_event_id(event_id), "invalid client id {event_id}");
                assert_eq!(body.id.as_deref(), Some(event_id.as_str()));
                assert_body_is_a_clean_mirror(body);
                if self.calendar(*side).events.contains_key(event_id) {
                    return self.put(*side, event_id, body, None);
                }
                self.store(*side, body.clone());
                Ok(())
            }
            Operation::Update {
                side,
                event_id,
                body,
                etag,
            } => {
                assert_body_is_a_clean_mirror(body);
                self.put(*side, event_id, body, etag.as_deref())
            }
            Operation::Patch {
                side,
                event_id,
                patch,
                etag,
            } => {
                let old = self.existing_or_instance(*side, event_id, etag.as_deref())?;
                let mut value = serde_json::to_value(&old).map_err(|_| Failure::Injected)?;
                merge_patch(&mut value, patch);
                let new: google::Event = serde_json::from_value(value).map_err(|_| Failure::Injected)?;
                self.store(*side, new);
                Ok(())
            }
            Operation::Delete { side, event_id } => {
                let calendar = self.calendar(*side);
                if calendar
                    .events
                    .get(event_id)
                    .is_some_and(google::Event::is_cancelled)
                {
                    return Ok(()); // 410: already deleted counts as done
                }
                self.existing_or_instance(*side, event_id, None)?;
                self.cancel(*side, event_id);
                Ok(())
            }
        }
    }

    fn put(
        &mut self,
        side: Side,
        event_id: &str,
        body: &google::Event,
        etag: Option<&str>,
    ) -> Result<(), Failure> {
        let old = self.existing_or_instance(side, event_id, etag)?;
        let mut new = body.clone();
        // Immutable at Google.
        new.id = old.id.clone();
        new.recurring_event_id = old.recurring_event_id.clone();
        new.original_start_time = old.original_start_time.clone();
        new.event_type = old.event_type.clone();
        if new.recurring_event_id.is_some() {
            new.recurrence = None;
        }
        self.store(side, new);
        Ok(())
    }

    /// The stored event, or the regular instance a PUT/PATCH/DELETE on an instance id addresses.
    fn existing_or_instance(
        &self,
        side: Side,
        event_id: &str,
        etag: Option<&str>,
    ) -> Result<google::Event, Failure> {
        let calendar = self.calendar(side);
        if let Some(event) = calendar.events.get(event_id) {
            if etag.is_some() && event.etag.as_deref() != etag {
                return Err(Failure::PreconditionFailed);
            }
            return Ok(event.clone());
        }
        let (master_id, key) = recurrence::parse_instance_id(event_id).ok_or(Failure::NotFound)?;
        let master = calendar
            .events
            .get(master_id)
            .filter(|m| !m.is_cancelled() && m.recurrence.as_ref().is_some_and(|r| !r.is_empty()))
            .ok_or(Failure::NotFound)?;
        if etag.is_some() && master.etag.as_deref() != etag {
            return Err(Failure::PreconditionFailed);
        }
        regular_instance(master, key, calendar.time_zone.as_deref()).ok_or(Failure::NotFound)
    }

    /// Cancels an event; a master takes its exceptions with it.
    fn cancel(&mut self, side: Side, event_id: &str) {
        let Ok(mut event) = self.existing_or_instance(side, event_id, None) else {
            return;
        };
        let is_master = event.recurring_event_id.is_none();
        event.status = Some("cancelled".into());
        self.store(side, event);
        if is_master {
            let exceptions: Vec<String> = self
                .calendar(side)
                .live()
                .filter(|e| e.recurring_event_id.as_deref() == Some(event_id))
                .filter_map(|e| e.id.clone())
                .collect();
            for id in exceptions {
                if let Some(mut exception) = self.calendar(side).events.get(&id).cloned() {
                    exception.status = Some("cancelled".into());
                    self.store(side, exception);
                }
            }
        }
    }

    /// Stores an event the way Google answers: a new etag, defaults left out, date-times re-rendered.
    fn store(&mut self, side: Side, mut event: google::Event) {
        self.etag_seq += 1;
        event.etag = Some(format!("\"{}\"", self.etag_seq));
        if event.status.is_none() {
            event.status = Some("confirmed".into());
        }
        if event.transparency.as_deref() == Some("opaque") {
            event.transparency = None;
        }
        if event.visibility.as_deref() == Some("default") {
            event.visibility = None;
        }
        if event.description.as_deref() == Some("") {
            event.description = None;
        }
        for time in [&mut event.start, &mut event.end, &mut event.original_start_time]
            .into_iter()
            .flatten()
        {
            rerender(time);
        }
        let id = event.id.clone().unwrap_or_default();
        self.calendar_mut(side).events.insert(id, event);
    }

    // ---- what users do in Google Calendar ----------------------------------------------------------

    pub fn next_user_id(&mut self) -> String {
        self.id_seq += 1;
        format!("user{:04}", self.id_seq)
    }

    /// Creates (or replaces) an event as a user would.
    pub fn user_put(&mut self, side: Side, event: google::Event) {
        assert!(event.id.is_some());
        self.store(side, event);
    }

    pub fn user_edit(&mut self, side: Side, id: &str, edit: impl FnOnce(&mut google::Event)) {
        let mut event = self.calendar(side).events[id].clone();
        edit(&mut event);
        self.store(side, event);
    }

    pub fn user_delete(&mut self, side: Side, id: &str) {
        self.cancel(side, id);
    }

    /// Edits one instance of a series (creating the exception if needed).
    pub fn user_edit_instance(
        &mut self,
        side: Side,
        master_id: &str,
        original_start: &EventTime,
        edit: impl FnOnce(&mut google::Event),
    ) {
        let id = recurrence::instance_id(master_id, original_start);
        let mut event = self
            .existing_or_instance(side, &id, None)
            .expect("the series has this instance");
        edit(&mut event);
        self.store(side, event);
    }

    pub fn user_cancel_instance(&mut self, side: Side, master_id: &str, original_start: &EventTime) {
        let id = recurrence::instance_id(master_id, original_start);
        self.cancel(side, &id);
    }

    /// The live copy of an origin, if any.
    pub fn copy_of(&self, origin: Side, origin_id: &str) -> Option<&google::Event> {
        let id = mirror_event_id(self.config.id, origin, origin_id);
        self.calendar(origin.other())
            .events
            .get(&id)
            .filter(|e| !e.is_cancelled())
    }

    pub fn live_count(&self, side: Side) -> usize {
        self.calendar(side)
            .live()
            .filter(|e| e.recurring_event_id.is_none())
            .count()
    }
}

/// Google re-renders `dateTime` in the event's zone (offset form): equal instants, different strings.
fn rerender(time: &mut EventDateTime) {
    let Some(instant) = time.instant() else {
        return;
    };
    let zone: Option<chrono_tz::Tz> = time.time_zone.as_deref().and_then(|tz| tz.parse().ok());
    time.date_time = Some(match zone {
        Some(zone) => instant.with_timezone(&zone).to_rfc3339(),
        None => instant.to_rfc3339(),
    });
}

/// The regular instance of a series at `key`, as Google returns it for an instance id.
pub fn regular_instance(
    master: &google::Event,
    key: InstanceKey,
    time_zone: Option<&str>,
) -> Option<google::Event> {
    let content = MirrorContent::from_google(master)?;
    let found = occurrence(&content, key, time_zone)?;
    let master_id = master.id.clone()?;
    let original = match key {
        InstanceKey::Date(date) => EventTime::Date(date),
        InstanceKey::Instant(instant) => EventTime::DateTime {
            instant,
            time_zone: match &content.start {
                EventTime::DateTime { time_zone, .. } => time_zone.clone(),
                EventTime::Date(_) => None,
            },
        },
    };
    Some(google::Event {
        id: Some(recurrence::instance_id(&master_id, &original)),
        recurring_event_id: Some(master_id),
        original_start_time: Some(time_to_google(&original)),
        start: Some(time_to_google(&found.start)),
        end: Some(time_to_google(&found.end)),
        recurrence: None,
        etag: None,
        ..master.clone()
    })
}

/// RFC 7396 JSON merge patch (what a Google PATCH does to objects).
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(target) = target {
        for (key, value) in patch {
            if value.is_null() {
                target.remove(key);
            } else {
                merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// What every copy body must be: no guests, attachments or conference, reminders off, a marker.
fn assert_body_is_a_clean_mirror(body: &google::Event) {
    assert!(body.attendees.is_none() && body.attachments.is_none() && body.conference_data.is_none());
    let reminders = body.reminders.as_ref().expect("reminders set");
    assert_eq!(reminders.use_default, Some(false));
    assert_eq!(reminders.overrides.as_deref(), Some(&[][..]));
    assert!(is_mirror(body).is_some(), "a copy without marker: {body:?}");
    assert!(
        body.extended_properties
            .as_ref()
            .is_some_and(|p| p.shared.is_empty())
    );
}
