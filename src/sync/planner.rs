//! The sync planner: both calendars' current state, the links and the config in; the operations that
//! make the calendars agree out. Pure: no database, no network, no clock (`now` is an input).
//!
//! # Reconciliation
//! The planner compares the DESIRED state (every origin event in the window has exactly one copy, equal to
//! [`mirror_content`] of it) with the ACTUAL state (the cache), not a log of changes. Rerunning after a
//! partial application (crash, failed batch parts) therefore converges, and a run with nothing to do plans
//! nothing. Copies have deterministic ids ([`mirror_event_id`]): a plan never needs to know whether an
//! earlier insert landed (the executor turns a 409 on an insert into a PUT of the same body).
//!
//! Events are grouped in PAIRS: an origin event (any event without a mirror marker on a side that may hold
//! origins: the source, and for TWO_WAY the destination too) and its copy on the other side. A pair is
//! found from its origin, from a copy carrying this config's marker, or from a link. For each pair:
//!
//! | origin | copy | ONE_WAY | TWO_WAY (link = last synced hashes) |
//! |---|---|---|---|
//! | in window | equal to desired | nothing (link refreshed if stale) | same |
//! | in window | differs | overwrite the copy | copy changed, origin not: the copy's edit flows back ([`reverse_content`], a PATCH of the origin); both changed: origin wins, one conflict; otherwise overwrite |
//! | in window | missing / deleted | (re)create | with a link and an unchanged origin the copy was deleted: delete the origin (only if the copy's side is complete); origin changed too: recreate, one conflict; no link: create |
//! | out of window, skipped type, deleted, a mirror itself | live | delete the copy (only if the origin's side is complete) | same; a deleted origin whose copy was edited counts a conflict (origin wins) |
//!
//! Through a privacy copy only start, end and recurrence flow back ([`reverse_content`]); text edits on a
//! placeholder copy are overwritten. An edit flowing back is applied to the origin only; the copy is
//! rewritten (if it still differs from the desired copy) by the next run, once the link records the new
//! origin: writing both in one run could lose the edit if only the copy write landed.
//!
//! # Series
//! A recurring origin is mirrored as a series (its master with the recurrence lines). Its exceptions
//! (moved, edited or cancelled instances) are instance PAIRS: the origin's instance at an original start
//! and the copy series' instance at the same original start ([`mirror_instance_id`]). An instance without
//! an exception is the series' regular occurrence; a link-less instance pair counts as last synced when
//! both were regular, so an exception on either side is a change. Instance writes are PUT/PATCH/DELETE on
//! instance ids (Google turns them into exceptions) and come in [`Phase::Instances`], after the masters.
//!
//! # Safety
//! - A deletion decided from one side's state (the origin is gone or out of scope, or in TWO_WAY the copy
//!   was deleted) is planned only when that side's listing is complete this run. Links are forgotten only
//!   when both sides are complete (a link tells a deleted copy from a new origin in TWO_WAY).
//! - Mass-delete guard: more than `max_delete_share` of the config's mirrors and at least
//!   `min_delete_guard` whole events to delete -> the plan holds NO deletion and says
//!   [`Halt::MassDelete`], unless `allow_mass_delete`.
//! - Events carrying a marker of ANY config are never origins: mirrors of mirrors never exist. Events of
//!   other configs are never touched.
//! - Event types Google will not copy ([`skippable_event_type`]) are counted in `skipped`, never written.
//!
//! # Executor contract
//! - Input: each calendar's cached events as [`SideState`] describes (tombstones and every linked or
//!   marked event included), `complete` only when this run's listing of that calendar reached its last
//!   page, the config's links ([`Link::from_model`]), the config ([`PlanConfig::from_model`]) and `now`.
//! - Record [`Plan::link_changes`] at once: they need no write to Google.
//! - Send [`Plan::batches`] one after the other (a batch of a later phase only once the earlier ones have
//!   answered). For each operation that lands: record its `link` change, and store Google's answer in
//!   the cache (a delete tombstones the row), so the next plan sees our own writes even if its listing
//!   fails.
//! - Insert answering 409: PUT the same body to `event_id` without If-Match (it resurrects a deleted copy).
//!   Delete answering 404 or 410: done. 412: the event changed since it was cached; count it failed, the
//!   next run (after listing) decides again. Any other failure: count it failed; the next plan retries it,
//!   as the state still differs.
//! - [`Plan::halted`]: apply the plan (it holds no deletion), then pause the config with the reason; an
//!   explicit override reruns with [`PlanInput::allow_mass_delete`].
//! - Counts: [`Plan::counts`] as planned; [`PlannedOperation::effect`] tells what each landed operation
//!   adds to the run's created / updated / deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use serde_json::Value;
use uuid::Uuid;

use crate::{
    entities::{
        enums::{EventStatus, LinkOrigin, SyncDirection},
        event_links, sync_configs,
    },
    events::recurrence::{self, EventTime, InstanceKey, Series, Window},
    google,
};

pub use super::mirror::{CalendarEvent, DirectionSettings, MirrorContent, Side};
use super::mirror::{
    content_hash, mirror_body, mirror_content, mirror_event_id, origin_patch, reverse_content,
    skippable_event_type,
};

/// The hash a link records for a side whose instance is cancelled (instance pairs only).
pub const CANCELLED_HASH: &str = "cancelled";

