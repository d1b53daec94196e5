//! The storage of report aggregates: counters and duration histograms per tenant, per
//! creation day and per quarter hour of creation, per group (party, priority, metric,
//! calendar, queue), that a ticket's transaction moves by the difference between what the
//! ticket added before and what it adds now. A report then reads a few hundred rows per
//! month of history instead of every ticket, and stays exact because a ticket subtracts
//! exactly what it once added (kept on the ticket as its [`Share`]), whatever changed since.
//!
//! Days are UTC days; the quarter-hour rows let a report start and end at midnight in any
//! time zone (every zone's offset today is a multiple of 15 minutes): a period reads its
//! whole UTC days from the day rows and its two ragged ends from the quarter-hour rows.
//!
//! Durations are kept as counts per bucket. A bucket is one second wide under 10 minutes, 10
//! seconds under an hour, a minute under a day, 10 minutes under 30 days, and an hour beyond,
//! so a percentile read from them is the lower edge of its bucket: exact for whole minutes
//! under a day, and never more than 1/60 (1.7%) under the true value.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::{Table, Write};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// Counter rows: key `tenant/{d|q}/{day (7 digits) or quarter (8)}/{group}`, value [`Counts`].
pub const REPORT_COUNTS: Table = Table::new("report_counts");
/// Duration rows, same keys: value `[[bucket, count], …]` by bucket.
pub const REPORT_DURATIONS: Table = Table::new("report_durations");

/// Seconds in a quarter hour, the finest period a report can start or end on.
pub const QUARTER_SECS: i64 = 900;
/// Quarter hours in a UTC day.
pub const QUARTERS_PER_DAY: i64 = 96;

/// What one group adds up: tickets, and the outcomes of their SLA clocks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "[i64; 7]", into = "[i64; 7]")]
pub struct Counts {
    /// Tickets.
    pub tickets: i64,
    /// Of those, resolved.
    pub resolved: i64,
    /// Clocks that met their target.
    pub met: i64,
    /// Clocks that breached it.
    pub breached: i64,
    /// Clocks still running (or paused) within it.
    pub running: i64,
    /// Escalation steps fired.
    pub escalations: i64,
    /// Handoffs between holders.
    pub handoffs: i64,
}

impl From<[i64; 7]> for Counts {
    fn from(a: [i64; 7]) -> Counts {
        let [
            tickets,
            resolved,
            met,
            breached,
            running,
            escalations,
            handoffs,
        ] = a;
        Counts {
            tickets,
            resolved,
            met,
            breached,
            running,
            escalations,
            handoffs,
        }
    }
}

impl From<Counts> for [i64; 7] {
    fn from(c: Counts) -> [i64; 7] {
        [
            c.tickets,
            c.resolved,
            c.met,
            c.breached,
            c.running,
            c.escalations,
            c.handoffs,
        ]
    }
}

impl Counts {
    /// `self + sign × other`, figure by figure.
    pub fn add(&mut self, other: &Counts, sign: i64) {
        let (mut a, b): ([i64; 7], [i64; 7]) = ((*self).into(), (*other).into());
        for (x, y) in a.iter_mut().zip(b) {
            *x += sign * y;
        }
        *self = a.into();
    }

    /// Whether every figure is zero.
    pub fn is_zero(&self) -> bool {
        <[i64; 7]>::from(*self).iter().all(|x| *x == 0)
    }
}

/// What one ticket adds to one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareEntry {
    /// The group, as [`group_key`] writes it.
    pub group: String,
    /// Its counts.
    pub counts: Counts,
    /// Business seconds of its stopped clocks, for the duration percentiles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secs: Vec<i64>,
}

/// What one ticket adds to its tenant's aggregates, kept on the ticket so that its next
/// change subtracts exactly this.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Share {
    /// The quarter hour (since the Unix epoch, UTC) the ticket was created in.
    pub quarter: i64,
    /// Per group, sorted by group, each group once.
    pub entries: Vec<ShareEntry>,
}

/// The group key of `party`, `priority`, `metric` and `calendar` (`-` when none: a ticket's
/// own figures), and `queue` (last, as it may hold any character).
pub fn group_key(
    party: &str,
    priority: &str,
    metric: Option<&str>,
    calendar: Option<&str>,
    queue: &str,
) -> String {
    format!(
        "{party}/{priority}/{}/{}/{queue}",
        metric.unwrap_or("-"),
        calendar.unwrap_or("-")
    )
}

/// The parts of a group key; `metric` and `calendar` are `None` for a ticket's own figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupParts<'a> {
    /// The party's name.
    pub party: &'a str,
    /// The priority's name.
    pub priority: &'a str,
    /// The metric's name.
    pub metric: Option<&'a str>,
    /// The calendar id.
    pub calendar: Option<&'a str>,
    /// The queue.
    pub queue: &'a str,
}

/// A group key's parts, as [`group_key`] wrote them.
pub fn group_parts(group: &str) -> Option<GroupParts<'_>> {
    let mut parts = group.splitn(5, '/');
    let (party, priority, metric, calendar, queue) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    Some(GroupParts {
        party,
        priority,
        metric: (metric != "-").then_some(metric),
        calendar: (calendar != "-").then_some(calendar),
        queue,
    })
}

