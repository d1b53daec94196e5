//! Durable SLA timers: every pending escalation and breach instant is a row in the timers
//! table, keyed by its due instant, written in the same transaction as the ticket change that
//! planned it (so a pause moves it, a met target removes it, a priority change recomputes it).
//! The scheduler only ever looks at the first key: it sleeps until that instant, fires every
//! due row in one transaction — marking the ticket, queueing the webhook in the outbox and
//! deleting the row together — and after a crash or restart simply finds the overdue rows
//! first and fires them at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use crate::store::{Order, Reader, Span, Write};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use switchboard_rules::{CalendarSet, ClockState, Escalation, EscalationTrigger, Metric};
use tokio::sync::Notify;

use crate::background::{after_pass, bounded, nap};
use crate::board;
use crate::reports;
use crate::store::aggregates;
use crate::store::records::{FiredRecord, TicketRecord};
use crate::store::{self, Store, StoreError};
use crate::tenants::Tenants;
use crate::webhooks::{Dispatcher, EventType, Queued, emit};

/// Most timers fired in one transaction.
const FIRE_BATCH: usize = 512;

/// What fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimerKind {
    /// A step of the escalation plan (`sla.escalation`).
    Escalation,
    /// A target's due instant (`sla.breached`).
    Breach,
}

/// One pending timer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    /// Tenant id.
    pub tenant: String,
    /// Ticket id.
    pub ticket: String,
    /// Its name within the ticket (what [`FiredRecord::name`] remembers).
    pub name: String,
    /// Escalation or breach.
    pub kind: TimerKind,
    /// The clock.
    pub metric: Metric,
    /// The clock's run.
    pub run: u32,
    /// The escalation step (escalations only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// When it fires.
    pub due: Timestamp,
}

fn key(due: Timestamp, tenant: &str, ticket: &str, name: &str) -> String {
    format!(
        "{:013}/{tenant}/{ticket}/{name}",
        due.as_millisecond().max(0)
    )
}

/// Timers planned for a ticket, encoded (off the writer thread) and ready to write.
#[derive(Debug, Default)]
pub struct Planned {
    /// `(key, encoded timer)`.
    pub rows: Vec<(String, Vec<u8>)>,
    /// The earliest due instant among them.
    pub earliest: Option<Timestamp>,
}

impl Planned {
    /// The keys, to store on the ticket.
    pub fn keys(&self) -> Vec<String> {
        self.rows.iter().map(|(k, _)| k.clone()).collect()
    }
}

/// The timer row a ticket needs now: its next instant (the earliest escalation or target due
/// instant of its current clocks that has not fired yet). One row per ticket keeps intake
/// cheap; when it fires, the ticket's next instant is planned in the same transaction.
pub fn plan(
    record: &TicketRecord,
    tenant: &str,
    calendars: &CalendarSet,
    now: Timestamp,
) -> Planned {
    let mut all = plan_all(record, tenant, calendars, now);
    all.truncate(1);
    Planned {
        earliest: all.first().map(|(_, t)| t.due),
        rows: all
            .into_iter()
            .map(|(k, t)| (k, store::encode(&t)))
            .collect(),
    }
}

