//! The rule's window on the outside world, as a trait so the same rule code runs against the
//! real host imports inside the sandbox and against a scripted host in native unit tests.

use crate::__private::wit::switchboard::rules::host as imports;
use crate::{LogLevel, Timestamp};

/// What the host offers a rule while it runs.
pub trait Host {
    /// Appends a line to the rule log. The host caps the log at the tenant's log limit: a
    /// rule that logs past it fails with `log_limit` (and the tenant's fallback decision
    /// applies), so log what explains the decision, not everything.
    fn log(&self, level: LogLevel, message: &str);

    /// Reads a tenant configuration value; `None` when the key is not set.
    fn config(&self, key: &str) -> Option<String>;

    /// The instant `minutes` business minutes after `start` on the named calendar.
    fn add_business_minutes(
        &self,
        calendar: &str,
        start: Timestamp,
        minutes: u32,
    ) -> Result<Timestamp, String>;

    /// Whether the named calendar is open at `at`.
    fn is_business_time(&self, calendar: &str, at: Timestamp) -> Result<bool, String>;

    /// Whole business minutes between `start` and `end` on the named calendar.
    fn business_minutes_between(
        &self,
        calendar: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u32, String>;

    /// Logs at `info` level.
    fn info(&self, message: &str) {
        self.log(LogLevel::Info, message);
    }

    /// Logs at `warn` level.
    fn warn(&self, message: &str) {
        self.log(LogLevel::Warn, message);
    }
}

/// The host of a rule running inside Switchboard: each call is a contract import.
#[derive(Debug, Clone, Copy, Default)]
pub struct WasmHost;

impl Host for WasmHost {
    fn log(&self, level: LogLevel, message: &str) {
        imports::log(level, message);
    }

    fn config(&self, key: &str) -> Option<String> {
        imports::config(key)
    }

    fn add_business_minutes(
        &self,
        calendar: &str,
        start: Timestamp,
        minutes: u32,
    ) -> Result<Timestamp, String> {
        imports::add_business_minutes(calendar, start, minutes)
    }

    fn is_business_time(&self, calendar: &str, at: Timestamp) -> Result<bool, String> {
        imports::is_business_time(calendar, at)
    }

    fn business_minutes_between(
        &self,
        calendar: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u32, String> {
        imports::business_minutes_between(calendar, start, end)
    }
}
