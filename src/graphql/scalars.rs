//! Scalars shared by every domain.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{Datelike as _, SecondsFormat, SubsecRound as _, Utc};

/// Years every database, Google and RFC 3339 agree on.
const SUPPORTED_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

fn in_supported_years<T: async_graphql::InputType>(year: i32) -> Result<(), InputValueError<T>> {
    if SUPPORTED_YEARS.contains(&year) {
        Ok(())
    } else {
        Err(InputValueError::custom(format!(
            "year {year} is outside the supported years 0001 to 9999 (in UTC)"
        )))
    }
}

/// An instant: RFC 3339 with an offset on input, always UTC with a trailing `Z` on output. Input is kept
/// to the microsecond, PostgreSQL's precision: a finer instant would be rounded there and kept whole on
/// SQLite, and the same comparison could answer differently on the two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime(pub chrono::DateTime<Utc>);

/// An instant, RFC 3339. Input may carry any offset; output is UTC with a trailing `Z`.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => {
                let instant = chrono::DateTime::parse_from_rfc3339(text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| InputValueError::custom("expected an RFC 3339 date-time with an offset"))?;
                in_supported_years(instant.year())?;
                Ok(DateTime(instant.trunc_subsecs(6)))
            }
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

/// A calendar day without a time or zone, `yyyy-mm-dd`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub chrono::NaiveDate);

/// A calendar day without a time or zone: `yyyy-mm-dd`.
#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => {
                let day = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map_err(|_| InputValueError::custom("expected a date as yyyy-mm-dd"))?;
                in_supported_years(day.year())?;
                Ok(Date(day))
            }
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
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

    #[test]
    fn instants_are_kept_to_the_microsecond() {
        let parsed = <DateTime as ScalarType>::parse(Value::from("9999-12-31T23:59:59.999999999Z"))
            .expect("the last nanosecond of 9999");
        assert_eq!(
            parsed.to_value(),
            Value::from("9999-12-31T23:59:59.999999Z"),
            "truncated, not rounded into year 10000"
        );
    }

    #[test]
    fn years_outside_0001_to_9999_are_refused() {
        assert!(<DateTime as ScalarType>::parse(Value::from("0001-01-01T00:00:00Z")).is_ok());
        assert!(<DateTime as ScalarType>::parse(Value::from("9999-12-31T23:59:59Z")).is_ok());
        // Year 1 at +01:00 is year 0 in UTC.
        assert!(<DateTime as ScalarType>::parse(Value::from("0001-01-01T00:30:00+01:00")).is_err());
        assert!(<DateTime as ScalarType>::parse(Value::from("0000-06-01T00:00:00Z")).is_err());
        assert!(<DateTime as ScalarType>::parse(Value::from("9999-12-31T23:30:00-01:00")).is_err());
        assert!(<Date as ScalarType>::parse(Value::from("0001-01-01")).is_ok());
        assert!(<Date as ScalarType>::parse(Value::from("0000-01-01")).is_err());
        assert!(<Date as ScalarType>::parse(Value::from("+10000-01-01")).is_err());
        assert!(<Date as ScalarType>::parse(Value::from("-0001-01-01")).is_err());
    }
}