/// Every timer the ticket's clocks have not fired yet, earliest first.
fn plan_all(
    record: &TicketRecord,
    tenant: &str,
    calendars: &CalendarSet,
    now: Timestamp,
) -> Vec<(String, TimerRecord)> {
    let fired = |name: &str| record.fired.iter().any(|f| f.name == name);
    let mut out = Vec::new();
    let mut push = |name: String, kind, metric, run, step, due: Timestamp| {
        if !fired(&name) {
            let timer = TimerRecord {
                tenant: tenant.to_owned(),
                ticket: record.ticket.id.clone(),
                name,
                kind,
                metric,
                run,
                step,
                due,
            };
            out.push((key(due, tenant, &timer.ticket, &timer.name), timer));
        }
    };
    if let Ok(instants) = record
        .sla
        .escalations(&record.decision.escalations, calendars)
    {
        for i in instants {
            if let Some(at) = i.at {
                let name = escalation_name(&record.decision.escalations[i.index], i.run);
                push(
                    name,
                    TimerKind::Escalation,
                    i.metric,
                    i.run,
                    Some(i.index),
                    at,
                );
            }
        }
    }
    if let Ok(readings) = record.sla.readings(now, calendars) {
        for r in readings {
            let open = matches!(r.state, ClockState::Running | ClockState::Breached);
            if let (true, Some(due)) = (open, r.due.or(r.breached_at)) {
                let name = format!("breach/{}/{}", r.metric.as_str(), r.run);
                push(name, TimerKind::Breach, r.metric, r.run, None, due);
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The name of an escalation step's timer for one run of its clock. It names the step by
/// what it is (metric, trigger, label, notify), not by its place in the plan, so a re-route
/// that changes the plan neither suppresses a new step at a fired step's index nor fires a
/// step that stayed the same again.
pub fn escalation_name(step: &Escalation, run: u32) -> String {
    let digest = Sha256::digest(serde_json::to_vec(step).unwrap_or_default());
    format!("escalation/{}/{run}", hex::encode(&digest[..6]))
}

/// Replaces a ticket's timers inside `txn`: deletes `old` keys, writes `new` ones.
pub fn replace_in(txn: &Write<'_>, old: &[String], new: &Planned) -> Result<(), StoreError> {
    for k in old {
        txn.delete(store::TIMERS, k)?;
    }
    for (k, bytes) in &new.rows {
        txn.put_bytes(store::TIMERS, k, bytes)?;
    }
    Ok(())
}

/// Tickets re-planned per transaction by [`replan_tenant`].
const REPLAN_BATCH: usize = 500;

/// Re-plans the timers and the open-clock rows of every ticket of `tenant` that has any,
/// against the tenant's current calendars and at-risk percentage (after a calendar changed,
/// every deadline on it may have moved). Works
/// in small transactions; a ticket event racing with it retries on its own (it checks the
/// ticket's timers before it writes). Returns how many tickets' timers moved.
pub async fn replan_tenant(
    store: &Store,
    tenants: &Tenants,
    scheduler: &Scheduler,
    tenant: &str,
) -> Result<usize, StoreError> {
    // Reading every ticket of the tenant: off the async runtime.
    let (snapshot, t) = (store.clone(), tenant.to_owned());
    let keys = tokio::task::spawn_blocking(move || -> Result<Vec<String>, StoreError> {
        let txn = snapshot.read()?;
        let (from, to) = store::tenant_range(&t);
        let mut keys = Vec::new();
        let span = Span::between(&from, &to);
        txn.visit(
            store::TICKETS,
            span,
            Order::Ascending,
            usize::MAX,
            &mut |k, v| {
                let record: TicketRecord = store::decode(k, v)?;
                if !record.timers.is_empty() || record.board.is_some() {
                    keys.push(k.to_owned());
                }
                Ok(true)
            },
        )?;
        Ok(keys)
    })
    .await
    .map_err(|e| StoreError::Task(e.to_string()))??;
    let mut moved = 0;
    for chunk in keys.chunks(REPLAN_BATCH) {
        let Some(view) = tenants.get(tenant) else {
            break;
        };
        let (calendars, tenant_id, chunk) =
            (view.calendars.clone(), tenant.to_owned(), chunk.to_vec());
        let at_risk_percent = view.record.settings.at_risk_percent;
        let (n, earliest) = store
            .write(move |txn| {
                let now = Timestamp::now();
                let (mut n, mut earliest) = (0, None::<Timestamp>);
                for key in chunk {
                    let Some(mut record) = store::get::<TicketRecord>(txn, store::TICKETS, &key)?
                    else {
                        continue;
                    };
                    let planned = plan(&record, &tenant_id, &calendars, now);
                    let keys = planned.keys();
                    let row = board::planned(&record, &tenant_id, &calendars, at_risk_percent, now);
                    let row_key = row.as_ref().map(|(k, _)| k.clone());
                    let share = Some(reports::share(&record, &calendars, now));
                    // The row's instants may move with the calendar even when its key stays.
                    if keys == record.timers
                        && row.is_none()
                        && record.board.is_none()
                        && share == record.report
                    {
                        continue;
                    }
                    let moved = keys != record.timers;
                    replace_in(txn, &record.timers, &planned)?;
                    board::replace_in(txn, record.board.as_deref(), row.as_ref())?;
                    aggregates::apply(txn, &tenant_id, record.report.as_ref(), share.as_ref())?;
                    record.timers = keys;
                    record.board = row_key;
                    record.report = share;
                    store::put_in(txn, store::TICKETS, &key, &record)?;
                    if moved {
                        n += 1;
                        earliest = earliest.into_iter().chain(planned.earliest).min();
                    }
                }
                Ok((n, earliest))
            })
            .await?;
        scheduler.poke(earliest);
        moved += n;
    }
    Ok(moved)
}

/// The in-process scheduler of the timers table.
#[derive(Debug)]
pub struct Scheduler {
    wake: Notify,
    /// When the scheduler will next look (ms since the epoch); `i64::MAX` when idle.
    next_ms: AtomicI64,
}

impl Default for Scheduler {
    fn default() -> Self {
        Scheduler {
            wake: Notify::new(),
            next_ms: AtomicI64::new(0),
        }
    }
}

impl Scheduler {
    /// Tells the scheduler about new timers: it wakes only if one is due before it would
    /// have looked anyway (so ticket intake does not wake it for timers hours ahead).
    pub fn poke(&self, earliest: Option<Timestamp>) {
        let Some(due) = earliest else { return };
        let due = due.as_millisecond();
        if self.next_ms.fetch_min(due, Ordering::AcqRel) > due {
            self.wake.notify_one();
        }
    }

    /// Runs until `stop` turns true: fires due timers of `store` (reading the calendars of
    /// `tenants`, queueing deliveries on `deliveries`), then sleeps until the next one.
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
            let now = Timestamp::now();
            // While firing, every poke must wake us again (a timer committed meanwhile may be
            // one this pass does not see): with MAX stored, any poke notifies, and the stored
            // permit makes the select below return at once.
            self.next_ms.store(i64::MAX, Ordering::Release);
            let (next, wait) = after_pass(
                fire_due(&store, &tenants, &deliveries, now).await,
                "SLA timers",
            );
            let wait = bounded(wait, &store);
            let next_ms = next.map_or(i64::MAX, Timestamp::as_millisecond);
            // Shared: the next look is at most a poll away, so a poke for a timer due before
            // it need not wake us early (a timer due sooner still does).
            let next_ms = next_ms.min(
                now.as_millisecond()
                    .saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX)),
            );
            self.next_ms.fetch_min(next_ms, Ordering::AcqRel);
            nap(&self.wake, wait, &mut stop).await;
        }
    }
}

