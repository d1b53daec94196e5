//! Example rule: outside the internal team's business hours, tickets go to the MSP's
//! after-hours queue with a round-the-clock first response; inside them, to internal IT.
//!
//! Config: `calendar` = id of the internal team's business-hours calendar (default
//! `business-hours`). An unknown calendar is a rule error, so a misconfigured tenant sees it
//! on the ticket instead of silently routing everything after hours.

use switchboard_sdk::{Decision, Host, Metric, Party, Rule, RuleError, TicketEvent};

/// The rule.
pub struct AfterHours;

impl Rule for AfterHours {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let calendar = host
            .config("calendar")
            .unwrap_or_else(|| "business-hours".to_owned());
        let open = host
            .is_business_time(&calendar, event.at)
            .map_err(|message| RuleError {
                code: "missing-calendar".to_owned(),
                message,
            })?;
        let priority = event.ticket.default_priority();
        if open {
            Ok(Decision::new("internal-desk", Party::Internal, 1, priority)
                .sla(Metric::FirstResponse, 60, calendar.clone())
                .sla(Metric::Resolution, 960, calendar)
                .reason("within internal IT's business hours"))
        } else {
            // Tell the next shift when internal IT is back: the deadline of a 1-minute target
            // starting now is at most one minute after the next opening.
            let back = host.add_business_minutes(&calendar, event.at, 1).ok();
            if let Some(back) = back {
                host.info(&format!("internal IT back at {back} (unix seconds)"));
            }
            Ok(Decision::new("after-hours", Party::Msp, 1, priority)
                .sla(Metric::FirstResponse, 30, "24x7")
                .sla(Metric::Resolution, 720, "24x7")
                .escalate_before_due(
                    Metric::FirstResponse,
                    10,
                    "after-hours-10",
                    "msp-night-shift",
                )
                .tag("after-hours")
                .reason("outside internal IT's business hours: MSP after-hours queue"))
        }
    }
}

switchboard_sdk::export_rule!(AfterHours);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::testing::{TestHost, TicketBuilder};

    const BERLIN_OFFICE: &str = r#"{"timezone": "Europe/Berlin",
        "hours": {"mon": [["08:00", "18:00"]], "tue": [["08:00", "18:00"]], "wed": [["08:00", "18:00"]],
                  "thu": [["08:00", "18:00"]], "fri": [["08:00", "16:00"]]},
        "holidays": ["2026-12-25"]}"#;

    fn host() -> TestHost {
        TestHost::new().with_calendar("business-hours", BERLIN_OFFICE)
    }

    #[test]
    fn inside_hours_goes_to_internal_it() {
        // Monday 10:00 in Berlin (09:00Z in winter).
        let d = AfterHours::route(
            &TicketBuilder::new("T")
                .created("2026-01-05T09:00:00Z")
                .event(),
            &host(),
        )
        .unwrap();
        assert_eq!(
            (d.queue.as_str(), d.party),
            ("internal-desk", Party::Internal)
        );
    }

    #[test]
    fn nights_weekends_and_holidays_go_to_the_msp() {
        for at in [
            "2026-01-05T20:00:00Z",
            "2026-01-10T10:00:00Z",
            "2026-12-25T10:00:00Z",
        ] {
            let h = host();
            let d = AfterHours::route(&TicketBuilder::new("T").created(at).event(), &h).unwrap();
            assert_eq!(
                (d.queue.as_str(), d.party),
                ("after-hours", Party::Msp),
                "{at}"
            );
            assert_eq!(h.log_lines().len(), 1, "{at}");
        }
    }

    #[test]
    fn an_unknown_calendar_is_a_rule_error() {
        let h = TestHost::new().with_config("calendar", "nope");
        let err = AfterHours::route(&TicketBuilder::new("T").event(), &h).unwrap_err();
        assert_eq!(err.code, "missing-calendar");
        assert!(err.message.contains("nope"), "{}", err.message);
    }
}
