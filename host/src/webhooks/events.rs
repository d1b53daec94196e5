//! The event types, named once. An endpoint subscribes to these names, the outbox files every
//! delivery under one, and receivers switch on the envelope's `type`; a schedule's digest and
//! heartbeat are what a `schedule.fired` carries, not event types of their own, and saying so
//! in the refusal is what keeps a subscription from waiting for an event that never comes.

use serde::{Deserialize, Serialize};

/// What happened, as the envelope's `type` says.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum EventType {
    /// A step of a ticket's escalation plan came due.
    #[serde(rename = "sla.escalation")]
    SlaEscalation,
    /// An SLA target's due instant passed with the clock running.
    #[serde(rename = "sla.breached")]
    SlaBreached,
    /// A rule failed on a ticket; the fallback decision applied.
    #[serde(rename = "rule.failed")]
    RuleFailed,
    /// A cron schedule fired (its `event` — `sla.digest` or `heartbeat` — is in the data).
    #[serde(rename = "schedule.fired")]
    ScheduleFired,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 4] = [
        EventType::SlaEscalation,
        EventType::SlaBreached,
        EventType::RuleFailed,
        EventType::ScheduleFired,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SlaEscalation => "sla.escalation",
            EventType::SlaBreached => "sla.breached",
            EventType::RuleFailed => "rule.failed",
            EventType::ScheduleFired => "schedule.fired",
        }
    }

    /// The event type named `name`, or a message saying what to subscribe to instead.
    pub fn parse(name: &str) -> Result<EventType, String> {
        if let Some(t) = EventType::ALL.into_iter().find(|t| t.as_str() == name) {
            return Ok(t);
        }
        let known = EventType::ALL.map(EventType::as_str).join(", ");
        Err(match name {
            "sla.digest" | "heartbeat" => format!(
                "{name:?} is what a schedule sends inside `schedule.fired`, not an event type: subscribe to \"schedule.fired\" (known: {known})"
            ),
            _ => format!("unknown event type {name:?}; known: {known}"),
        })
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_schedule_payloads_point_to_schedule_fired() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Ok(t));
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
        let digest = EventType::parse("sla.digest").unwrap_err();
        assert!(
            digest.contains("subscribe to \"schedule.fired\""),
            "{digest}"
        );
        let other = EventType::parse("sla.nope").unwrap_err();
        assert!(other.starts_with("unknown event type"), "{other}");
    }
}
