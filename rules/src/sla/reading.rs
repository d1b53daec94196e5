//! Reading a ticket's clocks at an instant and placing its escalations: everything derived
//! from the stored history (start, pauses, stop) and the calendars, recomputed on demand.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::{ClockStop, SlaClock, SlaClocks, SlaError, StopReason};
use crate::calendar::{Calendar, CalendarError, CalendarSet};
use crate::model::{Escalation, EscalationTrigger, Metric};

/// What a clock reads at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockState {
    /// Counting.
    Running,
    /// Not counting: the ticket is in a paused status.
    Paused,
    /// Stopped before due.
    Met,
    /// Due has passed, whether the clock still runs, is paused or was met late.
    Breached,
    /// The metric's target was removed.
    Cancelled,
}

/// A clock read at an instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClockReading {
    /// The metric.
    pub metric: Metric,
    /// Calendar id.
    pub calendar: String,
    /// Target in business minutes.
    pub minutes: u32,
    /// Run number (see [`SlaClock::run`]).
    pub run: u32,
    /// State at the instant read.
    pub state: ClockState,
    /// When the target is (or was) due: `None` while paused before breaching, and for a
    /// clock stopped while paused.
    pub due: Option<Timestamp>,
    /// When the clock breached, if it has by the instant read.
    pub breached_at: Option<Timestamp>,
    /// Business seconds elapsed.
    pub elapsed_secs: i64,
    /// Business seconds left (negative once over).
    pub remaining_secs: i64,
    /// Elapsed over target, times 100 (over 100 once breached).
    pub percent_elapsed: f64,
    /// When this run started.
    pub started_at: Timestamp,
    /// When this run stopped, if it has.
    pub stopped_at: Option<Timestamp>,
}

/// When one step of an escalation plan fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationInstant {
    /// Index of the step in the plan.
    pub index: usize,
    /// The step's metric.
    pub metric: Metric,
    /// The clock run it belongs to: a restarted clock fires its escalations again.
    pub run: u32,
    /// The instant it fires (past ones included); `None` while the clock is paused before
    /// reaching it, or when the clock stopped before reaching it.
    pub at: Option<Timestamp>,
}

/// A running stretch of a clock: `(start, end)`, `end` `None` while still running.
type Segment = (Timestamp, Option<Timestamp>);

fn target_seconds(minutes: u32) -> i64 {
    i64::from(minutes) * 60
}

impl SlaClocks {
    /// The running stretches of `clock`, up to its stop.
    fn segments(&self, clock: &SlaClock) -> Vec<Segment> {
        let stop = clock.stop.map(|s| s.at);
        let mut out = Vec::new();
        let mut cur = clock.started_at;
        for pause in &self.pauses {
            if pause.until.is_some_and(|u| u <= cur) {
                continue;
            }
            if stop.is_some_and(|s| s <= pause.from.max(cur)) {
                break;
            }
            if pause.from > cur {
                out.push((cur, Some(pause.from)));
            }
            match pause.until {
                Some(until) => cur = cur.max(until),
                None => return out,
            }
        }
        match stop {
            Some(s) if s > cur => out.push((cur, Some(s))),
            Some(_) => {}
            None => out.push((cur, None)),
        }
        out
    }

    /// Reads the clock of `metric` at `now`; `None` when it has not started. `now` is meant
    /// to be at or after the last event: the state is the one the events so far left.
    ///
    /// # Errors
    ///
    /// [`CalendarError::UnknownCalendar`] when the clock's calendar is not in `calendars`.
    pub fn reading(
        &self,
        metric: Metric,
        now: Timestamp,
        calendars: &CalendarSet,
    ) -> Result<Option<ClockReading>, SlaError> {
        let Some(clock) = self.clock(metric) else {
            return Ok(None);
        };
        let calendar = calendars.get(&clock.calendar)?;
        let segments = self.segments(clock);
        let target = target_seconds(clock.minutes);

        let elapsed_secs: i64 = segments
            .iter()
            .map(|&(a, b)| calendar.business_seconds_between(a, b.map_or(now, |b| b.min(now))))
            .sum();
        let breach = instant_at(calendar, clock, &segments, target)?;
        let breached_at = breach.filter(|b| *b <= now);
        // While stopped, due is what it was at the stop: the run continued past it.
        let due = match (clock.stop, segments.last()) {
            (Some(stop), Some(&(from, Some(to)))) if breach.is_none() && to == stop.at => {
                let mut projected = segments.clone();
                *projected.last_mut().expect("not empty") = (from, None);
                instant_at(calendar, clock, &projected, target)?
            }
            _ => breach,
        };

        let state = match clock.stop {
            Some(ClockStop {
                reason: StopReason::Cancelled,
                ..
            }) => ClockState::Cancelled,
            _ if breached_at.is_some() => ClockState::Breached,
            Some(_) => ClockState::Met,
            None if segments.last().is_some_and(|s| s.1.is_none()) => ClockState::Running,
            None => ClockState::Paused,
        };
        Ok(Some(ClockReading {
            metric,
            calendar: clock.calendar.clone(),
            minutes: clock.minutes,
            run: clock.run,
            state,
            due,
            breached_at,
            elapsed_secs,
            remaining_secs: target - elapsed_secs,
            percent_elapsed: elapsed_secs as f64 * 100.0 / target.max(1) as f64,
            started_at: clock.started_at,
            stopped_at: clock.stop.map(|s| s.at),
        }))
    }

