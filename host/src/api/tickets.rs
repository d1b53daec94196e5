//! Tickets: creation routes through the tenant's active rule (or its fallback decision when
//! the rule fails or none is active — the ticket is stored either way, with the error), starts
//! the SLA clocks, and answers only after the ticket is durably committed. Events move the
//! clocks; reads and the SLA board compute every figure at the instant of the request.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_rules::priority::default_priority;
use switchboard_rules::{
    Change, ClockState, Decision, EventKind, Metric, Party, Priority, SlaClocks, SlaTarget, Ticket,
    TicketEvent, TicketInput,
};

use super::{ApiError, ApiJson, ApiPath, AppState, Caller, created, ok, require};
use crate::runtime::EvalContext;
use crate::service::{Service, TenantView};
use crate::store::records::{EventRecord, Role, RuleFailure, RuleOutcome, TicketRecord};
use crate::store::{self, StoreError};
use crate::timers;
use crate::webhooks::emit;

/// The built-in fallback: triage by the MSP at the matrix priority, with SLA targets by
/// priority on `24x7`, so a ticket whose rule failed is still on the clock.
pub(crate) fn builtin_fallback(ticket: &Ticket) -> Decision {
    let priority = ticket
        .priority
        .unwrap_or_else(|| default_priority(ticket.impact, ticket.urgency));
    let (first_response, resolution) = match priority {
        Priority::P1 => (15, 240),
        Priority::P2 => (60, 480),
        Priority::P3 => (240, 1440),
        Priority::P4 => (480, 2880),
    };
    let target = |metric, minutes| SlaTarget {
        metric,
        minutes,
        calendar: switchboard_rules::ALWAYS_OPEN.to_owned(),
    };
    Decision {
        queue: "triage".into(),
        party: Party::Msp,
        tier: 1,
        priority,
        sla: vec![
            target(Metric::FirstResponse, first_response),
            target(Metric::Resolution, resolution),
        ],
        escalations: Vec::new(),
        tags: Vec::new(),
        reason: "fallback: built-in triage".into(),
    }
}

/// Evaluates the tenant's active rule on a blocking thread and falls back when it fails.
async fn route(
    service: &Arc<Service>,
    view: &Arc<TenantView>,
    event: TicketEvent,
) -> (Decision, RuleOutcome) {
    let fallback = |ticket: &Ticket| match &view.record.settings.fallback {
        Some(d) if d.validate(|id| view.calendars.contains(id)).is_ok() => d.clone(),
        _ => builtin_fallback(ticket),
    };
    tracing::Span::current().record("ticket", event.ticket.id.as_str());
    let Some((version, module)) = view.active.clone() else {
        service.metrics.fallback();
        let outcome = RuleOutcome {
            version: None,
            fuel: 0,
            fallback: true,
            error: None,
        };
        return (fallback(&event.ticket), outcome);
    };
    tracing::Span::current().record("rule_version", version);
    let ctx = EvalContext {
        tenant: view.record.id.clone(),
        version: version.to_string(),
        config: view.config.clone(),
        calendars: view.calendars.clone(),
        limits: view.record.settings.limits,
    };
    let runtime = service.runtime.clone();
    let event = Arc::new(event);
    let task_event = event.clone();
    let slot = runtime.slot().await;
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
            service.metrics.fallback();
            let outcome = RuleOutcome {
                version: Some(version),
                fuel: 0,
                fallback: true,
                error: Some(RuleFailure {
                    kind: "host_error".into(),
                    message: "the evaluation task failed".into(),
                }),
            };
            return (fallback(&event.ticket), outcome);
        }
    };
    let failure_kind = eval.outcome.as_ref().err().map(|e| e.failure.kind());
    service
        .metrics
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
            service.metrics.fallback();
            tracing::warn!(error = %e, "rule failed; fallback applied");
            let outcome = RuleOutcome {
                version: Some(version),
                fuel: eval.fuel_used,
                fallback: true,
                error: Some(RuleFailure {
                    kind: e.failure.kind().to_owned(),
                    message: e.to_string(),
                }),
            };
            (fallback(&event.ticket), outcome)
        }
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