/// Default [`DeleteGuard::max_delete_share`].
pub const DEFAULT_MAX_DELETE_SHARE: f64 = 0.25;

/// Default [`DeleteGuard::min_delete_guard`].
pub const DEFAULT_MIN_DELETE_GUARD: usize = 10;

/// Most instances one regular-occurrence lookup may read (those overlapping a window of a few days).
const OCCURRENCE_LOOKUP_LIMIT: usize = 1_000;

/// What the planner needs of a sync config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanConfig {
    pub id: Uuid,
    pub direction: SyncDirection,
    pub lookahead_days: i64,
    pub lookback_days: i64,
    /// Privacy for source -> destination copies: `Some(placeholder)` when enabled.
    pub privacy_placeholder: Option<String>,
    /// Privacy for destination -> source copies (TWO_WAY): `Some(placeholder)` when enabled.
    pub reverse_privacy_placeholder: Option<String>,
    pub destination_color_id: Option<String>,
    pub reverse_color_id: Option<String>,
}

impl PlanConfig {
    pub fn from_model(config: &sync_configs::Model) -> Self {
        Self {
            id: config.id,
            direction: config.direction,
            lookahead_days: i64::from(config.lookahead_days),
            lookback_days: i64::from(config.lookback_days),
            privacy_placeholder: config.privacy_enabled.then(|| config.privacy_placeholder.clone()),
            reverse_privacy_placeholder: config
                .reverse_privacy_enabled
                .then(|| config.reverse_privacy_placeholder.clone()),
            destination_color_id: config.destination_color_id.clone(),
            reverse_color_id: config.reverse_color_id.clone(),
        }
    }

    /// `[now - lookback, now + lookahead)`: an event is in it when it starts before the end and ends after
    /// the start, so one overlapping either edge is inside. Negative day counts read as 0.
    pub fn window(&self, now: DateTime<Utc>) -> Window {
        let days = |n: i64| TimeDelta::try_days(n.max(0)).unwrap_or(TimeDelta::zero());
        Window::new(
            now.checked_sub_signed(days(self.lookback_days))
                .unwrap_or(DateTime::<Utc>::MIN_UTC),
            now.checked_add_signed(days(self.lookahead_days))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        )
    }

    /// Whether events on `side` are origins (the source always; the destination in TWO_WAY).
    pub fn mirrors_from(&self, side: Side) -> bool {
        side == Side::Source || self.direction == SyncDirection::TwoWay
    }

    /// How copies of origins on `origin` are written.
    pub fn settings(&self, origin: Side) -> DirectionSettings {
        let (privacy_placeholder, color_id) = match origin {
            Side::Source => (&self.privacy_placeholder, &self.destination_color_id),
            Side::Destination => (&self.reverse_privacy_placeholder, &self.reverse_color_id),
        };
        DirectionSettings {
            config_id: self.id,
            origin,
            privacy_placeholder: privacy_placeholder.clone(),
            color_id: color_id.clone(),
        }
    }
}

/// One calendar's cached state.
///
/// `events` must hold, tombstones included: every event overlapping the config's window (a slightly larger
/// horizon is fine), every event named by a link (source or mirror id) and every event carrying this
/// config's marker wherever it lies in time, and the exceptions of every series master included. A linked
/// event that is missing reads as deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SideState {
    pub events: Vec<CalendarEvent>,
    /// This run's listing of the calendar succeeded to its last page. When false, nothing is deleted on
    /// the basis of this side's state.
    pub complete: bool,
    /// The calendar's zone (all-day dates are read in it); UTC when `None`.
    pub time_zone: Option<String>,
}

/// One `event_links` row: the origin event and its copy, with both contents' hashes as last synced.
/// Named as the table: `source_*` is the ORIGIN (on the `origin` side), `mirror_*` the copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    pub origin: LinkOrigin,
    /// Google id of the origin event (for an instance pair, the origin series' instance id).
    pub source_event_id: String,
    /// Google id of the copy.
    pub mirror_event_id: String,
    /// [`content_hash`] of the origin as last synced ([`CANCELLED_HASH`] for a cancelled instance).
    pub source_hash: String,
    /// [`content_hash`] of the copy as last written or seen.
    pub mirror_hash: String,
}

impl Link {
    pub fn from_model(link: &event_links::Model) -> Self {
        Self {
            origin: link.origin,
            source_event_id: link.source_event_id.clone(),
            mirror_event_id: link.mirror_event_id.clone(),
            source_hash: link.source_hash.clone(),
            mirror_hash: link.mirror_hash.clone(),
        }
    }
}

/// The mass-delete guard's thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeleteGuard {
    /// Halt when the deletions exceed this share of the config's mirrors ...
    pub max_delete_share: f64,
    /// ... and are at least this many.
    pub min_delete_guard: usize,
}

impl Default for DeleteGuard {
    fn default() -> Self {
        Self {
            max_delete_share: DEFAULT_MAX_DELETE_SHARE,
            min_delete_guard: DEFAULT_MIN_DELETE_GUARD,
        }
    }
}

impl From<crate::config::MassDeleteLimits> for DeleteGuard {
    fn from(limits: crate::config::MassDeleteLimits) -> Self {
        Self {
            max_delete_share: f64::from(limits.percent) / 100.0,
            min_delete_guard: usize::try_from(limits.at_least).unwrap_or(usize::MAX),
        }
    }
}

