//! {{name}}: a Switchboard rule. Security incidents go to the MSP's SOC at p1 with a 15-minute
//! first response around the clock; everything else to the MSP service desk.
//!
//! Test: `cargo test`. Build: `cargo build --release --target wasm32-wasip2`, then
//! `switchboard rules check target/wasm32-wasip2/release/{{crate}}.wasm`.

use switchboard_sdk::{Decision, Host, Metric, Party, Priority, Rule, RuleError, TicketEvent};

/// The rule.
pub struct MyRule;

impl Rule for MyRule {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let ticket = &event.ticket;
        if ticket.category.as_deref() == Some("security") {
            return Ok(Decision::new("soc", Party::Msp, 2, Priority::P1)
                .sla(Metric::FirstResponse, 15, "24x7")
                .escalate_at_percent(Metric::FirstResponse, 50, "soc-50", "msp-soc-oncall")
                .reason("security incident: MSP SOC"));
        }
        let calendar = host.config("calendar").unwrap_or_else(|| "24x7".to_owned());
        Ok(Decision::new("service-desk", Party::Msp, 1, ticket.default_priority())
            .sla(Metric::FirstResponse, 120, calendar)
            .reason("standard request: MSP service desk"))
    }
}

switchboard_sdk::export_rule!(MyRule);

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_sdk::testing::{TestHost, TicketBuilder};

    #[test]
    fn security_goes_to_the_soc() {
        let event = TicketBuilder::new("S-1").category("security").event();
        let d = MyRule::route(&event, &TestHost::new()).unwrap();
        assert_eq!((d.queue.as_str(), d.priority), ("soc", Priority::P1));
    }

    #[test]
    fn everything_else_goes_to_the_service_desk() {
        let event = TicketBuilder::new("R-1").category("printing").event();
        let d = MyRule::route(&event, &TestHost::new()).unwrap();
        assert_eq!(d.queue, "service-desk");
    }
}
