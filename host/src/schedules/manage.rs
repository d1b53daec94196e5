//! Schedule changes as internal IT's admins make them: an expression is checked before it is
//! stored (it parses in its time zone, it fires, it does not fire more often than allowed),
//! the change is audited in its transaction, and the runner is woken to take it into account.

use crate::store::Reader as _;
use jiff::{SignedDuration, Timestamp};

use super::{CronError, CronSpec, MAX_SCHEDULES, ScheduleEvent};
use crate::refusal::{Refusal, Result};
use crate::store::records::ScheduleRecord;
use crate::store::{self, Store, StoreError};
use crate::tenants::{TenantView, Tenants, audit, check_id};

/// What a `PUT` of a schedule asks for.
#[derive(Debug, Clone)]
pub struct ScheduleChange {
    /// The cron expression.
    pub cron: String,
    /// The IANA time zone it is read in.
    pub timezone: String,
    /// What it sends inside `schedule.fired` (`sla.digest`, `heartbeat`).
    pub event: String,
    /// Whether it fires.
    pub enabled: bool,
}

/// Creates or replaces schedule `id` as `who`: `(true, …)` when it is new. `min_interval` is
/// the shortest time allowed between two fires.
pub async fn put(
    tenants: &Tenants,
    view: &TenantView,
    who: &str,
    id: &str,
    change: ScheduleChange,
    min_interval: SignedDuration,
) -> Result<(bool, ScheduleRecord)> {
    check_id(id, "schedule id")?;
    ScheduleEvent::parse(&change.event)
        .map_err(|e| Refusal::invalid("invalid_event", format!("`event`: {e}")))?;
    let now = Timestamp::now();
    let first = CronSpec::parse(&change.cron, &change.timezone)
        .and_then(|spec| spec.check(now, min_interval))
        .map_err(|e| {
            let (code, field) = match e {
                CronError::TimeZone(_) => ("invalid_timezone", "timezone"),
                CronError::TooFrequent { .. } => ("too_frequent", "cron"),
                _ => ("invalid_cron", "cron"),
            };
            Refusal::invalid(code, format!("`{field}`: {e}"))
        })?;
    let (who, id) = (who.to_owned(), id.to_owned());
    tenants
        .write_with_tenant(&view.record.id, move |txn, tenant| {
            let key = store::tenant_key(&tenant.id, &id);
            let existing = store::get::<ScheduleRecord>(txn, store::SCHEDULES, &key)?;
            if existing.is_none() {
                let (from, to) = store::tenant_range(&tenant.id);
                let span = store::Span::between(&from, &to);
                if store::count(txn, store::SCHEDULES, span)? >= MAX_SCHEDULES {
                    return Ok(Err(Refusal::conflict(
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
            record.cron = change.cron;
            record.timezone = change.timezone;
            record.event = change.event;
            record.enabled = change.enabled;
            record.next = change.enabled.then_some(first);
            record.updated_at = now;
            store::put_in(txn, store::SCHEDULES, &key, &record)?;
            let target = format!("schedules/{id}");
            audit(txn, tenant, &who, "schedule.put", &target, None)?;
            Ok(Ok((fresh, record)))
        })
        .await
}

/// Every schedule of the tenant.
pub fn list(store: &Store, view: &TenantView) -> Result<Vec<ScheduleRecord>> {
    let txn = store.read()?;
    Ok(store::scan(&txn, store::SCHEDULES, &view.record.id)?)
}

/// Removes schedule `id` as `who` (a fire already queued is still delivered).
pub async fn delete(tenants: &Tenants, view: &TenantView, who: &str, id: &str) -> Result<()> {
    let (who, id) = (who.to_owned(), id.to_owned());
    tenants
        .write_with_tenant(
            &view.record.id,
            move |txn, tenant| -> Result<Result<(), Refusal>, StoreError> {
                let key = store::tenant_key(&tenant.id, &id);
                if txn.get_bytes(store::SCHEDULES, &key)?.is_none() {
                    return Ok(Err(Refusal::not_found(format!("no schedule {id:?}"))));
                }
                txn.delete(store::SCHEDULES, &key)?;
                let target = format!("schedules/{id}");
                audit(txn, tenant, &who, "schedule.delete", &target, None).map(Ok)
            },
        )
        .await
}
