//! Reading a report: the period's whole UTC days from the day rows and its ragged ends from
//! the quarter-hour rows, rolled up to the groups asked for. A year is a few thousand rows
//! whatever the number of tickets, read in one snapshot.

use std::collections::BTreeMap;

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::Serialize;
use switchboard_rules::{Metric, Party, Priority};
use utoipa::ToSchema;

use crate::refusal::Refusal;
use crate::store::aggregates::{
    self, Counts, Histogram, QUARTER_SECS, QUARTERS_PER_DAY, REPORT_COUNTS, REPORT_DURATIONS,
};
use crate::store::{self, Order, Span, Store, StoreError};

/// The longest period a report covers, in days.
pub const MAX_DAYS: i64 = 400;
/// The period when none is given: the last 30 days, today included.
const DEFAULT_DAYS: i64 = 30;

/// What a report's rows can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupKey {
    /// The party a figure is attributed to.
    Party,
    /// The queue.
    Queue,
    /// The ticket's priority.
    Priority,
    /// The SLA metric.
    Metric,
    /// The calendar of the SLA target.
    Calendar,
}

impl GroupKey {
    const ALL: [(GroupKey, &'static str); 5] = [
        (GroupKey::Party, "party"),
        (GroupKey::Queue, "queue"),
        (GroupKey::Priority, "priority"),
        (GroupKey::Metric, "metric"),
        (GroupKey::Calendar, "calendar"),
    ];

    /// The name in `group_by` and in CSV headers.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("", |(_, n)| n)
    }

    /// Reads `group_by`: names separated by commas, each once (`party` when absent; an
    /// empty value gives one row of totals).
    pub fn parse_list(text: Option<&str>) -> Result<Vec<GroupKey>, Refusal> {
        let Some(text) = text else {
            return Ok(vec![GroupKey::Party]);
        };
        let mut out = Vec::new();
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some((key, _)) = Self::ALL.iter().find(|(_, n)| *n == name) else {
                return Err(Refusal::invalid(
                    "invalid_query",
                    format!(
                        "`group_by` names {name:?}; it takes party, queue, priority, metric and calendar, separated by commas"
                    ),
                ));
            };
            if out.contains(key) {
                return Err(Refusal::invalid(
                    "invalid_query",
                    format!("`group_by` names {name:?} twice"),
                ));
            }
            out.push(*key);
        }
        Ok(out)
    }
}

/// A report's period: whole days, `from` to `to` inclusive, in the time zone `tz`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Period {
    /// The first day.
    #[schema(value_type = String, format = Date)]
    pub from: Date,
    /// The last day (included).
    #[schema(value_type = String, format = Date)]
    pub to: Date,
    /// The time zone the days are in (IANA name).
    pub tz: String,
    /// When the period starts (`from` at midnight in `tz`).
    #[schema(value_type = String, format = DateTime)]
    pub start: Timestamp,
    /// When it ends (the day after `to` at midnight in `tz`), excluded.
    #[schema(value_type = String, format = DateTime)]
    pub end: Timestamp,
}

