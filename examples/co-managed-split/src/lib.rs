//! Example rule: the co-managed split. A RACI map in the tenant's config says which party and
//! tier own each category (e.g. network, backup, patching → MSP tier 2; HR systems, ERP →
//! internal IT), and SLA targets follow the ticket's priority.
//!
//! Config:
//! - `raci.<category>` = `"<party> <tier> <queue>"`, e.g. `raci.network` = `"msp 2 network-ops"`;
//!   `raci.default` for categories not listed (built-in default: `"msp 1 service-desk"`).
//! - `calendar`: id of the calendar SLA targets count on for p2–p4 (default `24x7`); p1 always
//!   counts on `24x7`.

use switchboard_sdk::{Decision, Host, Metric, Party, Priority, Rule, RuleError, TicketEvent};

/// The rule.
pub struct CoManagedSplit;

/// One RACI entry: who owns a category.
#[derive(Debug, PartialEq, Eq)]
struct Owner {
    party: Party,
    tier: u8,
    queue: String,
}

fn parse_owner(key: &str, value: &str) -> Result<Owner, RuleError> {
    let bad = |why: &str| RuleError {
        code: "bad-config".to_owned(),
        message: format!(
            "config {key} = {value:?}: {why}; expected \"<msp|internal|vendor> <1-3> <queue>\""
        ),
    };
    let mut parts = value.split_whitespace();
    let party = match parts.next() {
        Some("msp") => Party::Msp,
        Some("internal") => Party::Internal,
        Some("vendor") => Party::Vendor,
        _ => return Err(bad("unknown party")),
    };
    let tier = parts
        .next()
        .and_then(|t| t.parse::<u8>().ok())
        .filter(|t| (1..=3).contains(t))
        .ok_or_else(|| bad("tier must be 1, 2 or 3"))?;
    let queue = parts
        .next()
        .ok_or_else(|| bad("queue is missing"))?
        .to_owned();
    if parts.next().is_some() {
        return Err(bad("too many words"));
    }
    Ok(Owner { party, tier, queue })
}

/// First-response and resolution targets in minutes, by priority.
fn targets(priority: Priority) -> (u32, u32) {
    match priority {
        Priority::P1 => (15, 240),
        Priority::P2 => (60, 480),
        Priority::P3 => (240, 1440),
        Priority::P4 => (480, 2880),
    }
}

impl Rule for CoManagedSplit {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let ticket = &event.ticket;
        let category = ticket.category.as_deref().unwrap_or("uncategorised");
        let (key, value) = match host.config(&format!("raci.{category}")) {
            Some(v) => (format!("raci.{category}"), v),
            None => match host.config("raci.default") {
                Some(v) => ("raci.default".to_owned(), v),
                None => (
                    "built-in default".to_owned(),
                    "msp 1 service-desk".to_owned(),
                ),
            },
        };
        let owner = parse_owner(&key, &value)?;
        let priority = ticket.default_priority();
        let calendar = if priority == Priority::P1 {
            "24x7".to_owned()
        } else {
            host.config("calendar").unwrap_or_else(|| "24x7".to_owned())
        };
        let (first_response, resolution) = targets(priority);
        let who = match owner.party {
            Party::Msp => "MSP",
            Party::Internal => "internal IT",
            Party::Vendor => "vendor",
        };
        let mut decision = Decision::new(owner.queue, owner.party, owner.tier, priority)
            .sla(Metric::FirstResponse, first_response, calendar.clone())
            .sla(Metric::Resolution, resolution, calendar)
            .escalate_at_percent(Metric::Resolution, 75, "resolution-75", "queue-lead")
            .reason(format!("{category}: {who} tier {} per {key}", owner.tier));
        if priority == Priority::P1 {
            decision =
                decision.escalate_after_due(Metric::FirstResponse, 0, "p1-breach", "duty-manager");
        }
        Ok(decision)
    }
}

switchboard_sdk::export_rule!(CoManagedSplit);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::testing::{TestHost, TicketBuilder};

    fn host() -> TestHost {
        TestHost::new()
            .with_config("raci.network", "msp 2 network-ops")
            .with_config("raci.backup", "msp 2 backup-ops")
            .with_config("raci.erp", "internal 2 erp-team")
            .with_config("raci.hr-systems", "internal 1 hr-it")
    }

    #[test]
    fn raci_map_routes_by_category() {
        let h = host();
        for (category, queue, party, tier) in [
            ("network", "network-ops", Party::Msp, 2),
            ("backup", "backup-ops", Party::Msp, 2),
            ("erp", "erp-team", Party::Internal, 2),
            ("hr-systems", "hr-it", Party::Internal, 1),
            ("printing", "service-desk", Party::Msp, 1),
        ] {
            let d = CoManagedSplit::route(&TicketBuilder::new("T").category(category).event(), &h)
                .unwrap();
            assert_eq!(
                (d.queue.as_str(), d.party, d.tier),
                (queue, party, tier),
                "{category}"
            );
        }
    }

    #[test]
    fn targets_follow_priority_and_p1_runs_around_the_clock() {
        let h = host().with_config("calendar", "business-hours");
        let p1 = TicketBuilder::new("T")
            .category("network")
            .impact(1)
            .urgency(1)
            .event();
        let d = CoManagedSplit::route(&p1, &h).unwrap();
        assert_eq!(d.priority, Priority::P1);
        let fr = d.target(Metric::FirstResponse).unwrap();
        assert_eq!((fr.minutes, fr.calendar.as_str()), (15, "24x7"));
        assert!(d.escalations.iter().any(|e| e.label == "p1-breach"));
        let p3 = TicketBuilder::new("T")
            .category("network")
            .impact(2)
            .urgency(2)
            .event();
        let d = CoManagedSplit::route(&p3, &h).unwrap();
        let res = d.target(Metric::Resolution).unwrap();
        assert_eq!(
            (res.minutes, res.calendar.as_str()),
            (1440, "business-hours")
        );
    }

    #[test]
    fn a_bad_raci_entry_is_a_rule_error() {
        let h = TestHost::new().with_config("raci.network", "msp nine network-ops");
        let err = CoManagedSplit::route(&TicketBuilder::new("T").category("network").event(), &h)
            .unwrap_err();
        assert_eq!(err.code, "bad-config");
        assert!(
            err.message.contains("tier must be 1, 2 or 3"),
            "{}",
            err.message
        );
    }

    #[test]
    fn raci_default_covers_unlisted_categories() {
        let h = TestHost::new().with_config("raci.default", "vendor 3 vendor-queue");
        let d = CoManagedSplit::route(&TicketBuilder::new("T").event(), &h).unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party, d.tier),
            ("vendor-queue", Party::Vendor, 3)
        );
    }
}
