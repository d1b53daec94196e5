//! Comparing two outcomes per ticket and summing them up: the one piece of a replay that the
//! service (over stored history) and `switchboard rules replay` (over an export, on a
//! laptop) share, so both print the same summary for the same inputs.
//!
//! A ticket is compared on what would *happen* to it: when a rule fails, the fallback
//! decision applies, so a candidate that fails where the version it replaces did not sends
//! the ticket elsewhere, and counts as a change of every field the fallback differs in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchboard_rules::Decision;
use utoipa::ToSchema;

/// Samples kept per replay: changed tickets, newest first.
pub const MAX_SAMPLES: usize = 50;

/// The decision fields a replay compares (`reason` is left out: a rule may reword it without
/// routing any differently).
pub const FIELDS: [&str; 7] = [
    "queue",
    "party",
    "tier",
    "priority",
    "sla",
    "escalations",
    "tags",
];

/// A rule's failure on one ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Failure {
    /// Stable kind (`fuel_exhausted`, `rule_error`, …).
    pub kind: String,
    /// What happened.
    pub message: String,
}

/// What one side did with one ticket: a decision, or a failure and the fallback that
/// applied instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Side {
    /// The rule decided.
    Decided {
        /// Its decision.
        decision: Decision,
    },
    /// The rule failed.
    Failed {
        /// Why.
        error: Failure,
        /// The tenant's fallback decision, which would route the ticket.
        fallback: Decision,
    },
}

impl Side {
    /// The decision that routes the ticket.
    pub fn effective(&self) -> &Decision {
        match self {
            Side::Decided { decision } => decision,
            Side::Failed { fallback, .. } => fallback,
        }
    }

    fn failure(&self) -> Option<&Failure> {
        match self {
            Side::Decided { .. } => None,
            Side::Failed { error, .. } => Some(error),
        }
    }
}

/// One evaluation: what it gave and the fuel it used.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The decision or the failure.
    pub side: Side,
    /// Fuel used.
    pub fuel: u64,
}

/// The same figures for the candidate and for what it is compared with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Sides<T> {
    /// The version replayed.
    pub candidate: T,
    /// What it is compared with.
    pub against: T,
}

/// Fuel percentiles over the evaluated tickets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FuelStats {
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// How many tickets changed in each decision field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FieldCounts {
    /// Queue.
    pub queue: u64,
    /// Owning party.
    pub party: u64,
    /// Tier.
    pub tier: u64,
    /// Priority.
    pub priority: u64,
    /// SLA targets (compared as a set).
    pub sla: u64,
    /// Escalation plan (compared as a set of steps).
    pub escalations: u64,
    /// Tags (compared as a set).
    pub tags: u64,
}

impl FieldCounts {
    fn count(&mut self, field: &str) {
        let n = match field {
            "queue" => &mut self.queue,
            "party" => &mut self.party,
            "tier" => &mut self.tier,
            "priority" => &mut self.priority,
            "sla" => &mut self.sla,
            "escalations" => &mut self.escalations,
            _ => &mut self.tags,
        };
        *n += 1;
    }
}

/// A changed ticket, with both sides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sample {
    /// Ticket id.
    pub ticket: String,
    /// The fields that differ.
    pub changed: Vec<String>,
    /// What the version compared with did (or, for `stored`, what is stored).
    pub before: Side,
    /// What the candidate does.
    pub after: Side,
}

/// The figures of a replay.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Figures {
    /// Tickets evaluated.
    pub evaluated: u64,
    /// Routed the same way by both.
    pub unchanged: u64,
    /// Routed differently in at least one field.
    pub changed: u64,
    /// Tickets on which each side failed (the fallback would route them).
    pub failed: Sides<u64>,
    /// Per field, the tickets that changed in it.
    pub fields: FieldCounts,
    /// Fuel per evaluation.
    pub fuel: Sides<FuelStats>,
    /// Failures by kind, per side.
    pub errors: Sides<BTreeMap<String, u64>>,
    /// Up to 50 changed tickets, in the order they were replayed.
    pub samples: Vec<Sample>,
}

/// The fields in which two decisions differ, in [`FIELDS`] order.
pub fn changed_fields(before: &Decision, after: &Decision) -> Vec<&'static str> {
    fn set<T: Serialize>(items: &[T]) -> Vec<String> {
        let mut keys: Vec<String> = items
            .iter()
            .map(|i| serde_json::to_string(i).expect("decision parts serialize"))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }
    let mut changed = Vec::new();
    if before.queue != after.queue {
        changed.push("queue");
    }
    if before.party != after.party {
        changed.push("party");
    }
    if before.tier != after.tier {
        changed.push("tier");
    }
    if before.priority != after.priority {
        changed.push("priority");
    }
    if set(&before.sla) != set(&after.sla) {
        changed.push("sla");
    }
    if set(&before.escalations) != set(&after.escalations) {
        changed.push("escalations");
    }
    if set(&before.tags) != set(&after.tags) {
        changed.push("tags");
    }
    changed
}

/// Sums up a replay one ticket at a time.
#[derive(Debug, Default)]
pub struct Tally {
    figures: Figures,
    fuel: Sides<Vec<u64>>,
}

