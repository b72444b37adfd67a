//! The Event schema of the discovery document (`calendar.v3.json`, revision 20261030): Google
//! never returns a field outside it, so the emulator keeps only these.

use serde_json::{Map, Value};

/// What a schema property holds. Only objects and arrays are looked into.
enum Shape {
    /// A string, number, boolean or `any`: kept as sent.
    Value,
    /// An object with these properties.
    Object(&'static [(&'static str, Shape)]),
    /// An object with free keys (`additionalProperties`).
    MapOf(&'static Shape),
    ArrayOf(&'static Shape),
}

// Generated from the schemas reachable from `Event` (each after the ones it refers to).
const EVENT_ATTACHMENT: Shape = Shape::Object(&[
    ("fileId", Shape::Value),
    ("fileUrl", Shape::Value),
    ("iconLink", Shape::Value),
    ("mimeType", Shape::Value),
    ("title", Shape::Value),
]);
const EVENT_ATTENDEE: Shape = Shape::Object(&[
    ("additionalGuests", Shape::Value),
    ("asyncOperation", Shape::Value),
    ("comment", Shape::Value),
    ("displayName", Shape::Value),
    ("email", Shape::Value),
    ("id", Shape::Value),
    ("optional", Shape::Value),
    ("organizer", Shape::Value),
    ("resource", Shape::Value),
    ("responseStatus", Shape::Value),
    ("self", Shape::Value),
]);
const EVENT_BIRTHDAY_PROPERTIES: Shape = Shape::Object(&[
    ("contact", Shape::Value),
    ("customTypeName", Shape::Value),
    ("type", Shape::Value),
]);
const CONFERENCE_SOLUTION_KEY: Shape = Shape::Object(&[("type", Shape::Value)]);
const CONFERENCE_SOLUTION: Shape = Shape::Object(&[
    ("iconUri", Shape::Value),
    ("key", CONFERENCE_SOLUTION_KEY),
    ("name", Shape::Value),
]);
const CONFERENCE_REQUEST_STATUS: Shape = Shape::Object(&[("statusCode", Shape::Value)]);
const CREATE_CONFERENCE_REQUEST: Shape = Shape::Object(&[
    ("conferenceSolutionKey", CONFERENCE_SOLUTION_KEY),
    ("requestId", Shape::Value),
    ("status", CONFERENCE_REQUEST_STATUS),
]);
const ENTRY_POINT: Shape = Shape::Object(&[
    ("accessCode", Shape::Value),
    ("entryPointFeatures", Shape::ArrayOf(&Shape::Value)),
    ("entryPointType", Shape::Value),
    ("label", Shape::Value),
    ("meetingCode", Shape::Value),
    ("passcode", Shape::Value),
    ("password", Shape::Value),
    ("pin", Shape::Value),
    ("regionCode", Shape::Value),
    ("uri", Shape::Value),
]);
const CONFERENCE_PARAMETERS_ADD_ON_PARAMETERS: Shape =
    Shape::Object(&[("parameters", Shape::MapOf(&Shape::Value))]);
const CONFERENCE_PARAMETERS: Shape =
    Shape::Object(&[("addOnParameters", CONFERENCE_PARAMETERS_ADD_ON_PARAMETERS)]);
const CONFERENCE_DATA: Shape = Shape::Object(&[
    ("conferenceId", Shape::Value),
    ("conferenceSolution", CONFERENCE_SOLUTION),
    ("createRequest", CREATE_CONFERENCE_REQUEST),
    ("entryPoints", Shape::ArrayOf(&ENTRY_POINT)),
    ("notes", Shape::Value),
    ("parameters", CONFERENCE_PARAMETERS),
    ("signature", Shape::Value),
]);
const EVENT_DATE_TIME: Shape = Shape::Object(&[
    ("date", Shape::Value),
    ("dateTime", Shape::Value),
    ("timeZone", Shape::Value),
]);
const EVENT_FOCUS_TIME_PROPERTIES: Shape = Shape::Object(&[
    ("autoDeclineMode", Shape::Value),
    ("chatStatus", Shape::Value),
    ("declineMessage", Shape::Value),
]);
const EVENT_OUT_OF_OFFICE_PROPERTIES: Shape = Shape::Object(&[
    ("autoDeclineMode", Shape::Value),
    ("declineMessage", Shape::Value),
]);
const EVENT_REMINDER: Shape = Shape::Object(&[("method", Shape::Value), ("minutes", Shape::Value)]);
const EVENT_WORKING_LOCATION_PROPERTIES: Shape = Shape::Object(&[
    ("customLocation", Shape::Object(&[("label", Shape::Value)])),
    ("homeOffice", Shape::Value),
    (
        "officeLocation",
        Shape::Object(&[
            ("buildingId", Shape::Value),
            ("deskId", Shape::Value),
            ("floorId", Shape::Value),
            ("floorSectionId", Shape::Value),
            ("label", Shape::Value),
        ]),
    ),
    ("type", Shape::Value),
]);
const EVENT: Shape = Shape::Object(&[
    ("anyoneCanAddSelf", Shape::Value),
    ("attachments", Shape::ArrayOf(&EVENT_ATTACHMENT)),
    ("attendees", Shape::ArrayOf(&EVENT_ATTENDEE)),
    ("attendeesOmitted", Shape::Value),
    ("birthdayProperties", EVENT_BIRTHDAY_PROPERTIES),
    ("colorId", Shape::Value),
    ("conferenceData", CONFERENCE_DATA),
    ("created", Shape::Value),
    (
        "creator",
        Shape::Object(&[
            ("displayName", Shape::Value),
            ("email", Shape::Value),
            ("id", Shape::Value),
            ("self", Shape::Value),
        ]),
    ),
    ("description", Shape::Value),
    ("end", EVENT_DATE_TIME),
    ("endTimeUnspecified", Shape::Value),
    ("etag", Shape::Value),
    ("eventLabelId", Shape::Value),
    ("eventType", Shape::Value),
    (
        "extendedProperties",
        Shape::Object(&[
            ("private", Shape::MapOf(&Shape::Value)),
            ("shared", Shape::MapOf(&Shape::Value)),
        ]),
    ),
    ("focusTimeProperties", EVENT_FOCUS_TIME_PROPERTIES),
    (
        "gadget",
        Shape::Object(&[
            ("display", Shape::Value),
            ("height", Shape::Value),
            ("iconLink", Shape::Value),
            ("link", Shape::Value),
            ("preferences", Shape::MapOf(&Shape::Value)),
            ("title", Shape::Value),
            ("type", Shape::Value),
            ("width", Shape::Value),
        ]),
    ),
    ("guestsCanInviteOthers", Shape::Value),
    ("guestsCanModify", Shape::Value),
    ("guestsCanSeeOtherGuests", Shape::Value),
    ("hangoutLink", Shape::Value),
    ("htmlLink", Shape::Value),
    ("iCalUID", Shape::Value),
    ("id", Shape::Value),
    ("kind", Shape::Value),
    ("location", Shape::Value),
    ("locked", Shape::Value),
    (
        "organizer",
        Shape::Object(&[
            ("displayName", Shape::Value),
            ("email", Shape::Value),
            ("id", Shape::Value),
            ("self", Shape::Value),
        ]),
    ),
    ("originalStartTime", EVENT_DATE_TIME),
    ("outOfOfficeProperties", EVENT_OUT_OF_OFFICE_PROPERTIES),
    ("privateCopy", Shape::Value),
    ("recurrence", Shape::ArrayOf(&Shape::Value)),
    ("recurringEventId", Shape::Value),
    (
        "reminders",
        Shape::Object(&[
            ("overrides", Shape::ArrayOf(&EVENT_REMINDER)),
            ("useDefault", Shape::Value),
        ]),
    ),
    ("sequence", Shape::Value),
    (
        "source",
        Shape::Object(&[("title", Shape::Value), ("url", Shape::Value)]),
    ),
    ("start", EVENT_DATE_TIME),
    ("status", Shape::Value),
    ("summary", Shape::Value),
    ("transparency", Shape::Value),
    ("updated", Shape::Value),
    ("visibility", Shape::Value),
    ("workingLocationProperties", EVENT_WORKING_LOCATION_PROPERTIES),
]);

/// Drops every field of an event resource that the Event schema does not know, at any depth.
/// Unless `keep_nulls` (a PATCH body, where `null` deletes), object members that are `null` go too:
/// Google reads `null` as "not set" and leaves the field out.
pub fn retain_event_fields(event: &mut Map<String, Value>, keep_nulls: bool) {
    if let Shape::Object(fields) = &EVENT {
        retain_object(event, fields, keep_nulls);
    }
}

fn retain_object(object: &mut Map<String, Value>, fields: &[(&str, Shape)], keep_nulls: bool) {
    object.retain(|key, value| {
        let Some((_, shape)) = fields.iter().find(|(name, _)| name == key) else {
            return false;
        };
        if value.is_null() {
            return keep_nulls;
        }
        retain(value, shape, keep_nulls);
        true
    });
}

fn retain(value: &mut Value, shape: &Shape, keep_nulls: bool) {
    match (shape, value) {
        (Shape::Object(fields), Value::Object(object)) => retain_object(object, fields, keep_nulls),
        (Shape::MapOf(item), Value::Object(object)) => object.retain(|_, value| {
            if value.is_null() {
                return keep_nulls;
            }
            retain(value, item, keep_nulls);
            true
        }),
        (Shape::ArrayOf(item), Value::Array(items)) => {
            for value in items {
                retain(value, item, keep_nulls);
            }
        }
        // A value of the wrong type is left for validation to refuse.
        _ => {}
    }
}
