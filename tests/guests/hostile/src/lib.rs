//! A hostile rule for the sandbox tests. The ticket's category picks the misbehaviour, so one
//! component exercises every limit; any other category gets a well-formed decision.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::hint::black_box;

use switchboard_sdk::{
    Decision, Host, LogLevel, Metric, Party, Priority, Rule, RuleError, TicketEvent,
};

/// The rule.
pub struct Hostile;

/// Recursion on the wasm (native) stack: no locals in linear memory.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    recurse(black_box(depth + 1)).wrapping_mul(3) ^ depth
}

/// Recursion with big frames, which Rust keeps on its shadow stack in linear memory.
#[allow(unconditional_recursion)]
fn recurse_big(depth: u64, pad: [u64; 64]) -> u64 {
    let next = black_box(pad);
    recurse_big(depth + 1, next) + next[(depth % 64) as usize]
}

impl Rule for Hostile {
    fn route(event: &TicketEvent, host: &dyn Host) -> Result<Decision, RuleError> {
        let ok = || Decision::new("desk", Party::Msp, 1, Priority::P3).reason("fine");
        match event.ticket.category.as_deref().unwrap_or("") {
            "loop" => loop {
                black_box(());
            },
            "slow" => {
                // Finite, but far longer than any wall-clock limit.
                let mut x = 0u64;
                for i in 0..u64::MAX {
                    x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
                }
                Ok(ok().reason(format!("{x}")))
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    black_box(&hoard);
                }
            }
            "recursion" => Ok(ok().reason(format!("{}", recurse(0)))),
            "deep-frames" => Ok(ok().reason(format!("{}", recurse_big(0, [1; 64])))),
            "huge-output" => Ok(ok().reason("x".repeat(2 << 20))),
            "huge-log" => {
                let line = "y".repeat(1024);
                for _ in 0..10_000 {
                    host.log(LogLevel::Info, &line);
                }
                Ok(ok())
            }
            "empty-log-flood" => {
                // Empty lines used to be free (the limit counted text only).
                for _ in 0..10_000_000 {
                    host.log(LogLevel::Info, "");
                }
                Ok(ok())
            }
            "stdout-flood" => {
                for i in 0..100_000 {
                    println!("line {i} of a rule that prints far too much");
                }
                Ok(ok())
            }
            "panic" => panic!("the rule gave up on ticket {}", event.ticket.id),
            "tier9" => Ok(Decision::new("desk", Party::Msp, 9, Priority::P3)),
            "unknown-calendar" => Ok(ok().sla(Metric::FirstResponse, 30, "no-such-calendar")),
            "rule-error" => Err(RuleError {
                code: "not-mine".into(),
                message: "this rule refuses the ticket".into(),
            }),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(ok())
            }
            "clock-and-random" => {
                // Reads the wall clock and the random source (RandomState keys come from
                // wasi:random); the sandbox makes both deterministic per event.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let hash = RandomState::new().hash_one(event.ticket.id.as_str());
                println!("clock {now} hash {hash:016x}");
                Ok(ok().reason(format!("clock={now} hash={hash:016x}")))
            }
            "remember" => {
                // A rule that tries to carry state from one ticket to the next.
                static mut COUNT: u32 = 0;
                #[allow(unsafe_code)]
                let seen = unsafe {
                    COUNT += 1;
                    COUNT
                };
                Ok(ok().reason(format!("seen {seen}")))
            }
            _ => Ok(ok()),
        }
    }
}

switchboard_sdk::export_rule!(Hostile);