/// The last quarter hour rows are kept for (in the year 4822): keys hold 8 digits.
const LAST_QUARTER: i64 = 99_999_999;

/// The quarter hour `secs` (Unix seconds) falls in, within `0..=`[`LAST_QUARTER`].
pub fn quarter_of(secs: i64) -> i64 {
    secs.div_euclid(QUARTER_SECS).clamp(0, LAST_QUARTER)
}

/// The row key of `group` in the day (`d`) or quarter-hour (`q`) rows.
fn row_key(tenant: &str, quarter: i64, day: bool, group: &str) -> String {
    if day {
        format!("{tenant}/d/{:07}/{group}", quarter / QUARTERS_PER_DAY)
    } else {
        format!("{tenant}/q/{quarter:08}/{group}")
    }
}

/// The key range of `tenant`'s day rows for days `[from, to)` (`day`) or its quarter-hour
/// rows for quarters `[from, to)`.
pub fn row_range(tenant: &str, day: bool, from: i64, to: i64) -> (String, String) {
    let (kind, last) = if day {
        ("d", LAST_QUARTER / QUARTERS_PER_DAY)
    } else {
        ("q", LAST_QUARTER)
    };
    // Past the last row, a bound is the end of the tenant's rows of that kind (`~` sorts
    // after every digit), so keys of one width compare as their numbers do.
    let bound = |n: i64| {
        if n > last {
            format!("{tenant}/{kind}/~")
        } else if day {
            format!("{tenant}/d/{:07}/", n.max(0))
        } else {
            format!("{tenant}/q/{:08}/", n.max(0))
        }
    };
    (bound(from), bound(to))
}

/// The group of a row key (after `tenant/{d|q}/{n}/`).
pub fn group_of_row(key: &str) -> &str {
    key.splitn(4, '/').nth(3).unwrap_or("")
}

/// Duration buckets: `(below, width)` — under `below` seconds, buckets are `width` wide.
const BUCKETS: [(i64, i64); 4] = [(600, 1), (3_600, 10), (86_400, 60), (2_592_000, 600)];
/// The width past the last step.
const LAST_WIDTH: i64 = 3_600;

/// The bucket of a duration of `secs` (negative counts as 0).
pub fn bucket(secs: i64) -> u32 {
    let secs = secs.max(0);
    let (mut base, mut lo) = (0i64, 0i64);
    for (below, width) in BUCKETS {
        if secs < below {
            return (base + (secs - lo) / width) as u32;
        }
        base += (below - lo) / width;
        lo = below;
    }
    (base + (secs - lo) / LAST_WIDTH).min(i64::from(u32::MAX)) as u32
}

/// The least duration in `bucket` (what a percentile falling in it reads).
pub fn bucket_floor(bucket: u32) -> i64 {
    let mut b = i64::from(bucket);
    let mut lo = 0i64;
    for (below, width) in BUCKETS {
        let n = (below - lo) / width;
        if b < n {
            return lo + b * width;
        }
        b -= n;
        lo = below;
    }
    lo + b * LAST_WIDTH
}

/// Counts per bucket, sorted by bucket.
pub type Histogram = Vec<(u32, i64)>;

/// Adds `sign × other` into `into`, dropping buckets that reach zero.
pub fn merge_histogram(into: &mut BTreeMap<u32, i64>, other: &[(u32, i64)], sign: i64) {
    for &(b, n) in other {
        let slot = into.entry(b).or_insert(0);
        *slot += sign * n;
        if *slot == 0 {
            into.remove(&b);
        }
    }
}

/// A delta to one row: counts, and counts per duration bucket.
type Delta = (Counts, BTreeMap<u32, i64>);

thread_local! {
    /// The writer thread's deltas of the group commit being built, by row key: folded here
    /// and written once, just before the commit ([`flush`]), since the tickets of one batch
    /// mostly move the same few rows. `None` on any other thread.
    static PENDING: RefCell<Option<BTreeMap<String, Delta>>> = const { RefCell::new(None) };
}

/// Marks this thread as the writer: from now on [`apply`] folds its deltas until [`flush`].
pub(crate) fn defer_on_this_thread() {
    PENDING.with(|p| *p.borrow_mut() = Some(BTreeMap::new()));
}

/// Forgets the deltas folded so far (their batch is aborted).
pub(crate) fn discard() {
    PENDING.with(|p| {
        if let Some(map) = p.borrow_mut().as_mut() {
            map.clear();
        }
    });
}

/// Writes the deltas folded so far into `txn` (the batch's, just before its commit).
pub(crate) fn flush(txn: &Write<'_>) -> Result<(), StoreError> {
    let pending = PENDING.with(|p| p.borrow_mut().as_mut().map(std::mem::take));
    match pending {
        Some(rows) if !rows.is_empty() => write_rows(txn, rows),
        _ => Ok(()),
    }
}

