//! The error taxonomy of the runtime. Load errors say why a module may not run at all;
//! evaluation errors keep apart what the sandbox stopped (a limit, a trap), what the rule
//! reported on purpose, and what it returned that cannot be applied, because each calls for a
//! different reaction from the tenant (raise a limit, fix a bug, fix config, fix the decision).

use std::fmt;
use std::time::Duration;

use serde::Serialize;
use switchboard_rules::{InvalidDecision, RuleError};

/// Why a module was refused at load (upload, `rules check`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file is bigger than the tenant's module limit for its toolchain.
    #[error("module is {size} bytes, over the limit of {limit} bytes for {} rules", toolchain.as_str())]
    TooLarge {
        /// Module size.
        size: usize,
        /// The limit.
        limit: usize,
        /// The toolchain whose limit applies.
        toolchain: crate::limits::Toolchain,
    },
    /// The file is not WebAssembly at all.
    #[error("not a WebAssembly file (no `\\0asm` header)")]
    NotWasm,
    /// A core module: rules must be components.
    #[error(
        "this is a core WebAssembly module, not a component; build with `--target wasm32-wasip2` or componentize it with `wasm-tools component new`"
    )]
    NotAComponent,
    /// wasmtime could not compile the component.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// It imports something the sandbox does not offer.
    #[error("import {name:?} is not allowed: a rule may import only {allowed}")]
    ForbiddenImport {
        /// The import.
        name: String,
        /// What may be imported.
        allowed: &'static str,
    },
    /// It targets a contract version this host does not support.
    #[error("contract version {found} is not supported (supported: {supported})")]
    UnsupportedContract {
        /// The version found.
        found: String,
        /// The versions this host accepts.
        supported: String,
    },
    /// It does not export a `route` function with the contract's signature.
    #[error("the component does not implement the rule contract: {0}")]
    NotARule(String),
    /// Its structure is past a limit checked before compiling (see
    /// [`StructureLimits`](super::StructureLimits)).
    #[error(
        "the component is too complex to compile safely: {what} is {value}, the limit is {limit}"
    )]
    TooComplex {
        /// Which structural limit.
        what: &'static str,
        /// What the component has.
        value: u64,
        /// The limit.
        limit: u64,
    },
    /// Compiling it ran past the compile budget (time or memory) and was stopped.
    #[error("compiling the component ran past its budget and was stopped: {0}")]
    CompileBudget(String),
    /// It compiled, but could not start and answer a sample ticket within its limits: it
    /// would fail on every ticket once active.
    #[error("the rule cannot start within its limits ({} rules): {reason}", toolchain.as_str())]
    CannotStart {
        /// What stopped it, as the evaluation reported it.
        reason: String,
        /// The toolchain whose limits applied.
        toolchain: crate::limits::Toolchain,
    },
    /// The artifact cache could not be written or read.
    #[error("artifact cache: {0}")]
    Cache(#[from] std::io::Error),
}

impl LoadError {
    /// The code of [`LoadError::CannotStart`]: compiled, but it could not start on the sample
    /// ticket.
    pub const CANNOT_START: &'static str = "cannot_start";

    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            LoadError::TooLarge { .. } => "module_too_large",
            LoadError::NotWasm => "not_wasm",
            LoadError::NotAComponent => "not_a_component",
            LoadError::Invalid(_) => "invalid_component",
            LoadError::ForbiddenImport { .. } => "forbidden_import",
            LoadError::UnsupportedContract { .. } => "unsupported_contract",
            LoadError::NotARule(_) => "not_a_rule",
            LoadError::TooComplex { .. } => "too_complex",
            LoadError::CompileBudget(_) => "compile_budget",
            LoadError::CannotStart { .. } => Self::CANNOT_START,
            LoadError::Cache(_) => "artifact_cache",
        }
    }
}

