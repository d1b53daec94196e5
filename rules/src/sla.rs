//! SLA clocks: the state a service stores per ticket, the events that move it, and what it
//! reads at any instant (due, elapsed, remaining, breach) and when each escalation fires.
//! Pure: every instant, `now` included, is a parameter, and the state is plain serde data.
//!
//! # Conventions
//!
//! - **One clock per metric.** `first_response` and `resolution` start when the ticket is
//!   created; `next_response` starts when the requester replies after a first response (and
//!   again after each response). Each target counts business minutes on its own calendar (see
//!   [`crate::calendar`] for how business time is counted).
//! - **Pauses are the ticket's.** While the ticket's status is one of the tenant's paused
//!   statuses, no clock of the ticket counts. The state keeps the pause history, not a running
//!   total, so everything below is recomputed exactly from it.
//! - **Elapsed** is the business time on the clock's calendar from its start to `now` (or to
//!   its stop), minus the paused stretches. **Remaining** is the target minus elapsed (negative
//!   once over). **Percent elapsed** is elapsed over target, times 100.
//! - **Due** is the instant elapsed reaches the target, assuming no further pause: it moves
//!   later by the paused business time, and is unknown (`None`) while paused unless the
//!   clock had already breached.
//! - **Breach**: a clock is breached from its due instant on; a target is met when the clock
//!   stops before due (a response in the due second is late).
//! - **A change of targets** (a priority change) applies retroactively: the clock keeps its
//!   original start and pause history, so elapsed time is kept and due is recomputed for the
//!   new target; a clock whose metric lost its target is cancelled; a new target counts from
//!   the ticket's creation. Met clocks keep the target they were judged on.
//! - **Reopening** a resolved ticket restarts `resolution` from zero as a new run; escalations
//!   of a run are its own ([`EscalationInstant::run`]). A resolution also meets every response
//!   clock still open.
//! - **Escalations** fire when elapsed business time reaches a threshold: `percent_elapsed`
//!   p% of the target (rounded up to the second), `minutes_before_due` the target minus N
//!   business minutes, `minutes_after_due` the target plus N business minutes. So they move
//!   with pauses like the due instant, and a met clock cancels those not yet reached.
//! - **Events must come in time order** (equal instants are fine): an event earlier than the
//!   last one applied is refused with [`SlaError::OutOfOrder`].

mod reading;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::calendar::CalendarError;
use crate::model::{Metric, SlaTarget};

pub use self::reading::{ClockReading, ClockState, EscalationInstant};

/// Why an SLA computation or event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SlaError {
    /// The clock's calendar is missing or the result is out of range.
    #[error(transparent)]
    Calendar(#[from] CalendarError),
    /// An event is earlier than the last event applied to the ticket's clocks.
    #[error("an SLA event at {at} is earlier than the previous one at {last}")]
    OutOfOrder {
        /// The refused event's instant.
        at: Timestamp,
        /// The last event applied.
        last: Timestamp,
    },
}

/// A stretch of time in a paused status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    /// When the ticket entered a paused status.
    pub from: Timestamp,
    /// When it left; `None` while still paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// Why a clock stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The target's condition was fulfilled (responded, resolved).
    Met,
    /// The metric's target was removed by a change of targets.
    Cancelled,
}

/// The end of a clock's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockStop {
    /// When it stopped.
    pub at: Timestamp,
    /// Why.
    pub reason: StopReason,
}

/// One metric's clock (its current run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClock {
    /// The metric.
    pub metric: Metric,
    /// Target in business minutes.
    pub minutes: u32,
    /// Calendar id the target counts on.
    pub calendar: String,
    /// 1 for the first run; each restart (reopen, new requester reply) adds one.
    pub run: u32,
    /// When this run started.
    pub started_at: Timestamp,
    /// When and why this run stopped; `None` while running or paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<ClockStop>,
}

/// The SLA clocks of one ticket: what a service stores and updates on each event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlaClocks {
    /// Ticket creation: where `first_response`, `resolution` and later-added targets start.
    pub created_at: Timestamp,
    /// Targets in force (the latest decision's), including ones whose clock has not started.
    pub targets: Vec<SlaTarget>,
    /// The clocks started so far, at most one per metric.
    pub clocks: Vec<SlaClock>,
    /// Stretches in a paused status, oldest first, disjoint; only the last may be open.
    #[serde(default)]
    pub pauses: Vec<Pause>,
    /// First response, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<Timestamp>,
    /// Resolution, while resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<Timestamp>,
    /// The last event applied; events may not go back before it.
    pub last_event_at: Timestamp,
}

fn is_paused_status(status: &str, paused_statuses: &[String]) -> bool {
    paused_statuses.iter().any(|s| s == status)
}

impl SlaClocks {
    /// The clocks of a ticket created at `created_at` with status `status`, for a decision's
    /// targets: `first_response` and `resolution` start now, `next_response` waits for a
    /// requester reply. `paused_statuses` is the tenant's setting.
    pub fn start(
        targets: &[SlaTarget],
        created_at: Timestamp,
        status: &str,
        paused_statuses: &[String],
    ) -> SlaClocks {
        let mut clocks = SlaClocks {
            created_at,
            targets: targets.to_vec(),
            clocks: Vec::new(),
            pauses: Vec::new(),
            responded_at: None,
            resolved_at: None,
            last_event_at: created_at,
        };
        for t in targets {
            if t.metric != Metric::NextResponse {
                clocks.clocks.push(new_clock(t, created_at, 1));
            }
        }
        if is_paused_status(status, paused_statuses) {
            clocks.pauses.push(Pause {
                from: created_at,
                until: None,
            });
        }
        clocks
    }

