//! Event resources as Google writes them: dateTime always with an offset, no nulls, and no field
//! outside the discovery document's Event schema.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::TestEmu;

const EVENTS: &str = "/calendar/v3/calendars/primary/events";

fn berlin(date_time: &str) -> Value {
    json!({"dateTime": date_time, "timeZone": "Europe/Berlin"})
}

/// The event as events.get and events.list return it now.
async fn read_back(t: &TestEmu, tok: &str, id: &str) -> (Value, Value) {
    let got = t.get(tok, &format!("{EVENTS}/{id}")).await;
    assert_eq!(got.status, 200, "{}", got.body);
    let listed = t.get(tok, &format!("{EVENTS}?singleEvents=true")).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let item = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("{id} not listed: {}", listed.body));
    (got.body, item)
}

#[tokio::test]
async fn local_date_times_are_stored_with_the_offset_of_their_time_zone() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let summer = t
        .insert(
            &tok,
            "primary",
            json!({"summary": "local", "start": berlin("2026-06-01T09:00:00"), "end": berlin("2026-06-01T10:00:00")}),
        )
        .await;
    assert_eq!(summer["start"], berlin("2026-06-01T09:00:00+02:00"));
    assert_eq!(summer["end"], berlin("2026-06-01T10:00:00+02:00"));
    let id = summer["id"].as_str().unwrap();
    for read in <[Value; 2]>::from(read_back(&t, &tok, id).await) {
        assert_eq!(read["start"], berlin("2026-06-01T09:00:00+02:00"), "{read}");
        assert_eq!(read["end"], berlin("2026-06-01T10:00:00+02:00"), "{read}");
    }

    // The offset is the zone's at that instant (no DST in January); minutes without seconds work.
    let winter = t
        .insert(
            &tok,
            "primary",
            json!({"start": berlin("2026-01-15T09:00"), "end": berlin("2026-01-15T09:30:00")}),
        )
        .await;
    assert_eq!(winter["start"]["dateTime"], "2026-01-15T09:00:00+01:00");
    assert_eq!(winter["end"]["dateTime"], "2026-01-15T09:30:00+01:00");
}

#[tokio::test]
async fn an_offset_keeps_its_instant_shown_in_the_events_time_zone() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let zoned = t
        .insert(
            &tok,
            "primary",
            json!({"start": berlin("2026-06-01T07:00:00Z"), "end": berlin("2026-06-01T12:00:00+05:00")}),
        )
        .await;
    assert_eq!(zoned["start"], berlin("2026-06-01T09:00:00+02:00"));
    assert_eq!(zoned["end"], berlin("2026-06-01T09:00:00+02:00"));

    // Without a time zone the offset sent stays (UTC as `Z`).
    let unzoned = t
        .insert(
            &tok,
            "primary",
            json!({"start": {"dateTime": "2026-06-01T12:30:00+05:30"}, "end": {"dateTime": "2026-06-01T08:00:00+00:00"}}),
        )
        .await;
    assert_eq!(unzoned["start"], json!({"dateTime": "2026-06-01T12:30:00+05:30"}));
    assert_eq!(unzoned["end"], json!({"dateTime": "2026-06-01T08:00:00Z"}));
}

