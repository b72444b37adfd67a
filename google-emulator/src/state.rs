//! The in-memory world: accounts, calendars, events, OAuth grants, channels,
//! faults and the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::util;

/// Access roles, ordered by power.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    FreeBusyReader,
    Reader,
    Writer,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::FreeBusyReader => "freeBusyReader",
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Owner => "owner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "freeBusyReader" => Some(Role::FreeBusyReader),
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }

    pub fn can_write(self) -> bool {
        self >= Role::Writer
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub sub: String,
    pub email: String,
    pub name: String,
    /// calendarList entries, in insertion order.
    pub list: Vec<ListEntry>,
    pub list_seq: u64,
    pub list_epoch: u64,
}

impl Account {
    pub fn json(&self) -> Value {
        json!({"sub": self.sub, "email": self.email, "name": self.name})
    }

    pub fn given_name(&self) -> &str {
        self.name.split_whitespace().next().unwrap_or(&self.name)
    }

    pub fn family_name(&self) -> Option<&str> {
        let mut parts = self.name.splitn(2, ' ');
        parts.next();
        parts.next().map(str::trim).filter(|s| !s.is_empty())
    }

    pub fn picture(&self) -> String {
        format!("https://lh3.googleusercontent.com/a/emulator-{}", self.sub)
    }

    pub fn entry(&self, calendar_id: &str) -> Option<&ListEntry> {
        self.list
            .iter()
            .find(|e| e.calendar_id == calendar_id && !e.deleted)
    }
}

#[derive(Debug, Clone)]
pub struct ListEntry {
    pub calendar_id: String,
    pub access_role: Role,
    pub primary: bool,
    pub hidden: bool,
    pub selected: bool,
    pub deleted: bool,
    pub color_id: String,
    pub summary_override: Option<String>,
    pub change_seq: u64,
    pub etag: String,
}

#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The resource as Google would return it from events.get.
    pub res: Map<String, Value>,
    /// Calendar change counter value of this event's last change.
    pub change_seq: u64,
    /// Creation order.
    pub insert_seq: u64,
}

impl StoredEvent {
    pub fn id(&self) -> &str {
        self.res.get("id").and_then(Value::as_str).unwrap_or("")
    }

    pub fn is_cancelled(&self) -> bool {
        self.res.get("status").and_then(Value::as_str) == Some("cancelled")
    }

    pub fn recurring_event_id(&self) -> Option<&str> {
        self.res.get("recurringEventId").and_then(Value::as_str)
    }

    pub fn is_master(&self) -> bool {
        self.res
            .get("recurrence")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty())
            && self.recurring_event_id().is_none()
    }

    pub fn etag(&self) -> &str {
        self.res.get("etag").and_then(Value::as_str).unwrap_or("")
    }
}

#[derive(Debug, Clone)]
pub struct Calendar {
    pub id: String,
    pub summary: String,
    pub description: Option<String>,
    pub location: Option<String>,
    pub time_zone: String,
    pub owner: String,
    pub etag: String,
    /// Change counter: bumped on each event write.
    pub seq: u64,
    /// Bumped to invalidate every sync token of this calendar.
    pub epoch: u64,
    pub events: HashMap<String, StoredEvent>,
    pub insert_counter: u64,
}

