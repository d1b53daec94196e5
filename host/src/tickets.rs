//! Tickets: creation routes through the tenant's active rule (or its fallback decision when
//! the rule fails or none is active — the ticket is stored either way, with the error), starts
//! the SLA clocks, plans the ticket's next timer and queues `rule.failed`, all in the ticket's
//! one transaction, and answers only once it is durable. Events move the clocks (re-running
//! the rule when routing inputs change) under an optimistic check; reads and the SLA board
//! compute every figure at the instant of the request.

pub mod events;
pub mod view;

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{Value, json};
use switchboard_rules::{
    Decision, EventKind, SlaClocks, Ticket, TicketEvent, TicketInput, builtin_fallback,
};

pub use self::events::{EventInput, MAX_CLOCK_SKEW, TicketChanges, instant_at_most_now};
pub use self::view::{
    ClockView, DigestTicket, EscalationView, EscalationsView, TicketSummary, TicketView,
};
use crate::board;
use crate::metrics::Metrics;
use crate::refusal::{Refusal, Result};
use crate::reports;
use crate::runtime::{EvalContext, Runtime};
use crate::store::aggregates;
use crate::store::records::{Handoff, Holder, RuleFailure, RuleOutcome, TicketRecord};
use crate::store::{self, Store, StoreError};
use crate::tenants::TenantView;
use crate::timers::{self, Scheduler};
use crate::webhooks::{Dispatcher, EventType, emit};

/// How many times an event is retried when the ticket changed under it.
const EVENT_RETRIES: usize = 5;
/// The board's page size when none is asked for, and the largest it may be.
pub const BOARD_LIMIT: (usize, usize) = (100, 1000);

/// The ticket operations, with what they need: the store, the rule runtime, the metrics, and
/// the two background loops a ticket change wakes (deliveries and timers).
#[derive(Debug, Clone)]
pub struct Tickets {
    store: Store,
    runtime: Arc<Runtime>,
    metrics: Arc<Metrics>,
    deliveries: Arc<Dispatcher>,
    timers: Arc<Scheduler>,
}

/// The decision for `ticket` when its rule cannot give one: the tenant's own fallback when it
/// still validates (its calendars may have changed since), else the built-in one.
pub fn fallback(view: &TenantView, ticket: &Ticket) -> Decision {
    match &view.record.settings.fallback {
        Some(d) if d.validate(|id| view.calendars.contains(id)).is_ok() => d.clone(),
        _ => builtin_fallback(ticket),
    }
}

/// The `rule.failed` event data for a ticket whose rule failed.
fn rule_failed(record: &TicketRecord) -> Option<Value> {
    let error = record.rule.error.as_ref()?;
    Some(json!({
        "ticket": record.ticket.id,
        "rule_version": record.rule.version,
        "kind": error.kind,
        "message": error.message,
        "fallback": record.decision,
    }))
}

/// The open-clock row `record` should have (see [`crate::board`]).
fn board_row(
    record: &TicketRecord,
    view: &TenantView,
    now: Timestamp,
) -> Option<(String, Vec<u8>)> {
    board::planned(
        record,
        &view.record.id,
        &view.calendars,
        view.record.settings.at_risk_percent,
        now,
    )
}

/// Applies a decision's routing to the ticket.
fn apply_routing(ticket: &mut Ticket, decision: &Decision) {
    ticket.queue = Some(decision.queue.clone());
    ticket.party = Some(decision.party);
    ticket.priority = Some(decision.priority);
    for tag in &decision.tags {
        if !ticket.tags.contains(tag) {
            ticket.tags.push(tag.clone());
        }
    }
}

impl Tickets {
    /// The ticket operations over these parts.
    pub fn new(
        store: Store,
        runtime: Arc<Runtime>,
        metrics: Arc<Metrics>,
        deliveries: Arc<Dispatcher>,
        timers: Arc<Scheduler>,
    ) -> Self {
        Tickets {
            store,
            runtime,
            metrics,
            deliveries,
            timers,
        }
    }

