use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestEmu, enc, ids, reason, timed};

const EV: &str = "/calendar/v3/calendars/primary/events";

#[tokio::test]
async fn ids_duplicates_and_deletion() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;

    // generated ids are base32hex
    let e = t
        .insert(
            &tok,
            "primary",
            timed("a", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    let id = e["id"].as_str().unwrap();
    assert!(id.len() >= 5);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'v').contains(&b)),
        "{id}"
    );
    assert_eq!(e["kind"], "calendar#event");
    assert_eq!(e["status"], "confirmed");
    assert_eq!(e["iCalUID"], format!("{id}@google.com"));
    assert!(
        e["htmlLink"]
            .as_str()
            .unwrap()
            .starts_with("https://www.google.com/calendar/event?eid=")
    );
    assert_eq!(e["creator"], json!({"email": "alice@example.com", "self": true}));
    assert_eq!(
        e["organizer"],
        json!({"email": "alice@example.com", "self": true})
    );
    assert_eq!(e["reminders"], json!({"useDefault": true}));
    assert_eq!(e["eventType"], "default");
    let updated = e["updated"].as_str().unwrap();
    assert!(updated.ends_with('Z') && updated.len() == 24, "{updated}");
    assert_eq!(e["created"], e["updated"]);
    let etag = e["etag"].as_str().unwrap();
    assert!(etag.starts_with('"') && etag.ends_with('"'));
    assert!(etag[1..etag.len() - 1].bytes().all(|b| b.is_ascii_digit()));

    // invalid client ids
    for bad in [
        "123e4567-e89b-12d3-a456-426614174000",
        "ABCDEF",
        "abcd",
        "abcdw",
        "abc_def",
    ] {
        let mut body = timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
        body["id"] = json!(bad);
        let r = t.call(Method::POST, &tok, EV, Some(body)).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.body["error"]["errors"][0],
            json!({"domain": "global", "reason": "invalid", "message": "Invalid resource id value."})
        );
    }

    // client-supplied id, duplicate, delete, delete again, reinsert deleted
    let mut body = timed("mine", "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z");
    body["id"] = json!("meetingabc001");
    assert_eq!(
        t.insert(&tok, "primary", body.clone()).await["id"],
        "meetingabc001"
    );
    let r = t.call(Method::POST, &tok, EV, Some(body.clone())).await;
    assert_eq!(r.status, 409);
    assert_eq!(reason(&r.body), ("global".into(), "duplicate".into()));

    let path = format!("{EV}/meetingabc001");
    let r = t.call(Method::DELETE, &tok, &path, None).await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_null());
    let r = t.call(Method::DELETE, &tok, &path, None).await;
    assert_eq!(r.status, 410);
    assert_eq!(reason(&r.body), ("global".into(), "deleted".into()));
    let r = t.get(&tok, &path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "cancelled");
    let r = t.call(Method::POST, &tok, EV, Some(body)).await;
    assert_eq!(r.status, 409);
    // resurrect with PATCH status confirmed
    let r = t
        .call(Method::PATCH, &tok, &path, Some(json!({"status": "confirmed"})))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["status"], "confirmed");

    // unknown event and calendar
    let r = t.get(&tok, &format!("{EV}/doesnotexist")).await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.body,
        json!({"error":{"code":404,"message":"Not Found","errors":[{"domain":"global","reason":"notFound","message":"Not Found"}]}})
    );
    let r = t
        .get(&tok, "/calendar/v3/calendars/nobody%40example.com/events")
        .await;
    assert_eq!(r.status, 404);
    let r = t
        .call(Method::DELETE, &tok, &format!("{EV}/doesnotexist"), None)
        .await;
    assert_eq!(r.status, 404);
    // unknown route
    let r = t.get(&tok, "/calendar/v3/nothing/here").await;
    assert_eq!(r.status, 404);
    assert_eq!(reason(&r.body), ("global".into(), "notFound".into()));
}

