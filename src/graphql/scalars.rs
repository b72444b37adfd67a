//! Scalars shared by every domain.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{SecondsFormat, Utc};

/// An instant: RFC 3339 with an offset on input, always UTC with a trailing `Z` on output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant, RFC 3339. Input may carry any offset; output is UTC with a trailing `Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| DateTime(t.with_timezone(&Utc)))
                .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time with an offset")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }
}

impl From<chrono::DateTime<Utc>> for DateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        Self(t)
    }
}

impl From<DateTime> for chrono::DateTime<Utc> {
    fn from(t: DateTime) -> Self {
        t.0
    }
}

impl std::ops::Deref for DateTime {
    type Target = chrono::DateTime<Utc>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_utc_with_a_trailing_z_and_input_takes_any_offset() {
        let parsed =
            <DateTime as ScalarType>::parse(Value::from("2026-03-10T09:00:00-05:00")).expect("parse");
        assert_eq!(parsed.to_value(), Value::from("2026-03-10T14:00:00Z"));
        let millis = <DateTime as ScalarType>::parse(Value::from("2026-03-10T14:00:00.250Z")).expect("parse");
        assert_eq!(millis.to_value(), Value::from("2026-03-10T14:00:00.250Z"));
        assert!(<DateTime as ScalarType>::parse(Value::from("2026-03-10T14:00:00")).is_err());
        assert!(<DateTime as ScalarType>::parse(Value::from(5)).is_err());
    }
}

/// A calendar day without a time or zone, `yyyy-mm-dd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub chrono::NaiveDate);

/// A calendar day without a time or zone: `yyyy-mm-dd`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as yyyy-mm-dd")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}
