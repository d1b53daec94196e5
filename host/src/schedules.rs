//! Cron schedules: the operating rhythm of a co-managed desk (a weekday 08:00 digest of the
//! tickets at risk and breached, per party, so the MSP and internal IT each see what is
//! theirs before the stand-up).
//!
//! Each schedule stores its next fire instant. A fire is one transaction that queues the
//! `schedule.fired` event in the outbox and moves the schedule on, so a fire is never sent
//! twice for one instant, and a crash before its commit only delays it. An admin's change
//! made while a fire is being built wins: that instant is skipped for the changed schedule.
//! A fire missed while the service was down happens once at start (a digest of now, marked
//! with the instant it was meant for); missed instants are not replayed one by one, since a
//! stack of stale digests helps nobody.

pub mod manage;

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use switchboard_rules::Party;
use tokio::sync::Notify;
use utoipa::ToSchema;

use crate::background::{after_pass, bounded, nap};
use crate::board::BoardStanding;
pub use crate::cron::{CronError, CronSpec};
use crate::reports::{self, GroupKey, Period, ReportRow};
use crate::store::records::{ScheduleRecord, TicketRecord};
use crate::store::{self, Store, StoreError};
use crate::tenants::{TenantView, Tenants};
use crate::tickets::DigestTicket;
use crate::webhooks::{Dispatcher, EventType, emit};

/// What a schedule sends inside its `schedule.fired` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum ScheduleEvent {
    /// The at-risk and breached tickets per party.
    #[serde(rename = "sla.digest")]
    SlaDigest,
    /// Nothing but the fire itself (for receivers that alert when it stops coming).
    #[serde(rename = "heartbeat")]
    Heartbeat,
}

impl ScheduleEvent {
    /// Every schedule event.
    pub const ALL: [ScheduleEvent; 2] = [ScheduleEvent::SlaDigest, ScheduleEvent::Heartbeat];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleEvent::SlaDigest => "sla.digest",
            ScheduleEvent::Heartbeat => "heartbeat",
        }
    }

    /// The schedule event named `name`, or a message naming the known ones.
    pub fn parse(name: &str) -> Result<ScheduleEvent, String> {
        ScheduleEvent::ALL
            .into_iter()
            .find(|e| e.as_str() == name)
            .ok_or_else(|| {
                let known = ScheduleEvent::ALL.map(ScheduleEvent::as_str).join(", ");
                format!(
                    "unknown schedule event {name:?}; known: {known} (each is delivered as `schedule.fired`)"
                )
            })
    }
}

/// Tickets listed per party and standing in a digest (the counts are always complete).
pub const DIGEST_LISTED: usize = 100;
/// Most schedules per tenant.
pub const MAX_SCHEDULES: usize = 50;

/// One party's part of a digest.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct PartyDigest {
    /// How many of its tickets are at risk.
    pub at_risk: usize,
    /// How many of its tickets are breached.
    pub breached: usize,
    /// Up to [`DIGEST_LISTED`] of the at-risk ones.
    pub at_risk_tickets: Vec<DigestTicket>,
    /// Up to [`DIGEST_LISTED`] of the breached ones.
    pub breached_tickets: Vec<DigestTicket>,
    /// The SLA report of the tickets created over the digest's week, for this party (as
    /// `GET …/reports/sla?group_by=party` gives it).
    pub week: ReportRow,
}

/// The digest a `sla.digest` schedule sends.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Digest {
    /// The tenant's at-risk threshold.
    pub at_risk_percent: u8,
    /// Tickets listed per party and standing, at most.
    pub listed_at_most: usize,
    /// The week the parties' `week` figures cover: the 7 days up to the day the digest
    /// fires, in the schedule's time zone.
    pub week: Period,
    /// Per party (`msp` and `internal` always present).
    pub parties: BTreeMap<String, PartyDigest>,
}

/// The data of a `schedule.fired` event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Fired {
    /// The schedule's id.
    pub schedule: String,
    /// What it sends.
    pub event: ScheduleEvent,
    /// Its cron expression.
    pub cron: String,
    /// Its time zone.
    pub timezone: String,
    /// The instant it was meant to fire.
    #[schema(value_type = String, format = DateTime)]
    pub scheduled_for: Timestamp,
    /// The same on the schedule's wall clock.
    pub scheduled_for_local: Option<String>,
    /// When it fired.
    #[schema(value_type = String, format = DateTime)]
    pub fired_at: Timestamp,
    /// The digest (`sla.digest` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<Digest>,
}

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
        store: Store,
        tenants: Arc<Tenants>,
        deliveries: Arc<Dispatcher>,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            if *stop.borrow() {
                break;
            }
            let pass = fire_due(&store, &tenants, &deliveries, Timestamp::now()).await;
            let (_, wait) = after_pass(pass, "schedules");
            // A poke while firing leaves a permit, so no change is slept through.
            nap(&self.wake, bounded(wait, &store), &mut stop).await;
        }
    }
}