    /// Evaluates the tenant's active rule on a blocking thread and falls back when it fails.
    pub async fn route(&self, view: &TenantView, event: TicketEvent) -> (Decision, RuleOutcome) {
        tracing::Span::current().record("ticket", event.ticket.id.as_str());
        let fell_back = |version, fuel, error| {
            self.metrics.fallback();
            RuleOutcome {
                version,
                fuel,
                fallback: true,
                error,
            }
        };
        let Some((version, module)) = view.active.clone() else {
            return (fallback(view, &event.ticket), fell_back(None, 0, None));
        };
        tracing::Span::current().record("rule_version", version);
        let ctx = EvalContext {
            tenant: view.record.id.clone(),
            version: version.to_string(),
            config: view.config.clone(),
            calendars: view.calendars.clone(),
            limits: *view.record.settings.rule_limits().get(module.toolchain()),
        };
        let runtime = self.runtime.clone();
        let event = Arc::new(event);
        let task_event = event.clone();
        let slot = runtime.slot(&ctx.tenant).await;
        let joined = tokio::task::spawn_blocking(move || {
            let eval = runtime.evaluate(&module, &ctx, &task_event);
            drop(slot);
            eval
        })
        .await;
        let eval = match joined {
            Ok(eval) => eval,
            Err(e) => {
                tracing::error!(error = %e, "evaluation task failed");
                let error = RuleFailure {
                    kind: "host_error".into(),
                    message: "the evaluation task failed".into(),
                };
                let outcome = fell_back(Some(version), 0, Some(error));
                return (fallback(view, &event.ticket), outcome);
            }
        };
        let failure_kind = eval.outcome.as_ref().err().map(|e| e.failure.kind());
        self.metrics
            .evaluation(eval.elapsed, eval.fuel_used, failure_kind);
        match eval.outcome {
            Ok(decision) => (
                decision,
                RuleOutcome {
                    version: Some(version),
                    fuel: eval.fuel_used,
                    fallback: false,
                    error: None,
                },
            ),
            Err(e) => {
                tracing::warn!(error = %e, "rule failed; fallback applied");
                let error = RuleFailure {
                    kind: e.failure.kind().to_owned(),
                    message: e.to_string(),
                };
                let outcome = fell_back(Some(version), eval.fuel_used, Some(error));
                (fallback(view, &event.ticket), outcome)
            }
        }
    }

    /// Creates a ticket (idempotent on its external id): `(true, …)` when it is new, `(false,
    /// the stored one)` when the id exists.
    pub async fn create(
        &self,
        view: &TenantView,
        mut input: TicketInput,
    ) -> Result<(bool, TicketSummary)> {
        let now = Timestamp::now();
        let t = view.record.id.clone();
        input.created_at = Some(instant_at_most_now(input.created_at, now, "created_at")?);
        let mut ticket = input
            .into_ticket(now)
            .map_err(|e| Refusal::invalid("invalid_ticket", e.to_string()))?;
        let key = store::tenant_key(&t, &ticket.id);
        // No read-before-route: the commit below checks for the id atomically and answers a
        // repeated post with the stored ticket; a repeat only costs one wasted evaluation,
        // while a read here would cost every new ticket a read transaction.
        let routed_on = TicketEvent::created(ticket.clone());
        let (decision, outcome) = self.route(view, routed_on.clone()).await;
        apply_routing(&mut ticket, &decision);
        let sla = SlaClocks::start(
            &decision.sla,
            ticket.created_at,
            &ticket.status,
            &view.record.settings.paused_statuses,
        );
        let mut record = TicketRecord {
            ticket,
            decision,
            rule: outcome,
            sla,
            events: Vec::new(),
            timers: Vec::new(),
            board: None,
            fired: Vec::new(),
            handoffs: Vec::new(),
            routed_on: Some(routed_on),
            report: None,
        };
        let by_creation = store::created_key(&t, record.ticket.created_at, &record.ticket.id);
        let planned = timers::plan(&record, &t, &view.calendars, now);
        record.timers = planned.keys();
        let row = board_row(&record, view, now);
        record.board = row.as_ref().map(|(k, _)| k.clone());
        record.report = Some(reports::share(&record, &view.calendars, now));
        let earliest = planned.earliest;
        // Encoded here, on the request's task: the writer thread serves every request.
        let bytes = store::encode(&record);
        let (fresh, record, queued) = self
            .store
            .write(move |txn| {
                if let Some(existing) = store::get::<TicketRecord>(txn, store::TICKETS, &key)? {
                    return Ok((false, existing, Vec::new()));
                }
                txn.put_bytes(store::TICKETS, &key, &bytes)?;
                txn.put_bytes(store::TICKETS_BY_CREATION, &by_creation, &[])?;
                timers::replace_in(txn, &[], &planned)?;
                board::replace_in(txn, None, row.as_ref())?;
                aggregates::apply(txn, &t, None, record.report.as_ref())?;
                let queued = match rule_failed(&record) {
                    Some(data) => emit(txn, &t, EventType::RuleFailed, data, now)?,
                    None => Vec::new(),
                };
                Ok((true, record, queued))
            })
            .await?;
        self.deliveries.enqueue(queued);
        if fresh {
            self.timers.poke(earliest);
        }
        Ok((fresh, TicketSummary::of(&record, view, now)))
    }