/// Fires every timer due at `now` (in batches), returning when the next one is due.
pub async fn fire_due(
    store: &Store,
    tenants: &Tenants,
    deliveries: &Dispatcher,
    now: Timestamp,
) -> Result<Option<Timestamp>, StoreError> {
    let upper = format!("{:013}~", now.as_millisecond());
    loop {
        // Every tenant's calendars, so the write below reads clocks without holding the
        // tenant views (the writer thread must never own the last handle of anything that
        // holds the store); every tenant's, since on a shared database the write may claim
        // other rows than a read here would see (another node took those).
        {
            let txn = store.read()?;
            let first = store::first_key(&txn, store::TIMERS)?;
            if first.as_deref().is_none_or(|k| k >= upper.as_str()) {
                // Nothing due: no write, just the next instant.
                return Ok(first.as_deref().and_then(due_of));
            }
        }
        let calendars: HashMap<String, Arc<CalendarSet>> = tenants
            .all()
            .into_iter()
            .map(|view| (view.record.id.clone(), view.calendars.clone()))
            .collect();
        let upper = upper.clone();
        let (queued, more, next) = store
            .write(move |txn| fire_batch(&calendars, txn, &upper, now))
            .await?;
        deliveries.enqueue(queued);
        if !more {
            return Ok(next);
        }
    }
}

