//! The ticket and decision model shared by the host (JSON API, storage), the CLI and the SDK's
//! native test helpers. It mirrors the WIT contract one to one; the JSON names are the SPEC's.
//! The decision a rule answers, and its validation, are in `model::decision`.

mod decision;

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

pub use self::decision::{Decision, Escalation, EscalationTrigger, InvalidDecision, SlaTarget};

/// Longest queue name a decision may carry.
pub const MAX_QUEUE_LEN: usize = 128;
/// Most SLA targets, escalations or tags a decision may carry (each).
pub const MAX_DECISION_ITEMS: usize = 64;
/// Longest label, notify string, tag or error code.
pub const MAX_SHORT_TEXT: usize = 256;
/// Longest `reason` of a decision or `message` of a rule error.
pub const MAX_REASON_LEN: usize = 4096;
/// Largest SLA target: one year of business minutes.
pub const MAX_TARGET_MINUTES: u32 = 525_600;

/// Who works a ticket in a co-managed desk.
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
#[serde(rename_all = "snake_case")]
pub enum Party {
    /// The managed service provider that runs the desk.
    Msp,
    /// The client's own internal IT team.
    Internal,
    /// A third-party vendor.
    Vendor,
}

impl Party {
    /// Every party, in order.
    pub const ALL: [Party; 3] = [Party::Msp, Party::Internal, Party::Vendor];

    /// The JSON / WIT name (`msp`, `internal`, `vendor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Party::Msp => "msp",
            Party::Internal => "internal",
            Party::Vendor => "vendor",
        }
    }

    /// The party named `name` (its JSON name).
    pub fn from_name(name: &str) -> Option<Party> {
        Party::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Ticket priority, `p1` the most urgent.
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
#[serde(rename_all = "snake_case")]
pub enum Priority {
    /// Critical.
    P1,
    /// High.
    P2,
    /// Moderate.
    P3,
    /// Low.
    P4,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    /// The priority named `name` (its JSON name).
    pub fn from_name(name: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// The JSON / WIT name (`p1`…`p4`).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
            Priority::P4 => "p4",
        }
    }
}

/// The SLA metric a target or escalation applies to.
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
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Creation to first agent response.
    FirstResponse,
    /// Requester update to next agent response.
    NextResponse,
    /// Creation (or reopening) to resolution.
    Resolution,
}

impl Metric {
    /// Every metric.
    pub const ALL: [Metric; 3] = [
        Metric::FirstResponse,
        Metric::NextResponse,
        Metric::Resolution,
    ];

    /// The metric named `name` (its JSON name).
    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The JSON name (`first_response`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Metric::FirstResponse => "first_response",
            Metric::NextResponse => "next_response",
            Metric::Resolution => "resolution",
        }
    }
}

/// Severity of a rule log line.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    /// Very detailed tracing.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal information.
    Info,
    /// Unexpected but handled.
    Warn,
    /// A failure.
    Error,
}

/// The person who raised a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Requester {
    /// Email address.
    #[serde(default)]
    pub email: String,
    /// Department, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// On the tenant's VIP list.
    #[serde(default)]
    pub vip: bool,
}

/// A ticket as submitted by a desk (the SPEC's ticket JSON): `id` is required, everything else
/// has a documented default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketInput {
    /// External id, unique per tenant (1–256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub id: String,
    /// One-line summary (default empty).
    #[serde(default)]
    pub subject: String,
    /// Full description (default empty).
    #[serde(default)]
    pub description: String,
    /// Category, e.g. `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Affected service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Channel, e.g. `email`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Impact 1 (high) – 3 (low); default 3, as in ServiceNow.
    #[serde(default = "default_level")]
    #[schema(minimum = 1, maximum = 3, default = 3)]
    pub impact: u8,
    /// Urgency 1 (high) – 3 (low); default 3.
    #[serde(default = "default_level")]
    #[schema(minimum = 1, maximum = 3, default = 3)]
    pub urgency: u8,
    /// Priority given by the requester, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Status; default `new`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Requester.
    #[serde(default)]
    pub requester: Requester,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Custom fields.
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Creation time; default "now" (may be in the past for imported tickets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<Timestamp>,
}

