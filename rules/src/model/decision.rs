//! What a rule answers: the decision (queue, party, tier, priority, SLA targets, escalation
//! plan), validated here once, whoever produced it (a rule or a fallback), against the limits
//! of [`super`].

use serde::{Deserialize, Serialize};

use super::{
    MAX_DECISION_ITEMS, MAX_QUEUE_LEN, MAX_REASON_LEN, MAX_SHORT_TEXT, MAX_TARGET_MINUTES, Metric,
    Party, Priority,
};

/// A service-level target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaTarget {
    /// Which clock.
    pub metric: Metric,
    /// Business minutes on `calendar`.
    pub minutes: u32,
    /// Calendar id.
    pub calendar: String,
}

/// When an escalation fires, relative to its metric's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum EscalationTrigger {
    /// When this percentage (1–100) of the target has elapsed.
    PercentElapsed(u8),
    /// This many business minutes before due.
    MinutesBeforeDue(u32),
    /// This many business minutes after due.
    MinutesAfterDue(u32),
}

/// One step of an escalation plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Metric whose clock drives it.
    pub metric: Metric,
    /// When it fires.
    pub trigger: EscalationTrigger,
    /// Name, e.g. `warn-50`.
    pub label: String,
    /// Passed through to receivers.
    pub notify: String,
}

/// A routing decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Queue name.
    pub queue: String,
    /// Owning party.
    pub party: Party,
    /// Tier 1–3.
    pub tier: u8,
    /// Priority.
    pub priority: Priority,
    /// SLA targets, at most one per metric.
    #[serde(default)]
    pub sla: Vec<SlaTarget>,
    /// Escalation plan.
    #[serde(default)]
    pub escalations: Vec<Escalation>,
    /// Tags to add.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Why.
    #[serde(default)]
    pub reason: String,
}

/// Why a decision was refused: the rule ran, but what it answered cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid decision: {0}")]
pub struct InvalidDecision(pub String);