impl Calendar {
    pub fn tz(&self) -> chrono_tz::Tz {
        self.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    pub fn json(&self) -> Value {
        let mut m = Map::new();
        m.insert("kind".into(), json!("calendar#calendar"));
        m.insert("etag".into(), json!(self.etag));
        m.insert("id".into(), json!(self.id));
        m.insert("summary".into(), json!(self.summary));
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if let Some(l) = &self.location {
            m.insert("location".into(), json!(l));
        }
        m.insert("timeZone".into(), json!(self.time_zone));
        m.insert(
            "conferenceProperties".into(),
            json!({"allowedConferenceSolutionTypes": ["hangoutsMeet"]}),
        );
        Value::Object(m)
    }
}

#[derive(Debug, Clone)]
pub struct AuthCode {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub email: String,
    pub challenge: Option<(String, String)>,
    pub issue_refresh: bool,
    pub nonce: Option<String>,
    pub expires: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct Grant {
    pub email: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub refresh_token: Option<String>,
    pub revoked: bool,
}

#[derive(Debug, Clone)]
pub struct AccessToken {
    pub email: String,
    pub client_id: String,
    pub scopes: Vec<String>,
    pub grant: u64,
    pub expires: DateTime<Utc>,
    pub revoked: bool,
}

/// One queued push notification.
#[derive(Debug, Clone)]
pub struct Notice {
    pub state: &'static str,
    pub number: u64,
}

#[derive(Debug)]
pub struct Channel {
    pub resource_id: String,
    pub calendar_id: String,
    pub expiration_ms: i64,
    pub next_msg: u64,
    pub tx: mpsc::UnboundedSender<Notice>,
    pub stopped: Arc<AtomicBool>,
}

impl Channel {
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        !self.stopped.load(Ordering::SeqCst) && self.expiration_ms > now.timestamp_millis()
    }
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub retry_after: Option<Value>,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    #[serde(default)]
    pub drop: Option<bool>,
    #[serde(default)]
    pub times: Option<u64>,
    #[serde(default)]
    pub probability: Option<f64>,
    /// The first `skip` matching requests pass untouched (a failure on page 3 of a listing).
    #[serde(default)]
    pub skip: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Fault {
    pub id: String,
    pub spec: FaultSpec,
    pub remaining: Option<u64>,
    /// Matching requests still to let through before the fault applies.
    pub to_skip: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub status: u16,
    pub time: String,
    pub route: String,
    pub batch_part: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub total: u64,
    pub batch_requests: u64,
    pub batch_parts: u64,
    pub by_route: BTreeMap<String, u64>,
}

/// A frozen list result that page tokens walk through.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Calendar id (events) or account email (calendarList).
    pub owner: String,
    pub items: Vec<Value>,
    pub sync_token: String,
}

const SNAPSHOT_LIMIT: usize = 500;

#[derive(Debug)]
pub struct State {
    /// Changes on reset so that old tokens stop working.
    pub nonce: u64,
    pub accounts: BTreeMap<String, Account>,
    pub calendars: HashMap<String, Calendar>,
    pub codes: HashMap<String, AuthCode>,
    pub grants: HashMap<u64, Grant>,
    pub next_grant: u64,
    pub access_tokens: HashMap<String, AccessToken>,
    pub refresh_tokens: HashMap<String, u64>,
    pub channels: HashMap<String, Channel>,
    pub faults: Vec<Fault>,
    pub next_fault: u64,
    /// Added to every Google request (a batch is one request).
    pub latency_ms: u64,
    /// Added to every part of a batch, parts running one after the other.
    pub batch_part_latency_ms: u64,
    pub log: VecDeque<LogEntry>,
    pub stats: Stats,
    pub snapshots: HashMap<String, Snapshot>,
    pub snapshot_order: VecDeque<String>,
    etag_counter: u64,
    last_now: DateTime<Utc>,
}

impl State {
    pub fn new() -> Self {
        Self {
            nonce: rand::random::<u32>() as u64,
            accounts: BTreeMap::new(),
            calendars: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            next_grant: 1,
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            channels: HashMap::new(),
            faults: Vec::new(),
            next_fault: 1,
            latency_ms: 0,
            batch_part_latency_ms: 0,
            log: VecDeque::new(),
            stats: Stats::default(),
            snapshots: HashMap::new(),
            snapshot_order: VecDeque::new(),
            etag_counter: 0,
            last_now: DateTime::<Utc>::MIN_UTC,
        }
    }

    /// Wall clock, strictly increasing by at least one millisecond per call.
    pub fn now(&mut self) -> DateTime<Utc> {
        let now = DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).unwrap_or_else(Utc::now);
        let next = if now > self.last_now {
            now
        } else {
            self.last_now + Duration::milliseconds(1)
        };
        self.last_now = next;
        next
    }

