//! Native test helpers: run a rule with plain `cargo test`, before building it to wasm, against
//! a host whose configuration and calendars the test supplies and whose log it can read. The
//! calendars use the same calendar engine as the Switchboard host, so business-time answers
//! match what the rule will see in production.

use std::cell::RefCell;
use std::collections::BTreeMap;

use switchboard_rules::{Calendar, CalendarSet, CalendarSpec};

use crate::{
    Change, EventKind, Field, Host, LogLevel, Priority, Requester, Ticket, TicketEvent, Timestamp,
};

/// A scripted [`Host`]: configuration and calendars set by the test, log captured.
///
/// The built-in `24x7` calendar is always present.
#[derive(Debug, Default)]
pub struct TestHost {
    config: BTreeMap<String, String>,
    calendars: CalendarSet,
    log: RefCell<Vec<(LogLevel, String)>>,
}

impl TestHost {
    /// A host with no configuration, only the `24x7` calendar, and an empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a configuration value.
    pub fn with_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.insert(key.into(), value.into());
        self
    }

    /// Adds a calendar from its JSON form (the same JSON the Switchboard API takes), e.g.
    /// `{"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}, "holidays": []}`.
    ///
    /// # Panics
    /// When the JSON is not a valid calendar: a test should fail loudly on a bad fixture.
    pub fn with_calendar(mut self, id: impl Into<String>, json: &str) -> Self {
        let id = id.into();
        let spec: CalendarSpec = serde_json::from_str::<CalendarSpec>(json)
            .unwrap_or_else(|e| panic!("calendar {id:?} is not valid calendar JSON: {e}"));
        let calendar =
            Calendar::new(&spec).unwrap_or_else(|e| panic!("calendar {id:?} is invalid: {e}"));
        self.calendars.insert(id, calendar);
        self
    }

    /// The log so far, as `level: message` lines.
    pub fn log_lines(&self) -> Vec<String> {
        self.log
            .borrow()
            .iter()
            .map(|(level, message)| format!("{}: {message}", level.as_str()))
            .collect()
    }

    /// Empties the log.
    pub fn clear_log(&self) {
        self.log.borrow_mut().clear();
    }

    fn calendar(&self, id: &str) -> Result<&Calendar, String> {
        self.calendars.get(id).map_err(|e| e.to_string())
    }
}

fn to_jiff(t: Timestamp) -> Result<jiff::Timestamp, String> {
    jiff::Timestamp::from_second(t).map_err(|e| format!("timestamp {t} out of range: {e}"))
}

impl Host for TestHost {
    fn log(&self, level: LogLevel, message: &str) {
        self.log.borrow_mut().push((level, message.to_owned()));
    }

    fn config(&self, key: &str) -> Option<String> {
        self.config.get(key).cloned()
    }

    fn add_business_minutes(
        &self,
        calendar: &str,
        start: Timestamp,
        minutes: u32,
    ) -> Result<Timestamp, String> {
        let due = self
            .calendar(calendar)?
            .add_business_minutes(to_jiff(start)?, minutes)
            .map_err(|e| e.to_string())?;
        Ok(due.as_second())
    }

    fn is_business_time(&self, calendar: &str, at: Timestamp) -> Result<bool, String> {
        Ok(self.calendar(calendar)?.is_open(to_jiff(at)?))
    }

    fn business_minutes_between(
        &self,
        calendar: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u32, String> {
        let secs = self
            .calendar(calendar)?
            .business_seconds_between(to_jiff(start)?, to_jiff(end)?);
        Ok(u32::try_from(secs / 60).unwrap_or(u32::MAX))
    }
}

/// Builds tickets and events for tests with sensible defaults: impact and urgency 3, status
/// `new`, created at 2026-01-05T09:00:00Z (a Monday).
#[derive(Debug, Clone)]
pub struct TicketBuilder {
    ticket: Ticket,
}

impl TicketBuilder {
    /// A ticket with external id `id`.
    pub fn new(id: &str) -> Self {
        let created = parse_time("2026-01-05T09:00:00Z");
        TicketBuilder {
            ticket: Ticket {
                id: id.to_owned(),
                subject: String::new(),
                description: String::new(),
                category: None,
                service: None,
                source: None,
                impact: 3,
                urgency: 3,
                priority: None,
                status: "new".to_owned(),
                requester: Requester {
                    email: "user@example.com".to_owned(),
                    department: None,
                    vip: false,
                },
                tags: Vec::new(),
                fields: Vec::new(),
                created_at: created,
                updated_at: created,
                queue: None,
                party: None,
            },
        }
    }

    /// Sets the subject.
    pub fn subject(mut self, subject: &str) -> Self {
        self.ticket.subject = subject.to_owned();
        self
    }

    /// Sets the category.
    pub fn category(mut self, category: &str) -> Self {
        self.ticket.category = Some(category.to_owned());
        self
    }

    /// Sets the affected service.
    pub fn service(mut self, service: &str) -> Self {
        self.ticket.service = Some(service.to_owned());
        self
    }

    /// Sets the impact (1–3).
    pub fn impact(mut self, impact: u8) -> Self {
        self.ticket.impact = impact;
        self
    }

    /// Sets the urgency (1–3).
    pub fn urgency(mut self, urgency: u8) -> Self {
        self.ticket.urgency = urgency;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: Priority) -> Self {
        self.ticket.priority = Some(priority);
        self
    }

    /// Marks the requester as VIP (or not).
    pub fn vip(mut self, vip: bool) -> Self {
        self.ticket.requester.vip = vip;
        self
    }

    /// Sets the requester's email and department.
    pub fn requester(mut self, email: &str, department: Option<&str>) -> Self {
        self.ticket.requester.email = email.to_owned();
        self.ticket.requester.department = department.map(str::to_owned);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.ticket.tags.push(tag.to_owned());
        self
    }

    /// Sets a custom field.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        self.ticket.fields.push(Field {
            key: key.to_owned(),
            value: value.to_owned(),
        });
        self
    }

    /// Sets the creation (and last-update) time, RFC 3339.
    ///
    /// # Panics
    /// When `rfc3339` is not a valid RFC 3339 timestamp.
    pub fn created(mut self, rfc3339: &str) -> Self {
        let t = parse_time(rfc3339);
        self.ticket.created_at = t;
        self.ticket.updated_at = t;
        self
    }

    /// The ticket.
    pub fn build(self) -> Ticket {
        self.ticket
    }

    /// The `created` event of the ticket, at its creation time.
    pub fn event(self) -> TicketEvent {
        TicketEvent {
            kind: EventKind::Created,
            at: self.ticket.created_at,
            ticket: self.ticket,
        }
    }

    /// An `updated` event with the given changes, at `rfc3339`.
    pub fn updated(self, changes: Vec<Change>, rfc3339: &str) -> TicketEvent {
        TicketEvent {
            kind: EventKind::Updated(changes),
            at: parse_time(rfc3339),
            ticket: self.ticket,
        }
    }
}

/// Parses an RFC 3339 timestamp into contract seconds.
///
/// # Panics
/// When the text is not a valid RFC 3339 timestamp.
pub fn parse_time(rfc3339: &str) -> Timestamp {
    rfc3339
        .parse::<jiff::Timestamp>()
        .unwrap_or_else(|e| panic!("{rfc3339:?} is not an RFC 3339 timestamp: {e}"))
        .as_second()
}