    /// Reads every started clock at `now`, in the order they started.
    ///
    /// # Errors
    ///
    /// As [`SlaClocks::reading`].
    pub fn readings(
        &self,
        now: Timestamp,
        calendars: &CalendarSet,
    ) -> Result<Vec<ClockReading>, SlaError> {
        let mut out = Vec::with_capacity(self.clocks.len());
        for clock in &self.clocks {
            out.extend(self.reading(clock.metric, now, calendars)?);
        }
        Ok(out)
    }

    /// The business seconds `metric`'s clock (its current run) has counted up to `now`,
    /// split at `cuts` (sorted instants): element `i` is what it counted between `cuts[i-1]`
    /// and `cuts[i]` (from the start for the first, on to `now` for the last), so
    /// `cuts.len() + 1` elements summing to the reading's `elapsed_secs`; all zero when the
    /// clock has not started.
    ///
    /// # Errors
    ///
    /// As [`SlaClocks::reading`].
    pub fn elapsed_split(
        &self,
        metric: Metric,
        now: Timestamp,
        calendars: &CalendarSet,
        cuts: &[Timestamp],
    ) -> Result<Vec<i64>, SlaError> {
        let mut out = vec![0; cuts.len() + 1];
        let Some(clock) = self.clock(metric) else {
            return Ok(out);
        };
        let calendar = calendars.get(&clock.calendar)?;
        for (start, end) in self.segments(clock) {
            let end = end.map_or(now, |e| e.min(now));
            for (i, part) in out.iter_mut().enumerate() {
                let lo = if i == 0 {
                    start
                } else {
                    start.max(cuts[i - 1])
                };
                let hi = cuts.get(i).map_or(end, |&c| end.min(c));
                if lo < hi {
                    *part += calendar.business_seconds_between(lo, hi);
                }
            }
        }
        Ok(out)
    }

    /// When `percent` of the target of `metric`'s clock will have elapsed (or had): `None`
    /// when the clock has not started, is stopped, or is paused before it gets there. The
    /// instant at which a reading's `percent_elapsed` first reaches `percent`.
    ///
    /// # Errors
    ///
    /// As [`SlaClocks::reading`].
    pub fn instant_at_percent(
        &self,
        metric: Metric,
        percent: u8,
        calendars: &CalendarSet,
    ) -> Result<Option<Timestamp>, SlaError> {
        let Some(clock) = self.clock(metric).filter(|c| c.stop.is_none()) else {
            return Ok(None);
        };
        let calendar = calendars.get(&clock.calendar)?;
        let threshold = (target_seconds(clock.minutes) * i64::from(percent) + 99) / 100;
        Ok(instant_at(
            calendar,
            clock,
            &self.segments(clock),
            threshold,
        )?)
    }

    /// When each step of `plan` fires, for the steps whose metric has a started clock, in plan
    /// order. Recompute after every event: pauses move the instants, stops cancel them.
    ///
    /// # Errors
    ///
    /// As [`SlaClocks::reading`].
    pub fn escalations(
        &self,
        plan: &[Escalation],
        calendars: &CalendarSet,
    ) -> Result<Vec<EscalationInstant>, SlaError> {
        let mut out = Vec::with_capacity(plan.len());
        for (index, step) in plan.iter().enumerate() {
            let Some(clock) = self.clock(step.metric) else {
                continue;
            };
            let calendar = calendars.get(&clock.calendar)?;
            let target = target_seconds(clock.minutes);
            let threshold = match step.trigger {
                EscalationTrigger::PercentElapsed(p) => (target * i64::from(p) + 99) / 100,
                EscalationTrigger::MinutesBeforeDue(m) => target - target_seconds(m),
                EscalationTrigger::MinutesAfterDue(m) => target + target_seconds(m),
            };
            let at = if clock
                .stop
                .is_some_and(|s| s.reason == StopReason::Cancelled)
            {
                None
            } else {
                instant_at(calendar, clock, &self.segments(clock), threshold)?
            };
            out.push(EscalationInstant {
                index,
                metric: step.metric,
                run: clock.run,
                at,
            });
        }
        Ok(out)
    }
}

/// The instant at which `threshold` business seconds have elapsed over `segments`; `None` when
/// the segments end (paused or stopped) before. A threshold of 0 or less is reached at once.
fn instant_at(
    calendar: &Calendar,
    clock: &SlaClock,
    segments: &[Segment],
    threshold: i64,
) -> Result<Option<Timestamp>, CalendarError> {
    if threshold <= 0 {
        return Ok(Some(clock.started_at));
    }
    let mut remaining = threshold;
    for &(start, end) in segments {
        if let Some(end) = end {
            let counted = calendar.business_seconds_between(start, end);
            if counted < remaining {
                remaining -= counted;
                continue;
            }
        }
        return calendar.add_business_seconds(start, remaining).map(Some);
    }
    Ok(None)
}
