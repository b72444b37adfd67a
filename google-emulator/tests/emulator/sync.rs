use reqwest::Method;
use serde_json::json;

use crate::helpers::{TestEmu, enc, ids, timed};

const EV: &str = "/calendar/v3/calendars/primary/events";

#[tokio::test]
async fn incremental_sync_returns_exactly_the_changes() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let a = t
        .insert(
            &tok,
            "primary",
            timed("a", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    let c = t
        .insert(
            &tok,
            "primary",
            timed("c", "2024-05-03T10:00:00Z", "2024-05-03T11:00:00Z"),
        )
        .await;
    let _untouched = t
        .insert(
            &tok,
            "primary",
            timed("u", "2024-05-04T10:00:00Z", "2024-05-04T11:00:00Z"),
        )
        .await;
    let r = t.get(&tok, EV).await;
    assert_eq!(ids(&r.body["items"]).len(), 3);
    assert!(r.body.get("nextPageToken").is_none());
    let sync = r.body["nextSyncToken"].as_str().unwrap().to_owned();

    // nothing changed: empty result and a usable token
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync))).await;
    assert_eq!(r.status, 200);
    assert_eq!(ids(&r.body["items"]), Vec::<String>::new());
    assert!(r.body["nextSyncToken"].is_string());

    let b = t
        .insert(
            &tok,
            "primary",
            timed("b", "2024-05-02T10:00:00Z", "2024-05-02T11:00:00Z"),
        )
        .await;
    let a_id = a["id"].as_str().unwrap();
    let c_id = c["id"].as_str().unwrap();
    let r = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EV}/{a_id}"),
            Some(json!({"summary": "a2"})),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t.call(Method::DELETE, &tok, &format!("{EV}/{c_id}"), None).await;
    assert_eq!(r.status, 204);

    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{}", r.body);
    let find = |id: &str| items.iter().find(|i| i["id"] == id).unwrap().clone();
    assert_eq!(find(a_id)["summary"], "a2");
    assert_eq!(find(b["id"].as_str().unwrap())["summary"], "b");
    let deleted = find(c_id);
    assert_eq!(deleted["status"], "cancelled");
    assert!(deleted.get("summary").is_none());
    assert!(deleted.get("start").is_none());
    assert!(r.body.get("nextPageToken").is_none());
    let sync2 = r.body["nextSyncToken"].as_str().unwrap().to_owned();
    assert_ne!(sync2, sync);

    // the old token is still valid (returns the same changes); the new one is empty
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync2))).await;
    assert!(r.body["items"].as_array().unwrap().is_empty());

    // invalidation: exactly Google's 410 body
    let r = t
        .control(
            Method::POST,
            "/emulator/calendars/alice@example.com/invalidate-sync-tokens",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync2))).await;
    assert_eq!(r.status, 410);
    assert_eq!(
        r.body,
        json!({"error":{"code":410,"message":"Sync token is no longer valid, a full sync is required.","errors":[{"domain":"calendar","reason":"fullSyncRequired","message":"Sync token is no longer valid, a full sync is required.","locationType":"parameter","location":"syncToken"}]}})
    );
    // garbage tokens too
    let r = t.get(&tok, &format!("{EV}?syncToken=garbage")).await;
    assert_eq!(r.status, 410);
    // a fresh full sync works again
    let r = t.get(&tok, EV).await;
    let fresh = r.body["nextSyncToken"].as_str().unwrap().to_owned();
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&fresh))).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn paging_puts_the_sync_token_on_the_last_page_only() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let mut all = Vec::new();
    for i in 0..5 {
        let e = t
            .insert(
                &tok,
                "primary",
                timed(&format!("e{i}"), "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
            )
            .await;
        all.push(e["id"].as_str().unwrap().to_owned());
    }
    let mut seen = Vec::new();
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    let sync = loop {
        let mut path = format!("{EV}?maxResults=2");
        if let Some(p) = &page_token {
            path.push_str(&format!("&pageToken={}", enc(p)));
        }
        let r = t.get(&tok, &path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        pages += 1;
        let items = ids(&r.body["items"]);
        assert!(items.len() <= 2);
        seen.extend(items);
        match r.body.get("nextPageToken").and_then(|v| v.as_str()) {
            Some(p) => {
                assert!(r.body.get("nextSyncToken").is_none());
                page_token = Some(p.to_owned());
            }
            None => break r.body["nextSyncToken"].as_str().unwrap().to_owned(),
        }
    };
    assert_eq!(pages, 3);
    assert_eq!(seen, all);

    // incremental paging: syncToken plus pageToken
    for id in &all[..3] {
        let r = t
            .call(
                Method::PATCH,
                &tok,
                &format!("{EV}/{id}"),
                Some(json!({"summary": "changed"})),
            )
            .await;
        assert_eq!(r.status, 200);
    }
    let r = t
        .get(&tok, &format!("{EV}?syncToken={}&maxResults=2", enc(&sync)))
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 2);
    assert!(r.body.get("nextSyncToken").is_none());
    let p = r.body["nextPageToken"].as_str().unwrap().to_owned();
    let r = t
        .get(
            &tok,
            &format!("{EV}?syncToken={}&maxResults=2&pageToken={}", enc(&sync), enc(&p)),
        )
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 1);
    assert!(r.body.get("nextPageToken").is_none());
    assert!(r.body["nextSyncToken"].is_string());

    // bad page token
    let r = t.get(&tok, &format!("{EV}?pageToken=nope")).await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn short_pages_switch() {
    let t = TestEmu::start_with(google_emulator::EmulatorConfig {
        page_size_cap: Some(1),
        ..Default::default()
    })
    .await;
    let tok = t.token("alice@example.com").await;
    for i in 0..2 {
        t.insert(
            &tok,
            "primary",
            timed(&format!("e{i}"), "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    }
    let r = t.get(&tok, &format!("{EV}?maxResults=10")).await;
    assert_eq!(ids(&r.body["items"]).len(), 1);
    assert!(r.body["nextPageToken"].is_string());
}

#[tokio::test]
async fn sync_token_restrictions() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let r = t.get(&tok, EV).await;
    let sync = enc(r.body["nextSyncToken"].as_str().unwrap());
    let restricted = [
        format!("timeMin={}", enc("2024-01-01T00:00:00Z")),
        format!("timeMax={}", enc("2024-01-01T00:00:00Z")),
        "q=x".to_owned(),
        "iCalUID=x".to_owned(),
        "orderBy=updated".to_owned(),
        "privateExtendedProperty=a%3Db".to_owned(),
        "sharedExtendedProperty=a%3Db".to_owned(),
        format!("updatedMin={}", enc("2024-01-01T00:00:00Z")),
    ];
    for extra in restricted {
        let r = t.get(&tok, &format!("{EV}?syncToken={sync}&{extra}")).await;
        assert_eq!(r.status, 400, "{extra}");
        assert_eq!(
            r.body["error"]["errors"][0]["reason"],
            "syncTokenWithRequestRestrictions"
        );
        assert_eq!(
            r.body["error"]["message"],
            "Sync token cannot be used with other request restrictions."
        );
    }
    // showDeleted and singleEvents are allowed
    let r = t
        .get(
            &tok,
            &format!("{EV}?syncToken={sync}&showDeleted=true&singleEvents=true"),
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn show_deleted_semantics() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    // a deleted single event
    let single = t
        .insert(
            &tok,
            "primary",
            timed("single", "2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z"),
        )
        .await;
    let single_id = single["id"].as_str().unwrap().to_owned();
    t.call(Method::DELETE, &tok, &format!("{EV}/{single_id}"), None)
        .await;
    // a live series with one cancelled instance
    let series = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "daily",
                "start": {"dateTime": "2024-05-01T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2024-05-01T09:30:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]
            }),
        )
        .await;
    let series_id = series["id"].as_str().unwrap().to_owned();
    let cancelled_instance = format!("{series_id}_20240502T090000Z");
    let r = t
        .call(Method::DELETE, &tok, &format!("{EV}/{cancelled_instance}"), None)
        .await;
    assert_eq!(r.status, 204);
    // a deleted series
    let dead = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "dead",
                "start": {"dateTime": "2024-05-01T12:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2024-05-01T12:30:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=DAILY;COUNT=3"]
            }),
        )
        .await;
    let dead_id = dead["id"].as_str().unwrap().to_owned();
    t.call(Method::DELETE, &tok, &format!("{EV}/{dead_id}"), None)
        .await;

    // showDeleted=false, singleEvents=false: cancelled exceptions of live series only
    let r = t.get(&tok, EV).await;
    let got = ids(&r.body["items"]);
    assert_eq!(got, vec![series_id.clone(), cancelled_instance.clone()]);
    let exc = &r.body["items"][1];
    assert_eq!(exc["status"], "cancelled");
    assert_eq!(exc["recurringEventId"], series_id.as_str());
    assert_eq!(exc["originalStartTime"]["dateTime"], "2024-05-02T09:00:00Z");

    // showDeleted=true, singleEvents=false: everything
    let r = t.get(&tok, &format!("{EV}?showDeleted=true")).await;
    let got = ids(&r.body["items"]);
    for id in [&single_id, &series_id, &cancelled_instance, &dead_id] {
        assert!(got.contains(id), "{id} missing from {got:?}");
    }

    // singleEvents=true, showDeleted=false: no cancelled entries at all
    let r = t.get(&tok, &format!("{EV}?singleEvents=true")).await;
    let got = ids(&r.body["items"]);
    assert_eq!(
        got,
        vec![
            format!("{series_id}_20240501T090000Z"),
            format!("{series_id}_20240503T090000Z")
        ]
    );

    // both true: cancelled single instances, not cancelled masters
    let r = t
        .get(&tok, &format!("{EV}?singleEvents=true&showDeleted=true"))
        .await;
    let got = ids(&r.body["items"]);
    assert!(got.contains(&cancelled_instance), "{got:?}");
    assert!(!got.contains(&dead_id), "{got:?}");
    assert!(
        !got.iter().any(|i| i.starts_with(&format!("{dead_id}_"))),
        "{got:?}"
    );
}