impl Period {
    /// The period of `from`, `to` (dates, `YYYY-MM-DD`) and `tz` (default `UTC`); without
    /// `to`, today in `tz` at `now`; without `from`, 30 days up to `to`. Refuses a bad date or
    /// zone, `to` before `from`, and more than [`MAX_DAYS`] days, naming the parameter.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        tz: Option<&str>,
        now: Timestamp,
    ) -> Result<Period, Refusal> {
        let bad = |m: String| Refusal::invalid("invalid_query", m);
        let tz_name = tz.unwrap_or("UTC");
        let zone = TimeZone::get(tz_name).map_err(|_| {
            bad(format!(
                "`tz` must be an IANA time zone name such as Europe/Berlin, got {tz_name:?}"
            ))
        })?;
        let date = |name: &str, text: &str| {
            text.parse::<Date>().map_err(|_| {
                bad(format!(
                    "`{name}` must be a date as YYYY-MM-DD, got {text:?}"
                ))
            })
        };
        let to = match to {
            Some(t) => date("to", t)?,
            None => now.to_zoned_datetime(zone.clone()).date(),
        };
        let from = match from {
            Some(f) => date("from", f)?,
            None => to
                .checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
                .map_err(|e| bad(format!("`to` is too early: {e}")))?,
        };
        Period::of(from, to, &zone, tz_name)
    }

    /// The period of days `from` to `to` in `zone` (named `tz_name`).
    fn of(from: Date, to: Date, zone: &TimeZone, tz_name: &str) -> Result<Period, Refusal> {
        let bad = |m: String| Refusal::invalid("invalid_query", m);
        if to < from {
            return Err(bad(format!("`to` ({to}) is before `from` ({from})")));
        }
        let days = i64::from(
            to.since(from)
                .map_err(|e| bad(format!("`from`/`to`: {e}")))?
                .get_days(),
        ) + 1;
        if days > MAX_DAYS {
            return Err(bad(format!(
                "`from` to `to` is {days} days; a report covers at most {MAX_DAYS}"
            )));
        }
        let midnight = |name: &str, d: Date| {
            d.to_zoned_datetime(zone.clone())
                .map(|z| z.timestamp())
                .map_err(|e| bad(format!("`{name}` has no midnight in {tz_name}: {e}")))
        };
        let start = midnight("from", from)?;
        let after = to
            .tomorrow()
            .map_err(|e| bad(format!("`to` is too late: {e}")))?;
        let end = midnight("to", after)?;
        Ok(Period {
            from,
            to,
            tz: tz_name.to_owned(),
            start,
            end,
        })
    }

    /// The 7 days up to and including `now`'s day in `zone` (named `tz_name`).
    pub fn week_to(now: Timestamp, zone: &TimeZone, tz_name: &str) -> Result<Period, Refusal> {
        let to = now.to_zoned_datetime(zone.clone()).date();
        let from = to
            .checked_sub(jiff::Span::new().days(6))
            .map_err(|e| Refusal::invalid("invalid_query", e.to_string()))?;
        Period::of(from, to, zone, tz_name)
    }

    /// `(day rows?, from, to)` ranges covering the period: its whole UTC days, and the
    /// quarter hours before and after them.
    fn ranges(&self) -> Vec<(bool, i64, i64)> {
        let q = |t: Timestamp| t.as_second().div_euclid(QUARTER_SECS);
        let (start, end) = (q(self.start), q(self.end));
        let first_day = (start + QUARTERS_PER_DAY - 1).div_euclid(QUARTERS_PER_DAY);
        let last_day = end.div_euclid(QUARTERS_PER_DAY);
        if first_day >= last_day {
            return vec![(false, start, end)];
        }
        vec![
            (false, start, first_day * QUARTERS_PER_DAY),
            (true, first_day, last_day),
            (false, last_day * QUARTERS_PER_DAY, end),
        ]
    }
}

/// One row of a report: its group keys (those grouped by) and figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct ReportRow {
    /// The party (grouped by party).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub party: Option<Party>,
    /// The queue (grouped by queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// The priority (grouped by priority).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The metric (grouped by metric).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// The calendar (grouped by calendar).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calendar: Option<String>,
    /// Tickets created in the period (grouped by metric or calendar: those with such a clock).
    pub tickets: i64,
    /// Of those, resolved now.
    pub resolved: i64,
    /// SLA clocks that met their target.
    pub met: i64,
    /// SLA clocks that breached it.
    pub breached: i64,
    /// SLA clocks still running or paused, within their target.
    pub running: i64,
    /// `met / (met + breached) × 100`, to two decimals; `null` with no clock ended.
    pub compliance_percent: Option<f64>,
    /// Median business seconds to first response, of the clocks that stopped.
    pub first_response_p50_secs: Option<i64>,
    /// 90th percentile business seconds to first response.
    pub first_response_p90_secs: Option<i64>,
    /// Median business seconds to resolution, of the clocks that stopped.
    pub resolution_p50_secs: Option<i64>,
    /// 90th percentile business seconds to resolution.
    pub resolution_p90_secs: Option<i64>,
    /// Escalation steps fired.
    pub escalations: i64,
    /// Handoffs between parties or queues.
    pub handoffs: i64,
}

/// A report.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Report {
    /// The period (its fields sit at the top level of the answer).
    #[serde(flatten)]
    pub period: Period,
    /// The keys the rows are grouped by, in the order asked.
    pub group_by: Vec<GroupKey>,
    /// One per group with any ticket, sorted by the group keys.
    pub rows: Vec<ReportRow>,
}

/// A group's keys, in the rows' sort order.
type RowKey = (
    Option<Party>,
    Option<String>,
    Option<Priority>,
    Option<Metric>,
    Option<String>,
);

#[derive(Default)]
struct Acc {
    counts: Counts,
    first_response: BTreeMap<u32, i64>,
    resolution: BTreeMap<u32, i64>,
}