/// Everything a plan is made from.
#[derive(Debug, Clone)]
pub struct PlanInput {
    pub config: PlanConfig,
    pub now: DateTime<Utc>,
    pub source: SideState,
    pub destination: SideState,
    /// The config's links.
    pub links: Vec<Link>,
    pub guard: DeleteGuard,
    /// The explicit override of the mass-delete guard (`triggerSync` with override).
    pub allow_mass_delete: bool,
}

/// Operations of a later phase may depend on operations of an earlier one (an exception needs its copy
/// series): never put operations of two phases in one batch (Google runs a batch in any order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Whole events: singles and series masters.
    Series,
    /// Instances of series (exceptions).
    Instances,
}

/// One write to Google. Every write is sent with `sendUpdates=none`.
#[derive(Debug, Clone, PartialEq)]
pub enum Operation {
    /// POST a new copy (`body.id` is its deterministic id). A 409 means it exists (an earlier attempt
    /// landed, or it was deleted and keeps its id): PUT the same body to `event_id` without If-Match.
    Insert {
        side: Side,
        event_id: String,
        body: google::Event,
    },
    /// PUT a copy (replaces it whole; its `status: confirmed` resurrects a deleted copy or instance).
    /// `etag` is the cached etag for If-Match: a 412 means it changed since, re-read and plan again.
    Update {
        side: Side,
        event_id: String,
        body: google::Event,
        etag: Option<String>,
    },
    /// PATCH an ORIGIN event with only the fields a copy's edit changed ([`origin_patch`]), leaving its
    /// attendees, reminders and everything else alone. `etag` as for [`Operation::Update`].
    Patch {
        side: Side,
        event_id: String,
        patch: Value,
        etag: Option<String>,
    },
    /// DELETE an event, or cancel one instance of a series (instance id). 410 (already deleted) is success.
    Delete { side: Side, event_id: String },
}

impl Operation {
    pub fn side(&self) -> Side {
        match self {
            Self::Insert { side, .. }
            | Self::Update { side, .. }
            | Self::Patch { side, .. }
            | Self::Delete { side, .. } => *side,
        }
    }

    pub fn event_id(&self) -> &str {
        match self {
            Self::Insert { event_id, .. }
            | Self::Update { event_id, .. }
            | Self::Patch { event_id, .. }
            | Self::Delete { event_id, .. } => event_id,
        }
    }
}

/// What an operation counts as in the run's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Effect {
    Created,
    Updated,
    Deleted,
}

/// A link row change. `Remove` is keyed by the config and `source_event_id` (unique per config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    Upsert(Link),
    Remove {
        origin: LinkOrigin,
        source_event_id: String,
        mirror_event_id: String,
    },
}

/// An operation, and the link change to record once it has landed (never when it failed).
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedOperation {
    pub phase: Phase,
    pub effect: Effect,
    pub operation: Operation,
    pub link: Option<LinkChange>,
}

/// The run's totals as planned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanCounts {
    pub created: u32,
    pub updated: u32,
    pub deleted: u32,
    /// Origin events in the window of a type Google will not copy.
    pub skipped: u32,
    /// Pairs changed on both sides since the last sync (the origin won).
    pub conflicts: u32,
}

/// Why a plan holds back some of its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Halt {
    /// `would_delete` whole events were to be deleted out of `mirrors` existing mirrors: the plan holds no
    /// deletion (pause the config until an explicit override).
    MassDelete { would_delete: usize, mirrors: usize },
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// In phase order ([`Plan::batches`] keeps phases apart).
    pub operations: Vec<PlannedOperation>,
    /// Link bookkeeping that needs no write to Google (pairs already in sync, pairs gone on both sides):
    /// record them at once.
    pub link_changes: Vec<LinkChange>,
    pub counts: PlanCounts,
    pub halted: Option<Halt>,
}

impl Plan {
    /// No write to Google (link bookkeeping aside).
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// The operations in batches of at most `max` (at least 1), a batch never spanning two phases.
    pub fn batches(&self, max: usize) -> Vec<&[PlannedOperation]> {
        let max = max.max(1);
        let mut batches = Vec::new();
        let mut rest = self.operations.as_slice();
        while let Some(first) = rest.first() {
            let same_phase = rest.iter().take_while(|op| op.phase == first.phase).count();
            let (batch, tail) = rest.split_at(same_phase.min(max));
            batches.push(batch);
            rest = tail;
        }
        batches
    }
}

/// Plans one run. See the module documentation for the rules.
pub fn plan(input: &PlanInput) -> Plan {
    Planner::new(input).run()
}

/// An event of the input with its content normalised (exceptions without recurrence).
struct Entry<'a> {
    event: &'a CalendarEvent,
    content: Option<MirrorContent>,
}

struct Calendar<'a> {
    complete: bool,
    time_zone: Option<&'a str>,
    by_id: HashMap<&'a str, Entry<'a>>,
    /// Series master id -> the exceptions by original start.
    exceptions: HashMap<&'a str, BTreeMap<InstanceKey, &'a str>>,
    /// Ids of this side's events that are copies of the other side's origins, marker or not.
    expected_copies: HashSet<String>,
    /// This side's unmarked events -> the id of their copy on the other side.
    copy_ids: HashMap<&'a str, String>,
}