#[tokio::test]
async fn put_patch_import_and_instance_edits_store_offsets() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let single = t
        .insert(
            &tok,
            "primary",
            json!({"start": berlin("2026-06-01T09:00:00"), "end": berlin("2026-06-01T10:00:00")}),
        )
        .await;
    let id = single["id"].as_str().unwrap().to_owned();

    let put = t
        .call(
            Method::PUT,
            &tok,
            &format!("{EVENTS}/{id}"),
            Some(json!({"start": berlin("2026-06-02T09:00:00"), "end": berlin("2026-06-02T10:00:00")})),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["start"]["dateTime"], "2026-06-02T09:00:00+02:00");
    assert_eq!(put.body["end"]["dateTime"], "2026-06-02T10:00:00+02:00");

    // A local time alone keeps the stored zone; a new zone alone re-renders the same instant.
    let patched = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EVENTS}/{id}"),
            Some(json!({
                "start": {"dateTime": "2026-06-02T08:00:00"},
                "end": {"timeZone": "America/New_York"}
            })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["start"], berlin("2026-06-02T08:00:00+02:00"));
    assert_eq!(
        patched.body["end"],
        json!({"dateTime": "2026-06-02T04:00:00-04:00", "timeZone": "America/New_York"})
    );
    let (got, listed) = read_back(&t, &tok, &id).await;
    assert_eq!(got["start"], patched.body["start"]);
    assert_eq!(listed["end"], patched.body["end"]);

    let import = |start: &str| json!({"iCalUID": "imported-1@example.com", "start": berlin(start), "end": berlin("2026-06-03T18:00:00")});
    for (start, expected) in [
        ("2026-06-03T17:00:00", "2026-06-03T17:00:00+02:00"),
        // the second import updates the same event
        ("2026-06-03T16:00:00", "2026-06-03T16:00:00+02:00"),
    ] {
        let r = t
            .call(
                Method::POST,
                &tok,
                &format!("{EVENTS}/import"),
                Some(import(start)),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.body["start"]["dateTime"], expected);
        assert_eq!(r.body["end"]["dateTime"], "2026-06-03T18:00:00+02:00");
    }

    let master = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "weekly",
                "start": berlin("2026-03-23T09:00:00"),
                "end": berlin("2026-03-23T10:00:00"),
                "recurrence": ["RRULE:FREQ=WEEKLY;COUNT=3"]
            }),
        )
        .await;
    assert_eq!(master["start"]["dateTime"], "2026-03-23T09:00:00+01:00");
    let mid = master["id"].as_str().unwrap();
    // the 30 March instance (after the change to summer time), moved by an hour in local time
    let instance_id = format!("{mid}_20260330T070000Z");
    let edited = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EVENTS}/{instance_id}"),
            Some(json!({"start": {"dateTime": "2026-03-30T10:00:00"}, "end": {"dateTime": "2026-03-30T11:00:00"}})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(edited.body["start"], berlin("2026-03-30T10:00:00+02:00"));
    assert_eq!(edited.body["end"], berlin("2026-03-30T11:00:00+02:00"));
    assert_eq!(
        edited.body["originalStartTime"],
        berlin("2026-03-30T09:00:00+02:00")
    );
    let (got, listed) = read_back(&t, &tok, &instance_id).await;
    for read in [got, listed] {
        assert_eq!(read["start"], edited.body["start"], "{read}");
        assert_eq!(
            read["originalStartTime"], edited.body["originalStartTime"],
            "{read}"
        );
    }
    let replaced = t
        .call(
            Method::PUT,
            &tok,
            &format!("{EVENTS}/{mid}_20260406T070000Z"),
            Some(json!({"start": berlin("2026-04-06T12:00:00"), "end": berlin("2026-04-06T13:00:00")})),
        )
        .await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["start"]["dateTime"], "2026-04-06T12:00:00+02:00");
    assert_eq!(
        replaced.body["originalStartTime"]["dateTime"],
        "2026-04-06T09:00:00+02:00"
    );
}

#[tokio::test]
async fn nulls_are_unset_fields_and_delete_in_a_patch() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let inserted = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "nulls",
                "location": null,
                "description": null,
                "colorId": null,
                "start": {"dateTime": "2026-06-01T09:00:00Z", "timeZone": null, "date": null},
                "end": {"dateTime": "2026-06-01T10:00:00Z", "timeZone": null},
                "attendees": [{"email": "bob@example.com", "displayName": null}],
                "extendedProperties": {"private": {"kept": "1", "gone": null}, "shared": null}
            }),
        )
        .await;
    let id = inserted["id"].as_str().unwrap().to_owned();
    let expected_start = json!({"dateTime": "2026-06-01T09:00:00Z"});
    for read in [inserted.clone(), read_back(&t, &tok, &id).await.0] {
        for field in ["location", "description", "colorId"] {
            assert!(read.get(field).is_none(), "{field} in {read}");
        }
        assert_eq!(read["start"], expected_start);
        assert_eq!(read["end"], json!({"dateTime": "2026-06-01T10:00:00Z"}));
        assert_eq!(read["attendees"], json!([{"email": "bob@example.com"}]));
        assert_eq!(read["extendedProperties"], json!({"private": {"kept": "1"}}));
    }

    let put = t
        .call(
            Method::PUT,
            &tok,
            &format!("{EVENTS}/{id}"),
            Some(json!({
                "summary": "put",
                "location": null,
                "start": {"dateTime": "2026-06-01T09:00:00Z", "timeZone": null},
                "end": {"dateTime": "2026-06-01T10:00:00Z"},
                "extendedProperties": {"private": {"a": "1", "b": "2", "c": null}}
            })),
        )
        .await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert!(put.body.get("location").is_none(), "{}", put.body);
    assert_eq!(put.body["start"], expected_start);
    assert_eq!(
        put.body["extendedProperties"],
        json!({"private": {"a": "1", "b": "2"}})
    );

    let imported = t
        .call(
            Method::POST,
            &tok,
            &format!("{EVENTS}/import"),
            Some(json!({
                "iCalUID": "nulls@example.com",
                "location": null,
                "start": {"dateTime": "2026-06-01T09:00:00Z"},
                "end": {"dateTime": "2026-06-01T10:00:00Z", "timeZone": null}
            })),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(imported.body.get("location").is_none(), "{}", imported.body);
    assert_eq!(imported.body["end"], json!({"dateTime": "2026-06-01T10:00:00Z"}));

    // PATCH: null deletes a field, and a key of extendedProperties.
    let with_location = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EVENTS}/{id}"),
            Some(json!({"location": "Room 1", "description": "d"})),
        )
        .await;
    assert_eq!(with_location.body["location"], "Room 1");
    let patched = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EVENTS}/{id}"),
            Some(json!({
                "location": null,
                "extendedProperties": {"private": {"a": null}},
                "attendees": [{"email": "carol@example.com", "comment": null}]
            })),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let (got, _) = read_back(&t, &tok, &id).await;
    for read in [patched.body, got] {
        assert!(read.get("location").is_none(), "{read}");
        assert_eq!(read["description"], "d");
        assert_eq!(read["extendedProperties"], json!({"private": {"b": "2"}}));
        assert_eq!(read["attendees"], json!([{"email": "carol@example.com"}]));
    }
}