    /// The stored ticket `id`.
    pub fn record(&self, view: &TenantView, id: &str) -> Result<TicketRecord> {
        let txn = self.store.read()?;
        let key = store::tenant_key(&view.record.id, id);
        Ok(store::get(&txn, store::TICKETS, &key)?
            .ok_or_else(|| Refusal::not_found(format!("no ticket {id:?}")))?)
    }

    /// Ticket `id` in full, at the instant of the call.
    pub fn read(&self, view: &TenantView, id: &str) -> Result<TicketView> {
        let record = self.record(view, id)?;
        Ok(TicketView::of(&record, view, Timestamp::now()))
    }

    /// Applies an event posted by `by` to ticket `id`, retrying when the ticket changed
    /// under it (a timer fired, another event landed).
    pub async fn apply(
        &self,
        view: &TenantView,
        id: &str,
        input: EventInput,
        by: &str,
    ) -> Result<TicketView> {
        let t = view.record.id.clone();
        let key = store::tenant_key(&t, id);
        for _ in 0..EVENT_RETRIES {
            let current = self.record(view, id)?;
            let seen = current.events.len();
            let old_timers = current.timers.clone();
            let old_row = current.board.clone();
            let old_share = current.report.clone();
            let (mut next, rerouted) = self.next_state(view, current, input.clone(), by).await?;
            let failed = if rerouted { rule_failed(&next) } else { None };
            let now = Timestamp::now();
            let planned = timers::plan(&next, &t, &view.calendars, now);
            next.timers = planned.keys();
            let row = board_row(&next, view, now);
            next.board = row.as_ref().map(|(k, _)| k.clone());
            next.report = Some(reports::share(&next, &view.calendars, now));
            let new_share = next.report.clone();
            let earliest = planned.earliest;
            let bytes = store::encode(&next);
            let (key, t) = (key.clone(), t.clone());
            let written = self
                .store
                .write(move |txn| {
                    let Some(now) = store::get::<TicketRecord>(txn, store::TICKETS, &key)? else {
                        return Ok(None);
                    };
                    if now.events.len() != seen
                        || now.timers != old_timers
                        || now.board != old_row
                        || now.report != old_share
                    {
                        return Ok(None);
                    }
                    txn.put_bytes(store::TICKETS, &key, &bytes)?;
                    timers::replace_in(txn, &old_timers, &planned)?;
                    board::replace_in(txn, old_row.as_deref(), row.as_ref())?;
                    aggregates::apply(txn, &t, old_share.as_ref(), new_share.as_ref())?;
                    let queued = match failed {
                        Some(data) => emit(txn, &t, EventType::RuleFailed, data, Timestamp::now())?,
                        None => Vec::new(),
                    };
                    Ok(Some(queued))
                })
                .await?;
            if let Some(queued) = written {
                self.deliveries.enqueue(queued);
                self.timers.poke(earliest);
                return Ok(TicketView::of(&next, view, Timestamp::now()));
            }
        }
        Err(Refusal::conflict("busy_ticket", "the ticket kept changing; retry the event").into())
    }