impl<'a> Calendar<'a> {
    fn new(state: &'a SideState) -> Self {
        let mut by_id = HashMap::new();
        let mut exceptions: HashMap<&str, BTreeMap<InstanceKey, &str>> = HashMap::new();
        for event in &state.events {
            let content = event.content.clone().map(|c| {
                let c = c.normalised();
                if event.is_exception() {
                    MirrorContent {
                        recurrence: Vec::new(),
                        ..c
                    }
                } else {
                    c
                }
            });
            if let (Some(master), Some(original)) = (&event.recurring_event_id, &event.original_start) {
                exceptions
                    .entry(master.as_str())
                    .or_default()
                    .insert(original.instance_key(), event.google_id.as_str());
            }
            by_id.insert(event.google_id.as_str(), Entry { event, content });
        }
        Self {
            complete: state.complete,
            time_zone: state.time_zone.as_deref(),
            by_id,
            exceptions,
            expected_copies: HashSet::new(),
            copy_ids: HashMap::new(),
        }
    }

    fn whole_events(&self) -> impl Iterator<Item = &Entry<'a>> {
        self.by_id.values().filter(|entry| !entry.event.is_exception())
    }
}

/// An origin as the decision sees it.
enum OriginState {
    /// Live, eligible and in the window.
    InWindow {
        content: Box<MirrorContent>,
        etag: Option<String>,
    },
    /// Live but must have no copy: out of the window, a skipped type, a mirror, not on an origin side.
    OutOfScope,
    /// Deleted, cancelled or absent.
    Gone,
}

/// How a copy that is not live gets (re)written.
#[derive(Clone, Copy)]
enum Recreate {
    /// Never seen: insert.
    Insert,
    /// Known deleted or an instance: PUT without If-Match.
    Put,
}

enum CopyState {
    Live {
        content: Box<MirrorContent>,
        etag: Option<String>,
    },
    Missing(Recreate),
}

/// The identity of a pair, as the decision needs it.
struct PairSpec<'s> {
    phase: Phase,
    origin_side: Side,
    settings: &'s DirectionSettings,
    /// Where to PATCH or DELETE the origin.
    origin_target: String,
    /// The copy's id (also the link's `mirror_event_id`).
    copy_id: String,
    /// The link's `source_event_id`.
    link_source_id: String,
    stored_link: Option<Link>,
    /// Instance pairs without a stored link: the hashes of both sides' regular occurrences.
    implied_hashes: Option<(String, String)>,
}

impl PairSpec<'_> {
    fn copy_side(&self) -> Side {
        self.origin_side.other()
    }

    fn last_synced(&self) -> Option<(&str, &str)> {
        match (&self.stored_link, &self.implied_hashes) {
            (Some(link), _) => Some((link.source_hash.as_str(), link.mirror_hash.as_str())),
            (None, Some((source, mirror))) => Some((source.as_str(), mirror.as_str())),
            (None, None) => None,
        }
    }

    fn link(&self, source_hash: String, mirror_hash: String) -> Link {
        Link {
            origin: self.origin_side.into(),
            source_event_id: self.link_source_id.clone(),
            mirror_event_id: self.copy_id.clone(),
            source_hash,
            mirror_hash,
        }
    }

    fn link_removal(&self) -> Option<LinkChange> {
        self.stored_link.as_ref().map(|link| LinkChange::Remove {
            origin: link.origin,
            source_event_id: link.source_event_id.clone(),
            mirror_event_id: link.mirror_event_id.clone(),
        })
    }
}

/// What a pair looks like once the plan has landed (for its instances).
struct Outcome {
    origin: Option<MirrorContent>,
    copy: Option<MirrorContent>,
    /// Neither side will hold the pair any more (its instance links can go).
    settled_gone: bool,
}

impl Outcome {
    fn waiting() -> Self {
        Self {
            origin: None,
            copy: None,
            settled_gone: false,
        }
    }
}