#[tokio::test]
async fn etags_if_match_put_and_patch() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let mut body = timed("orig", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    body["description"] = json!("desc");
    body["extendedProperties"] = json!({"private": {"a": "1", "b": "2"}, "shared": {"s": "x"}});
    let e = t.insert(&tok, "primary", body).await;
    let path = format!("{EV}/{}", e["id"].as_str().unwrap());
    let etag = e["etag"].as_str().unwrap().to_owned();

    // If-Match mismatch
    let r = t
        .call_with(
            Method::PATCH,
            &tok,
            &path,
            Some(json!({"summary": "x"})),
            &[("If-Match", "\"1234\"")],
        )
        .await;
    assert_eq!(r.status, 412);
    assert_eq!(
        r.body["error"]["errors"][0],
        json!({"domain":"global","reason":"conditionNotMet","message":"Precondition Failed","locationType":"header","location":"If-Match"})
    );
    assert_eq!(r.body["error"]["code"], 412);

    // PATCH with the right etag: extended properties merge, null deletes
    let r = t
        .call_with(
            Method::PATCH,
            &tok,
            &path,
            Some(json!({"summary": "patched", "extendedProperties": {"private": {"a": null, "c": "3"}}})),
            &[("If-Match", &etag)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["summary"], "patched");
    assert_eq!(r.body["description"], "desc");
    assert_eq!(
        r.body["extendedProperties"],
        json!({"private": {"b": "2", "c": "3"}, "shared": {"s": "x"}})
    );
    let etag2 = r.body["etag"].as_str().unwrap().to_owned();
    assert_ne!(etag2, etag);
    assert_eq!(r.headers["etag"].to_str().unwrap(), etag2);
    assert!(r.body["updated"].as_str().unwrap() > e["updated"].as_str().unwrap());
    assert_eq!(r.body["created"], e["created"]);

    // If-None-Match on get
    let r = t
        .call_with(Method::GET, &tok, &path, None, &[("If-None-Match", &etag2)])
        .await;
    assert_eq!(r.status, 304);

    // PUT replaces the whole resource
    let r = t
        .call(
            Method::PUT,
            &tok,
            &path,
            Some(timed("put", "2024-05-01T12:00:00Z", "2024-05-01T13:00:00Z")),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["summary"], "put");
    assert!(r.body.get("description").is_none());
    assert!(r.body.get("extendedProperties").is_none());
    assert_eq!(r.body["id"], e["id"]);
    assert_eq!(r.body["iCalUID"], e["iCalUID"]);
    // stale etag on delete
    let r = t
        .call_with(Method::DELETE, &tok, &path, None, &[("If-Match", &etag)])
        .await;
    assert_eq!(r.status, 412);
}

#[tokio::test]
async fn validation_errors() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let cases: Vec<(Value, u16, &str, &str)> = vec![
        (
            json!({"summary": "x", "end": {"dateTime": "2024-05-01T10:00:00Z"}}),
            400,
            "required",
            "Missing start time.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00Z"}}),
            400,
            "required",
            "Missing end time.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}}),
            400,
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00Z"}, "end": {"dateTime": "2024-05-01T09:00:00Z"}}),
            400,
            "timeRangeEmpty",
            "The specified time range is empty.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00Z"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}, "recurrence": ["RRULE:FREQ=WEEKLY"]}),
            400,
            "required",
            "Missing time zone definition for start time.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00Z", "timeZone": "UTC"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}, "recurrence": ["RRULE:FREQ=SOMETIMES"]}),
            400,
            "invalid",
            "Invalid recurrence rule.",
        ),
        (
            json!({"start": {"dateTime": "2024-05-01T10:00:00Z", "timeZone": "Mars/Olympus"}, "end": {"dateTime": "2024-05-01T11:00:00Z"}}),
            400,
            "invalid",
            "Invalid time zone definition for start time.",
        ),
    ];
    for (body, status, rsn, msg) in cases {
        let r = t.call(Method::POST, &tok, EV, Some(body.clone())).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.body["error"]["errors"][0]["reason"], rsn, "{body}");
        assert_eq!(r.body["error"]["errors"][0]["message"], msg, "{body}");
        assert_eq!(r.body["error"]["message"], msg);
    }
    let base = timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    let invalid_fields = [
        json!({"colorId": "12"}),
        json!({"colorId": "0"}),
        json!({"status": "maybe"}),
        json!({"transparency": "cloudy"}),
        json!({"visibility": "secret"}),
        json!({"eventType": "fromGmail"}),
        json!({"eventType": "party"}),
        json!({"reminders": {"useDefault": false, "overrides": [{"method": "sms", "minutes": 5}]}}),
        json!({"reminders": {"useDefault": false, "overrides": [{"method": "popup", "minutes": 40321}]}}),
        json!({"reminders": {"useDefault": false, "overrides": (0..6).map(|i| json!({"method": "popup", "minutes": i})).collect::<Vec<_>>()}}),
        json!({"reminders": {"useDefault": true, "overrides": [{"method": "popup", "minutes": 5}]}}),
    ];
    for extra in invalid_fields {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = t.call(Method::POST, &tok, EV, Some(body)).await;
        assert_eq!(r.status, 400, "{extra}: {}", r.body);
    }
    // valid variants
    let mut ok = base.clone();
    ok["colorId"] = json!("11");
    ok["reminders"] = json!({"useDefault": false, "overrides": [{"method": "email", "minutes": 40320}, {"method": "popup", "minutes": 0}]});
    ok["eventType"] = json!("focusTime");
    ok["transparency"] = json!("transparent");
    let e = t.insert(&tok, "primary", ok).await;
    // eventType is immutable
    let r = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EV}/{}", e["id"].as_str().unwrap()),
            Some(json!({"eventType": "default"})),
        )
        .await;
    assert_eq!(r.status, 400);
    // all-day event; offset-less dateTime with a time zone
    t.insert(
        &tok,
        "primary",
        json!({"start": {"date": "2024-05-01"}, "end": {"date": "2024-05-02"}}),
    )
    .await;
    t.insert(
        &tok,
        "primary",
        json!({"start": {"dateTime": "2024-05-01T10:00:00", "timeZone": "Europe/Paris"}, "end": {"dateTime": "2024-05-01T11:00:00", "timeZone": "Europe/Paris"}}),
    )
    .await;
    // malformed JSON
    let resp = t
        .client
        .post(t.url(EV))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(reason(&body), ("global".into(), "parseError".into()));
}

