//! Write Switchboard rule modules in Rust.
//!
//! A rule is a type implementing [`Rule`]: it receives one [`TicketEvent`] and answers with a
//! [`Decision`] (queue, party, tier, priority, SLA targets, escalations) or a [`RuleError`].
//! [`export_rule!`] turns it into a WebAssembly component implementing the contract
//! `switchboard:rules@0.1.0`; the host runs it in a sandbox, a fresh instance per ticket.
//! Everything the rule may ask of the outside world goes through the [`Host`] it is handed:
//! tenant configuration, business-time helpers and the rule log. In `cargo test` the same rule
//! runs natively against a [`testing::TestHost`] whose config, calendars and log the test
//! controls.
//!
//! ```
//! use switchboard_sdk::{Decision, Host, Metric, Party, Priority, Rule, RuleError, TicketEvent};
//!
//! /// Security incidents go to the MSP's SOC; everything else to the service desk.
//! pub struct SecurityFirst;
//!
//! impl Rule for SecurityFirst {
//!     fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
//!         let ticket = &event.ticket;
//!         if ticket.category.as_deref() == Some("security") {
//!             host.info("security incident: SOC");
//!             return Ok(Decision::new("soc", Party::Msp, 2, Priority::P1)
//!                 .sla(Metric::FirstResponse, 15, "24x7")
//!                 .escalate_at_percent(Metric::FirstResponse, 50, "soc-50", "msp-soc-oncall")
//!                 .reason("security incident"));
//!         }
//!         let queue = host.config("default-queue").unwrap_or_else(|| "service-desk".into());
//!         Ok(Decision::new(queue, Party::Msp, 1, ticket.default_priority())
//!             .sla(Metric::Resolution, 8 * 60, "business-hours")
//!             .reason("default route"))
//!     }
//! }
//!
//! // In the rule crate: `switchboard_sdk::export_rule!(SecurityFirst);`
//! // (crate-type = ["cdylib", "rlib"], built with `cargo build --release --target wasm32-wasip2`).
//!
//! # #[cfg(not(target_arch = "wasm32"))]
//! # fn main() {
//! use switchboard_sdk::testing::{TestHost, TicketBuilder};
//!
//! let host = TestHost::new().with_config("default-queue", "desk-a");
//! let event = TicketBuilder::new("T-1").category("security").created("2026-03-02T10:00:00Z").event();
//! let decision = SecurityFirst::route(&event, &host).unwrap();
//! assert_eq!((decision.queue.as_str(), decision.priority), ("soc", Priority::P1));
//! assert_eq!(host.log_lines(), vec!["info: security incident: SOC".to_string()]);
//!
//! let event = TicketBuilder::new("T-2").category("printing").impact(2).urgency(2).event();
//! let decision = SecurityFirst::route(&event, &host).unwrap();
//! assert_eq!((decision.queue.as_str(), decision.priority), ("desk-a", Priority::P3));
//! # }
//! # #[cfg(target_arch = "wasm32")]
//! # fn main() {}
//! ```
#![deny(missing_docs)]

mod builders;
mod host;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

pub use __private::wit::switchboard::rules::types::{
    Change, Decision, Escalation, EscalationTrigger, EventKind, Field, LogLevel, Metric, Party,
    Priority, Requester, RuleError, SlaTarget, Ticket, TicketEvent, Timestamp,
};
pub use host::{Host, WasmHost};

/// The contract version this SDK builds rules against.
pub const CONTRACT_VERSION: &str = "0.1.0";

/// A tenant's routing rule.
pub trait Rule {
    /// Routes one ticket event. Return `Err` for conditions the rule wants reported as a rule
    /// error (the host then applies the tenant's fallback decision and records the error).
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError>;
}

/// Exports a [`Rule`] as the component's `route` function.
///
/// ```
/// use switchboard_sdk::{Decision, Host, Party, Priority, Rule, RuleError, TicketEvent};
///
/// struct Everything;
///
/// impl Rule for Everything {
///     fn route(_: &TicketEvent, _: &dyn Host) -> Result<Decision, RuleError> {
///         Ok(Decision::new("service-desk", Party::Msp, 1, Priority::P3))
///     }
/// }
///
/// switchboard_sdk::export_rule!(Everything);
/// ```
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        #[allow(unsafe_code)]
        const _: () = {
            struct __SwitchboardComponent;

            impl $crate::__private::Guest for __SwitchboardComponent {
                fn route(
                    event: $crate::TicketEvent,
                ) -> ::core::result::Result<$crate::Decision, $crate::RuleError> {
                    <$rule as $crate::Rule>::route(&event, &$crate::WasmHost)
                }
            }

            $crate::__private::wit::__export_ticket_rules!(
                __SwitchboardComponent with_types_in $crate::__private::wit
            );
        };
    };
}

/// The bindings generated from the frozen WIT, for [`export_rule!`]; not part of the API.
#[doc(hidden)]
pub mod __private {
    /// Generated bindings.
    #[allow(unsafe_code, missing_docs, unreachable_pub, clippy::all)]
    pub mod wit {
        wit_bindgen::generate!({
            path: "../rules/wit/v0.1.0",
            world: "ticket-rules",
            pub_export_macro: true,
            export_macro_name: "__export_ticket_rules",
            default_bindings_module: "::switchboard_sdk::__private::wit",
            generate_unused_types: true,
            additional_derives: [PartialEq, Eq],
        });
    }
    pub use wit::Guest;
}