#[tokio::test]
async fn sync_after_instance_cancel_and_series_delete() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let series = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "weekly",
                "start": {"dateTime": "2024-05-01T09:00:00Z", "timeZone": "UTC"},
                "end": {"dateTime": "2024-05-01T09:30:00Z", "timeZone": "UTC"},
                "recurrence": ["RRULE:FREQ=WEEKLY"]
            }),
        )
        .await;
    let sid = series["id"].as_str().unwrap().to_owned();
    let sync = t.get(&tok, EV).await.body["nextSyncToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let inst = format!("{sid}_20240508T090000Z");
    assert_eq!(
        t.call(Method::DELETE, &tok, &format!("{EV}/{inst}"), None)
            .await
            .status,
        204
    );
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync))).await;
    assert_eq!(
        r.body["items"],
        json!([{
            "kind": "calendar#event",
            "etag": r.body["items"][0]["etag"],
            "id": inst,
            "status": "cancelled",
            "recurringEventId": sid,
            "originalStartTime": {"dateTime": "2024-05-08T09:00:00Z", "timeZone": "UTC"}
        }])
    );
    let sync = r.body["nextSyncToken"].as_str().unwrap().to_owned();
    t.call(Method::DELETE, &tok, &format!("{EV}/{sid}"), None).await;
    let r = t.get(&tok, &format!("{EV}?syncToken={}", enc(&sync))).await;
    // only the master changed (the instance was already cancelled): id-only entry
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", r.body);
    assert_eq!(items[0]["id"], sid.as_str());
    assert_eq!(items[0]["status"], "cancelled");
    assert!(items[0].get("recurringEventId").is_none());
    assert!(items[0].get("recurrence").is_none());
}