#[tokio::test]
async fn list_parameters_and_filters() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let mut a = timed("Team sync", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    a["extendedProperties"] = json!({"private": {"chronosId": "1", "kind": "x"}, "shared": {"s": "y"}});
    a["location"] = json!("Room Blue");
    let a = t.insert(&tok, "primary", a).await;
    let mut b = timed("Lunch", "2024-05-02T12:00:00Z", "2024-05-02T13:00:00Z");
    b["extendedProperties"] = json!({"private": {"chronosId": "2", "kind": "x"}});
    let b = t.insert(&tok, "primary", b).await;
    let c = t
        .insert(
            &tok,
            "primary",
            timed("Other", "2024-05-03T12:00:00Z", "2024-05-03T13:00:00Z"),
        )
        .await;
    let a_id = a["id"].as_str().unwrap().to_owned();
    let b_id = b["id"].as_str().unwrap().to_owned();
    let c_id = c["id"].as_str().unwrap().to_owned();

    let list = |q: String| {
        let t = &t;
        let tok = tok.clone();
        async move { t.get(&tok, &format!("{EV}?{q}")).await }
    };
    let r = list(String::new()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "calendar#events");
    assert_eq!(r.body["accessRole"], "owner");
    assert_eq!(r.body["timeZone"], "UTC");
    assert!(r.body["defaultReminders"].is_array());
    assert!(r.body["nextSyncToken"].is_string());
    assert_eq!(ids(&r.body["items"]).len(), 3);

    // timeMin is exclusive on end, timeMax exclusive on start
    let r = list(format!(
        "timeMin={}&timeMax={}",
        enc("2024-05-01T11:00:00Z"),
        enc("2024-05-03T12:00:00Z")
    ))
    .await;
    assert_eq!(ids(&r.body["items"]), vec![b_id.clone()]);
    let r = list(format!(
        "timeMin={}&timeMax={}",
        enc("2024-05-02T00:00:00Z"),
        enc("2024-05-02T00:00:00Z")
    ))
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.body["error"]["errors"][0],
        json!({"domain":"calendar","reason":"timeRangeEmpty","message":"The specified time range is empty.","locationType":"parameter","location":"timeMax"})
    );

    // orderBy
    let r = list("orderBy=startTime".into()).await;
    assert_eq!(r.status, 400);
    assert_eq!(reason(&r.body), ("global".into(), "invalid".into()));
    assert_eq!(r.body["error"]["errors"][0]["location"], "orderBy");
    let r = list("orderBy=startTime&singleEvents=true".into()).await;
    assert_eq!(
        ids(&r.body["items"]),
        vec![a_id.clone(), b_id.clone(), c_id.clone()]
    );
    let r = list("orderBy=updated".into()).await;
    assert_eq!(
        ids(&r.body["items"]),
        vec![a_id.clone(), b_id.clone(), c_id.clone()]
    );

    // maxResults bounds
    assert_eq!(list("maxResults=0".into()).await.status, 400);
    assert_eq!(list("maxResults=2501".into()).await.status, 400);

    // q, iCalUID, extended properties (AND by default)
    let r = list("q=room%20blue".into()).await;
    assert_eq!(ids(&r.body["items"]), vec![a_id.clone()]);
    let r = list("q=LUNCH".into()).await;
    assert_eq!(ids(&r.body["items"]), vec![b_id.clone()]);
    let r = list(format!("iCalUID={}", enc(&format!("{c_id}@google.com")))).await;
    assert_eq!(ids(&r.body["items"]), vec![c_id.clone()]);
    let r = list("privateExtendedProperty=kind%3Dx".into()).await;
    assert_eq!(ids(&r.body["items"]), vec![a_id.clone(), b_id.clone()]);
    let r = list("privateExtendedProperty=kind%3Dx&privateExtendedProperty=chronosId%3D2".into()).await;
    assert_eq!(ids(&r.body["items"]), vec![b_id.clone()]);
    let r = list("privateExtendedProperty=chronosId%3D1&sharedExtendedProperty=s%3Dy".into()).await;
    assert_eq!(ids(&r.body["items"]), vec![a_id.clone()]);
    let r = list("sharedExtendedProperty=chronosId%3D1".into()).await;
    assert_eq!(ids(&r.body["items"]), Vec::<String>::new());

    // updatedMin
    let r = list(format!("updatedMin={}", enc(b["updated"].as_str().unwrap()))).await;
    assert_eq!(ids(&r.body["items"]), vec![b_id.clone(), c_id.clone()]);

    // response time zone
    let r = list("timeZone=Europe%2FBerlin".into()).await;
    assert_eq!(r.body["timeZone"], "Europe/Berlin");
}

