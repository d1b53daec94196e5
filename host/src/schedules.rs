//! Cron schedules: the operating rhythm of a co-managed desk (a weekday 08:00 digest of the
//! tickets at risk and breached, per party, so the MSP and internal IT each see what is
//! theirs before the stand-up).
//!
//! Each schedule stores its next fire instant. A fire is one transaction that queues the
//! `schedule.fired` event in the outbox and moves the schedule on, so a fire is never sent
//! twice for one instant, and a crash before its commit only delays it. An admin's change
//! made while a fire is being built wins: that instant is skipped for the changed schedule. A fire missed while the service was down happens once at
//! start (a digest of now, marked with the instant it was meant for); missed instants are not
//! replayed one by one, since a stack of stale digests helps nobody.

pub mod cron;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use redb::ReadableTable as _;
use serde_json::{Value, json};
use switchboard_rules::Party;
use tokio::sync::Notify;

pub use self::cron::{CronError, CronSpec};
use crate::api::tickets::{Standing, sla_view, standing};
use crate::service::{Service, TenantView};
use crate::store::records::{ScheduleRecord, TicketRecord};
use crate::store::{self, StoreError};
use crate::webhooks::emit;

/// What a schedule may produce: a digest of the SLA board per party, or a bare heartbeat
/// (for receivers that alert when it stops coming).
pub const SCHEDULE_EVENTS: &[&str] = &["sla.digest", "heartbeat"];
/// Tickets listed per party and standing in a digest (the counts are always complete).
pub const DIGEST_LISTED: usize = 100;
/// Most schedules per tenant.
pub const MAX_SCHEDULES: usize = 50;

/// The in-process runner of the schedules table.
#[derive(Debug, Default)]
pub struct Runner {
    wake: Notify,
}

impl Runner {
    /// Tells the runner that a schedule changed.
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    /// Runs until `stop` turns true: fires due schedules, then sleeps until the next one.
    pub async fn run(
        self: Arc<Self>,
        service: Arc<Service>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                break;
            }
            let pass = fire_due(&service, Timestamp::now()).await;
            let (_, wait) = crate::timers::after_pass(pass, "schedules");
            // A poke while firing leaves a permit, so no change is slept through.
            crate::timers::nap(&self.wake, wait, &mut stop).await;
        }
    }
}

/// Fires every schedule due at `now`, returning when the next one is due.
async fn fire_due(service: &Arc<Service>, now: Timestamp) -> Result<Option<Timestamp>, StoreError> {
    let all: Vec<(String, ScheduleRecord)> = {
        let txn = service.store.read()?;
        let table = txn.open_table(store::SCHEDULES)?;
        let mut all = Vec::new();
        for entry in table.iter()? {
            let (k, v) = entry?;
            let tenant = k.value().split('/').next().unwrap_or_default().to_owned();
            all.push((tenant, store::decode(k.value(), v.value())?));
        }
        all
    };
    let mut earliest: Option<Timestamp> = None;
    for (tenant, schedule) in all {
        let next = match schedule.next {
            Some(due) if due <= now => match fire(service, &tenant, &schedule, due, now).await {
                Ok(next) => next,
                Err(e) => {
                    // This schedule tries again shortly; the others go on.
                    tracing::error!(tenant, schedule = %schedule.id, error = %e, "firing a schedule failed");
                    Some(now + jiff::SignedDuration::from_secs(5))
                }
            },
            other => other,
        };
        earliest = earliest.into_iter().chain(next).min();
    }
    Ok(earliest)
}

