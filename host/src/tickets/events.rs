//! Ticket events as clients post them, and what each does to the stored ticket: the SLA
//! clocks move here; whether the rule must run again (a priority or a routing field changed)
//! is decided here too, so the caller only has to run it.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;
use switchboard_rules::{Change, Party, Priority, SlaError, Ticket};
use utoipa::ToSchema;

use crate::refusal::Refusal;
use crate::store::records::{EventRecord, Handoff, Holder, TicketRecord};

/// Most a client-supplied instant (`created_at`, an event's `at`) may be ahead of the
/// server's clock: within it the instant counts as "now" (clock skew), beyond it the request
/// is refused, because a future instant would make every later event look out of order.
pub const MAX_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(300);

/// `at` (default `now`), refusing instants beyond the allowed clock skew; `field` names it.
pub fn instant_at_most_now(
    at: Option<Timestamp>,
    now: Timestamp,
    field: &str,
) -> Result<Timestamp, Refusal> {
    match at {
        None => Ok(now),
        Some(at) if at <= now => Ok(at),
        Some(at) if at.duration_since(now) <= MAX_CLOCK_SKEW => Ok(now),
        Some(at) => Err(Refusal::invalid(
            "future_instant",
            format!("`{field}` {at} is in the future (the server's clock reads {now})"),
        )),
    }
}

/// Ticket fields an `updated` event may change.
#[derive(Debug, Default, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketChanges {
    /// New subject.
    pub subject: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New category.
    pub category: Option<String>,
    /// New service.
    pub service: Option<String>,
    /// New impact, 1 (high) to 3.
    #[schema(minimum = 1, maximum = 3)]
    pub impact: Option<u8>,
    /// New urgency, 1 (high) to 3.
    #[schema(minimum = 1, maximum = 3)]
    pub urgency: Option<u8>,
    /// New tags (replacing the old ones).
    pub tags: Option<Vec<String>>,
    /// Custom fields to set (merged into the old ones).
    pub fields: Option<BTreeMap<String, String>>,
}

/// `POST …/tickets/{id}/events` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventInput {
    /// An agent responded: meets first/next response.
    Responded {
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// The status changed (a paused status pauses the clocks).
    Status {
        /// The new status, 1–64 bytes.
        #[schema(min_length = 1, max_length = 64)]
        status: String,
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// The priority changed: the rule is re-run and the targets recomputed retroactively.
    Priority {
        /// The new priority.
        priority: Priority,
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Resolved: stops resolution (and open response clocks).
    Resolved {
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Reopened: resolution restarts.
    Reopened {
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// The ticket was handed to another party (and queue): who holds it now, for the board
    /// and for the time each party held it.
    Assigned {
        /// The party that holds it from now.
        party: Party,
        /// Its queue there (default: the queue it is in).
        #[schema(min_length = 1, max_length = 256)]
        #[serde(default)]
        queue: Option<String>,
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
    },
    /// Ticket fields changed, or the requester replied (`from_requester`, which starts
    /// `next_response`): the rule is re-run when routing fields changed.
    Updated {
        /// When (default now).
        #[schema(value_type = Option<String>, format = DateTime)]
        #[serde(default)]
        at: Option<Timestamp>,
        /// The requester replied.
        #[serde(default)]
        from_requester: bool,
        /// Fields that changed.
        #[serde(default)]
        changes: TicketChanges,
    },
}

/// Applies `changes` to the ticket and lists them for the rule.
fn apply_changes(ticket: &mut Ticket, c: TicketChanges) -> Result<Vec<Change>, Refusal> {
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
                return Err(Refusal::invalid(
                    "invalid_event",
                    format!("`changes.{name}` must be 1, 2 or 3, got {v}"),
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

/// An event applied to the clocks and fields of a ticket, before any re-route.
#[derive(Debug)]
pub struct Applied {
    /// The event's instant.
    pub at: Timestamp,
    /// The event as recorded on the ticket.
    pub record: EventRecord,
    /// When routing inputs changed: what changed, for the rule's `updated` event.
    pub reroute: Option<Vec<Change>>,
}

fn out_of_order(e: SlaError) -> Refusal {
    Refusal::conflict("out_of_order", e.to_string())
}

/// Applies `input` to `record` at `now` (clocks and fields; the event is not yet pushed):
/// what the caller must still do is in [`Applied::reroute`].
pub fn apply(
    record: &mut TicketRecord,
    input: EventInput,
    paused: &[String],
    by: &str,
    now: Timestamp,
) -> Result<Applied, Refusal> {
    let when = |at: Option<Timestamp>| instant_at_most_now(at, now, "at");
    let (kind, at, detail, reroute) = match input {
        EventInput::Responded { at } => {
            let at = when(at)?;
            record.sla.respond(at).map_err(out_of_order)?;
            ("responded", at, None, None)
        }
        EventInput::Status { status, at } => {
            let at = when(at)?;
            if status.is_empty() || status.len() > 64 {
                return Err(Refusal::invalid(
                    "invalid_event",
                    "`status` must be 1-64 bytes",
                ));
            }
            record
                .sla
                .set_status(&status, paused, at)
                .map_err(out_of_order)?;
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
            record.sla.resolve(at).map_err(out_of_order)?;
            record.ticket.status = "resolved".into();
            ("resolved", at, None, None)
        }
        EventInput::Reopened { at } => {
            let at = when(at)?;
            record.sla.reopen(at).map_err(out_of_order)?;
            record.ticket.status = "open".into();
            ("reopened", at, None, None)
        }
        EventInput::Assigned { party, queue, at } => {
            let at = when(at)?;
            let queue = queue.unwrap_or_else(|| record.decision.queue.clone());
            if queue.trim().is_empty() || queue.len() > 256 {
                return Err(Refusal::invalid(
                    "invalid_event",
                    "`queue` must be 1-256 bytes, not blank",
                ));
            }
            let last = record
                .handoffs
                .last()
                .map_or(record.ticket.created_at, |h| h.at);
            if at < last {
                return Err(Refusal::conflict(
                    "out_of_order",
                    format!("`at` {at} is before the ticket's last change of holder ({last})"),
                ));
            }
            let from = Holder::of(&record.decision);
            let to = Holder {
                party,
                queue: queue.clone(),
            };
            if from != to {
                let by = by.to_owned();
                record.handoffs.push(Handoff { at, from, to, by });
            }
            record.decision.party = party;
            record.decision.queue = queue.clone();
            record.ticket.party = Some(party);
            record.ticket.queue = Some(queue.clone());
            let detail = json!({"party": party, "queue": queue});
            ("assigned", at, Some(detail), None)
        }
        EventInput::Updated {
            at,
            from_requester,
            changes,
        } => {
            let at = when(at)?;
            let listed = apply_changes(&mut record.ticket, changes)?;
            if from_requester {
                record.sla.requester_replied(at).map_err(out_of_order)?;
            }
            let changed: Vec<&str> = listed.iter().map(|c| c.field.as_str()).collect();
            let detail = json!({"from_requester": from_requester, "changed": changed});
            let reroute = (!listed.is_empty()).then_some(listed);
            ("updated", at, Some(detail), reroute)
        }
    };
    record.ticket.updated_at = at;
    Ok(Applied {
        at,
        record: EventRecord {
            kind: kind.into(),
            at,
            by: by.to_owned(),
            detail,
        },
        reroute,
    })
}
