//! Example rule: security incidents go to the MSP's SOC at p1 with a 15-minute first response
//! around the clock and a three-step escalation; VIP requesters go to internal IT's tier 2 with
//! a tighter first response; everything else to the MSP service desk. Security wins over VIP:
//! a VIP's security incident is still a security incident.
//!
//! Config: `calendar` (id of the business-hours calendar for non-security work, default `24x7`).

use switchboard_sdk::{Decision, Host, Metric, Party, Rule, RuleError, TicketEvent};

/// The rule.
pub struct VipAndSecurity;

impl Rule for VipAndSecurity {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let ticket = &event.ticket;
        if ticket.category.as_deref() == Some("security") {
            return Ok(
                Decision::new("soc", Party::Msp, 2, switchboard_sdk::Priority::P1)
                    .sla(Metric::FirstResponse, 15, "24x7")
                    .sla(Metric::Resolution, 240, "24x7")
                    .escalate_at_percent(Metric::FirstResponse, 50, "soc-50", "msp-soc-oncall")
                    .escalate_at_percent(Metric::FirstResponse, 90, "soc-90", "msp-soc-lead")
                    .escalate_after_due(Metric::FirstResponse, 0, "soc-breach", "msp-duty-manager")
                    .tag("security")
                    .reason("security incident: MSP SOC, p1"),
            );
        }
        let calendar = host.config("calendar").unwrap_or_else(|| "24x7".to_owned());
        if ticket.requester.vip {
            host.info(&format!("VIP requester {}", ticket.requester.email));
            return Ok(Decision::new(
                "vip-desk",
                Party::Internal,
                2,
                ticket.default_priority().raised(),
            )
            .sla(Metric::FirstResponse, 30, calendar.clone())
            .sla(Metric::Resolution, 480, calendar)
            .escalate_at_percent(Metric::FirstResponse, 75, "vip-75", "internal-it-lead")
            .tag("vip")
            .reason("VIP requester: internal IT tier 2"));
        }
        Ok(
            Decision::new("service-desk", Party::Msp, 1, ticket.default_priority())
                .sla(Metric::FirstResponse, 120, calendar.clone())
                .sla(Metric::Resolution, 1440, calendar)
                .reason("standard request: MSP service desk"),
        )
    }
}

switchboard_sdk::export_rule!(VipAndSecurity);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::testing::{TestHost, TicketBuilder};
    use switchboard_sdk::{EscalationTrigger, Priority};

    #[test]
    fn security_goes_to_the_soc_with_three_escalations() {
        let host = TestHost::new();
        let event = TicketBuilder::new("S-1").category("security").event();
        let d = VipAndSecurity::route(&event, &host).unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party, d.tier, d.priority),
            ("soc", Party::Msp, 2, Priority::P1)
        );
        let fr = d.target(Metric::FirstResponse).unwrap();
        assert_eq!((fr.minutes, fr.calendar.as_str()), (15, "24x7"));
        let triggers: Vec<_> = d.escalations.iter().map(|e| e.trigger).collect();
        assert_eq!(
            triggers,
            vec![
                EscalationTrigger::PercentElapsed(50),
                EscalationTrigger::PercentElapsed(90),
                EscalationTrigger::MinutesAfterDue(0)
            ]
        );
    }

    #[test]
    fn security_wins_over_vip() {
        let host = TestHost::new();
        let event = TicketBuilder::new("S-2")
            .category("security")
            .vip(true)
            .event();
        let d = VipAndSecurity::route(&event, &host).unwrap();
        assert_eq!(d.queue, "soc");
        assert!(host.log_lines().is_empty());
    }

    #[test]
    fn vip_goes_to_internal_tier_two_with_a_raised_priority() {
        let host = TestHost::new().with_config("calendar", "24x7");
        let event = TicketBuilder::new("V-1")
            .vip(true)
            .requester("ceo@example.com", None)
            .impact(2)
            .urgency(2)
            .event();
        let d = VipAndSecurity::route(&event, &host).unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party, d.tier, d.priority),
            ("vip-desk", Party::Internal, 2, Priority::P2)
        );
        assert_eq!(d.target(Metric::FirstResponse).unwrap().minutes, 30);
        assert_eq!(
            host.log_lines(),
            vec!["info: VIP requester ceo@example.com"]
        );
    }

    #[test]
    fn everything_else_goes_to_the_service_desk() {
        let host = TestHost::new();
        let event = TicketBuilder::new("R-1").category("printing").event();
        let d = VipAndSecurity::route(&event, &host).unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party, d.tier, d.priority),
            ("service-desk", Party::Msp, 1, Priority::P4)
        );
        assert_eq!(d.target(Metric::FirstResponse).unwrap().minutes, 120);
    }
}