struct Planner<'a> {
    input: &'a PlanInput,
    window: Window,
    two_way: bool,
    source: Calendar<'a>,
    destination: Calendar<'a>,
    whole_links: BTreeMap<(Side, &'a str), &'a Link>,
    /// (origin side, origin master id) -> (original start, link).
    instance_links: BTreeMap<(Side, String), Vec<(InstanceKey, &'a Link)>>,
    visited_instance_links: HashSet<(Side, String)>,
    series_ops: Vec<PlannedOperation>,
    instance_ops: Vec<PlannedOperation>,
    link_changes: Vec<LinkChange>,
    counts: PlanCounts,
    live_copies: usize,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput) -> Self {
        let mut whole_links = BTreeMap::new();
        let mut instance_links: BTreeMap<(Side, String), Vec<(InstanceKey, &Link)>> = BTreeMap::new();
        for link in &input.links {
            let side = Side::from(link.origin);
            match recurrence::parse_instance_id(&link.source_event_id) {
                Some((master, key)) => instance_links
                    .entry((side, master.to_owned()))
                    .or_default()
                    .push((key, link)),
                None => {
                    whole_links.insert((side, link.source_event_id.as_str()), link);
                }
            }
        }
        let mut planner = Self {
            input,
            window: input.config.window(input.now),
            two_way: input.config.direction == SyncDirection::TwoWay,
            source: Calendar::new(&input.source),
            destination: Calendar::new(&input.destination),
            whole_links,
            instance_links,
            visited_instance_links: HashSet::new(),
            series_ops: Vec::new(),
            instance_ops: Vec::new(),
            link_changes: Vec::new(),
            counts: PlanCounts::default(),
            live_copies: 0,
        };
        // Unmarked events sitting at a copy's deterministic id are copies too: never origins.
        for origin_side in [Side::Source, Side::Destination] {
            if !input.config.mirrors_from(origin_side) {
                continue;
            }
            let copy_ids: HashMap<&str, String> = planner
                .calendar(origin_side)
                .whole_events()
                .filter(|entry| entry.event.mirror.is_none())
                .map(|entry| {
                    let id = entry.event.google_id.as_str();
                    (id, mirror_event_id(input.config.id, origin_side, id))
                })
                .collect();
            planner.calendar_mut(origin_side.other()).expected_copies = copy_ids.values().cloned().collect();
            planner.calendar_mut(origin_side).copy_ids = copy_ids;
        }
        planner
    }

    fn calendar(&self, side: Side) -> &Calendar<'a> {
        match side {
            Side::Source => &self.source,
            Side::Destination => &self.destination,
        }
    }

    fn calendar_mut(&mut self, side: Side) -> &mut Calendar<'a> {
        match side {
            Side::Source => &mut self.source,
            Side::Destination => &mut self.destination,
        }
    }

    fn run(mut self) -> Plan {
        let input = self.input;
        let config = &input.config;
        // Pair key (origin side, origin id) -> copies carrying this config's marker.
        let mut pairs: BTreeMap<(Side, String), Vec<&'a CalendarEvent>> = BTreeMap::new();
        for side in [Side::Source, Side::Destination] {
            let calendar = self.calendar(side);
            for entry in calendar.whole_events() {
                let event = entry.event;
                match &event.mirror {
                    Some(marker) => {
                        if let Some(origin) = &marker.origin
                            && marker.is_of(config.id)
                            && origin.side == side.other()
                        {
                            pairs
                                .entry((origin.side, origin.event_id.clone()))
                                .or_default()
                                .push(event);
                        }
                    }
                    None => {
                        if config.mirrors_from(side) && !calendar.expected_copies.contains(&event.google_id) {
                            pairs.entry((side, event.google_id.clone())).or_default();
                        }
                    }
                }
            }
        }
        for (side, id) in self.whole_links.keys() {
            pairs.entry((*side, (*id).to_owned())).or_default();
        }
        for ((origin_side, origin_id), marked_copies) in &pairs {
            self.whole_pair(*origin_side, origin_id, marked_copies);
        }
        // Instance links of series no pair holds any more (when both sides were listed).
        if self.source.complete && self.destination.complete {
            let mut orphans: Vec<LinkChange> = Vec::new();
            for (key, links) in &self.instance_links {
                if !self.visited_instance_links.contains(key) && !pairs.contains_key(key) {
                    orphans.extend(links.iter().map(|(_, link)| removal(link)));
                }
            }
            self.link_changes.extend(orphans);
        }
        self.finish()
    }

    fn finish(self) -> Plan {
        let mut operations = self.series_ops;
        operations.extend(self.instance_ops);
        let mut counts = self.counts;
        let would_delete = operations
            .iter()
            .filter(|op| op.effect == Effect::Deleted && op.phase == Phase::Series)
            .count();
        let mirrors = self.live_copies.max(self.whole_links.len());
        let guard = self.input.guard;
        let too_many = would_delete >= guard.min_delete_guard
            && would_delete as f64 > guard.max_delete_share * mirrors as f64;
        let mut halted = None;
        if too_many && !self.input.allow_mass_delete {
            halted = Some(Halt::MassDelete {
                would_delete,
                mirrors,
            });
            operations.retain(|op| op.effect != Effect::Deleted);
        }
        for op in &operations {
            let count = match op.effect {
                Effect::Created => &mut counts.created,
                Effect::Updated => &mut counts.updated,
                Effect::Deleted => &mut counts.deleted,
            };
            *count += 1;
        }
        Plan {
            operations,
            link_changes: self.link_changes,
            counts,
            halted,
        }
    }

    fn whole_pair(&mut self, origin_side: Side, origin_id: &str, marked_copies: &[&'a CalendarEvent]) {
        let input = self.input;
        let config = &input.config;
        let copy_side = origin_side.other();
        let settings = config.settings(origin_side);
        let copy_id = self
            .calendar(origin_side)
            .copy_ids
            .get(origin_id)
            .cloned()
            .unwrap_or_else(|| mirror_event_id(config.id, origin_side, origin_id));

        // Copies of this pair at another id (written by an older scheme, or by hand): duplicates.
        let mut marked_copies = marked_copies.to_vec();
        marked_copies.sort_by(|a, b| a.google_id.cmp(&b.google_id));
        for duplicate in marked_copies {
            if duplicate.google_id != copy_id && !duplicate.is_deleted() {
                self.live_copies += 1;
                self.series_ops.push(PlannedOperation {
                    phase: Phase::Series,
                    effect: Effect::Deleted,
                    operation: Operation::Delete {
                        side: copy_side,
                        event_id: duplicate.google_id.clone(),
                    },
                    link: None,
                });
            }
        }

        let Some(origin) = self.whole_origin_state(origin_side, origin_id) else {
            return;
        };
        let copy = match self.calendar(copy_side).by_id.get(copy_id.as_str()) {
            None => CopyState::Missing(Recreate::Insert),
            Some(entry) if entry.event.is_deleted() || entry.event.is_exception() => {
                CopyState::Missing(Recreate::Put)
            }
            Some(entry) => match &entry.content {
                Some(content) => CopyState::Live {
                    content: Box::new(content.clone()),
                    etag: entry.event.etag.clone(),
                },
                // A live copy whose times are unreadable: leave the pair alone.
                None => return,
            },
        };
        if matches!(copy, CopyState::Live { .. }) {
            self.live_copies += 1;
        }
        let spec = PairSpec {
            phase: Phase::Series,
            origin_side,
            settings: &settings,
            origin_target: origin_id.to_owned(),
            copy_id: copy_id.clone(),
            link_source_id: origin_id.to_owned(),
            stored_link: self
                .whole_links
                .get(&(origin_side, origin_id))
                .map(|link| (*link).clone()),
            implied_hashes: None,
        };
        let outcome = self.decide(&spec, origin, copy);
        let instance_key = (origin_side, origin_id.to_owned());
        let has_instance_links = self.instance_links.contains_key(&instance_key);
        match (outcome.origin, outcome.copy) {
            (Some(origin_master), Some(copy_master)) if origin_master.is_series() => {
                if has_instance_links {
                    self.visited_instance_links.insert(instance_key);
                }
                self.instances(&settings, origin_id, &copy_id, &origin_master, &copy_master);
            }
            _ => {
                if has_instance_links {
                    if outcome.settled_gone {
                        let removals: Vec<LinkChange> = self.instance_links[&instance_key]
                            .iter()
                            .map(|(_, link)| removal(link))
                            .collect();
                        self.link_changes.extend(removals);
                    }
                    self.visited_instance_links.insert(instance_key);
                }
            }
        }
    }

    /// The origin's state; `None` when its content is unreadable (the pair is left alone).
    fn whole_origin_state(&mut self, origin_side: Side, origin_id: &str) -> Option<OriginState> {
        let input = self.input;
        let config = &input.config;
        let calendar = self.calendar(origin_side);
        let Some(entry) = calendar.by_id.get(origin_id) else {
            return Some(OriginState::Gone);
        };
        let event = entry.event;
        if event.is_exception() || event.is_deleted() {
            return Some(OriginState::Gone);
        }
        if event.mirror.is_some()
            || !config.mirrors_from(origin_side)
            || calendar.expected_copies.contains(origin_id)
        {
            return Some(OriginState::OutOfScope);
        }
        let content = entry.content.clone()?;
        let in_window = in_window(&content, calendar.time_zone, self.window);
        if skippable_event_type(event.event_type.as_deref()) {
            if in_window {
                self.counts.skipped += 1;
            }
            return Some(OriginState::OutOfScope);
        }
        Some(if in_window {
            OriginState::InWindow {
                content: Box::new(content),
                etag: event.etag.clone(),
            }
        } else {
            OriginState::OutOfScope
        })
    }

    /// The instance pairs of a series pair: every original start where either side has an exception or a
    /// link exists.
    fn instances(
        &mut self,
        settings: &DirectionSettings,
        origin_master_id: &str,
        copy_master_id: &str,
        origin_master: &MirrorContent,
        copy_master: &MirrorContent,
    ) {
        let origin_side = settings.origin;
        let copy_side = origin_side.other();
        let origin_exceptions = self
            .calendar(origin_side)
            .exceptions
            .get(origin_master_id)
            .cloned();
        let copy_exceptions = self.calendar(copy_side).exceptions.get(copy_master_id).cloned();
        let links: HashMap<InstanceKey, &Link> = self
            .instance_links
            .get(&(origin_side, origin_master_id.to_owned()))
            .map(|links| links.iter().map(|(key, link)| (*key, *link)).collect())
            .unwrap_or_default();
        let mut keys: BTreeSet<InstanceKey> = links.keys().copied().collect();
        keys.extend(origin_exceptions.iter().flat_map(|m| m.keys().copied()));
        keys.extend(copy_exceptions.iter().flat_map(|m| m.keys().copied()));

        for key in keys {
            let original_start = match key {
                InstanceKey::Date(date) => EventTime::Date(date),
                InstanceKey::Instant(instant) => EventTime::DateTime {
                    instant,
                    time_zone: None,
                },
            };
            let origin_instance_id = recurrence::instance_id(origin_master_id, &original_start);
            let copy_instance_id = recurrence::instance_id(copy_master_id, &original_start);
            let origin_regular = occurrence(origin_master, key, self.calendar(origin_side).time_zone);
            let copy_regular = occurrence(copy_master, key, self.calendar(copy_side).time_zone);
            let origin_exception = origin_exceptions
                .as_ref()
                .and_then(|m| m.get(&key))
                .and_then(|id| self.calendar(origin_side).by_id.get(id));
            let copy_exception = copy_exceptions
                .as_ref()
                .and_then(|m| m.get(&key))
                .and_then(|id| self.calendar(copy_side).by_id.get(id));

            // Google can only write an instance the copy series has (regular or an exception).
            if copy_exception.is_none() && copy_regular.is_none() {
                continue;
            }
            let origin = match origin_exception {
                Some(entry) if entry.event.status == EventStatus::Cancelled => OriginState::Gone,
                Some(entry) => match &entry.content {
                    Some(content) => OriginState::InWindow {
                        content: Box::new(content.clone()),
                        etag: entry.event.etag.clone(),
                    },
                    None => continue,
                },
                None => match &origin_regular {
                    Some(content) => OriginState::InWindow {
                        content: Box::new(content.clone()),
                        etag: None,
                    },
                    None => OriginState::Gone,
                },
            };
            let copy = match copy_exception {
                Some(entry) if entry.event.status == EventStatus::Cancelled => {
                    CopyState::Missing(Recreate::Put)
                }
                Some(entry) => match &entry.content {
                    Some(content) => CopyState::Live {
                        content: Box::new(content.clone()),
                        etag: entry.event.etag.clone(),
                    },
                    None => continue,
                },
                None => match &copy_regular {
                    Some(content) => CopyState::Live {
                        content: Box::new(content.clone()),
                        etag: None,
                    },
                    None => CopyState::Missing(Recreate::Put),
                },
            };
            let stored_link = links.get(&key).map(|link| (*link).clone());
            let implied_hashes = stored_link.is_none().then(|| {
                let hash = |regular: &Option<MirrorContent>| {
                    regular
                        .as_ref()
                        .map_or_else(|| CANCELLED_HASH.to_owned(), content_hash)
                };
                (hash(&origin_regular), hash(&copy_regular))
            });
            let spec = PairSpec {
                phase: Phase::Instances,
                origin_side,
                settings,
                origin_target: origin_exception
                    .map_or(origin_instance_id.clone(), |e| e.event.google_id.clone()),
                copy_id: copy_instance_id,
                link_source_id: origin_instance_id,
                stored_link,
                implied_hashes,
            };
            self.decide(&spec, origin, copy);
        }
    }

    /// The decision table of the module documentation, for one pair.
    fn decide(&mut self, pair: &PairSpec<'_>, origin: OriginState, copy: CopyState) -> Outcome {
        let two_way = self.two_way;
        let has_link = pair.last_synced().is_some();
        let origin_complete = self.calendar(pair.origin_side).complete;
        let copy_complete = self.calendar(pair.copy_side()).complete;
        match origin {
            OriginState::InWindow {
                content: origin,
                etag: origin_etag,
            } => {
                let origin = *origin;
                let origin_hash = content_hash(&origin);
                let origin_changed = pair.last_synced().is_none_or(|(source, _)| source != origin_hash);
                let desired = mirror_content(&origin, pair.settings);
                match copy {
                    CopyState::Live { content: copy, etag } => {
                        let copy = *copy;
                        let copy_hash = content_hash(&copy);
                        let copy_changed = pair.last_synced().is_none_or(|(_, mirror)| mirror != copy_hash);
                        if copy == desired {
                            self.refresh_link(pair, origin_hash, copy_hash);
                            return Outcome {
                                origin: Some(origin),
                                copy: Some(copy),
                                settled_gone: false,
                            };
                        }
                        if two_way && has_link && copy_changed && !origin_changed {
                            let reversed = reverse_content(&origin, &copy, pair.settings);
                            if reversed != origin {
                                let link = pair.link(content_hash(&reversed), copy_hash);
                                self.push(
                                    pair.phase,
                                    Effect::Updated,
                                    Operation::Patch {
                                        side: pair.origin_side,
                                        event_id: pair.origin_target.clone(),
                                        patch: origin_patch(&origin, &reversed),
                                        etag: origin_etag,
                                    },
                                    Some(LinkChange::Upsert(link)),
                                );
                                return Outcome {
                                    origin: Some(reversed),
                                    copy: Some(copy),
                                    settled_gone: false,
                                };
                            }
                        } else if two_way && has_link && copy_changed && origin_changed {
                            self.counts.conflicts += 1;
                        }
                        let update = Operation::Update {
                            side: pair.copy_side(),
                            event_id: pair.copy_id.clone(),
                            body: mirror_body(&pair.copy_id, &pair.link_source_id, &desired, pair.settings),
                            etag,
                        };
                        let link = pair.link(origin_hash, content_hash(&desired));
                        self.push(
                            pair.phase,
                            Effect::Updated,
                            update,
                            Some(LinkChange::Upsert(link)),
                        );
                    }
                    CopyState::Missing(recreate) => {
                        if two_way && has_link && !origin_changed {
                            // The copy was deleted on its side: the deletion reaches the origin.
                            if copy_complete {
                                let delete = Operation::Delete {
                                    side: pair.origin_side,
                                    event_id: pair.origin_target.clone(),
                                };
                                self.push(pair.phase, Effect::Deleted, delete, pair.link_removal());
                                return Outcome {
                                    settled_gone: true,
                                    ..Outcome::waiting()
                                };
                            }
                            return Outcome::waiting();
                        }
                        if two_way && has_link {
                            self.counts.conflicts += 1;
                        }
                        let body = mirror_body(&pair.copy_id, &pair.link_source_id, &desired, pair.settings);
                        let (operation, effect) = match (recreate, pair.phase) {
                            (Recreate::Insert, _) => (
                                Operation::Insert {
                                    side: pair.copy_side(),
                                    event_id: pair.copy_id.clone(),
                                    body,
                                },
                                Effect::Created,
                            ),
                            (Recreate::Put, phase) => (
                                Operation::Update {
                                    side: pair.copy_side(),
                                    event_id: pair.copy_id.clone(),
                                    body,
                                    etag: None,
                                },
                                if phase == Phase::Series {
                                    Effect::Created
                                } else {
                                    Effect::Updated
                                },
                            ),
                        };
                        let link = pair.link(origin_hash, content_hash(&desired));
                        self.push(pair.phase, effect, operation, Some(LinkChange::Upsert(link)));
                    }
                }
                Outcome {
                    origin: Some(origin),
                    copy: Some(desired),
                    settled_gone: false,
                }
            }
            OriginState::OutOfScope | OriginState::Gone => match copy {
                CopyState::Live { content: copy, .. } => {
                    if !origin_complete {
                        return Outcome::waiting();
                    }
                    let copy_changed = pair
                        .last_synced()
                        .is_some_and(|(_, mirror)| mirror != content_hash(&copy));
                    if two_way && matches!(origin, OriginState::Gone) && copy_changed {
                        self.counts.conflicts += 1;
                    }
                    let delete = Operation::Delete {
                        side: pair.copy_side(),
                        event_id: pair.copy_id.clone(),
                    };
                    self.push(pair.phase, Effect::Deleted, delete, pair.link_removal());
                    Outcome {
                        settled_gone: true,
                        ..Outcome::waiting()
                    }
                }
                // Gone on both sides: forget the link, unless a side may just not have been listed.
                CopyState::Missing(_) if origin_complete && copy_complete => {
                    self.link_changes.extend(pair.link_removal());
                    Outcome {
                        settled_gone: true,
                        ..Outcome::waiting()
                    }
                }
                CopyState::Missing(_) => Outcome::waiting(),
            },
        }
    }

    /// A pair in sync: record the link unless it already says so.
    fn refresh_link(&mut self, pair: &PairSpec<'_>, origin_hash: String, copy_hash: String) {
        let current = match (&pair.stored_link, &pair.implied_hashes) {
            (Some(link), _) => {
                link.source_hash == origin_hash
                    && link.mirror_hash == copy_hash
                    && link.mirror_event_id == pair.copy_id
            }
            (None, Some((source, mirror))) => *source == origin_hash && *mirror == copy_hash,
            (None, None) => false,
        };
        if !current {
            self.link_changes
                .push(LinkChange::Upsert(pair.link(origin_hash, copy_hash)));
        }
    }

    fn push(&mut self, phase: Phase, effect: Effect, operation: Operation, link: Option<LinkChange>) {
        let planned = PlannedOperation {
            phase,
            effect,
            operation,
            link,
        };
        match phase {
            Phase::Series => self.series_ops.push(planned),
            Phase::Instances => self.instance_ops.push(planned),
        }
    }
}

