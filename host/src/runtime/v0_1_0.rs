//! Contract `switchboard:rules@0.1.0`: the generated bindings, the host side of its imports,
//! and the conversions between its types and the domain model. One module per contract
//! version keeps old versions running unchanged when a new one ships.

use jiff::Timestamp;
use switchboard_rules::model as m;
use wasmtime::component::HasSelf;

use super::sandbox::State;

wasmtime::component::bindgen!({
    path: "../rules/wit/v0.1.0",
    world: "ticket-rules",
    imports: { default: trappable },
});

pub(crate) use switchboard::rules::types as wit;

/// Adds the contract's host imports to `linker`.
pub(crate) fn link(linker: &mut wasmtime::component::Linker<State>) -> wasmtime::Result<()> {
    TicketRules::add_to_linker::<State, HasSelf<State>>(linker, |s| s)
}

impl wit::Host for State {}

fn calendar_error(e: switchboard_rules::CalendarError) -> String {
    e.to_string()
}

fn to_time(t: wit::Timestamp) -> Result<Timestamp, String> {
    Timestamp::from_second(t).map_err(|_| format!("timestamp {t} is out of range"))
}

impl switchboard::rules::host::Host for State {
    fn log(&mut self, level: wit::LogLevel, message: String) -> wasmtime::Result<()> {
        let level = match level {
            wit::LogLevel::Trace => m::LogLevel::Trace,
            wit::LogLevel::Debug => m::LogLevel::Debug,
            wit::LogLevel::Info => m::LogLevel::Info,
            wit::LogLevel::Warn => m::LogLevel::Warn,
            wit::LogLevel::Error => m::LogLevel::Error,
        };
        let mut log = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        log.push(level, message).map_err(wasmtime::Error::new)
    }

    fn config(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.config.get(&key).cloned())
    }

    fn add_business_minutes(
        &mut self,
        calendar: String,
        start: wit::Timestamp,
        minutes: u32,
    ) -> wasmtime::Result<Result<wit::Timestamp, String>> {
        Ok((|| {
            let cal = self.calendars.get(&calendar).map_err(calendar_error)?;
            let due = cal
                .add_business_minutes(to_time(start)?, minutes)
                .map_err(calendar_error)?;
            Ok(due.as_second())
        })())
    }

    fn is_business_time(
        &mut self,
        calendar: String,
        at: wit::Timestamp,
    ) -> wasmtime::Result<Result<bool, String>> {
        Ok((|| {
            let cal = self.calendars.get(&calendar).map_err(calendar_error)?;
            Ok(cal.is_open(to_time(at)?))
        })())
    }

    fn business_minutes_between(
        &mut self,
        calendar: String,
        start: wit::Timestamp,
        end: wit::Timestamp,
    ) -> wasmtime::Result<Result<u32, String>> {
        Ok((|| {
            let cal = self.calendars.get(&calendar).map_err(calendar_error)?;
            let secs = cal.business_seconds_between(to_time(start)?, to_time(end)?);
            Ok(u32::try_from(secs / 60).unwrap_or(u32::MAX))
        })())
    }
}

fn party_to_wit(p: m::Party) -> wit::Party {
    match p {
        m::Party::Msp => wit::Party::Msp,
        m::Party::Internal => wit::Party::Internal,
        m::Party::Vendor => wit::Party::Vendor,
    }
}

fn party_from_wit(p: wit::Party) -> m::Party {
    match p {
        wit::Party::Msp => m::Party::Msp,
        wit::Party::Internal => m::Party::Internal,
        wit::Party::Vendor => m::Party::Vendor,
    }
}

fn priority_to_wit(p: m::Priority) -> wit::Priority {
    match p {
        m::Priority::P1 => wit::Priority::P1,
        m::Priority::P2 => wit::Priority::P2,
        m::Priority::P3 => wit::Priority::P3,
        m::Priority::P4 => wit::Priority::P4,
    }
}

