//! The built-in fallback decision: what a ticket gets when its tenant's rule fails (or none is
//! active) and the tenant set no fallback of its own. It lives with the model, not the host,
//! because it is policy: triage by the MSP, on the clock at once, so no ticket is ever left
//! unrouted or without SLA targets.

use crate::calendar::ALWAYS_OPEN;
use crate::model::{Decision, Metric, Party, Priority, SlaTarget, Ticket};
use crate::priority::default_priority;

/// First-response and resolution minutes of the built-in fallback, by priority.
pub fn fallback_targets(priority: Priority) -> (u32, u32) {
    match priority {
        Priority::P1 => (15, 240),
        Priority::P2 => (60, 480),
        Priority::P3 => (240, 1440),
        Priority::P4 => (480, 2880),
    }
}

/// The built-in fallback: triage by the MSP at the ticket's priority (or the matrix
/// priority), with SLA targets by priority on `24x7`.
pub fn builtin_fallback(ticket: &Ticket) -> Decision {
    let priority = ticket
        .priority
        .unwrap_or_else(|| default_priority(ticket.impact, ticket.urgency));
    let (first_response, resolution) = fallback_targets(priority);
    let target = |metric, minutes| SlaTarget {
        metric,
        minutes,
        calendar: ALWAYS_OPEN.to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TicketInput;

    fn ticket(json: &str) -> Ticket {
        let input: TicketInput = serde_json::from_str(json).expect("ticket json");
        input
            .into_ticket("2026-03-02T09:00:00Z".parse().expect("instant"))
            .expect("valid ticket")
    }

    #[test]
    fn matrix_priority_when_none_given_and_given_priority_kept() {
        let d = builtin_fallback(&ticket(r#"{"id": "A", "impact": 1, "urgency": 1}"#));
        assert_eq!(
            (d.queue.as_str(), d.party, d.tier),
            ("triage", Party::Msp, 1)
        );
        assert_eq!(d.priority, Priority::P1);
        assert_eq!(d.sla[0].minutes, 15);
        assert_eq!(d.sla[1].minutes, 240);
        let d = builtin_fallback(&ticket(r#"{"id": "B", "priority": "p4", "impact": 1}"#));
        assert_eq!(d.priority, Priority::P4);
        assert_eq!((d.sla[0].minutes, d.sla[1].minutes), (480, 2880));
        assert!(d.validate(|c| c == ALWAYS_OPEN).is_ok());
    }
}