/// Fires one schedule for its instant `due`, returning its next instant.
async fn fire(
    service: &Arc<Service>,
    tenant: &str,
    schedule: &ScheduleRecord,
    due: Timestamp,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let spec = match CronSpec::parse(&schedule.cron, &schedule.timezone) {
        Ok(spec) => Some(spec),
        Err(e) => {
            tracing::error!(tenant, schedule = %schedule.id, error = %e, "stored schedule no longer parses; it stops");
            None
        }
    };
    let mut data = json!({
        "schedule": schedule.id,
        "event": schedule.event,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "scheduled_for": due,
        "scheduled_for_local": spec.as_ref().map(|s| local(s, due)),
        "fired_at": now,
    });
    if let (true, Some(view)) = (schedule.event == "sla.digest", service.tenant(tenant)) {
        let service = service.clone();
        data["digest"] = tokio::task::spawn_blocking(move || digest(&service, &view, now))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))??;
    }
    let key = store::tenant_key(tenant, &schedule.id);
    let tenant_id = tenant.to_owned();
    let expected = schedule.updated_at;
    let (queued, next) = service
        .store
        .write(move |txn| {
            let Some(mut record) = store::get_in::<ScheduleRecord>(txn, store::SCHEDULES, &key)?
            else {
                return Ok((Vec::new(), None));
            };
            if record.updated_at != expected || record.next != Some(due) {
                // Changed by an admin meanwhile: the changed record stands.
                return Ok((Vec::new(), record.next));
            }
            record.next = spec.as_ref().and_then(|s| s.next_after(now));
            record.last_scheduled_for = Some(due);
            record.last_fired_at = Some(now);
            store::put_in(txn, store::SCHEDULES, &key, &record)?;
            let queued = emit(txn, &tenant_id, "schedule.fired", data, now)?;
            Ok((queued, record.next))
        })
        .await?;
    service.deliveries.enqueue(queued);
    Ok(next)
}

/// `due` on the schedule's wall clock, RFC 3339 with its offset.
pub fn local(spec: &CronSpec, at: Timestamp) -> String {
    let offset = spec.time_zone().to_offset(at);
    at.display_with_offset(offset).to_string()
}

/// The tenant's at-risk and breached tickets, per party.
fn digest(service: &Service, view: &TenantView, now: Timestamp) -> Result<Value, StoreError> {
    let txn = service.store.read()?;
    let records: Vec<TicketRecord> = store::scan(&txn, store::TICKETS, &view.record.id)?;
    let mut parties: BTreeMap<&str, PartyDigest> = BTreeMap::new();
    for party in [Party::Msp, Party::Internal] {
        parties.insert(party_name(party), PartyDigest::default());
    }
    for record in &records {
        let Some(s @ (Standing::AtRisk | Standing::Breached)) = standing(record, view, now) else {
            continue;
        };
        let entry = parties
            .entry(party_name(record.decision.party))
            .or_default();
        let (count, listed) = match s {
            Standing::Breached => (&mut entry.breached, &mut entry.breached_tickets),
            _ => (&mut entry.at_risk, &mut entry.at_risk_tickets),
        };
        *count += 1;
        if listed.len() < DIGEST_LISTED {
            listed.push(json!({
                "id": record.ticket.id,
                "subject": record.ticket.subject,
                "queue": record.decision.queue,
                "tier": record.decision.tier,
                "priority": record.decision.priority,
                "status": record.ticket.status,
                "sla": sla_view(record, view, now),
            }));
        }
    }
    let parties: BTreeMap<&str, Value> = parties
        .into_iter()
        .map(|(name, d)| {
            (
                name,
                json!({
                    "at_risk": d.at_risk,
                    "breached": d.breached,
                    "at_risk_tickets": d.at_risk_tickets,
                    "breached_tickets": d.breached_tickets,
                }),
            )
        })
        .collect();
    Ok(json!({
        "at_risk_percent": view.record.settings.at_risk_percent,
        "listed_at_most": DIGEST_LISTED,
        "parties": parties,
    }))
}

#[derive(Default)]
struct PartyDigest {
    at_risk: usize,
    breached: usize,
    at_risk_tickets: Vec<Value>,
    breached_tickets: Vec<Value>,
}

fn party_name(party: Party) -> &'static str {
    match party {
        Party::Msp => "msp",
        Party::Internal => "internal",
        Party::Vendor => "vendor",
    }
}
