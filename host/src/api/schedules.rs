//! Cron schedule routes: thin over [`crate::schedules::manage`], which checks an expression
//! before it is stored and audits every change.

use axum::extract::State;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, created, ok};
use super::params::{IdPath, TenantPath};
use super::{ApiError, AppState, ErrorBody};
use crate::schedules::manage::{self, ScheduleChange};
use crate::schedules::{CronSpec, ScheduleEvent, local};
use crate::store::records::ScheduleRecord;

/// `PUT …/schedules/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleInput {
    /// Unix cron (`0 8 * * 1-5`: weekdays at 08:00; `0`/`7` = Sunday), a shorthand
    /// (`@daily`, `@hourly`, …), or six fields with seconds first.
    cron: String,
    /// IANA time zone the expression is read in (`America/New_York`).
    timezone: String,
    /// What it sends inside `schedule.fired` (subscribe endpoints to `schedule.fired`):
    /// `sla.digest` (at-risk and breached tickets per party) or `heartbeat`.
    #[schema(value_type = ScheduleEvent)]
    event: String,
    /// Off keeps the schedule but stops it firing (default on).
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// A schedule as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleView {
    /// Its id.
    id: String,
    /// Its cron expression.
    cron: String,
    /// Its time zone.
    timezone: String,
    /// What it sends inside `schedule.fired`.
    event: String,
    /// Whether it fires.
    enabled: bool,
    /// Its next fire (UTC).
    #[schema(value_type = Option<String>, format = DateTime)]
    next: Option<Timestamp>,
    /// Its next fire on its own wall clock.
    next_local: Option<String>,
    /// The instant its last fire was meant for.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_scheduled_for: Option<Timestamp>,
    /// When it last fired.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_fired_at: Option<Timestamp>,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// When it was last changed.
    #[schema(value_type = String, format = DateTime)]
    updated_at: Timestamp,
}

impl ScheduleView {
    fn of(record: &ScheduleRecord) -> Self {
        let next_local = record.next.and_then(|next| {
            CronSpec::parse(&record.cron, &record.timezone)
                .ok()
                .map(|spec| local(&spec, next))
        });
        ScheduleView {
            id: record.id.clone(),
            cron: record.cron.clone(),
            timezone: record.timezone.clone(),
            event: record.event.clone(),
            enabled: record.enabled,
            next: record.next,
            next_local,
            last_scheduled_for: record.last_scheduled_for,
            last_fired_at: record.last_fired_at,
            created_at: record.created_at,
            updated_at: record.updated_at,
        }
    }
}

/// `PUT …/schedules/{id}`: creates or replaces a schedule.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/schedules/{id}", tag = "schedules",
    summary = "Create or replace a cron schedule `{cron, timezone, event: sla.digest|heartbeat, enabled?}`; fires `schedule.fired`.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath), request_body = ScheduleInput,
    responses(
        (status = 201, description = "Created.", body = ScheduleView),
        (status = 200, description = "Replaced.", body = ScheduleView),
        (status = 409, description = "The tenant has the most schedules it may have.", body = ErrorBody),
    )
)]
pub(crate) async fn put(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(body): ApiJson<ScheduleInput>,
) -> Result<Response, ApiError> {
    let min = SignedDuration::try_from(service.deliveries.min_schedule_interval())
        .unwrap_or(SignedDuration::MAX);
    let change = ScheduleChange {
        cron: body.cron,
        timezone: body.timezone,
        event: body.event,
        enabled: body.enabled,
    };
    let who = access.who();
    let (fresh, record) = manage::put(
        &service.tenants,
        &access.tenant,
        &who,
        &path.id,
        change,
        min,
    )
    .await?;
    service.schedules.poke();
    let answer = ScheduleView::of(&record);
    Ok(if fresh { created(answer) } else { ok(answer) })
}

/// The schedules of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleList {
    /// Every schedule with its next fire.
    schedules: Vec<ScheduleView>,
}

/// `GET …/schedules`: every schedule with its next fire.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/schedules", tag = "schedules",
    summary = "Schedules with their next fire (UTC and local).",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The schedules.", body = ScheduleList))
)]
pub(crate) async fn list(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    let all = manage::list(&service.store, &access.tenant)?;
    Ok(ok(ScheduleList {
        schedules: all.iter().map(ScheduleView::of).collect(),
    }))
}

/// A schedule removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ScheduleDeleted {
    /// Its id.
    id: String,
    /// Always true.
    deleted: bool,
}

/// `DELETE …/schedules/{id}`: removes a schedule; a fire already queued is still delivered.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/schedules/{id}", tag = "schedules",
    summary = "Remove a schedule.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath),
    responses((status = 200, description = "Removed.", body = ScheduleDeleted))
)]
pub(crate) async fn delete(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    let who = access.who();
    manage::delete(&service.tenants, &access.tenant, &who, &path.id).await?;
    service.schedules.poke();
    Ok(ok(ScheduleDeleted {
        id: path.id,
        deleted: true,
    }))
}
