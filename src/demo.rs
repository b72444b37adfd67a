//! `chronos demo`: the whole system on one machine, no Google project needed. The Google emulator runs in
//! this process, seeded with two demo accounts; Chronos runs on a fresh SQLite database pointed at it.

use std::collections::HashMap;

use anyhow::Context as _;
use chrono::{Datelike, Duration, NaiveDate, TimeZone as _, Utc, Weekday};
use google_emulator::{Emulator, EmulatorConfig, RunningEmulator};
use serde_json::{Value, json};

use crate::{
    app::{Application, shutdown_signal},
    config::Settings,
};

/// The demo accounts; either signs in with no password.
pub const DEMO_ACCOUNTS: [(&str, &str); 2] = [
    ("alice@demo.chronos.dev", "Alice Demo"),
    ("bob@demo.chronos.dev", "Bob Demo"),
];
const WORK_TIME_ZONE: &str = "America/New_York";
const DEMO_DATABASE: &str = "demo.db";

pub async fn run() -> anyhow::Result<()> {
    // Quotas off, as the demo ran before the emulator had them: a demo's burst of first syncs
    // should not meet Google's per-minute limits.
    let emulator = Emulator::spawn(EmulatorConfig::without_quotas())
        .await
        .context("could not start the Google emulator")?;
    let today = Utc::now().date_naive();
    seed(&emulator, today)
        .await
        .context("could not seed the Google emulator")?;

    let settings = demo_settings(&emulator)?;
    crate::telemetry::init(settings.log_format);
    // The emulator forgets everything when the process ends, so the database starts afresh too.
    let database = settings.data_dir.join(DEMO_DATABASE);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", database.display()));
    }
    let app = Application::build(settings, true).await?;
    let addr = app.local_addr();
    crate::app::announce(addr)?;
    println!(
        "\nChronos demo: open http://{addr}/ and sign in with Google (the emulator's account chooser: pick\n\
         alice, no password). The GraphQL playground is at http://{addr}/graphql (Google emulator at {}):\n\
         there, run\n\n    \
         mutation {{ startGoogleSignIn(redirectTo: \"/graphql\") {{ url }} }}\n\n\
         open the URL it returns (in the same browser) and pick alice; you land back in the playground\n\
         signed in. Then try\n\n    \
         {{ calendars {{ summary }} events(timeMin: \"{}T00:00:00Z\", timeMax: \"{}T00:00:00Z\") {{ edges {{ node {{ summary start {{ dateTime date }} }} }} }} }}\n\n\
         The demo accounts are {} and {}. Stop with Ctrl-C.",
        emulator.base_url(),
        week_start(today),
        week_start(today) + Duration::days(14),
        DEMO_ACCOUNTS[0].0,
        DEMO_ACCOUNTS[1].0,
    );
    let result = app.run_until_stopped(shutdown_signal()).await;
    emulator.shutdown().await;
    result
}

fn demo_settings(emulator: &RunningEmulator) -> anyhow::Result<Settings> {
    let mut vars: HashMap<String, String> = std::env::vars().collect();
    let data_dir = vars
        .get("CHRONOS_DATA_DIR")
        .cloned()
        .unwrap_or_else(|| ".chronos".into());
    std::fs::create_dir_all(&data_dir).with_context(|| format!("could not create {data_dir}"))?;
    let base = emulator.base_url();
    for (name, value) in [
        ("ENVIRONMENT", "development".to_string()),
        (
            "DATABASE_URL",
            format!("sqlite://{data_dir}/{DEMO_DATABASE}?mode=rwc"),
        ),
        ("GOOGLE_CLIENT_ID", "chronos-demo".into()),
        ("GOOGLE_CLIENT_SECRET", "chronos-demo-secret".into()),
        ("GOOGLE_ACCOUNTS_URL", base.clone()),
        ("GOOGLE_OAUTH_URL", base.clone()),
        ("GOOGLE_API_URL", base),
        // The reference client at `/`, where the sign-in lands (FRONTEND_URL defaults to PUBLIC_URL).
        ("WEB_CLIENT", "true".into()),
    ] {
        vars.insert(name.into(), value);
    }
    vars.entry("CHRONOS_DATA_DIR".into()).or_insert(data_dir);
    Settings::from_vars(&vars).map_err(|e| anyhow::anyhow!("{e}"))
}

fn week_start(day: NaiveDate) -> NaiveDate {
    day - Duration::days(i64::from(day.weekday().num_days_from_monday()))
}