/// Fires every schedule due at `now`, returning when the next one is due.
pub async fn fire_due(
    store: &Store,
    tenants: &Tenants,
    deliveries: &Dispatcher,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let all: Vec<(String, ScheduleRecord)> = {
        let txn = store.read()?;
        let all = store::decoded(
            &txn,
            store::SCHEDULES,
            store::Span::ALL,
            store::Order::Ascending,
            usize::MAX,
        )?;
        all.into_iter()
            .map(|(k, v)| (k.split('/').next().unwrap_or_default().to_owned(), v))
            .collect()
    };
    let mut earliest: Option<Timestamp> = None;
    for (tenant, schedule) in all {
        let next = match schedule.next {
            Some(due) if due <= now => {
                match fire(store, tenants, deliveries, &tenant, &schedule, due, now).await {
                    Ok(next) => next,
                    Err(e) => {
                        // This schedule tries again shortly; the others go on.
                        tracing::error!(tenant, schedule = %schedule.id, error = %e, "firing a schedule failed");
                        Some(now + jiff::SignedDuration::from_secs(5))
                    }
                }
            }
            other => other,
        };
        earliest = earliest.into_iter().chain(next).min();
    }
    Ok(earliest)
}

/// Fires one schedule for its instant `due`, returning its next instant.
async fn fire(
    store: &Store,
    tenants: &Tenants,
    deliveries: &Dispatcher,
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
    let event = ScheduleEvent::parse(&schedule.event).unwrap_or(ScheduleEvent::Heartbeat);
    let mut fired = Fired {
        schedule: schedule.id.clone(),
        event,
        cron: schedule.cron.clone(),
        timezone: schedule.timezone.clone(),
        scheduled_for: due,
        scheduled_for_local: spec.as_ref().map(|s| local(s, due)),
        fired_at: now,
        digest: None,
    };
    if let (ScheduleEvent::SlaDigest, Some(view)) = (event, tenants.get(tenant)) {
        let store = store.clone();
        let zone = spec
            .as_ref()
            .map_or(TimeZone::UTC, |s| s.time_zone().clone());
        let tz = schedule.timezone.clone();
        fired.digest = Some(
            tokio::task::spawn_blocking(move || digest(&store, &view, now, &zone, &tz))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??,
        );
    }
    let data = serde_json::to_value(&fired).map_err(|e| StoreError::Corrupt {
        key: schedule.id.clone(),
        error: e.to_string(),
    })?;
    let key = store::tenant_key(tenant, &schedule.id);
    let tenant_id = tenant.to_owned();
    let expected = schedule.updated_at;
    let (queued, next) = store
        .write(move |txn| {
            let Some(mut record) = store::get::<ScheduleRecord>(txn, store::SCHEDULES, &key)?
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
            let queued = emit(txn, &tenant_id, EventType::ScheduleFired, data, now)?;
            Ok((queued, record.next))
        })
        .await?;
    deliveries.enqueue(queued);
    Ok(next)
}

/// `at` on the schedule's wall clock, RFC 3339 with its offset.
pub fn local(spec: &CronSpec, at: Timestamp) -> String {
    let offset = spec.time_zone().to_offset(at);
    at.display_with_offset(offset).to_string()
}