/// One transaction's worth of due timers: each marks its ticket, queues its event and goes.
fn fire_batch(
    calendars: &HashMap<String, Arc<CalendarSet>>,
    txn: &Write<'_>,
    upper: &str,
    now: Timestamp,
) -> Result<(Vec<Queued>, bool, Option<Timestamp>), StoreError> {
    // Claimed: another node firing at the same time takes other rows.
    let due = txn.claim(store::TIMERS, Span::below(upper), FIRE_BATCH)?;
    let more = due.len() == FIRE_BATCH;
    let mut queued = Vec::new();
    for (k, bytes) in due {
        let timer: TimerRecord = store::decode(&k, &bytes)?;
        let Some(calendars) = calendars.get(&timer.tenant) else {
            // A row committed after the calendars were gathered: the next pass takes it.
            continue;
        };
        let ticket_key = store::tenant_key(&timer.tenant, &timer.ticket);
        if !txn.try_lock(store::TICKETS, &ticket_key)? {
            // Another node is changing the ticket (and may be waiting for this row): the
            // next pass takes it.
            continue;
        }
        txn.delete(store::TIMERS, &k)?;
        let Some(mut record) = store::get::<TicketRecord>(txn, store::TICKETS, &ticket_key)? else {
            continue;
        };
        if !record.timers.contains(&k) {
            continue; // Replaced by a later change of the ticket.
        }
        // Everything of the ticket due by now fires, in order; then its next row.
        for (_, t) in plan_all(&record, &timer.tenant, calendars, now) {
            if t.due > now {
                break;
            }
            queued.extend(fire_one(txn, &mut record, &t, calendars, now)?);
        }
        let next = plan(&record, &timer.tenant, calendars, now);
        replace_in(txn, &[], &next)?;
        record.timers = next.keys();
        let share = reports::share(&record, calendars, now);
        aggregates::apply(txn, &timer.tenant, record.report.as_ref(), Some(&share))?;
        record.report = Some(share);
        store::put_in(txn, store::TICKETS, &ticket_key, &record)?;
    }
    let next = first_due(txn)?;
    Ok((queued, more, next))
}

/// Marks `timer` fired on the ticket and queues its webhook event.
fn fire_one(
    txn: &Write<'_>,
    record: &mut TicketRecord,
    timer: &TimerRecord,
    calendars: &CalendarSet,
    now: Timestamp,
) -> Result<Vec<Queued>, StoreError> {
    record.fired.push(FiredRecord {
        name: timer.name.clone(),
        due: timer.due,
        at: now,
    });
    let reading = record
        .sla
        .reading(timer.metric, now, calendars)
        .ok()
        .flatten();
    let mut data = json!({
        "ticket": record.ticket.id,
        "metric": timer.metric,
        "run": timer.run,
        "due": reading.as_ref().and_then(|r| r.due.or(r.breached_at)).unwrap_or(timer.due),
        "elapsed_secs": reading.as_ref().map(|r| r.elapsed_secs),
        "percent_elapsed": reading.as_ref().map(|r| r.percent_elapsed),
        "queue": record.decision.queue,
        "party": record.decision.party,
        "priority": record.decision.priority,
    });
    let event = match timer.kind {
        TimerKind::Escalation => {
            let step = timer.step.and_then(|i| record.decision.escalations.get(i));
            if let Some(step) = step {
                data["label"] = json!(step.label);
                data["notify"] = json!(step.notify);
                data["threshold"] = json!(threshold(step.trigger));
            }
            EventType::SlaEscalation
        }
        TimerKind::Breach => EventType::SlaBreached,
    };
    emit(txn, &timer.tenant, event, data, now)
}