/// What went wrong in one evaluation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EvalFailure {
    /// The instruction budget ran out.
    #[error("instruction budget exhausted: all {limit} units of fuel used")]
    FuelExhausted {
        /// The budget.
        limit: u64,
    },
    /// The wall-clock deadline passed.
    #[error("wall-clock limit exceeded: still running after {limit_ms} ms")]
    WallClock {
        /// The deadline.
        limit_ms: u64,
    },
    /// The rule asked for more linear memory than allowed.
    #[error(
        "memory limit exceeded: asked for {requested} bytes of linear memory, the limit is {limit}"
    )]
    MemoryLimit {
        /// The size asked for.
        requested: u64,
        /// The limit.
        limit: u64,
    },
    /// The rule recursed past the stack limit.
    #[error("stack overflow: the rule used more than {limit} bytes of stack")]
    StackOverflow {
        /// The stack limit.
        limit: u64,
    },
    /// The ticket event is bigger than the input limit (the rule did not run).
    #[error("input too large: the ticket event has {size} bytes of text, the limit is {limit}")]
    InputLimit {
        /// Size of the event.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The decision or error the rule returned is bigger than the output limit.
    #[error("output too large: the rule returned {size} bytes of text, the limit is {limit}")]
    OutputLimit {
        /// Size of the output.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The rule handed the host a value (its answer, or a host call's argument) bigger than
    /// the host will copy; wasmtime refused it while lifting, so nothing was copied. Reported
    /// with the kind `output_limit`.
    #[error(
        "output too large: the rule handed the host a value needing more than {limit} bytes of host memory (its answer or a host call's argument); it was refused before it was copied"
    )]
    #[serde(rename = "output_limit")]
    CopyLimit {
        /// The most host memory one value may take.
        limit: u64,
    },
    /// The rule wrote more to its log than allowed.
    #[error(
        "log limit exceeded: the rule tried to log {attempted} bytes (each line counts 32 bytes besides its text), the limit is {limit}"
    )]
    LogLimit {
        /// Bytes the rule tried to write in all.
        attempted: u64,
        /// The limit.
        limit: u64,
    },
    /// The rule trapped (a panic, `unreachable`, an out-of-bounds access, a forbidden call).
    #[error("trap: {message}")]
    Trap {
        /// What wasmtime reported.
        message: String,
    },
    /// The rule reported an error on purpose.
    #[error("rule error {}: {}", error.code, error.message)]
    RuleError {
        /// What the rule returned.
        error: RuleError,
    },
    /// The rule returned a decision that breaks the contract.
    #[error("{message}")]
    InvalidDecision {
        /// What is wrong with it.
        message: String,
    },
    /// The host failed (not the rule's fault).
    #[error("host error: {message}")]
    Host {
        /// What failed.
        message: String,
    },
}

impl From<InvalidDecision> for EvalFailure {
    fn from(e: InvalidDecision) -> Self {
        EvalFailure::InvalidDecision {
            message: e.to_string(),
        }
    }
}

/// The broad class of an evaluation failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The sandbox stopped the rule at a limit.
    Limit,
    /// The rule crashed.
    Trap,
    /// The rule reported an error.
    Reported,
    /// The rule's answer cannot be applied.
    Invalid,
    /// The host failed.
    Host,
}

impl EvalFailure {
    /// A stable, machine-readable kind (`fuel_exhausted`, `wall_clock`, …), as used in metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            EvalFailure::FuelExhausted { .. } => "fuel_exhausted",
            EvalFailure::WallClock { .. } => "wall_clock",
            EvalFailure::MemoryLimit { .. } => "memory_limit",
            EvalFailure::StackOverflow { .. } => "stack_overflow",
            EvalFailure::InputLimit { .. } => "input_limit",
            EvalFailure::OutputLimit { .. } | EvalFailure::CopyLimit { .. } => "output_limit",
            EvalFailure::LogLimit { .. } => "log_limit",
            EvalFailure::Trap { .. } => "trap",
            EvalFailure::RuleError { .. } => "rule_error",
            EvalFailure::InvalidDecision { .. } => "invalid_decision",
            EvalFailure::Host { .. } => "host_error",
        }
    }

    /// The broad class.
    pub fn class(&self) -> FailureClass {
        match self {
            EvalFailure::FuelExhausted { .. }
            | EvalFailure::WallClock { .. }
            | EvalFailure::MemoryLimit { .. }
            | EvalFailure::StackOverflow { .. }
            | EvalFailure::InputLimit { .. }
            | EvalFailure::OutputLimit { .. }
            | EvalFailure::CopyLimit { .. }
            | EvalFailure::LogLimit { .. } => FailureClass::Limit,
            EvalFailure::Trap { .. } => FailureClass::Trap,
            EvalFailure::RuleError { .. } => FailureClass::Reported,
            EvalFailure::InvalidDecision { .. } => FailureClass::Invalid,
            EvalFailure::Host { .. } => FailureClass::Host,
        }
    }
}

/// An evaluation failure with the context an operator needs: which tenant, which rule version,
/// which ticket, and how much of the budget was spent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EvalError {
    /// Tenant id.
    pub tenant: String,
    /// Rule version (or the module's sha256 prefix when it has no version yet).
    pub version: String,
    /// External ticket id.
    pub ticket: String,
    /// What went wrong.
    pub failure: EvalFailure,
    /// Fuel used before it went wrong.
    pub fuel_used: u64,
    /// Wall-clock time spent.
    #[serde(serialize_with = "micros")]
    pub elapsed: Duration,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {} rule {} ticket {}: {} (fuel used {}, {} µs)",
            self.tenant,
            self.version,
            self.ticket,
            self.failure,
            self.fuel_used,
            self.elapsed.as_micros()
        )
    }
}

impl std::error::Error for EvalError {}