fn default_level() -> u8 {
    3
}

/// Why a submitted ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid ticket: {0}")]
pub struct InvalidTicket(pub String);

impl TicketInput {
    /// Checks the ranges the JSON types cannot express and builds the ticket, with `now` as
    /// the creation time when none was given.
    pub fn into_ticket(self, now: Timestamp) -> Result<Ticket, InvalidTicket> {
        if self.id.is_empty() || self.id.len() > MAX_SHORT_TEXT {
            return Err(InvalidTicket(format!(
                "`id` must be 1 to {MAX_SHORT_TEXT} bytes long"
            )));
        }
        for (name, v) in [("impact", self.impact), ("urgency", self.urgency)] {
            if !(1..=3).contains(&v) {
                return Err(InvalidTicket(format!(
                    "`{name}` must be 1, 2 or 3, got {v}"
                )));
            }
        }
        let created_at = self.created_at.unwrap_or(now);
        Ok(Ticket {
            id: self.id,
            subject: self.subject,
            description: self.description,
            category: self.category,
            service: self.service,
            source: self.source,
            impact: self.impact,
            urgency: self.urgency,
            priority: self.priority,
            status: self.status.unwrap_or_else(|| "new".to_owned()),
            requester: self.requester,
            tags: self.tags,
            fields: self.fields,
            created_at,
            updated_at: created_at,
            queue: None,
            party: None,
        })
    }
}

/// A ticket as the host knows it (the WIT `ticket` record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ticket {
    /// External id.
    pub id: String,
    /// One-line summary.
    pub subject: String,
    /// Full description.
    pub description: String,
    /// Category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// Affected service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Impact 1–3.
    pub impact: u8,
    /// Urgency 1–3.
    pub urgency: u8,
    /// Priority, if set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Status.
    pub status: String,
    /// Requester.
    pub requester: Requester,
    /// Tags.
    pub tags: Vec<String>,
    /// Custom fields.
    pub fields: BTreeMap<String, String>,
    /// Creation time.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// Current queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// Current party.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<Party>,
}

/// One changed attribute in an `updated` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Change {
    /// Attribute name.
    pub field: String,
    /// Old value.
    pub old: Option<String>,
    /// New value.
    pub new: Option<String>,
}

/// What happened to the ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "type", content = "changes", rename_all = "snake_case")]
pub enum EventKind {
    /// Just created.
    Created,
    /// Changed.
    Updated(Vec<Change>),
}

/// The input of one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TicketEvent {
    /// What happened.
    pub kind: EventKind,
    /// The ticket after the event.
    pub ticket: Ticket,
    /// When it happened; the sandbox clocks read this instant.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
}

impl TicketEvent {
    /// The `created` event of a new ticket, at its creation time.
    pub fn created(ticket: Ticket) -> Self {
        TicketEvent {
            kind: EventKind::Created,
            at: ticket.created_at,
            ticket,
        }
    }
}

/// An error a rule reports on purpose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleError {
    /// Machine-readable code.
    pub code: String,
    /// Explanation.
    pub message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn ticket_input_defaults_and_ranges() {
        let now: Timestamp = "2026-01-05T10:00:00Z".parse().unwrap();
        let t: TicketInput = serde_json::from_str(r#"{"id":"T-1"}"#).unwrap();
        let t = t.into_ticket(now).unwrap();
        assert_eq!((t.impact, t.urgency, t.status.as_str()), (3, 3, "new"));
        assert_eq!(t.created_at, now);
        let bad: TicketInput = serde_json::from_str(r#"{"id":"T-1","impact":4}"#).unwrap();
        assert!(bad.into_ticket(now).unwrap_err().0.contains("`impact`"));
        let unknown = serde_json::from_str::<TicketInput>(r#"{"id":"T-1","colour":"red"}"#);
        assert!(
            unknown
                .unwrap_err()
                .to_string()
                .contains("unknown field `colour`")
        );
    }
}