    fn event(&mut self, at: Timestamp) -> Result<(), SlaError> {
        if at < self.last_event_at {
            return Err(SlaError::OutOfOrder {
                at,
                last: self.last_event_at,
            });
        }
        self.last_event_at = at;
        Ok(())
    }

    /// Whether the ticket is in a paused status.
    pub fn is_paused(&self) -> bool {
        self.pauses.last().is_some_and(|p| p.until.is_none())
    }

    /// The clock of `metric`, if it has started.
    pub fn clock(&self, metric: Metric) -> Option<&SlaClock> {
        self.clocks.iter().find(|c| c.metric == metric)
    }

    fn clock_mut(&mut self, metric: Metric) -> Option<&mut SlaClock> {
        self.clocks.iter_mut().find(|c| c.metric == metric)
    }

    fn target(&self, metric: Metric) -> Option<&SlaTarget> {
        self.targets.iter().find(|t| t.metric == metric)
    }

    /// The ticket's status changed: clocks pause when it enters one of `paused_statuses` and
    /// resume when it leaves them.
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn set_status(
        &mut self,
        status: &str,
        paused_statuses: &[String],
        at: Timestamp,
    ) -> Result<(), SlaError> {
        self.event(at)?;
        let pause = is_paused_status(status, paused_statuses);
        match (pause, self.is_paused()) {
            (true, false) => self.pauses.push(Pause {
                from: at,
                until: None,
            }),
            (false, true) => {
                let last = self.pauses.len() - 1;
                if self.pauses[last].from == at {
                    self.pauses.pop();
                } else {
                    self.pauses[last].until = Some(at);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An agent responded: meets `first_response` and `next_response`.
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn respond(&mut self, at: Timestamp) -> Result<(), SlaError> {
        self.event(at)?;
        self.responded_at.get_or_insert(at);
        for metric in [Metric::FirstResponse, Metric::NextResponse] {
            self.stop(metric, at, StopReason::Met);
        }
        Ok(())
    }

    /// The requester replied: starts `next_response` (a new run) when it has a target, the
    /// first response was given, no next response is pending and the ticket is not resolved.
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn requester_replied(&mut self, at: Timestamp) -> Result<(), SlaError> {
        self.event(at)?;
        if self.responded_at.is_none() || self.resolved_at.is_some() {
            return Ok(());
        }
        self.restart(Metric::NextResponse, at);
        Ok(())
    }

    /// The ticket was resolved: meets `resolution` and any response clock still open.
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn resolve(&mut self, at: Timestamp) -> Result<(), SlaError> {
        self.event(at)?;
        self.resolved_at = Some(at);
        for metric in [
            Metric::FirstResponse,
            Metric::NextResponse,
            Metric::Resolution,
        ] {
            self.stop(metric, at, StopReason::Met);
        }
        Ok(())
    }

    /// A resolved ticket was reopened: `resolution` restarts from zero as a new run. Does
    /// nothing to a ticket that is not resolved.
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn reopen(&mut self, at: Timestamp) -> Result<(), SlaError> {
        self.event(at)?;
        if self.resolved_at.take().is_some() {
            self.restart(Metric::Resolution, at);
        }
        Ok(())
    }

    /// New targets (e.g. after a priority change), applied retroactively: a running or paused
    /// clock keeps its start and pauses and gets the new minutes and calendar; a clock whose
    /// metric has no target any more is cancelled; a target for a metric without a clock
    /// counts from creation (already met if the ticket was responded to or resolved).
    ///
    /// # Errors
    ///
    /// [`SlaError::OutOfOrder`] when `at` is before the last event.
    pub fn change_targets(&mut self, targets: &[SlaTarget], at: Timestamp) -> Result<(), SlaError> {
        self.event(at)?;
        self.targets = targets.to_vec();
        for clock in &mut self.clocks {
            let active = clock.stop.is_none();
            let cancelled = matches!(clock.stop, Some(s) if s.reason == StopReason::Cancelled);
            match targets.iter().find(|t| t.metric == clock.metric) {
                Some(t) if active || cancelled => {
                    clock.minutes = t.minutes;
                    clock.calendar.clone_from(&t.calendar);
                    clock.stop = None;
                }
                None if active => {
                    clock.stop = Some(ClockStop {
                        at,
                        reason: StopReason::Cancelled,
                    });
                }
                _ => {}
            }
        }
        for t in targets {
            if self.clock(t.metric).is_some() {
                continue;
            }
            let met_at = match t.metric {
                Metric::NextResponse => continue,
                Metric::FirstResponse => self.responded_at.or(self.resolved_at),
                Metric::Resolution => self.resolved_at,
            };
            let mut clock = new_clock(t, self.created_at, 1);
            clock.stop = met_at.map(|at| ClockStop {
                at,
                reason: StopReason::Met,
            });
            self.clocks.push(clock);
        }
        Ok(())
    }

    fn stop(&mut self, metric: Metric, at: Timestamp, reason: StopReason) {
        if let Some(clock) = self.clock_mut(metric)
            && clock.stop.is_none()
        {
            clock.stop = Some(ClockStop { at, reason });
        }
    }

    /// Starts a new run of `metric` at `at` if it has a target and is not already counting.
    fn restart(&mut self, metric: Metric, at: Timestamp) {
        let Some(target) = self.target(metric).cloned() else {
            return;
        };
        match self.clock_mut(metric) {
            Some(clock) if clock.stop.is_none() => {}
            Some(clock) => *clock = new_clock(&target, at, clock.run + 1),
            None => self.clocks.push(new_clock(&target, at, 1)),
        }
    }
}

fn new_clock(target: &SlaTarget, at: Timestamp, run: u32) -> SlaClock {
    SlaClock {
        metric: target.metric,
        minutes: target.minutes,
        calendar: target.calendar.clone(),
        run,
        started_at: at,
        stop: None,
    }
}
