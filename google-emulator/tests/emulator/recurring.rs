use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestEmu, enc, ids};

const EV: &str = "/calendar/v3/calendars/primary/events";

fn starts(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["start"]["dateTime"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn weekly_series_with_exdate_moved_instance_and_dst() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let master = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "Weekly",
                "start": {"dateTime": "2024-02-29T09:00:00-05:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2024-02-29T10:00:00-05:00", "timeZone": "America/New_York"},
                "recurrence": [
                    "RRULE:FREQ=WEEKLY;COUNT=6",
                    "EXDATE;TZID=America/New_York:20240321T090000"
                ]
            }),
        )
        .await;
    let mid = master["id"].as_str().unwrap().to_owned();
    assert_eq!(master["recurrence"].as_array().unwrap().len(), 2);

    // move the 14 March instance (first one after the DST change) to 11:00
    let moved_id = format!("{mid}_20240314T130000Z");
    let r = t
        .call(
            Method::PATCH,
            &tok,
            &format!("{EV}/{moved_id}"),
            Some(json!({
                "start": {"dateTime": "2024-03-14T11:00:00-04:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2024-03-14T12:00:00-04:00", "timeZone": "America/New_York"}
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["id"], moved_id.as_str());
    assert_eq!(r.body["recurringEventId"], mid.as_str());
    assert_eq!(
        r.body["originalStartTime"],
        json!({"dateTime": "2024-03-14T09:00:00-04:00", "timeZone": "America/New_York"})
    );
    assert!(r.body.get("recurrence").is_none());
    assert_eq!(r.body["summary"], "Weekly");

    let q = format!(
        "singleEvents=true&orderBy=startTime&timeMin={}&timeMax={}",
        enc("2024-02-01T00:00:00Z"),
        enc("2024-06-01T00:00:00Z")
    );
    let r = t.get(&tok, &format!("{EV}?{q}")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        ids(&r.body["items"]),
        vec![
            format!("{mid}_20240229T140000Z"),
            format!("{mid}_20240307T140000Z"),
            format!("{mid}_20240314T130000Z"),
            format!("{mid}_20240328T130000Z"),
            format!("{mid}_20240404T130000Z"),
        ]
    );
    assert_eq!(
        starts(&r.body["items"]),
        vec![
            "2024-02-29T09:00:00-05:00",
            "2024-03-07T09:00:00-05:00",
            "2024-03-14T11:00:00-04:00",
            "2024-03-28T09:00:00-04:00",
            "2024-04-04T09:00:00-04:00",
        ]
    );
    for item in r.body["items"].as_array().unwrap() {
        assert_eq!(item["recurringEventId"], mid.as_str());
        assert!(item.get("recurrence").is_none());
        assert_eq!(item["iCalUID"], format!("{mid}@google.com"));
        assert!(item["originalStartTime"].is_object());
    }
    let first = &r.body["items"][0];
    assert_eq!(
        first["end"],
        json!({"dateTime": "2024-02-29T10:00:00-05:00", "timeZone": "America/New_York"})
    );

    // a window: timeMin exclusive on end, timeMax exclusive on start
    let r = t
        .get(
            &tok,
            &format!(
                "{EV}?singleEvents=true&timeMin={}&timeMax={}",
                enc("2024-03-10T00:00:00Z"),
                enc("2024-03-28T13:00:00Z")
            ),
        )
        .await;
    assert_eq!(ids(&r.body["items"]), vec![moved_id.clone()]);

    // virtual instances: get works, a non-occurrence is 404
    let r = t.get(&tok, &format!("{EV}/{mid}_20240307T140000Z")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["start"]["dateTime"], "2024-03-07T09:00:00-05:00");
    let r = t.get(&tok, &format!("{EV}/{mid}_20240308T140000Z")).await;
    assert_eq!(r.status, 404);
    // the EXDATE'd occurrence is not an instance
    let r = t.get(&tok, &format!("{EV}/{mid}_20240321T130000Z")).await;
    assert_eq!(r.status, 404);

    // delete one instance: cancelled exception; twice: 410
    let last = format!("{EV}/{mid}_20240404T130000Z");
    assert_eq!(t.call(Method::DELETE, &tok, &last, None).await.status, 204);
    assert_eq!(t.call(Method::DELETE, &tok, &last, None).await.status, 410);
    let r = t.get(&tok, &format!("{EV}?{q}")).await;
    assert_eq!(ids(&r.body["items"]).len(), 4);

    // instances endpoint
    let r = t.get(&tok, &format!("{EV}/{mid}/instances")).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r.body["items"]).len(), 4);
    let r = t
        .get(&tok, &format!("{EV}/{mid}/instances?showDeleted=true"))
        .await;
    assert_eq!(ids(&r.body["items"]).len(), 5);

    // without singleEvents: the master and its two exceptions
    let r = t.get(&tok, EV).await;
    let got = ids(&r.body["items"]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], mid);
    assert!(got.contains(&moved_id));

    // PUT on an instance: replaces it as an exception
    let r = t
        .call(
            Method::PUT,
            &tok,
            &format!("{EV}/{mid}_20240229T140000Z"),
            Some(json!({
                "summary": "Special",
                "start": {"dateTime": "2024-02-29T09:00:00-05:00", "timeZone": "America/New_York"},
                "end": {"dateTime": "2024-02-29T09:30:00-05:00", "timeZone": "America/New_York"}
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["summary"], "Special");
    assert_eq!(r.body["recurringEventId"], mid.as_str());
}

#[tokio::test]
async fn all_day_and_lenient_recurrence() {
    let t = TestEmu::start().await;
    let tok = t.token("alice@example.com").await;
    let m = t
        .insert(
            &tok,
            "primary",
            json!({
                "summary": "Holiday",
                "start": {"date": "2024-01-01"},
                "end": {"date": "2024-01-02"},
                "recurrence": ["RRULE:FREQ=DAILY;UNTIL=20240105", "EXDATE;VALUE=DATE:20240103"]
            }),
        )
        .await;
    let mid = m["id"].as_str().unwrap().to_owned();
    let r = t
        .get(&tok, &format!("{EV}?singleEvents=true&orderBy=startTime"))
        .await;
    assert_eq!(
        ids(&r.body["items"]),
        vec![
            format!("{mid}_20240101"),
            format!("{mid}_20240102"),
            format!("{mid}_20240104"),
            format!("{mid}_20240105"),
        ]
    );
    assert_eq!(r.body["items"][2]["start"], json!({"date": "2024-01-04"}));
    assert_eq!(r.body["items"][2]["end"], json!({"date": "2024-01-05"}));
    assert_eq!(
        r.body["items"][2]["originalStartTime"],
        json!({"date": "2024-01-04"})
    );

    // Google-echoed parameters are tolerated
    let r = t
        .call(
            Method::POST,
            &tok,
            EV,
            Some(json!({
                "summary": "Echo",
                "start": {"dateTime": "2024-01-01T10:00:00+01:00", "timeZone": "Europe/Berlin"},
                "end": {"dateTime": "2024-01-01T11:00:00+01:00", "timeZone": "Europe/Berlin"},
                "recurrence": [
                    "RRULE;X-EVOLUTION-ENDDATE=20240105T090000Z:FREQ=DAILY;COUNT=5",
                    "RDATE;TZID=Europe/Berlin:20240201T100000",
                    "EXDATE;TZID=Europe/Berlin:20240102T100000"
                ]
            })),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let eid = r.body["id"].as_str().unwrap().to_owned();
    let r = t.get(&tok, &format!("{EV}/{eid}/instances")).await;
    assert_eq!(
        ids(&r.body["items"]),
        vec![
            format!("{eid}_20240101T090000Z"),
            format!("{eid}_20240103T090000Z"),
            format!("{eid}_20240104T090000Z"),
            format!("{eid}_20240105T090000Z"),
            format!("{eid}_20240201T090000Z"),
        ]
    );
}
