//! Settings, config and calendar routes: thin over [`crate::tenants`] (and, after a calendar
//! change, [`crate::timers::replan_tenant`], since deadlines on it may have moved).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_rules::{ALWAYS_OPEN, CalendarSpec};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, ok};
use super::params::{IdPath, TenantPath};
use super::{ApiError, AppState, ErrorBody};
use crate::store::records::Settings;
use crate::tenants::changes::SettingsOutcome;

/// A change that waits for a second admin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pending {
    /// What is awaited.
    pending: String,
}

/// `PUT …/settings`: replaces the settings (omitted fields take their defaults).
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/settings", tag = "settings",
    summary = "Fallback decision, paused statuses, limits, four-eyes approval, at-risk threshold.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath), request_body = Settings,
    responses(
        (status = 200, description = "Applied.", body = Settings),
        (status = 202, description = "Turning four-eyes off waits for a second admin.", body = Pending),
    )
)]
pub(crate) async fn put_settings(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(settings): ApiJson<Settings>,
) -> Result<Response, ApiError> {
    let who = access.who();
    let before = access.tenant.record.settings.at_risk_percent;
    let outcome = service
        .tenants
        .put_settings(access.id(), &who, settings.clone())
        .await?;
    Ok(match outcome {
        SettingsOutcome::Applied => {
            // The open-clock rows hold at-risk instants for the percentage they were made
            // with.
            if settings.at_risk_percent != before {
                crate::timers::replan_tenant(
                    &service.store,
                    &service.tenants,
                    &service.timers,
                    access.id(),
                )
                .await?;
            }
            ok(settings)
        }
        SettingsOutcome::Pending => {
            let pending = Pending {
                pending: "turning four-eyes approval off needs a second admin: another admin key must send the same settings".into(),
            };
            (StatusCode::ACCEPTED, axum::Json(pending)).into_response()
        }
    })
}

/// `GET …/settings`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/settings", tag = "settings",
    summary = "The tenant's settings.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The settings.", body = Settings))
)]
pub(crate) async fn get_settings(access: Authorized) -> Response {
    ok(&access.tenant.record.settings)
}

/// `PUT …/config`: replaces the string map handed to rules.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/config", tag = "config",
    summary = "Replace the string map handed to rules via `config(key)`.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath), request_body = BTreeMap<String, String>,
    responses((status = 200, description = "The new map.", body = BTreeMap<String, String>))
)]
pub(crate) async fn put_config(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(config): ApiJson<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let who = access.who();
    service
        .tenants
        .put_config(access.id(), &who, config.clone())
        .await?;
    Ok(ok(config))
}

/// `GET …/config`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/config", tag = "config",
    summary = "The config map.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath),
    responses((status = 200, description = "The map.", body = BTreeMap<String, String>))
)]
pub(crate) async fn get_config(access: Authorized) -> Response {
    ok(&access.tenant.record.config)
}

/// A calendar as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarPut {
    /// Its id.
    id: String,
    /// Its definition.
    calendar: CalendarSpec,
    /// How many tickets' timers moved.
    replanned: usize,
}

/// `PUT …/calendars/{id}`: creates or replaces a calendar after validating it.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/calendars/{id}", tag = "calendars",
    summary = "Create or replace a calendar `{timezone, hours, holidays}`; pending timers on it are re-planned.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath), request_body = CalendarSpec,
    responses(
        (status = 200, description = "Stored.", body = CalendarPut),
        (status = 409, description = "`24x7` is built in.", body = ErrorBody),
    )
)]
pub(crate) async fn put_calendar(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> Result<Response, ApiError> {
    let who = access.who();
    service
        .tenants
        .put_calendar(access.id(), &who, &path.id, spec.clone())
        .await?;
    let replanned = crate::timers::replan_tenant(
        &service.store,
        &service.tenants,
        &service.timers,
        access.id(),
    )
    .await?;
    Ok(ok(CalendarPut {
        id: path.id,
        calendar: spec,
        replanned,
    }))
}

/// A calendar as read.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarGet {
    /// Its id.
    id: String,
    /// Its definition (absent for the built-in `24x7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<CalendarSpec>,
    /// Whether it is built in.
    builtin: bool,
}

/// `GET …/calendars/{id}`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/calendars/{id}", tag = "calendars",
    summary = "A calendar.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath),
    responses((status = 200, description = "The calendar.", body = CalendarGet))
)]
pub(crate) async fn get_calendar(
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    if path.id == ALWAYS_OPEN {
        return Ok(ok(CalendarGet {
            id: path.id,
            calendar: None,
            builtin: true,
        }));
    }
    let spec = access
        .tenant
        .record
        .calendars
        .get(&path.id)
        .ok_or_else(|| ApiError::not_found(format!("no calendar {:?}", path.id)))?;
    Ok(ok(CalendarGet {
        calendar: Some(spec.clone()),
        id: path.id,
        builtin: false,
    }))
}

/// The calendar ids.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarList {
    /// Ids, with the built-in `24x7`.
    calendars: Vec<String>,
}

/// `GET …/calendars`: the calendar ids.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/calendars", tag = "calendars",
    summary = "Calendar ids (with the built-in `24x7`).",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The ids.", body = CalendarList))
)]
pub(crate) async fn list_calendars(access: Authorized) -> Response {
    let calendars = access.tenant.calendars.ids().map(str::to_owned).collect();
    ok(CalendarList { calendars })
}

/// `POST …/calendars/{id}/deadline` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadlineRequest {
    /// From when.
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    /// Business minutes to add.
    minutes: u32,
}

/// A deadline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deadline {
    /// The calendar.
    calendar: String,
    /// From when.
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    /// Business minutes added.
    minutes: u32,
    /// When they are up.
    #[schema(value_type = String, format = DateTime)]
    due: Timestamp,
}

/// `POST …/calendars/{id}/deadline`: `{start, minutes}` → `{due}`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/calendars/{id}/deadline", tag = "calendars",
    summary = "`{start, minutes}` → `{due}` in business time.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath), request_body = DeadlineRequest,
    responses((status = 200, description = "The deadline.", body = Deadline))
)]
pub(crate) async fn deadline(
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(body): ApiJson<DeadlineRequest>,
) -> Result<Response, ApiError> {
    let calendar = access
        .tenant
        .calendars
        .get(&path.id)
        .map_err(|_| ApiError::not_found(format!("no calendar {:?}", path.id)))?;
    let due = calendar
        .add_business_minutes(body.start, body.minutes)
        .map_err(|e| ApiError::invalid("invalid_deadline", e.to_string()))?;
    Ok(ok(Deadline {
        calendar: path.id,
        start: body.start,
        minutes: body.minutes,
        due,
    }))
}
