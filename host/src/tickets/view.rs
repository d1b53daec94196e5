//! What a ticket looks like to its readers — the API, the SLA board, digests — computed from
//! the stored record at the instant of reading, as typed views so that every reader shows the
//! same fields and the OpenAPI document describes them exactly.

use jiff::Timestamp;
use serde::Serialize;
use switchboard_rules::{ClockState, Decision, EscalationTrigger, Metric, Party, Priority, Ticket};
use utoipa::ToSchema;

use crate::store::records::{EventRecord, Handoff, RuleOutcome, TicketRecord};
use crate::tenants::TenantView;
use crate::timers::escalation_name;

/// One SLA clock read at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ClockView {
    /// The metric.
    pub metric: Metric,
    /// When the target is (or was) due; `null` while paused before breaching.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub due: Option<Timestamp>,
    /// The calendar the target counts on.
    pub calendar: String,
    /// The state at the instant read.
    pub state: ClockState,
    /// The target in business minutes.
    pub minutes: u32,
    /// Business seconds elapsed.
    pub elapsed_secs: i64,
    /// Business seconds left (negative once over).
    pub remaining_secs: i64,
    /// Elapsed over target, times 100 (over 100 once breached).
    pub percent_elapsed: f64,
    /// When the clock breached, if it has.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub breached_at: Option<Timestamp>,
    /// The clock's run (a reopened ticket starts a new resolution run).
    pub run: u32,
    /// Business seconds of this run counted while each party held the ticket.
    pub with_party: PartyTime,
    /// The party holding the ticket when the clock breached, if it has.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub breached_with: Option<Party>,
}

/// Business seconds by the party holding the ticket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PartyTime {
    /// The MSP.
    pub msp: i64,
    /// Internal IT.
    pub internal: i64,
    /// A vendor.
    pub vendor: i64,
}

impl PartyTime {
    fn add(&mut self, party: Party, secs: i64) {
        match party {
            Party::Msp => self.msp += secs,
            Party::Internal => self.internal += secs,
            Party::Vendor => self.vendor += secs,
        }
    }
}

/// Who held the ticket over time: the instants its holder changed, and the party holding it
/// before the first and after each.
fn holders(record: &TicketRecord) -> (Vec<Timestamp>, Vec<Party>) {
    let first = record
        .handoffs
        .first()
        .map_or(record.decision.party, |h| h.from.party);
    let cuts = record.handoffs.iter().map(|h| h.at).collect();
    let parties = std::iter::once(first)
        .chain(record.handoffs.iter().map(|h| h.to.party))
        .collect();
    (cuts, parties)
}

/// A ticket's clocks at `now`, or why they cannot be read (a calendar they name is gone).
pub fn clocks(
    record: &TicketRecord,
    view: &TenantView,
    now: Timestamp,
) -> Result<Vec<ClockView>, String> {
    let readings = record
        .sla
        .readings(now, &view.calendars)
        .map_err(|e| e.to_string())?;
    let (cuts, parties) = holders(record);
    let mut out = Vec::with_capacity(readings.len());
    for r in readings {
        let split = record
            .sla
            .elapsed_split(r.metric, now, &view.calendars, &cuts)
            .map_err(|e| e.to_string())?;
        let mut with_party = PartyTime::default();
        for (party, secs) in parties.iter().zip(split) {
            with_party.add(*party, secs);
        }
        let breached_with = r.breached_at.map(|b| record.holder_at(b).party);
        out.push(ClockView {
            metric: r.metric,
            due: r.due,
            calendar: r.calendar,
            state: r.state,
            minutes: r.minutes,
            elapsed_secs: r.elapsed_secs,
            remaining_secs: r.remaining_secs,
            percent_elapsed: r.percent_elapsed,
            breached_at: r.breached_at,
            run: r.run,
            with_party,
            breached_with,
        });
    }
    Ok(out)
}

/// A ticket as creation and the board answer it: id, decision, clocks, rule outcome.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketSummary {
    /// The external id.
    pub id: String,
    /// The ticket's subject.
    pub subject: String,
    /// Where it was routed.
    pub decision: Decision,
    /// Its SLA clocks.
    pub sla: Vec<ClockView>,
    /// Why the clocks cannot be read, when they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_error: Option<String>,
    /// What the rule did.
    pub rule: RuleOutcome,
}