#[tokio::test]
async fn any_match_switch_for_extended_properties() {
    let t = TestEmu::start_with(google_emulator::EmulatorConfig {
        ext_prop_match: google_emulator::ExtPropMatch::Any,
        ..Default::default()
    })
    .await;
    let tok = t.token("alice@example.com").await;
    let mut a = timed("a", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    a["extendedProperties"] = json!({"private": {"k": "1"}});
    let mut b = timed("b", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z");
    b["extendedProperties"] = json!({"private": {"k": "2"}});
    t.insert(&tok, "primary", a).await;
    t.insert(&tok, "primary", b).await;
    let r = t
        .get(
            &tok,
            &format!("{EV}?privateExtendedProperty=k%3D1&privateExtendedProperty=k%3D2"),
        )
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 2);
}

#[tokio::test]
async fn access_roles_move_and_import() {
    let t = TestEmu::start().await;
    let alice = t.token("alice@example.com").await;
    let _bob = t.token("bob@example.com").await;
    // bob's secondary calendar shared read-only with alice
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/bob@example.com/calendars",
            json!({"summary": "Bob team", "timeZone": "Europe/Paris"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let cal = r.body["id"].as_str().unwrap().to_owned();
    assert!(cal.ends_with("@group.calendar.google.com"));
    let r = t
        .control(
            Method::POST,
            &format!("/emulator/accounts/alice@example.com/calendars/{cal}/share"),
            json!({"accessRole": "reader"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["accessRole"], "reader");
    let path = format!("/calendar/v3/calendars/{}/events", enc(&cal));
    let r = t
        .call(
            Method::POST,
            &alice,
            &path,
            Some(timed("x", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z")),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(reason(&r.body), ("calendar".into(), "requiredAccessLevel".into()));
    let r = t.get(&alice, &path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accessRole"], "reader");
    assert_eq!(r.body["timeZone"], "Europe/Paris");

    // a freeBusyReader sees times only
    let carol = t.token("carol@example.com").await;
    t.emu()
        .insert_event(
            &cal,
            timed("secret meeting", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .unwrap();
    t.emu()
        .share_calendar(&cal, "carol@example.com", "freeBusyReader")
        .unwrap();
    let r = t.get(&carol, &path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["accessRole"], "freeBusyReader");
    let item = &r.body["items"][0];
    assert!(item.get("summary").is_none(), "{item}");
    assert!(item["start"].is_object());

    // alice's own secondary calendar: move an event there
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/alice@example.com/calendars",
            json!({"summary": "Alice side"}),
        )
        .await;
    let side = r.body["id"].as_str().unwrap().to_owned();
    let e = t
        .insert(
            &alice,
            "primary",
            timed("m", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    let id = e["id"].as_str().unwrap();
    let r = t
        .call(
            Method::POST,
            &alice,
            &format!("{EV}/{id}/move?destination={}", enc(&side)),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["organizer"]["email"], side.as_str());
    let r = t
        .get(
            &alice,
            &format!("/calendar/v3/calendars/{}/events/{id}", enc(&side)),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t.get(&alice, EV).await;
    assert!(!ids(&r.body["items"]).contains(&id.to_owned()));

    // import is idempotent on iCalUID
    let mut body = timed("imp", "2024-05-04T10:00:00Z", "2024-05-04T11:00:00Z");
    body["iCalUID"] = json!("external-uid-1@example.org");
    let r1 = t
        .call(Method::POST, &alice, &format!("{EV}/import"), Some(body.clone()))
        .await;
    assert_eq!(r1.status, 200, "{}", r1.body);
    body["summary"] = json!("imp2");
    let r2 = t
        .call(Method::POST, &alice, &format!("{EV}/import"), Some(body))
        .await;
    assert_eq!(r2.status, 200, "{}", r2.body);
    assert_eq!(r1.body["id"], r2.body["id"]);
    assert_eq!(r2.body["summary"], "imp2");
    let r = t
        .call(
            Method::POST,
            &alice,
            &format!("{EV}/import"),
            Some(timed("x", "2024-05-04T10:00:00Z", "2024-05-04T11:00:00Z")),
        )
        .await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn calendar_list_calendars_and_colors() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/alice@example.com/calendars",
            json!({"summary": "Work", "timeZone": "America/New_York"}),
        )
        .await;
    assert_eq!(r.body["kind"], "calendar#calendarListEntry");
    assert_eq!(r.body["accessRole"], "owner");
    let work = r.body["id"].as_str().unwrap().to_owned();

    let r = t.get(&tok, "/calendar/v3/users/me/calendarList").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["kind"], "calendar#calendarList");
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["id"], "alice@example.com");
    assert_eq!(items[0]["primary"], true);
    assert_eq!(items[0]["accessRole"], "owner");
    assert_eq!(items[1]["id"], work.as_str());
    assert_eq!(items[1]["timeZone"], "America/New_York");
    assert!(items[1].get("primary").is_none());
    let sync = r.body["nextSyncToken"].as_str().unwrap().to_owned();

    // incremental calendarList
    let r = t
        .control(
            Method::POST,
            "/emulator/accounts/alice@example.com/calendars",
            json!({"summary": "Later"}),
        )
        .await;
    let later = r.body["id"].as_str().unwrap().to_owned();
    let r = t
        .get(
            &tok,
            &format!("/calendar/v3/users/me/calendarList?syncToken={}", enc(&sync)),
        )
        .await;
    assert_eq!(ids(&r.body["items"]), vec![later]);
    t.control(
        Method::POST,
        "/emulator/accounts/alice@example.com/invalidate-sync-tokens",
        json!({}),
    )
    .await;
    let r = t
        .get(
            &tok,
            &format!("/calendar/v3/users/me/calendarList?syncToken={}", enc(&sync)),
        )
        .await;
    assert_eq!(r.status, 410);
    let r = t
        .get(&tok, "/calendar/v3/users/me/calendarList?maxResults=1")
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 1);
    assert!(r.body["nextPageToken"].is_string());
    assert!(r.body.get("nextSyncToken").is_none());
    assert_eq!(
        t.get(&tok, "/calendar/v3/users/me/calendarList?maxResults=251")
            .await
            .status,
        400
    );
    let r = t
        .get(&tok, "/calendar/v3/users/me/calendarList?minAccessRole=owner")
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 3);

    let r = t
        .get(&tok, &format!("/calendar/v3/calendars/{}", enc(&work)))
        .await;
    assert_eq!(r.body["kind"], "calendar#calendar");
    assert_eq!(r.body["summary"], "Work");
    let r = t.get(&tok, "/calendar/v3/users/me/calendarList/primary").await;
    assert_eq!(r.body["id"], "alice@example.com");

    let r = t.get(&tok, "/calendar/v3/colors").await;
    assert_eq!(r.body["kind"], "calendar#colors");
    assert_eq!(r.body["event"]["1"]["background"], "#a4bdfc");
    assert_eq!(r.body["event"]["11"]["background"], "#dc2127");
    assert_eq!(r.body["event"]["11"]["foreground"], "#1d1d1d");
}
