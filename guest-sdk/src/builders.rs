//! Ergonomic constructors on the generated contract types, so a rule reads like the routing
//! policy it encodes rather than like record literals.

use crate::{
    Decision, Escalation, EscalationTrigger, LogLevel, Metric, Party, Priority, SlaTarget, Ticket,
};

impl Decision {
    /// A decision with no SLA targets, escalations, tags or reason yet.
    pub fn new(queue: impl Into<String>, party: Party, tier: u8, priority: Priority) -> Self {
        Decision {
            queue: queue.into(),
            party,
            tier,
            priority,
            sla: Vec::new(),
            escalations: Vec::new(),
            tags: Vec::new(),
            reason: String::new(),
        }
    }

    /// Adds (or replaces) the SLA target for `metric`: `minutes` business minutes on the
    /// calendar with id `calendar`.
    pub fn sla(mut self, metric: Metric, minutes: u32, calendar: impl Into<String>) -> Self {
        self.sla.retain(|t| t.metric != metric);
        self.sla.push(SlaTarget {
            metric,
            minutes,
            calendar: calendar.into(),
        });
        self
    }

    /// Adds an escalation when `percent` of the `metric` target has elapsed.
    pub fn escalate_at_percent(
        self,
        metric: Metric,
        percent: u8,
        label: impl Into<String>,
        notify: impl Into<String>,
    ) -> Self {
        self.escalate(
            metric,
            EscalationTrigger::PercentElapsed(percent),
            label,
            notify,
        )
    }

    /// Adds an escalation `minutes` business minutes before the `metric` target is due.
    pub fn escalate_before_due(
        self,
        metric: Metric,
        minutes: u32,
        label: impl Into<String>,
        notify: impl Into<String>,
    ) -> Self {
        self.escalate(
            metric,
            EscalationTrigger::MinutesBeforeDue(minutes),
            label,
            notify,
        )
    }

    /// Adds an escalation `minutes` business minutes after the `metric` target was breached
    /// (`0`: on breach).
    pub fn escalate_after_due(
        self,
        metric: Metric,
        minutes: u32,
        label: impl Into<String>,
        notify: impl Into<String>,
    ) -> Self {
        self.escalate(
            metric,
            EscalationTrigger::MinutesAfterDue(minutes),
            label,
            notify,
        )
    }

    /// Adds an escalation step.
    pub fn escalate(
        mut self,
        metric: Metric,
        trigger: EscalationTrigger,
        label: impl Into<String>,
        notify: impl Into<String>,
    ) -> Self {
        self.escalations.push(Escalation {
            metric,
            trigger,
            label: label.into(),
            notify: notify.into(),
        });
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets the human-readable reason.
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// The SLA target for `metric`, if any.
    pub fn target(&self, metric: Metric) -> Option<&SlaTarget> {
        self.sla.iter().find(|t| t.metric == metric)
    }
}

impl Ticket {
    /// The value of a custom field.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.as_str())
    }

    /// Whether the ticket carries `tag`.
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// The priority the ticket already has, or else the ITIL impact × urgency matrix:
    /// 1/1 → p1; 1/2, 2/1 → p2; 1/3, 2/2, 3/1 → p3; otherwise p4.
    pub fn default_priority(&self) -> Priority {
        if let Some(p) = self.priority {
            return p;
        }
        match self.impact.clamp(1, 3) + self.urgency.clamp(1, 3) {
            2 => Priority::P1,
            3 => Priority::P2,
            4 => Priority::P3,
            _ => Priority::P4,
        }
    }
}

impl Priority {
    /// One step more urgent (`p1` stays `p1`).
    pub fn raised(self) -> Priority {
        match self {
            Priority::P1 | Priority::P2 => Priority::P1,
            Priority::P3 => Priority::P2,
            Priority::P4 => Priority::P3,
        }
    }
}

impl LogLevel {
    /// The level's name (`trace` … `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}