/// Moves `tenant`'s aggregates from what `old` added to what `new` adds, as part of `txn`
/// (the ticket's own transaction): on the writer thread the delta is folded into the batch's
/// and written with it before the commit; elsewhere it is written at once.
pub fn apply(
    txn: &Write<'_>,
    tenant: &str,
    old: Option<&Share>,
    new: Option<&Share>,
) -> Result<(), StoreError> {
    let mut deltas: BTreeMap<String, Delta> = BTreeMap::new();
    for (share, sign) in [(old, -1), (new, 1)] {
        let Some(share) = share else { continue };
        for e in &share.entries {
            for day in [true, false] {
                let key = row_key(tenant, share.quarter, day, &e.group);
                let d = deltas.entry(key).or_default();
                d.0.add(&e.counts, sign);
                for s in &e.secs {
                    merge_histogram(&mut d.1, &[(bucket(*s), 1)], sign);
                }
            }
        }
    }
    deltas.retain(|_, (c, h)| !c.is_zero() || !h.is_empty());
    if deltas.is_empty() {
        return Ok(());
    }
    let deltas = PENDING.with(|p| match p.borrow_mut().as_mut() {
        Some(pending) => {
            for (key, (c, h)) in deltas {
                let slot = pending.entry(key).or_default();
                slot.0.add(&c, 1);
                let h: Histogram = h.into_iter().collect();
                merge_histogram(&mut slot.1, &h, 1);
            }
            None
        }
        None => Some(deltas),
    });
    match deltas {
        Some(rows) => write_rows(txn, rows),
        None => Ok(()),
    }
}

/// Adds each delta to its row, removing rows that come to nothing.
fn write_rows(txn: &Write<'_>, rows: BTreeMap<String, Delta>) -> Result<(), StoreError> {
    for (key, (delta, hist)) in rows {
        if !delta.is_zero() {
            let mut row: Counts = super::get(txn, REPORT_COUNTS, &key)?.unwrap_or_default();
            row.add(&delta, 1);
            if row.is_zero() {
                txn.delete(REPORT_COUNTS, &key)?;
            } else {
                super::put_in(txn, REPORT_COUNTS, &key, &row)?;
            }
        }
        if !hist.is_empty() {
            let mut row: BTreeMap<u32, i64> = super::get::<Histogram>(txn, REPORT_DURATIONS, &key)?
                .unwrap_or_default()
                .into_iter()
                .collect();
            let delta: Histogram = hist.into_iter().collect();
            merge_histogram(&mut row, &delta, 1);
            if row.is_empty() {
                txn.delete(REPORT_DURATIONS, &key)?;
            } else {
                let row: Histogram = row.into_iter().collect();
                super::put_in(txn, REPORT_DURATIONS, &key, &row)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_in_order_and_floor_within_a_sixtieth() {
        let mut last = 0;
        for secs in (0..200_000).chain((2_500_000..2_700_000).step_by(7)) {
            let b = bucket(secs);
            assert!(b >= last, "buckets never go back ({secs})");
            last = b;
            let floor = bucket_floor(b);
            assert!(floor <= secs, "{secs}: floor {floor}");
            assert!(secs - floor < 1 + secs / 60, "{secs}: floor {floor}");
            assert_eq!(bucket(floor), b, "the floor is in its own bucket");
        }
        // Whole minutes under a day read back exactly.
        for mins in [1, 10, 30, 60, 90, 240, 480, 1439] {
            assert_eq!(bucket_floor(bucket(mins * 60)), mins * 60);
        }
        assert_eq!(bucket(-5), 0);
    }

    #[test]
    fn group_keys_round_trip_with_any_queue() {
        let key = group_key("msp", "p2", Some("resolution"), Some("business"), "a/b c");
        let parts = |party, priority, metric, calendar, queue| GroupParts {
            party,
            priority,
            metric,
            calendar,
            queue,
        };
        let want = parts("msp", "p2", Some("resolution"), Some("business"), "a/b c");
        assert_eq!(group_parts(&key), Some(want));
        let own = group_key("vendor", "p4", None, None, "q");
        assert_eq!(
            group_parts(&own),
            Some(parts("vendor", "p4", None, None, "q"))
        );
        let row = row_key("acme", 200, false, &key);
        let (lo, hi) = row_range("acme", false, 100, 300);
        assert!(lo.as_str() <= row.as_str() && row.as_str() < hi.as_str());
        let (_, end) = row_range("acme", false, 100, LAST_QUARTER + 5);
        assert!(row_key("acme", LAST_QUARTER, false, &key) < end);
        let (lo, hi) = row_range("acme", true, 1, 3);
        let day = row_key("acme", 2 * QUARTERS_PER_DAY + 5, true, &key);
        assert!(lo <= day && day < hi);
        assert_eq!(group_of_row(&row), key);
        assert_eq!(group_of_row(&row_key("acme", 200, true, &key)), key);
    }

    #[test]
    fn counts_travel_as_an_array() {
        let c = Counts {
            tickets: 1,
            met: 2,
            handoffs: 3,
            ..Counts::default()
        };
        assert_eq!(serde_json::to_string(&c).unwrap(), "[1,0,2,0,0,0,3]");
        let back: Counts = serde_json::from_str("[1,0,2,0,0,0,3]").unwrap();
        assert_eq!(back, c);
    }
}