/// The due instant of the first timer in the table.
fn first_due(txn: &impl Reader) -> Result<Option<Timestamp>, StoreError> {
    Ok(store::first_key(txn, store::TIMERS)?
        .as_deref()
        .and_then(due_of))
}

/// The due instant in a [`store::TIMERS`] key.
fn due_of(key: &str) -> Option<Timestamp> {
    let ms: i64 = key.split('/').next()?.parse().ok()?;
    Timestamp::from_millisecond(ms).ok()
}

/// The trigger as receivers read it.
fn threshold(trigger: EscalationTrigger) -> serde_json::Value {
    match trigger {
        EscalationTrigger::PercentElapsed(p) => json!({"percent_elapsed": p}),
        EscalationTrigger::MinutesBeforeDue(m) => json!({"minutes_before_due": m}),
        EscalationTrigger::MinutesAfterDue(m) => json!({"minutes_after_due": m}),
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use serde_json::json;

    use super::*;
    use crate::test_support::{Fixture, input};

    #[tokio::test]
    async fn overdue_targets_fire_once_with_their_event_and_the_next_instant_is_planned() {
        let f = Fixture::new().await;
        let view = f.acme();
        let created = Timestamp::now() - SignedDuration::from_hours(1);
        // Built-in fallback at p1: first response 15 min (an hour overdue), resolution 4 h.
        let late = json!({"id": "OLD-1", "impact": 1, "urgency": 1, "created_at": created});
        f.tickets.create(&view, input(late)).await.unwrap();

        let now = Timestamp::now();
        let next = fire_due(&f.store, &f.tenants, &f.deliveries, now)
            .await
            .unwrap();
        let resolution_due = created + SignedDuration::from_mins(240);
        assert_eq!(
            next.map(|t| t.as_second()),
            Some(resolution_due.as_second())
        );
        let record = f.tickets.record(&view, "OLD-1").unwrap();
        let fired: Vec<&str> = record.fired.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(fired, ["breach/first_response/1"]);
        assert_eq!(
            record.timers.len(),
            1,
            "the resolution breach is the next row"
        );
        let outbox = f.outbox();
        assert_eq!(outbox.len(), 1);
        assert_eq!(outbox[0].event, "sla.breached");
        let body: serde_json::Value = serde_json::from_str(&outbox[0].body).unwrap();
        assert_eq!(body["data"]["ticket"], "OLD-1");
        assert_eq!(body["data"]["metric"], "first_response");

        // Another pass fires nothing again.
        fire_due(&f.store, &f.tenants, &f.deliveries, Timestamp::now())
            .await
            .unwrap();
        assert_eq!(f.outbox().len(), 1);
    }

    #[tokio::test]
    async fn a_met_target_cancels_its_timer() {
        let f = Fixture::new().await;
        let view = f.acme();
        let t = json!({"id": "T-2", "impact": 1, "urgency": 1});
        f.tickets.create(&view, input(t)).await.unwrap();
        let before = f.tickets.record(&view, "T-2").unwrap().timers;
        assert!(
            before[0].ends_with("/breach/first_response/1"),
            "{before:?}"
        );
        let responded = crate::tickets::EventInput::Responded { at: None };
        f.tickets.apply(&view, "T-2", responded, "k").await.unwrap();
        let after = f.tickets.record(&view, "T-2").unwrap().timers;
        assert!(after[0].ends_with("/breach/resolution/1"), "{after:?}");
        // The old row is gone from the table, the new one is there.
        let txn = f.store.read().unwrap();
        assert!(txn.get_bytes(store::TIMERS, &before[0]).unwrap().is_none());
        assert!(txn.get_bytes(store::TIMERS, &after[0]).unwrap().is_some());
    }
}
