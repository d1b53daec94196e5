//! The Switchboard service: runs tenants' rule modules in a wasmtime sandbox and serves them
//! over HTTP with durable tickets, SLA clocks, escalation timers, signed webhooks and cron
//! schedules. The binary (`src/main.rs`) only parses arguments and calls into this library,
//! so tests and benches drive exactly the code users run.
//!
//! Modules are layered, and each uses only the layers below it (see `docs/ARCHITECTURE.md`):
//!
//! 1. infrastructure — [`store`], [`runtime`], [`limits`], [`metrics`], [`webhooks`],
//!    [`cron`], [`background`];
//! 2. domain — [`refusal`], [`board`], [`reports`], [`tenants`], [`lifecycle`], [`endpoints`], [`timers`],
//!    [`tickets`], [`replay`], [`schedules`], [`cluster`];
//! 3. wiring — [`service`];
//! 4. edges — [`api`], [`cli`], [`serve`].

pub mod background;
pub mod cron;
pub mod limits;
pub mod metrics;
pub mod runtime;
pub mod store;
pub mod webhooks;

pub mod board;
pub mod cluster;
pub mod endpoints;
pub mod lifecycle;
pub mod refusal;
pub mod replay;
pub mod reports;
pub mod schedules;
pub mod tenants;
pub mod tickets;
pub mod timers;

pub mod service;

pub mod api;
pub mod cli;
pub mod scaffold;
pub mod serve;

#[cfg(test)]
mod test_support;

pub use limits::{Limits, RuleLimits, Toolchain, ToolchainLimits};
pub use runtime::{
    Checked, EvalContext, EvalError, EvalFailure, Evaluation, LoadError, RuleModule, Runtime,
    RuntimeConfig,
};