    /// The ticket after `input`: SLA clocks moved, and for routing changes the rule re-run
    /// (the flag says whether it was).
    async fn next_state(
        &self,
        view: &TenantView,
        mut record: TicketRecord,
        input: EventInput,
        by: &str,
    ) -> Result<(TicketRecord, bool)> {
        let now = Timestamp::now();
        let paused = &view.record.settings.paused_statuses;
        let applied = events::apply(&mut record, input, paused, by, now)?;
        let rerouted = applied.reroute.is_some();
        if let Some(changes) = applied.reroute {
            let event = TicketEvent {
                kind: EventKind::Updated(changes),
                ticket: record.ticket.clone(),
                at: applied.at,
            };
            let (decision, outcome) = self.route(view, event.clone()).await;
            record.routed_on = Some(event);
            record
                .sla
                .change_targets(&decision.sla, applied.at)
                .map_err(|e| Refusal::conflict("out_of_order", e.to_string()))?;
            let (from, to) = (Holder::of(&record.decision), Holder::of(&decision));
            if from != to {
                let by = "rule".to_owned();
                let at = applied.at;
                record.handoffs.push(Handoff { at, from, to, by });
            }
            apply_routing(&mut record.ticket, &decision);
            record.decision = decision;
            record.rule = outcome;
        }
        record.events.push(applied.record);
        Ok((record, rerouted))
    }