/// The tenant's at-risk and breached tickets, per party, at `now`, with each party's report
/// for the week up to `now`'s day in `zone` (named `tz`).
pub fn digest(
    store: &Store,
    view: &TenantView,
    now: Timestamp,
    zone: &TimeZone,
    tz: &str,
) -> Result<Digest, StoreError> {
    let mut parties: BTreeMap<String, PartyDigest> = BTreeMap::new();
    for party in [Party::Msp, Party::Internal] {
        parties.insert(party.as_str().to_owned(), PartyDigest::default());
    }
    let week = Period::week_to(now, zone, tz).map_err(|e| StoreError::Task(e.message))?;
    let report = reports::report(store, &view.record.id, &week, &[GroupKey::Party])?;
    for row in report.rows {
        let Some(party) = row.party else { continue };
        parties.entry(party.as_str().to_owned()).or_default().week = row;
    }
    let txn = store.read()?;
    for row in crate::board::all(store, &view.record.id)? {
        let s = match row.standing(None, now) {
            Some(s @ (BoardStanding::AtRisk | BoardStanding::Breached)) => s,
            _ => continue,
        };
        let entry = parties.entry(row.party.as_str().to_owned()).or_default();
        let (count, listed) = match s {
            BoardStanding::Breached => (&mut entry.breached, &mut entry.breached_tickets),
            _ => (&mut entry.at_risk, &mut entry.at_risk_tickets),
        };
        *count += 1;
        if listed.len() < DIGEST_LISTED {
            let key = store::tenant_key(&view.record.id, &row.ticket);
            if let Some(record) = store::get::<TicketRecord>(&txn, store::TICKETS, &key)? {
                listed.push(DigestTicket::of(&record, view, now));
            }
        }
    }
    Ok(Digest {
        at_risk_percent: view.record.settings.at_risk_percent,
        listed_at_most: DIGEST_LISTED,
        week,
        parties,
    })
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use serde_json::json;

    use super::*;
    use crate::test_support::{Fixture, input};

    #[tokio::test]
    async fn a_due_digest_fires_once_with_the_board_per_party_and_moves_on() {
        let f = Fixture::new().await;
        let view = f.acme();
        let two_hours_ago = Timestamp::now() - SignedDuration::from_hours(2);
        let late = json!({"id": "LATE", "impact": 1, "urgency": 1, "created_at": two_hours_ago});
        f.tickets.create(&view, input(late)).await.unwrap();
        // Created before the digest's week: on no figure of it.
        let old = Timestamp::now() - SignedDuration::from_hours(24 * 10);
        let old = json!({"id": "OLD", "impact": 3, "urgency": 3, "created_at": old});
        f.tickets.create(&view, input(old)).await.unwrap();
        let resolved = crate::tickets::EventInput::Resolved { at: None };
        f.tickets.apply(&view, "OLD", resolved, "k").await.unwrap();
        let due = Timestamp::now() - SignedDuration::from_mins(1);
        let schedule = ScheduleRecord {
            id: "digest".into(),
            cron: "0 8 * * 1-5".into(),
            timezone: "America/New_York".into(),
            event: "sla.digest".into(),
            enabled: true,
            next: Some(due),
            last_scheduled_for: None,
            last_fired_at: None,
            created_at: due,
            updated_at: due,
        };
        let key = store::tenant_key("acme", "digest");
        f.store
            .write(move |txn| store::put_in(txn, store::SCHEDULES, &key, &schedule))
            .await
            .unwrap();

        let now = Timestamp::now();
        let next = fire_due(&f.store, &f.tenants, &f.deliveries, now)
            .await
            .unwrap();
        assert!(next.is_some_and(|n| n > now), "{next:?}");
        let fired: Vec<_> = f
            .outbox()
            .into_iter()
            .filter(|d| d.event == "schedule.fired")
            .collect();
        assert_eq!(fired.len(), 1);
        let body: serde_json::Value = serde_json::from_str(&fired[0].body).unwrap();
        let data = &body["data"];
        assert_eq!(data["event"], "sla.digest");
        assert_eq!(data["scheduled_for"], json!(due));
        assert_eq!(data["digest"]["parties"]["msp"]["breached"], 1);
        assert_eq!(
            data["digest"]["parties"]["msp"]["breached_tickets"][0]["id"],
            "LATE"
        );
        assert_eq!(data["digest"]["parties"]["internal"]["breached"], 0);
        // The week's report per party: LATE's first response breached, its resolution runs.
        let week = &data["digest"]["parties"]["msp"]["week"];
        let figures = [&week["tickets"], &week["breached"], &week["running"]];
        assert_eq!(figures, [&json!(1), &json!(1), &json!(1)], "{week}");
        assert_eq!(week["compliance_percent"], json!(0.0));
        assert_eq!(data["digest"]["parties"]["internal"]["week"]["tickets"], 0);
        assert_eq!(data["digest"]["week"]["tz"], "America/New_York");

        let txn = f.store.read().unwrap();
        let key = store::tenant_key("acme", "digest");
        let stored: ScheduleRecord = store::get(&txn, store::SCHEDULES, &key).unwrap().unwrap();
        assert_eq!(stored.last_scheduled_for, Some(due));
        assert_eq!(stored.next, next);
        drop(txn);
        // Not due any more: a second pass sends nothing.
        fire_due(&f.store, &f.tenants, &f.deliveries, Timestamp::now())
            .await
            .unwrap();
        let count = f
            .outbox()
            .iter()
            .filter(|d| d.event == "schedule.fired")
            .count();
        assert_eq!(count, 1);
    }

    #[test]
    fn schedule_events_parse_and_name_the_known_ones() {
        assert_eq!(
            ScheduleEvent::parse("heartbeat"),
            Ok(ScheduleEvent::Heartbeat)
        );
        let e = ScheduleEvent::parse("sla.breached").unwrap_err();
        assert!(e.contains("sla.digest, heartbeat"), "{e}");
    }
}