/// The nearest-rank `p`th percentile of `hist`, as the floor of its bucket.
pub fn percentile(hist: &BTreeMap<u32, i64>, p: i64) -> Option<i64> {
    let n: i64 = hist.values().sum();
    if n <= 0 {
        return None;
    }
    let rank = ((p * n + 99) / 100).max(1);
    let mut seen = 0;
    for (b, c) in hist {
        seen += c;
        if seen >= rank {
            return Some(aggregates::bucket_floor(*b));
        }
    }
    None
}

/// A group, as parsed from its row key.
struct Group<'a> {
    party: Party,
    queue: &'a str,
    priority: Priority,
    metric: Option<Metric>,
    calendar: Option<&'a str>,
}

/// The group of a row key; `None` for a key that does not parse.
fn parse_group(row: &str) -> Option<Group<'_>> {
    let parts = aggregates::group_parts(aggregates::group_of_row(row))?;
    let metric = match parts.metric {
        Some(m) => Some(Metric::from_name(m)?),
        None => None,
    };
    Some(Group {
        party: Party::from_name(parts.party)?,
        queue: parts.queue,
        priority: Priority::from_name(parts.priority)?,
        metric,
        calendar: parts.calendar,
    })
}

/// Tenant `tenant`'s report over `period`, grouped by `group_by`.
pub fn report(
    store: &Store,
    tenant: &str,
    period: &Period,
    group_by: &[GroupKey],
) -> Result<Report, StoreError> {
    let by = |k| group_by.contains(&k);
    let by_clock = by(GroupKey::Metric) || by(GroupKey::Calendar);
    let row_key = |g: &Group<'_>| -> RowKey {
        (
            by(GroupKey::Party).then_some(g.party),
            by(GroupKey::Queue).then(|| g.queue.to_owned()),
            by(GroupKey::Priority).then_some(g.priority),
            g.metric.filter(|_| by(GroupKey::Metric)),
            g.calendar
                .filter(|_| by(GroupKey::Calendar))
                .map(str::to_owned),
        )
    };
    let mut acc: BTreeMap<RowKey, Acc> = BTreeMap::new();
    let txn = store.read()?;
    for (day, from, to) in period.ranges() {
        let (lo, hi) = aggregates::row_range(tenant, day, from, to);
        let span = Span::between(&lo, &hi);
        for (k, v) in store::entries(&txn, REPORT_COUNTS, span, Order::Ascending, usize::MAX)? {
            let Some(group) = parse_group(&k) else {
                continue;
            };
            if group.metric.is_none() && by_clock {
                continue;
            }
            let mut c: Counts = store::decode(&k, &v)?;
            if group.metric.is_some() && !by_clock {
                // The ticket's own figures come from its ticket row.
                c = Counts {
                    met: c.met,
                    breached: c.breached,
                    running: c.running,
                    ..Counts::default()
                };
            }
            acc.entry(row_key(&group)).or_default().counts.add(&c, 1);
        }
        for (k, v) in store::entries(&txn, REPORT_DURATIONS, span, Order::Ascending, usize::MAX)? {
            let Some(group) = parse_group(&k) else {
                continue;
            };
            let Some(metric) = group.metric else { continue };
            let hist: Histogram = store::decode(&k, &v)?;
            let slot = acc.entry(row_key(&group)).or_default();
            let into = match metric {
                Metric::FirstResponse => &mut slot.first_response,
                Metric::Resolution => &mut slot.resolution,
                Metric::NextResponse => continue,
            };
            aggregates::merge_histogram(into, &hist, 1);
        }
    }
    let rows = acc
        .into_iter()
        .filter(|(_, a)| {
            !a.counts.is_zero() || !a.first_response.is_empty() || !a.resolution.is_empty()
        })
        .map(|((party, queue, priority, metric, calendar), a)| {
            let c = a.counts;
            let ended = c.met + c.breached;
            ReportRow {
                party,
                queue,
                priority,
                metric,
                calendar,
                tickets: c.tickets,
                resolved: c.resolved,
                met: c.met,
                breached: c.breached,
                running: c.running,
                compliance_percent: (ended > 0)
                    .then(|| (c.met as f64 * 10_000.0 / ended as f64).round() / 100.0),
                first_response_p50_secs: percentile(&a.first_response, 50),
                first_response_p90_secs: percentile(&a.first_response, 90),
                resolution_p50_secs: percentile(&a.resolution, 50),
                resolution_p90_secs: percentile(&a.resolution, 90),
                escalations: c.escalations,
                handoffs: c.handoffs,
            }
        })
        .collect();
    Ok(Report {
        period: period.clone(),
        group_by: group_by.to_vec(),
        rows,
    })
}