/// Two accounts, each with its primary calendar and a "Work" calendar, holding two weeks of events from
/// this week's Monday: single events, an all-day event, and a weekly series with one moved instance.
/// Written through the emulator's Calendar API, as a user would.
pub async fn seed(emulator: &RunningEmulator, today: NaiveDate) -> anyhow::Result<()> {
    let google = &emulator.emulator;
    let http = reqwest::Client::new();
    let monday = week_start(today);
    let day = |offset: i64| monday + Duration::days(offset);
    let at = |offset: i64, hh: u32, mm: u32| format!("{}T{hh:02}:{mm:02}:00", day(offset));
    for (email, name) in DEMO_ACCOUNTS {
        google.create_account(email, Some(name));
        let work = google.create_calendar(email, "Work", Some(WORK_TIME_ZONE))?;
        let work_id = work["id"].as_str().context("calendar id")?.to_string();
        let token = google.issue_access_token(email)?;
        let insert = |calendar: String, event: Value| {
            let http = http.clone();
            let token = token.clone();
            let url = format!(
                "{}/calendar/v3/calendars/{}/events",
                emulator.base_url(),
                encode(&calendar)
            );
            async move {
                let response = http.post(url).bearer_auth(token).json(&event).send().await?;
                let status = response.status();
                let body: Value = response.json().await?;
                anyhow::ensure!(status.is_success(), "seeding an event failed: {body}");
                Ok::<Value, anyhow::Error>(body)
            }
        };
        let primary = email.to_string();
        insert(
            primary.clone(),
            json!({"summary": "Conference", "location": "Berlin",
                   "start": {"date": day(3).to_string()}, "end": {"date": day(5).to_string()}}),
        )
        .await?;
        for (offset, summary, hour) in [(1, "Lunch with Sam", 12), (8, "Dentist", 15), (10, "Gym", 18)] {
            insert(
                primary.clone(),
                json!({"summary": summary,
                       "start": {"dateTime": at(offset, hour, 0), "timeZone": WORK_TIME_ZONE},
                       "end": {"dateTime": at(offset, hour + 1, 0), "timeZone": WORK_TIME_ZONE}}),
            )
            .await?;
        }
        let standup = insert(
            work_id.clone(),
            json!({"summary": "Team standup", "description": "Yesterday, today, blockers.",
                   "start": {"dateTime": at(0, 9, 30), "timeZone": WORK_TIME_ZONE},
                   "end": {"dateTime": at(0, 9, 45), "timeZone": WORK_TIME_ZONE},
                   "recurrence": ["RRULE:FREQ=WEEKLY;BYDAY=MO,WE,FR;COUNT=6"]}),
        )
        .await?;
        // The exception: Wednesday's standup of the first week moves to 11:00.
        let master = standup["id"].as_str().context("event id")?;
        let wednesday = day(2);
        debug_assert_eq!(wednesday.weekday(), Weekday::Wed);
        let original = chrono_tz::America::New_York
            .from_local_datetime(&wednesday.and_hms_opt(9, 30, 0).context("time")?)
            .single()
            .context("unambiguous local time")?
            .with_timezone(&Utc);
        let instance = format!("{master}_{}", original.format("%Y%m%dT%H%M%SZ"));
        let url = format!(
            "{}/calendar/v3/calendars/{}/events/{instance}",
            emulator.base_url(),
            encode(&work_id)
        );
        let moved = http
            .patch(url)
            .bearer_auth(&token)
            .json(
                &json!({"start": {"dateTime": at(2, 11, 0), "timeZone": WORK_TIME_ZONE},
                          "end": {"dateTime": at(2, 11, 15), "timeZone": WORK_TIME_ZONE}}),
            )
            .send()
            .await?;
        anyhow::ensure!(
            moved.status().is_success(),
            "moving an instance failed: {}",
            moved.text().await?
        );
        insert(
            work_id.clone(),
            json!({"summary": "Quarterly planning", "location": "Room 4",
                   "start": {"dateTime": at(9, 14, 0), "timeZone": WORK_TIME_ZONE},
                   "end": {"dateTime": at(9, 16, 0), "timeZone": WORK_TIME_ZONE}}),
        )
        .await?;
    }
    Ok(())
}

fn encode(segment: &str) -> String {
    url::form_urlencoded::byte_serialize(segment.as_bytes()).collect()
}