impl TicketSummary {
    /// The summary of `record` at `now`.
    pub fn of(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Self {
        let (sla, sla_error) = split(clocks(record, view, now));
        TicketSummary {
            id: record.ticket.id.clone(),
            subject: record.ticket.subject.clone(),
            decision: record.decision.clone(),
            sla,
            sla_error,
            rule: record.rule.clone(),
        }
    }
}

fn split<T>(r: Result<Vec<T>, String>) -> (Vec<T>, Option<String>) {
    match r {
        Ok(v) => (v, None),
        Err(e) => (Vec::new(), Some(e)),
    }
}

/// One step of the escalation plan for one run of its clock.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct EscalationView {
    /// The clock.
    pub metric: Metric,
    /// The step's label.
    pub label: String,
    /// Passed through to receivers (`msp-soc-oncall`).
    pub notify: String,
    /// When it fires, relative to the target.
    pub trigger: EscalationTrigger,
    /// The clock run.
    pub run: u32,
    /// When it fires (or fired).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<Timestamp>,
    /// When it was fired, if it was.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub fired_at: Option<Timestamp>,
}

/// The escalation plan split into what fired and what is still to come.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct EscalationsView {
    /// Steps already fired.
    pub fired: Vec<EscalationView>,
    /// Steps with an instant still to come (or due and about to fire).
    pub pending: Vec<EscalationView>,
    /// Why the plan cannot be read, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A ticket in full: fields, decision, rule outcome, clocks, escalations, events.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TicketView {
    /// The ticket's fields.
    pub ticket: Ticket,
    /// Where it was routed.
    pub decision: Decision,
    /// What the rule did.
    pub rule: RuleOutcome,
    /// Its SLA clocks.
    pub sla: Vec<ClockView>,
    /// Why the clocks cannot be read, when they cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sla_error: Option<String>,
    /// The escalation plan, fired and pending.
    pub escalations: EscalationsView,
    /// Events applied, oldest first.
    pub events: Vec<EventRecord>,
    /// Changes of who holds it, oldest first.
    pub handoffs: Vec<Handoff>,
}

impl TicketView {
    /// The full view of `record` at `now`.
    pub fn of(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Self {
        let (sla, sla_error) = split(clocks(record, view, now));
        TicketView {
            ticket: record.ticket.clone(),
            decision: record.decision.clone(),
            rule: record.rule.clone(),
            sla,
            sla_error,
            escalations: escalations(record, view),
            events: record.events.clone(),
            handoffs: record.handoffs.clone(),
        }
    }
}

fn escalations(record: &TicketRecord, view: &TenantView) -> EscalationsView {
    let instants = match record
        .sla
        .escalations(&record.decision.escalations, &view.calendars)
    {
        Ok(instants) => instants,
        Err(e) => {
            return EscalationsView {
                error: Some(e.to_string()),
                ..EscalationsView::default()
            };
        }
    };
    let mut out = EscalationsView::default();
    for i in instants {
        let step = &record.decision.escalations[i.index];
        let name = escalation_name(step, i.run);
        let fired_at = record.fired.iter().find(|f| f.name == name).map(|f| f.at);
        let item = EscalationView {
            metric: step.metric,
            label: step.label.clone(),
            notify: step.notify.clone(),
            trigger: step.trigger,
            run: i.run,
            at: i.at,
            fired_at,
        };
        if fired_at.is_some() {
            out.fired.push(item);
        } else if i.at.is_some() {
            out.pending.push(item);
        }
    }
    out
}

/// A ticket as a digest lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DigestTicket {
    /// The external id.
    pub id: String,
    /// Its subject.
    pub subject: String,
    /// Its queue.
    pub queue: String,
    /// Its tier.
    pub tier: u8,
    /// Its priority.
    pub priority: Priority,
    /// Its status.
    pub status: String,
    /// The party holding it.
    pub party: Party,
    /// Its clocks.
    pub sla: Vec<ClockView>,
}

impl DigestTicket {
    /// The digest line of `record` at `now`.
    pub fn of(record: &TicketRecord, view: &TenantView, now: Timestamp) -> Self {
        DigestTicket {
            id: record.ticket.id.clone(),
            subject: record.ticket.subject.clone(),
            queue: record.decision.queue.clone(),
            tier: record.decision.tier,
            priority: record.decision.priority,
            status: record.ticket.status.clone(),
            party: record.decision.party,
            sla: clocks(record, view, now).unwrap_or_default(),
        }
    }
}