/// The SLA part of a ticket response: every clock read at `now`.
pub(crate) fn sla_view(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Vec<Value> {
    match record.sla.readings(now, &view.calendars) {
        Ok(readings) => readings
            .into_iter()
            .map(|r| {
                json!({
                    "metric": r.metric, "due": r.due, "calendar": r.calendar, "state": r.state,
                    "minutes": r.minutes, "elapsed_secs": r.elapsed_secs,
                    "remaining_secs": r.remaining_secs, "percent_elapsed": r.percent_elapsed,
                    "breached_at": r.breached_at, "run": r.run,
                })
            })
            .collect(),
        Err(e) => vec![json!({"error": e.to_string()})],
    }
}

fn summary(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Value {
    json!({
        "id": record.ticket.id,
        "decision": record.decision,
        "sla": sla_view(record, view, now),
        "rule": record.rule,
    })
}

/// `POST …/tickets` (intake+): idempotent on the external id.
pub(crate) async fn create(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    ApiJson(input): ApiJson<TicketInput>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Intake)?;
    let now = Timestamp::now();
    let mut input = input;
    input.created_at = Some(super::instant_at_most_now(
        input.created_at,
        now,
        "created_at",
    )?);
    let mut ticket = input
        .into_ticket(now)
        .map_err(|e| ApiError::invalid("invalid_ticket", e.to_string()))?;
    let key = store::tenant_key(&t, &ticket.id);
    // No read-before-route: the commit below checks for the id atomically and answers a
    // repeated post with the stored ticket; a repeat only costs one wasted evaluation, while
    // a read here would cost every new ticket a read transaction.
    let (decision, outcome) = route(&service, &view, TicketEvent::created(ticket.clone())).await;
    apply_routing(&mut ticket, &decision);
    let sla = SlaClocks::start(
        &decision.sla,
        ticket.created_at,
        &ticket.status,
        &view.record.settings.paused_statuses,
    );
    let record = TicketRecord {
        ticket,
        decision,
        rule: outcome,
        sla,
        events: Vec::new(),
        timers: Vec::new(),
        fired: Vec::new(),
    };
    let mut record = record;
    let planned = timers::plan(&record, &t, &view.calendars, now);
    record.timers = planned.keys();
    let earliest = planned.earliest;
    // Encoded here, on the request's task: the writer thread serves every request.
    let bytes = store::encode(&record);
    let tenant_id = t.clone();
    let (fresh, record, queued) = service
        .store
        .write(move |txn| {
            if let Some(existing) = store::get_in::<TicketRecord>(txn, store::TICKETS, &key)? {
                return Ok((false, existing, Vec::new()));
            }
            store::put_raw_in(txn, store::TICKETS, &key, &bytes)?;
            timers::replace_in(txn, &[], &planned)?;
            let queued = match rule_failed(&record) {
                Some(data) => emit(txn, &tenant_id, "rule.failed", data, now)?,
                None => Vec::new(),
            };
            Ok((true, record, queued))
        })
        .await?;
    service.deliveries.enqueue(queued);
    if fresh {
        service.timers.poke(earliest);
    }
    let body = summary(&record, &view, now);
    Ok(if fresh { created(body) } else { ok(body) })
}

/// `GET …/tickets/{id}` (any role): ticket, decision, clocks, escalations.
pub(crate) async fn read(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    let txn = service.store.read()?;
    let record: TicketRecord = store::get(&txn, store::TICKETS, &store::tenant_key(&t, &id))?
        .ok_or_else(|| ApiError::not_found(format!("no ticket {id:?}")))?;
    Ok(ok(full_view(&record, &view, Timestamp::now())))
}

fn full_view(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Value {
    let (fired, pending) = match record
        .sla
        .escalations(&record.decision.escalations, &view.calendars)
    {
        Ok(instants) => {
            let mut fired = Vec::new();
            let mut pending = Vec::new();
            for i in instants {
                let step = &record.decision.escalations[i.index];
                let name = crate::timers::escalation_name(step, i.run);
                let fired_at = record.fired.iter().find(|f| f.name == name).map(|f| f.at);
                let item = json!({
                    "metric": step.metric, "label": step.label, "notify": step.notify,
                    "trigger": step.trigger, "run": i.run, "at": i.at, "fired_at": fired_at,
                });
                if fired_at.is_some() {
                    fired.push(item);
                } else if i.at.is_some() {
                    pending.push(item);
                }
            }
            (fired, pending)
        }
        Err(e) => (Vec::new(), vec![json!({"error": e.to_string()})]),
    };
    json!({
        "ticket": record.ticket,
        "decision": record.decision,
        "rule": record.rule,
        "sla": sla_view(record, view, now),
        "escalations": {"fired": fired, "pending": pending},
        "events": record.events,
    })
}

/// Ticket fields an `updated` event may change.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TicketChanges {
    subject: Option<String>,
    description: Option<String>,
    category: Option<String>,
    service: Option<String>,
    impact: Option<u8>,
    urgency: Option<u8>,
    tags: Option<Vec<String>>,
    fields: Option<BTreeMap<String, String>>,
}

/// `POST …/tickets/{id}/events` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum EventInput {
    /// An agent responded: meets first/next response.
    Responded {
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// The status changed (a paused status pauses the clocks).
    Status {
        status: String,
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// The priority changed: the rule is re-run and the targets recomputed retroactively.
    Priority {
        priority: Priority,
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Resolved: stops resolution (and open response clocks).
    Resolved {
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Reopened: resolution restarts.
    Reopened {
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Ticket fields changed, or the requester replied (`from_requester`, which starts
    /// `next_response`): the rule is re-run when routing fields changed.
    Updated {
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
        #[serde(default)]
        from_requester: bool,
        #[serde(default)]
        changes: TicketChanges,
    },
}

/// Applies `changes` to the ticket and lists them for the rule.
fn apply_changes(ticket: &mut Ticket, c: TicketChanges) -> Result<Vec<Change>, ApiError> {
    let mut out = Vec::new();
    let mut note = |field: &str, old: Option<String>, new: Option<String>| {
        if old != new {
            out.push(Change {
                field: field.into(),
                old,
                new,
            });
        }
    };
    if let Some(v) = c.subject {
        note("subject", Some(ticket.subject.clone()), Some(v.clone()));
        ticket.subject = v;
    }
    if let Some(v) = c.description {
        note(
            "description",
            Some(ticket.description.clone()),
            Some(v.clone()),
        );
        ticket.description = v;
    }
    if let Some(v) = c.category {
        note("category", ticket.category.clone(), Some(v.clone()));
        ticket.category = Some(v);
    }
    if let Some(v) = c.service {
        note("service", ticket.service.clone(), Some(v.clone()));
        ticket.service = Some(v);
    }
    for (name, value, slot) in [
        ("impact", c.impact, &mut ticket.impact),
        ("urgency", c.urgency, &mut ticket.urgency),
    ] {
        if let Some(v) = value {
            if !(1..=3).contains(&v) {
                return Err(ApiError::invalid(
                    "invalid_event",
                    format!("`{name}` must be 1, 2 or 3, got {v}"),
                ));
            }
            note(name, Some(slot.to_string()), Some(v.to_string()));
            *slot = v;
        }
    }
    if let Some(v) = c.tags {
        note("tags", Some(ticket.tags.join(",")), Some(v.join(",")));
        ticket.tags = v;
    }
    if let Some(v) = c.fields {
        for (k, val) in &v {
            note(
                &format!("fields.{k}"),
                ticket.fields.get(k).cloned(),
                Some(val.clone()),
            );
        }
        ticket.fields.extend(v);
    }
    Ok(out)
}

/// How many times an event is retried when the ticket changed under it.
const EVENT_RETRIES: usize = 5;

/// `POST …/tickets/{id}/events` (intake+).
pub(crate) async fn event(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Intake)?;
    let key = store::tenant_key(&t, &id);
    for _ in 0..EVENT_RETRIES {
        let input: EventInput = serde_json::from_value(input.clone())
            .map_err(|e| ApiError::invalid("invalid_event", e.to_string()))?;
        let current: TicketRecord = {
            let txn = service.store.read()?;
            store::get(&txn, store::TICKETS, &key)?
                .ok_or_else(|| ApiError::not_found(format!("no ticket {id:?}")))?
        };
        let seen = current.events.len();
        let old_timers = current.timers.clone();
        let (mut next, rerouted) =
            apply_event(&service, &view, current, input, caller.0.id()).await?;
        let failed = if rerouted { rule_failed(&next) } else { None };
        let tenant_id = t.clone();
        let planned = timers::plan(&next, &t, &view.calendars, Timestamp::now());
        next.timers = planned.keys();
        let earliest = planned.earliest;
        let bytes = store::encode(&next);
        let written = service
            .store
            .write({
                let key = key.clone();
                move |txn| {
                    let Some(now) = store::get_in::<TicketRecord>(txn, store::TICKETS, &key)?
                    else {
                        return Ok(None);
                    };
                    if now.events.len() != seen || now.timers != old_timers {
                        return Ok(None);
                    }
                    store::put_raw_in(txn, store::TICKETS, &key, &bytes)?;
                    timers::replace_in(txn, &old_timers, &planned)?;
                    let queued = match failed {
                        Some(data) => emit(txn, &tenant_id, "rule.failed", data, Timestamp::now())?,
                        None => Vec::new(),
                    };
                    Ok(Some(queued))
                }
            })
            .await?;
        if let Some(queued) = written {
            service.deliveries.enqueue(queued);
            service.timers.poke(earliest);
            return Ok(ok(full_view(&next, &view, Timestamp::now())));
        }
    }
    Err(ApiError::conflict(
        "busy_ticket",
        "the ticket kept changing; retry the event",
    ))
}

/// The ticket after `input`: SLA clocks moved, and for routing changes the rule re-run
/// (the flag says whether it was).
async fn apply_event(
    service: &Arc<Service>,
    view: &Arc<TenantView>,
    mut record: TicketRecord,
    input: EventInput,
    by: &str,
) -> Result<(TicketRecord, bool), ApiError> {
    let now = Timestamp::now();
    let when = |at: Option<Timestamp>| super::instant_at_most_now(at, now, "at");
    let paused = &view.record.settings.paused_statuses;
    let sla_err =
        |e: switchboard_rules::SlaError| ApiError::conflict("out_of_order", e.to_string());
    let (kind, at, detail, reroute) = match input {
        EventInput::Responded { at } => {
            let at = when(at)?;
            record.sla.respond(at).map_err(sla_err)?;
            ("responded", at, None, None)
        }
        EventInput::Status { status, at } => {
            let at = when(at)?;
            if status.is_empty() || status.len() > 64 {
                return Err(ApiError::invalid(
                    "invalid_event",
                    "status must be 1-64 bytes",
                ));
            }
            record
                .sla
                .set_status(&status, paused, at)
                .map_err(sla_err)?;
            record.ticket.status = status.clone();
            ("status", at, Some(json!({"status": status})), None)
        }
        EventInput::Priority { priority, at } => {
            let at = when(at)?;
            let old = record.ticket.priority.map(|p| p.as_str().to_owned());
            record.ticket.priority = Some(priority);
            let change = Change {
                field: "priority".into(),
                old,
                new: Some(priority.as_str().into()),
            };
            (
                "priority",
                at,
                Some(json!({"priority": priority})),
                Some(vec![change]),
            )
        }
        EventInput::Resolved { at } => {
            let at = when(at)?;
            record.sla.resolve(at).map_err(sla_err)?;
            record.ticket.status = "resolved".into();
            ("resolved", at, None, None)
        }
        EventInput::Reopened { at } => {
            let at = when(at)?;
            record.sla.reopen(at).map_err(sla_err)?;
            record.ticket.status = "open".into();
            ("reopened", at, None, None)
        }
        EventInput::Updated {
            at,
            from_requester,
            changes,
        } => {
            let at = when(at)?;
            let listed = apply_changes(&mut record.ticket, changes)?;
            if from_requester {
                record.sla.requester_replied(at).map_err(sla_err)?;
            }
            let detail = json!({"from_requester": from_requester, "changed": listed.iter().map(|c| &c.field).collect::<Vec<_>>()});
            let reroute = (!listed.is_empty()).then_some(listed);
            ("updated", at, Some(detail), reroute)
        }
    };
    let rerouted = reroute.is_some();
    if let Some(changes) = reroute {
        record.ticket.updated_at = at;
        let event = TicketEvent {
            kind: EventKind::Updated(changes),
            ticket: record.ticket.clone(),
            at,
        };
        let (decision, outcome) = route(service, view, event).await;
        record
            .sla
            .change_targets(&decision.sla, at)
            .map_err(sla_err)?;
        apply_routing(&mut record.ticket, &decision);
        record.decision = decision;
        record.rule = outcome;
    }
    record.ticket.updated_at = at;
    record.events.push(EventRecord {
        kind: kind.into(),
        at,
        by: by.to_owned(),
        detail,
    });
    Ok((record, rerouted))
}

/// Where a ticket stands against its SLA targets, as the board and digests read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Standing {
    /// A target is breached.
    Breached,
    /// Not breached, but a running clock has used the tenant's `at_risk_percent`.
    AtRisk,
    /// Neither.
    OnTrack,
}

/// The ticket's [`Standing`] at `now`; `None` when its clocks cannot be read (a calendar
/// it names is gone).
pub(crate) fn standing(
    record: &TicketRecord,
    view: &TenantView,
    now: Timestamp,
) -> Option<Standing> {
    let readings = record.sla.readings(now, &view.calendars).ok()?;
    let threshold = f64::from(view.record.settings.at_risk_percent);
    Some(
        if readings.iter().any(|r| r.state == ClockState::Breached) {
            Standing::Breached
        } else if readings
            .iter()
            .any(|r| r.state == ClockState::Running && r.percent_elapsed >= threshold)
        {
            Standing::AtRisk
        } else {
            Standing::OnTrack
        },
    )
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BoardQuery {
    sla: Option<String>,
    limit: Option<usize>,
}

/// `GET …/tickets?sla=at_risk|breached` (any role): the SLA board.
pub(crate) async fn board(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    query: Result<Query<BoardQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let filter = match query.sla.as_deref() {
        None => None,
        Some(f @ ("at_risk" | "breached")) => Some(f.to_owned()),
        Some(other) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("sla must be `at_risk` or `breached`, not {other:?}"),
            ));
        }
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let service2 = service.clone();
    let tickets = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, StoreError> {
        let now = Timestamp::now();
        let txn = service2.store.read()?;
        let records: Vec<TicketRecord> = store::scan(&txn, store::TICKETS, &view.record.id)?;
        let mut out = Vec::new();
        for record in records {
            let keep = match filter.as_deref() {
                Some("breached") => standing(&record, &view, now) == Some(Standing::Breached),
                Some(_) => standing(&record, &view, now) == Some(Standing::AtRisk),
                None => true,
            };
            if keep {
                out.push(summary(&record, &view, now));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| ApiError::internal(&e))??;
    Ok(ok(json!({"tickets": tickets})))
}
