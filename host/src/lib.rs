//! The Switchboard service: runs tenants' rule modules in a wasmtime sandbox and serves them
//! over HTTP with durable tickets, SLA clocks, escalation timers, signed webhooks and cron
//! schedules. The binary
//! (`src/main.rs`) only parses arguments and calls into this library, so tests and benches
//! drive exactly the code users run.

pub mod api;
pub mod cli;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod runtime;
pub mod schedules;
pub mod serve;
pub mod service;
pub mod store;
pub mod timers;
pub mod webhooks;

pub use limits::Limits;
pub use runtime::{
    EvalContext, EvalError, EvalFailure, Evaluation, LoadError, RuleModule, Runtime, RuntimeConfig,
};