impl Decision {
    /// Checks every invariant the contract states (tier 1–3, a non-empty queue, at most one
    /// target per metric on a known calendar, escalations that refer to a target, sizes).
    /// `calendar_known` answers whether a calendar id exists for the tenant.
    pub fn validate(&self, calendar_known: impl Fn(&str) -> bool) -> Result<(), InvalidDecision> {
        let bad = |m: String| Err(InvalidDecision(m));
        if self.queue.trim().is_empty() {
            return bad("queue is empty".into());
        }
        if self.queue.len() > MAX_QUEUE_LEN {
            return bad(format!(
                "queue is {} bytes long, the limit is {MAX_QUEUE_LEN}",
                self.queue.len()
            ));
        }
        if !(1..=3).contains(&self.tier) {
            return bad(format!("tier must be 1, 2 or 3, got {}", self.tier));
        }
        for (what, n) in [
            ("SLA targets", self.sla.len()),
            ("escalations", self.escalations.len()),
            ("tags", self.tags.len()),
        ] {
            if n > MAX_DECISION_ITEMS {
                return bad(format!("{n} {what}, the limit is {MAX_DECISION_ITEMS}"));
            }
        }
        if self.reason.len() > MAX_REASON_LEN {
            return bad(format!(
                "reason is {} bytes long, the limit is {MAX_REASON_LEN}",
                self.reason.len()
            ));
        }
        if let Some(t) = self
            .tags
            .iter()
            .find(|t| t.is_empty() || t.len() > MAX_SHORT_TEXT)
        {
            return bad(format!(
                "tag {t:?} must be 1 to {MAX_SHORT_TEXT} bytes long"
            ));
        }
        for (i, t) in self.sla.iter().enumerate() {
            let metric = t.metric.as_str();
            if self.sla[..i].iter().any(|o| o.metric == t.metric) {
                return bad(format!("more than one SLA target for {metric}"));
            }
            if t.minutes == 0 || t.minutes > MAX_TARGET_MINUTES {
                return bad(format!(
                    "SLA target {metric} is {} minutes; it must be 1 to {MAX_TARGET_MINUTES}",
                    t.minutes
                ));
            }
            if !calendar_known(&t.calendar) {
                return bad(format!(
                    "SLA target {metric} uses unknown calendar {:?}",
                    t.calendar
                ));
            }
        }
        for e in &self.escalations {
            let metric = e.metric.as_str();
            let Some(target) = self.sla.iter().find(|t| t.metric == e.metric) else {
                return bad(format!(
                    "escalation {:?} is on {metric}, which has no SLA target",
                    e.label
                ));
            };
            if e.label.is_empty() || e.label.len() > MAX_SHORT_TEXT {
                return bad(format!(
                    "escalation label must be 1 to {MAX_SHORT_TEXT} bytes long"
                ));
            }
            if e.notify.len() > MAX_SHORT_TEXT {
                return bad(format!(
                    "escalation {:?} notify is longer than {MAX_SHORT_TEXT} bytes",
                    e.label
                ));
            }
            match e.trigger {
                EscalationTrigger::PercentElapsed(p) if !(1..=100).contains(&p) => {
                    return bad(format!(
                        "escalation {:?} fires at {p}%; it must be 1 to 100",
                        e.label
                    ));
                }
                EscalationTrigger::MinutesBeforeDue(m) if m == 0 || m >= target.minutes => {
                    return bad(format!(
                        "escalation {:?} fires {m} minutes before a {}-minute target; it must be 1 to {}",
                        e.label,
                        target.minutes,
                        target.minutes.saturating_sub(1)
                    ));
                }
                EscalationTrigger::MinutesAfterDue(m) if m > MAX_TARGET_MINUTES => {
                    return bad(format!(
                        "escalation {:?} fires {m} minutes after due; the limit is {MAX_TARGET_MINUTES}",
                        e.label
                    ));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision() -> Decision {
        Decision {
            queue: "soc".into(),
            party: Party::Msp,
            tier: 2,
            priority: Priority::P1,
            sla: vec![SlaTarget {
                metric: Metric::FirstResponse,
                minutes: 15,
                calendar: "24x7".into(),
            }],
            escalations: vec![Escalation {
                metric: Metric::FirstResponse,
                trigger: EscalationTrigger::PercentElapsed(50),
                label: "warn".into(),
                notify: "oncall".into(),
            }],
            tags: vec!["security".into()],
            reason: "security incident".into(),
        }
    }

    fn known(id: &str) -> bool {
        id == "24x7"
    }

    #[test]
    fn a_good_decision_passes() {
        assert_eq!(decision().validate(known), Ok(()));
    }

    #[test]
    fn each_broken_invariant_is_named() {
        type Breaker = fn(&mut Decision);
        let cases: Vec<(Breaker, &str)> = vec![
            (|d| d.tier = 9, "tier must be 1, 2 or 3, got 9"),
            (|d| d.queue.clear(), "queue is empty"),
            (
                |d| d.sla[0].calendar = "nope".into(),
                "unknown calendar \"nope\"",
            ),
            (|d| d.sla[0].minutes = 0, "it must be 1 to"),
            (|d| d.sla.push(d.sla[0].clone()), "more than one SLA target"),
            (
                |d| d.escalations[0].metric = Metric::Resolution,
                "has no SLA target",
            ),
            (
                |d| d.escalations[0].trigger = EscalationTrigger::PercentElapsed(0),
                "fires at 0%",
            ),
            (
                |d| d.escalations[0].trigger = EscalationTrigger::MinutesBeforeDue(15),
                "fires 15 minutes before",
            ),
        ];
        for (break_it, expected) in cases {
            let mut d = decision();
            break_it(&mut d);
            let err = d.validate(known).unwrap_err();
            assert!(err.0.contains(expected), "{err} should contain {expected}");
        }
    }
}
