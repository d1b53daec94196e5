//! The rule contract and domain core of Switchboard, kept pure (no I/O, no wasmtime) so the
//! host, the guest SDK's native test helpers and the benches all share one definition of a
//! ticket, a decision and business time, and so the calendar math can be tested exhaustively.

pub mod calendar;
pub mod contract;
pub mod fallback;
pub mod model;
pub mod priority;
pub mod sla;

pub use calendar::{ALWAYS_OPEN, Calendar, CalendarError, CalendarSet, CalendarSpec};
pub use fallback::builtin_fallback;
pub use model::{
    Change, Decision, Escalation, EscalationTrigger, EventKind, InvalidDecision, LogLevel, Metric,
    Party, Priority, Requester, RuleError, SlaTarget, Ticket, TicketEvent, TicketInput,
};
pub use sla::{
    ClockReading, ClockState, ClockStop, EscalationInstant, Pause, SlaClock, SlaClocks, SlaError,
    StopReason,
};