fn priority_from_wit(p: wit::Priority) -> m::Priority {
    match p {
        wit::Priority::P1 => m::Priority::P1,
        wit::Priority::P2 => m::Priority::P2,
        wit::Priority::P3 => m::Priority::P3,
        wit::Priority::P4 => m::Priority::P4,
    }
}

fn metric_from_wit(x: wit::Metric) -> m::Metric {
    match x {
        wit::Metric::FirstResponse => m::Metric::FirstResponse,
        wit::Metric::NextResponse => m::Metric::NextResponse,
        wit::Metric::Resolution => m::Metric::Resolution,
    }
}

/// The contract's view of a ticket event.
pub(crate) fn event_to_wit(e: &m::TicketEvent) -> wit::TicketEvent {
    let t = &e.ticket;
    wit::TicketEvent {
        kind: match &e.kind {
            m::EventKind::Created => wit::EventKind::Created,
            m::EventKind::Updated(changes) => wit::EventKind::Updated(
                changes
                    .iter()
                    .map(|c| wit::Change {
                        field: c.field.clone(),
                        old: c.old.clone(),
                        new: c.new.clone(),
                    })
                    .collect(),
            ),
        },
        ticket: wit::Ticket {
            id: t.id.clone(),
            subject: t.subject.clone(),
            description: t.description.clone(),
            category: t.category.clone(),
            service: t.service.clone(),
            source: t.source.clone(),
            impact: t.impact,
            urgency: t.urgency,
            priority: t.priority.map(priority_to_wit),
            status: t.status.clone(),
            requester: wit::Requester {
                email: t.requester.email.clone(),
                department: t.requester.department.clone(),
                vip: t.requester.vip,
            },
            tags: t.tags.clone(),
            fields: t
                .fields
                .iter()
                .map(|(k, v)| wit::Field {
                    key: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            created_at: t.created_at.as_second(),
            updated_at: t.updated_at.as_second(),
            queue: t.queue.clone(),
            party: t.party.map(party_to_wit),
        },
        at: e.at.as_second(),
    }
}

/// Bytes of text in a decision, the measure of the output limit. Each list element counts
/// 8 bytes besides its text, so a list of a million empty tags is not free.
pub(crate) fn decision_size(d: &wit::Decision) -> usize {
    d.queue.len()
        + d.reason.len()
        + d.sla.iter().map(|t| t.calendar.len() + 8).sum::<usize>()
        + d.escalations
            .iter()
            .map(|e| e.label.len() + e.notify.len() + 8)
            .sum::<usize>()
        + d.tags.iter().map(|t| t.len() + 8).sum::<usize>()
}

/// Bytes of text in a rule error.
pub(crate) fn rule_error_size(e: &wit::RuleError) -> usize {
    e.code.len() + e.message.len()
}

/// The domain model's decision.
pub(crate) fn decision_from_wit(d: wit::Decision) -> m::Decision {
    m::Decision {
        queue: d.queue,
        party: party_from_wit(d.party),
        tier: d.tier,
        priority: priority_from_wit(d.priority),
        sla: d
            .sla
            .into_iter()
            .map(|t| m::SlaTarget {
                metric: metric_from_wit(t.metric),
                minutes: t.minutes,
                calendar: t.calendar,
            })
            .collect(),
        escalations: d
            .escalations
            .into_iter()
            .map(|e| m::Escalation {
                metric: metric_from_wit(e.metric),
                trigger: match e.trigger {
                    wit::EscalationTrigger::PercentElapsed(p) => {
                        m::EscalationTrigger::PercentElapsed(p)
                    }
                    wit::EscalationTrigger::MinutesBeforeDue(n) => {
                        m::EscalationTrigger::MinutesBeforeDue(n)
                    }
                    wit::EscalationTrigger::MinutesAfterDue(n) => {
                        m::EscalationTrigger::MinutesAfterDue(n)
                    }
                },
                label: e.label,
                notify: e.notify,
            })
            .collect(),
        tags: d.tags,
        reason: d.reason,
    }
}

/// The domain model's rule error.
pub(crate) fn rule_error_from_wit(e: wit::RuleError) -> m::RuleError {
    m::RuleError {
        code: e.code,
        message: e.message,
    }
}