    /// The SLA board: up to `limit` open tickets passing `filter`, by due (breached first),
    /// after `cursor`, read from the open-clock index off the async runtime; with the cursor
    /// of the next page when more may follow.
    pub async fn board(
        &self,
        view: Arc<TenantView>,
        filter: board::Filter,
        limit: usize,
        cursor: Option<board::Cursor>,
    ) -> Result<(Vec<TicketSummary>, Option<board::Cursor>)> {
        let store = self.store.clone();
        let page = tokio::task::spawn_blocking(move || -> Result<_, StoreError> {
            let now = Timestamp::now();
            let t = &view.record.id;
            let (entries, next) = board::page(&store, t, &filter, limit, cursor.as_ref(), now)?;
            let txn = store.read()?;
            let mut out = Vec::with_capacity(entries.len());
            for entry in entries {
                let key = store::tenant_key(t, &entry.ticket);
                if let Some(record) = store::get::<TicketRecord>(&txn, store::TICKETS, &key)? {
                    out.push(TicketSummary::of(&record, &view, now));
                }
            }
            Ok((out, next))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use serde_json::json;
    use switchboard_rules::{ClockState, Metric};

    use super::*;
    use crate::refusal::{Error, RefusalKind};
    use crate::test_support::{Fixture, input};

    fn refused_kind(e: Error) -> RefusalKind {
        match e {
            Error::Refused(r) => r.kind,
            other => panic!("not a refusal: {other}"),
        }
    }

    #[tokio::test]
    async fn creation_falls_back_stores_once_and_events_move_the_clocks() {
        let f = Fixture::new().await;
        let view = f.acme();
        let t1 = input(json!({"id": "T-1", "impact": 1, "urgency": 1}));
        let (fresh, summary) = f.tickets.create(&view, t1).await.unwrap();
        assert!(fresh);
        assert_eq!(
            (summary.decision.queue.as_str(), summary.decision.tier),
            ("triage", 1)
        );
        assert!(summary.rule.fallback && summary.rule.version.is_none());
        assert_eq!(summary.sla.len(), 2);
        assert!(summary.sla.iter().all(|c| c.state == ClockState::Running));

        // The same id again: the stored ticket, not a second one routed anew.
        let again = input(json!({"id": "T-1", "impact": 3, "urgency": 3}));
        let (fresh, stored) = f.tickets.create(&view, again).await.unwrap();
        assert!(!fresh);
        assert_eq!(stored.decision.priority, summary.decision.priority);

        let responded = EventInput::Responded { at: None };
        let after = f
            .tickets
            .apply(&view, "T-1", responded, "key-1")
            .await
            .unwrap();
        let first = after.sla.iter().find(|c| c.metric == Metric::FirstResponse);
        assert_eq!(first.unwrap().state, ClockState::Met);
        assert_eq!(
            (after.events.len(), after.events[0].by.as_str()),
            (1, "key-1")
        );

        // Refusals: no such ticket, an instant far in the future (nothing is written).
        let resolved = EventInput::Resolved { at: None };
        let e = f
            .tickets
            .apply(&view, "nope", resolved, "k")
            .await
            .unwrap_err();
        assert_eq!(refused_kind(e), RefusalKind::NotFound);
        let later = Timestamp::now() + SignedDuration::from_hours(1);
        let future = EventInput::Resolved { at: Some(later) };
        let e = f
            .tickets
            .apply(&view, "T-1", future, "k")
            .await
            .unwrap_err();
        assert_eq!(refused_kind(e), RefusalKind::Invalid);
        assert_eq!(f.tickets.record(&view, "T-1").unwrap().events.len(), 1);
    }

    #[tokio::test]
    async fn the_board_lists_open_tickets_by_due_filtered_and_paged() {
        use crate::board::{BoardStanding, Cursor, Filter};
        let f = Fixture::new().await;
        let view = f.acme();
        let two_hours_ago = Timestamp::now() - SignedDuration::from_hours(2);
        let late = json!({"id": "LATE", "impact": 1, "urgency": 1, "created_at": two_hours_ago});
        f.tickets.create(&view, input(late)).await.unwrap();
        let fresh = json!({"id": "FRESH", "impact": 3, "urgency": 3});
        f.tickets.create(&view, input(fresh)).await.unwrap();
        let waiting =
            json!({"id": "WAIT", "impact": 3, "urgency": 3, "status": "pending_customer"});
        f.tickets.create(&view, input(waiting)).await.unwrap();
        let done = json!({"id": "DONE", "impact": 2, "urgency": 2});
        f.tickets.create(&view, input(done)).await.unwrap();
        let resolved = EventInput::Resolved { at: None };
        let responded = EventInput::Responded { at: None };
        f.tickets
            .apply(&view, "DONE", responded, "k")
            .await
            .unwrap();
        f.tickets.apply(&view, "DONE", resolved, "k").await.unwrap();

        let board = |filter: Filter, limit: usize, cursor: Option<Cursor>| {
            let (tickets, view) = (f.tickets.clone(), view.clone());
            async move {
                let (page, next) = tickets.board(view, filter, limit, cursor).await.unwrap();
                let ids: Vec<String> = page.into_iter().map(|t| t.id).collect();
                (ids, next)
            }
        };
        let sla = |s| Filter {
            sla: Some(s),
            ..Filter::default()
        };
        // Open tickets only, breached first, then by due; the paused one (no due) last.
        let (all, next) = board(Filter::default(), 10, None).await;
        assert_eq!(
            (all, next),
            (vec!["LATE".into(), "FRESH".into(), "WAIT".into()], None)
        );
        assert_eq!(
            board(sla(BoardStanding::Breached), 10, None).await.0,
            ["LATE"]
        );
        assert_eq!(
            board(sla(BoardStanding::Running), 10, None).await.0,
            ["FRESH"]
        );
        assert_eq!(
            board(sla(BoardStanding::Paused), 10, None).await.0,
            ["WAIT"]
        );
        assert!(
            board(sla(BoardStanding::AtRisk), 10, None)
                .await
                .0
                .is_empty()
        );
        let p1 = Filter {
            priority: Some(switchboard_rules::Priority::P1),
            ..Filter::default()
        };
        assert_eq!(board(p1, 10, None).await.0, ["LATE"]);
        // Pages of one, resumed from each cursor, give the same order.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let (ids, next) = board(Filter::default(), 1, cursor).await;
            seen.extend(ids);
            match next {
                Some(c) => cursor = Some(Cursor::parse(&c.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, ["LATE", "FRESH", "WAIT"]);
        assert!(Cursor::parse("not-a-cursor").is_err());
        // Responding and resolving closes the clocks: the ticket leaves the index.
        let txn = f.store.read().unwrap();
        let rows =
            store::scan::<crate::board::OpenEntry>(&txn, store::OPEN_CLOCKS, "acme").unwrap();
        assert_eq!(rows.len(), 3);
        assert!(f.tickets.record(&view, "DONE").unwrap().board.is_none());
    }
}