#[tokio::test]
async fn fields_outside_the_event_schema_are_never_returned() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let inserted = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "unknown",
                "notAField": 1,
                "start": {"dateTime": "2026-06-01T09:00:00Z", "notAField": true},
                "end": {"dateTime": "2026-06-01T10:00:00Z"},
                "attendees": [{"email": "bob@example.com", "notAField": "x"}],
                "reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 10, "notAField": 1}]},
                "extendedProperties": {"private": {"free key": "kept"}, "notAField": {}}
            }),
        )
        .await;
    let id = inserted["id"].as_str().unwrap().to_owned();
    for read in [inserted.clone(), read_back(&t, &tok, &id).await.1] {
        assert!(read.get("notAField").is_none(), "{read}");
        assert_eq!(read["start"], json!({"dateTime": "2026-06-01T09:00:00Z"}));
        assert_eq!(read["attendees"], json!([{"email": "bob@example.com"}]));
        assert_eq!(
            read["reminders"],
            json!({"useDefault": false, "overrides": [{"method": "popup", "minutes": 10}]})
        );
        assert_eq!(
            read["extendedProperties"],
            json!({"private": {"free key": "kept"}})
        );
    }

    for method in [Method::PUT, Method::PATCH] {
        let r = t
            .call(
                method.clone(),
                &tok,
                &format!("{EVENTS}/{id}"),
                Some(json!({
                    "notAField": 2,
                    "source": {"url": "https://example.com/x", "title": "x", "notAField": 1},
                    "start": {"dateTime": "2026-06-01T09:00:00Z"},
                    "end": {"dateTime": "2026-06-01T10:00:00Z", "notAField": 1}
                })),
            )
            .await;
        assert_eq!(r.status, 200, "{method}: {}", r.body);
        assert!(r.body.get("notAField").is_none(), "{method}: {}", r.body);
        assert_eq!(
            r.body["source"],
            json!({"url": "https://example.com/x", "title": "x"})
        );
        assert_eq!(r.body["end"], json!({"dateTime": "2026-06-01T10:00:00Z"}));
    }
    let imported = t
        .call(
            Method::POST,
            &tok,
            &format!("{EVENTS}/import"),
            Some(json!({
                "iCalUID": "unknown@example.com",
                "notAField": 1,
                "organizer": {"email": "someone@example.com", "notAField": 1},
                "start": {"dateTime": "2026-06-01T09:00:00Z"},
                "end": {"dateTime": "2026-06-01T10:00:00Z"}
            })),
        )
        .await;
    assert_eq!(imported.status, 200, "{}", imported.body);
    assert!(imported.body.get("notAField").is_none(), "{}", imported.body);
    assert_eq!(
        imported.body["organizer"],
        json!({"email": "someone@example.com"})
    );
}

#[tokio::test]
async fn every_writable_event_field_is_kept() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let fields = json!({
        "summary": "all fields",
        "description": "d",
        "location": "l",
        "colorId": "3",
        "transparency": "transparent",
        "visibility": "private",
        "anyoneCanAddSelf": true,
        "guestsCanInviteOthers": false,
        "guestsCanModify": true,
        "guestsCanSeeOtherGuests": false,
        "endTimeUnspecified": false,
        "locked": false,
        "sequence": 2,
        "attachments": [{"fileUrl": "https://example.com/f", "title": "f", "mimeType": "text/plain"}],
        "source": {"url": "https://example.com", "title": "s"},
        "gadget": {"title": "g", "preferences": {"any key": "v"}},
        "extendedProperties": {"private": {"p": "1"}, "shared": {"s": "2"}},
        "conferenceData": {
            "conferenceId": "abc-defg-hij",
            "conferenceSolution": {"key": {"type": "hangoutsMeet"}, "name": "Google Meet"},
            "entryPoints": [{"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"}],
            "parameters": {"addOnParameters": {"parameters": {"k": "v"}}}
        },
        "attendees": [{"email": "bob@example.com", "optional": true, "responseStatus": "accepted"}],
        "reminders": {"useDefault": false, "overrides": [{"method": "email", "minutes": 30}]},
        "start": {"dateTime": "2026-06-01T09:00:00Z"},
        "end": {"dateTime": "2026-06-01T10:00:00Z"}
    });
    let inserted = t.insert(&tok, "primary", fields.clone()).await;
    for (key, value) in fields.as_object().unwrap() {
        assert_eq!(&inserted[key], value, "{key}");
    }
}