    /// A fresh etag: a quoted decimal string, different on every call.
    pub fn next_etag(&mut self) -> String {
        let base = u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0) * 1000;
        self.etag_counter = (self.etag_counter + 1).max(base);
        format!("\"{}\"", self.etag_counter)
    }

    pub fn account(&self, email: &str) -> Option<&Account> {
        self.accounts.get(&email.to_ascii_lowercase())
    }

    pub fn account_mut(&mut self, email: &str) -> Option<&mut Account> {
        self.accounts.get_mut(&email.to_ascii_lowercase())
    }

    /// Creates the account (and its primary calendar) unless it exists.
    pub fn ensure_account(&mut self, email: &str, name: Option<&str>) -> Account {
        let key = email.to_ascii_lowercase();
        if let Some(acc) = self.accounts.get_mut(&key) {
            if let Some(n) = name {
                n.clone_into(&mut acc.name);
            }
            return acc.clone();
        }
        let name = name.map(str::to_owned).unwrap_or_else(|| {
            let local = key.split('@').next().unwrap_or(&key);
            let mut chars = local.chars();
            match chars.next() {
                Some(c) => c.to_uppercase().collect::<String>() + chars.as_str(),
                None => local.to_owned(),
            }
        });
        let etag = self.next_etag();
        let cal = Calendar {
            id: key.clone(),
            summary: key.clone(),
            description: None,
            location: None,
            time_zone: "UTC".to_owned(),
            owner: key.clone(),
            etag: etag.clone(),
            seq: 1,
            epoch: 1,
            events: HashMap::new(),
            insert_counter: 0,
        };
        self.calendars.insert(key.clone(), cal);
        let acc = Account {
            sub: util::random_digits(21),
            email: key.clone(),
            name,
            list: vec![ListEntry {
                calendar_id: key.clone(),
                access_role: Role::Owner,
                primary: true,
                hidden: false,
                selected: true,
                deleted: false,
                color_id: "14".to_owned(),
                summary_override: None,
                change_seq: 1,
                etag,
            }],
            list_seq: 1,
            list_epoch: 1,
        };
        self.accounts.insert(key, acc.clone());
        acc
    }

    /// Adds (or updates) a calendarList entry of `email` for `calendar_id`.
    pub fn add_list_entry(&mut self, email: &str, calendar_id: &str, role: Role, color: &str) {
        let etag = self.next_etag();
        let Some(acc) = self.account_mut(email) else {
            return;
        };
        acc.list_seq += 1;
        let seq = acc.list_seq;
        if let Some(e) = acc.list.iter_mut().find(|e| e.calendar_id == calendar_id) {
            e.access_role = role;
            e.deleted = false;
            e.change_seq = seq;
            e.etag = etag;
            return;
        }
        acc.list.push(ListEntry {
            calendar_id: calendar_id.to_owned(),
            access_role: role,
            primary: false,
            hidden: false,
            selected: true,
            deleted: false,
            color_id: color.to_owned(),
            summary_override: None,
            change_seq: seq,
            etag,
        });
    }

    /// Queues an `exists` notification on every live channel watching `calendar_id`.
    pub fn notify_calendar(&mut self, calendar_id: &str) {
        let now = Utc::now();
        for ch in self.channels.values_mut() {
            if ch.calendar_id == calendar_id && ch.active(now) {
                ch.next_msg += 1;
                let _ = ch.tx.send(Notice {
                    state: "exists",
                    number: ch.next_msg,
                });
            }
        }
    }

    pub fn store_snapshot(&mut self, snap: Snapshot) -> String {
        let id = util::random_token("", 12);
        self.snapshots.insert(id.clone(), snap);
        self.snapshot_order.push_back(id.clone());
        while self.snapshot_order.len() > SNAPSHOT_LIMIT {
            if let Some(old) = self.snapshot_order.pop_front() {
                self.snapshots.remove(&old);
            }
        }
        id
    }

    /// Stops every channel (used on reset).
    pub fn stop_all_channels(&mut self) {
        for ch in self.channels.values() {
            ch.stopped.store(true, Ordering::SeqCst);
        }
        self.channels.clear();
    }
}

impl Default for State {
    fn default() -> Self {
        Self::new()
    }
}
