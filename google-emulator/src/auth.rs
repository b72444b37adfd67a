//! Bearer token authentication and scope checks for the Calendar API.

use axum::http::{HeaderMap, header};
use chrono::Utc;

use crate::Emulator;
use crate::error::ApiError;
use crate::util::Params;

pub const SCOPE_PREFIX: &str = "https://www.googleapis.com/auth/";

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub email: String,
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub enum Need {
    EventsRead,
    EventsWrite,
    CalendarListRead,
    CalendarsRead,
    AnyCalendar,
}

/// The access token of a request: `Authorization: Bearer`, else `access_token` or
/// `oauth_token` query parameters.
pub fn bearer(headers: &HeaderMap, params: &Params) -> Option<String> {
    if let Some(v) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let v = v.trim();
        if let Some((scheme, token)) = v.split_once(' ')
            && (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        {
            let t = token.trim();
            if !t.is_empty() {
                return Some(t.to_owned());
            }
        }
        return Some(String::new());
    }
    params
        .get_nonempty("access_token")
        .or_else(|| params.get_nonempty("oauth_token"))
        .map(str::to_owned)
}

pub fn authenticate(emu: &Emulator, headers: &HeaderMap, params: &Params) -> Result<Caller, ApiError> {
    let token = bearer(headers, params).ok_or_else(ApiError::login_required)?;
    let st = emu.lock();
    let at = st
        .access_tokens
        .get(&token)
        .ok_or_else(ApiError::invalid_credentials)?;
    if at.revoked || at.expires <= Utc::now() || st.account(&at.email).is_none() {
        return Err(ApiError::invalid_credentials());
    }
    Ok(Caller {
        email: at.email.clone(),
        scopes: at.scopes.clone(),
    })
}

fn short(scope: &str) -> &str {
    scope.strip_prefix(SCOPE_PREFIX).unwrap_or(scope)
}

impl Caller {
    pub fn has_scope(&self, accepted: &[&str]) -> bool {
        self.scopes.iter().any(|s| accepted.contains(&short(s)))
    }

    pub fn require(&self, emu: &Emulator, need: Need) -> Result<(), ApiError> {
        if !emu.config().enforce_scopes {
            return Ok(());
        }
        let ok = match need {
            Need::EventsRead => self.has_scope(&[
                "calendar",
                "calendar.readonly",
                "calendar.events",
                "calendar.events.readonly",
                "calendar.events.owned",
                "calendar.events.owned.readonly",
                "calendar.app.created",
            ]),
            Need::EventsWrite => self.has_scope(&[
                "calendar",
                "calendar.events",
                "calendar.events.owned",
                "calendar.app.created",
            ]),
            Need::CalendarListRead => self.has_scope(&[
                "calendar",
                "calendar.readonly",
                "calendar.calendarlist",
                "calendar.calendarlist.readonly",
                "calendar.app.created",
            ]),
            Need::CalendarsRead => self.has_scope(&[
                "calendar",
                "calendar.readonly",
                "calendar.calendars",
                "calendar.calendars.readonly",
                "calendar.app.created",
            ]),
            Need::AnyCalendar => self.scopes.iter().any(|s| short(s).starts_with("calendar")),
        };
        if ok {
            Ok(())
        } else {
            Err(ApiError::insufficient_permissions())
        }
    }
}
