//! Cron schedules: internal IT's admins set the desk's rhythm (a weekday 08:00 digest in the
//! desk's own time zone); every change is audited, and an expression is checked before it is
//! stored (it parses, it fires, it does not fire more often than allowed).

use axum::extract::State;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use redb::ReadableTable as _;
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{valid_id, write_with_tenant};
use super::{ApiError, ApiJson, ApiPath, AppState, Caller, created, ok, require};
use crate::schedules::{CronError, CronSpec, MAX_SCHEDULES, SCHEDULE_EVENTS, local};
use crate::service::audit;
use crate::store::records::{Role, ScheduleRecord};
use crate::store::{self, StoreError};

/// `PUT …/schedules/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScheduleInput {
    /// Unix cron (`0 8 * * 1-5`: weekdays at 08:00; `0`/`7` = Sunday), a shorthand
    /// (`@daily`, `@hourly`, …), or six fields with seconds first.
    cron: String,
    /// IANA time zone the expression is read in (`America/New_York`).
    timezone: String,
    /// What it sends as `schedule.fired`: `sla.digest` (at-risk and breached tickets per
    /// party) or `heartbeat`.
    event: String,
    /// Off keeps the schedule but stops it firing (default on).
    #[serde(default = "yes")]
    enabled: bool,
}

fn yes() -> bool {
    true
}

/// A schedule as the API shows it.
fn view(record: &ScheduleRecord) -> Value {
    let next_local = record.next.and_then(|next| {
        CronSpec::parse(&record.cron, &record.timezone)
            .ok()
            .map(|spec| local(&spec, next))
    });
    json!({
        "id": record.id,
        "cron": record.cron,
        "timezone": record.timezone,
        "event": record.event,
        "enabled": record.enabled,
        "next": record.next,
        "next_local": next_local,
        "last_scheduled_for": record.last_scheduled_for,
        "last_fired_at": record.last_fired_at,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
    })
}

/// `PUT …/schedules/{id}` (admin): creates or replaces a schedule.
pub(crate) async fn put(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<ScheduleInput>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    if !valid_id(&id) {
        return Err(ApiError::invalid(
            "invalid_id",
            "schedule id must be 1-64 characters of a-z, 0-9, '-', '_', '.'",
        ));
    }
    if !SCHEDULE_EVENTS.contains(&body.event.as_str()) {
        return Err(ApiError::invalid(
            "invalid_event",
            format!(
                "unknown schedule event {:?}; known: {}",
                body.event,
                SCHEDULE_EVENTS.join(", ")
            ),
        ));
    }
    let now = Timestamp::now();
    let min = SignedDuration::try_from(service.deliveries.min_schedule_interval())
        .unwrap_or(SignedDuration::MAX);
    let first = CronSpec::parse(&body.cron, &body.timezone)
        .and_then(|spec| spec.check(now, min))
        .map_err(|e| {
            let code = match e {
                CronError::TimeZone(_) => "invalid_timezone",
                CronError::TooFrequent { .. } => "too_frequent",
                _ => "invalid_cron",
            };
            ApiError::invalid(code, e.to_string())
        })?;
    let who = caller.0.id().to_owned();
    let (fresh, record) = write_with_tenant(&service, &t, {
        let id = id.clone();
        move |txn, tenant| {
            let key = store::tenant_key(&tenant.id, &id);
            let existing = store::get_in::<ScheduleRecord>(txn, store::SCHEDULES, &key)?;
            if existing.is_none() {
                let table = txn.open_table(store::SCHEDULES)?;
                let (from, to) = store::tenant_range(&tenant.id);
                if table.range(from.as_str()..to.as_str())?.count() >= MAX_SCHEDULES {
                    return Ok(Err(ApiError::conflict(
                        "too_many_schedules",
                        format!("a tenant may have at most {MAX_SCHEDULES} schedules"),
                    )));
                }
            }
            let fresh = existing.is_none();
            let mut record = existing.unwrap_or_else(|| ScheduleRecord {
                id: id.clone(),
                cron: String::new(),
                timezone: String::new(),
                event: String::new(),
                enabled: true,
                next: None,
                last_scheduled_for: None,
                last_fired_at: None,
                created_at: now,
                updated_at: now,
            });
            record.cron = body.cron;
            record.timezone = body.timezone;
            record.event = body.event;
            record.enabled = body.enabled;
            record.next = body.enabled.then_some(first);
            record.updated_at = now;
            store::put_in(txn, store::SCHEDULES, &key, &record)?;
            audit(
                txn,
                tenant,
                &who,
                "schedule.put",
                &format!("schedules/{id}"),
                None,
            )?;
            Ok(Ok((fresh, record)))
        }
    })
    .await??;
    service.schedules.poke();
    let answer = view(&record);
    Ok(if fresh { created(answer) } else { ok(answer) })
}

/// `GET …/schedules` (any role): every schedule with its next fire.
pub(crate) async fn list(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Viewer)?;
    let txn = service.store.read()?;
    let all: Vec<ScheduleRecord> = store::scan(&txn, store::SCHEDULES, &t)?;
    Ok(ok(
        json!({"schedules": all.iter().map(view).collect::<Vec<_>>()}),
    ))
}

/// `DELETE …/schedules/{id}` (admin): removes a schedule; a fire already queued is still
/// delivered.
pub(crate) async fn delete(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    let removed = write_with_tenant(&service, &t, {
        let id = id.clone();
        move |txn, tenant| -> Result<bool, StoreError> {
            let key = store::tenant_key(&tenant.id, &id);
            let removed = txn
                .open_table(store::SCHEDULES)?
                .remove(key.as_str())?
                .is_some();
            if removed {
                audit(
                    txn,
                    tenant,
                    &who,
                    "schedule.delete",
                    &format!("schedules/{id}"),
                    None,
                )?;
            }
            Ok(removed)
        }
    })
    .await?;
    if !removed {
        return Err(ApiError::not_found(format!("no schedule {id:?}")));
    }
    service.schedules.poke();
    Ok(ok(json!({"id": id, "deleted": true})))
}