impl Tally {
    /// Adds ticket `id`: `before` from the version compared with, `after` from the
    /// candidate.
    pub fn add(&mut self, id: &str, before: Outcome, after: Outcome) {
        let f = &mut self.figures;
        f.evaluated += 1;
        self.fuel.against.push(before.fuel);
        self.fuel.candidate.push(after.fuel);
        for (side, failed, errors) in [
            (&before.side, &mut f.failed.against, &mut f.errors.against),
            (
                &after.side,
                &mut f.failed.candidate,
                &mut f.errors.candidate,
            ),
        ] {
            if let Some(e) = side.failure() {
                *failed += 1;
                *errors.entry(e.kind.clone()).or_default() += 1;
            }
        }
        let changed = changed_fields(before.side.effective(), after.side.effective());
        if changed.is_empty() {
            f.unchanged += 1;
            return;
        }
        f.changed += 1;
        for field in &changed {
            f.fields.count(field);
        }
        if f.samples.len() < MAX_SAMPLES {
            f.samples.push(Sample {
                ticket: id.to_owned(),
                changed: changed.into_iter().map(str::to_owned).collect(),
                before: before.side,
                after: after.side,
            });
        }
    }

    /// Tickets added so far.
    pub fn evaluated(&self) -> u64 {
        self.figures.evaluated
    }

    /// The figures so far.
    pub fn finish(mut self) -> Figures {
        self.figures.fuel = Sides {
            candidate: percentiles(&mut self.fuel.candidate),
            against: percentiles(&mut self.fuel.against),
        };
        self.figures
    }
}

/// Nearest-rank percentiles (zero for no values).
fn percentiles(values: &mut [u64]) -> FuelStats {
    if values.is_empty() {
        return FuelStats::default();
    }
    values.sort_unstable();
    let rank = |p: f64| {
        let i = (p * values.len() as f64).ceil() as usize;
        values[i.clamp(1, values.len()) - 1]
    };
    FuelStats {
        p50: rank(0.50),
        p99: rank(0.99),
        max: values[values.len() - 1],
    }
}

#[cfg(test)]
mod tests {
    use switchboard_rules::{Metric, Party, Priority, SlaTarget};

    use super::*;

    fn decision(queue: &str, tier: u8) -> Decision {
        Decision {
            queue: queue.into(),
            party: Party::Msp,
            tier,
            priority: Priority::P3,
            sla: vec![
                SlaTarget {
                    metric: Metric::FirstResponse,
                    minutes: 60,
                    calendar: "24x7".into(),
                },
                SlaTarget {
                    metric: Metric::Resolution,
                    minutes: 480,
                    calendar: "24x7".into(),
                },
            ],
            escalations: Vec::new(),
            tags: vec!["a".into(), "b".into()],
            reason: "because".into(),
        }
    }

    fn decided(d: Decision, fuel: u64) -> Outcome {
        Outcome {
            side: Side::Decided { decision: d },
            fuel,
        }
    }

    #[test]
    fn order_and_reason_are_not_changes_but_fields_are() {
        let a = decision("desk", 1);
        let mut b = a.clone();
        b.reason = "reworded".into();
        b.sla.reverse();
        b.tags.reverse();
        assert!(changed_fields(&a, &b).is_empty());
        b.queue = "network".into();
        b.tier = 2;
        b.tags.push("c".into());
        assert_eq!(changed_fields(&a, &b), ["queue", "tier", "tags"]);
    }

    #[test]
    fn a_failure_counts_as_its_fallback_and_by_kind() {
        let mut tally = Tally::default();
        tally.add(
            "T-1",
            decided(decision("desk", 1), 10),
            decided(decision("desk", 1), 30),
        );
        tally.add(
            "T-2",
            decided(decision("desk", 1), 20),
            decided(decision("net", 2), 40),
        );
        let failed = Outcome {
            side: Side::Failed {
                error: Failure {
                    kind: "fuel_exhausted".into(),
                    message: "out of fuel".into(),
                },
                fallback: decision("triage", 1),
            },
            fuel: 1000,
        };
        tally.add("T-3", decided(decision("desk", 1), 30), failed);
        let f = tally.finish();
        assert_eq!((f.evaluated, f.unchanged, f.changed), (3, 1, 2));
        assert_eq!(
            f.failed,
            Sides {
                candidate: 1,
                against: 0
            }
        );
        assert_eq!((f.fields.queue, f.fields.tier, f.fields.sla), (2, 1, 0));
        assert_eq!(f.errors.candidate["fuel_exhausted"], 1);
        assert!(f.errors.against.is_empty());
        let samples: Vec<_> = f.samples.iter().map(|s| s.ticket.as_str()).collect();
        assert_eq!(samples, ["T-2", "T-3"]);
        assert_eq!(f.samples[1].changed, ["queue"]);
        assert_eq!(
            f.fuel.candidate,
            FuelStats {
                p50: 40,
                p99: 1000,
                max: 1000
            }
        );
        assert_eq!(
            f.fuel.against,
            FuelStats {
                p50: 20,
                p99: 30,
                max: 30
            }
        );
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut v: Vec<u64> = (1..=200).rev().collect();
        assert_eq!(
            percentiles(&mut v),
            FuelStats {
                p50: 100,
                p99: 198,
                max: 200
            }
        );
        assert_eq!(percentiles(&mut []), FuelStats::default());
        assert_eq!(
            percentiles(&mut [7]),
            FuelStats {
                p50: 7,
                p99: 7,
                max: 7
            }
        );
    }
}