fn removal(link: &Link) -> LinkChange {
    LinkChange::Remove {
        origin: link.origin,
        source_event_id: link.source_event_id.clone(),
        mirror_event_id: link.mirror_event_id.clone(),
    }
}

/// Whether an event (or, for a series, its span) overlaps the window; edges count as inside.
fn in_window(content: &MirrorContent, time_zone: Option<&str>, window: Window) -> bool {
    if !content.is_series() {
        return recurrence::overlaps(&content.start, &content.end, time_zone, window);
    }
    let series = Series {
        start: &content.start,
        end: &content.end,
        recurrence: &content.recurrence,
    };
    match recurrence::series_range(&series, time_zone) {
        Ok((start, end)) => window.overlaps_range(start, end),
        // Rules Google accepted but the expansion cannot read: treat the series as never ending.
        Err(_) => content.start.to_instant(time_zone) < window.time_max,
    }
}

/// The regular occurrence of `master` at `key` (the master's content at that instance's times), or `None`
/// when the series has no instance there.
fn occurrence(master: &MirrorContent, key: InstanceKey, time_zone: Option<&str>) -> Option<MirrorContent> {
    if !master.is_series() {
        return None;
    }
    // Just wide enough to hold the instance starting at `key` (all-day dates are read in the zone).
    let (at, margin) = match key {
        InstanceKey::Date(date) => (date.and_time(NaiveTime::MIN).and_utc(), TimeDelta::try_days(1)?),
        InstanceKey::Instant(instant) => (instant, TimeDelta::try_seconds(1)?),
    };
    let window = Window::new(at.checked_sub_signed(margin)?, at.checked_add_signed(margin)?);
    let series = Series {
        start: &master.start,
        end: &master.end,
        recurrence: &master.recurrence,
    };
    let expansion = recurrence::expand(&series, time_zone, window, OCCURRENCE_LOOKUP_LIMIT).ok()?;
    let found = expansion
        .occurrences
        .into_iter()
        .find(|occurrence| occurrence.original_start.instance_key() == key)?;
    Some(
        MirrorContent {
            start: found.start,
            end: found.end,
            recurrence: Vec::new(),
            ..master.clone()
        }
        .normalised(),
    )
}

#[cfg(test)]
mod tests;
