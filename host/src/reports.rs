//! Service-review reports: SLA figures per party, queue, priority, metric and calendar over
//! a period, for the co-managed desk's monthly review.
//!
//! A report is about the tickets **created** in its period (a cohort): how many there were,
//! how many are resolved, how each of their SLA clocks ended — met, breached, or still
//! running — how long the clocks that stopped took in business seconds, and how many
//! escalations fired and handoffs happened. A cohort's figures are a function of its
//! tickets' states alone, so they can be kept up to date ticket by ticket: each ticket's
//! transaction moves the aggregates (`store::aggregates`) by the difference between its
//! [`share`] now and the share it added before, and a report reads those aggregates, never
//! the tickets.
//!
//! A clock's outcome counts for the holder it is attributed to — a breach for the party and
//! queue holding the ticket at the breach instant, a met target for the one holding it when
//! the clock stopped — while the ticket itself, and a clock still running, count for its
//! current holder. Each metric counts its clock's current run (a reopened ticket counts its
//! latest resolution run). A clock's figures are those of its last write: the breach timer
//! rewrites a ticket when a running clock breaches, and a calendar change re-plans the open
//! tickets; a clock that stopped keeps the business time it counted on the calendar it had.

pub mod read;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use jiff::Timestamp;
#[cfg(test)]
use jiff::tz::TimeZone;
use switchboard_rules::{CalendarSet, ClockState, Metric};

use crate::store::aggregates::{self, Counts, Share, ShareEntry, group_key};
use crate::store::records::{Holder, TicketRecord};
use crate::store::{self, Store, StoreError};

pub use self::read::{GroupKey, MAX_DAYS, Period, Report, ReportRow, report};

/// Whether fired record `name` is an escalation step (not a breach).
fn is_escalation(name: &str) -> bool {
    name.starts_with("escalation/")
}

/// What `record` adds to its tenant's report aggregates at `now`. A clock whose calendar is
/// gone adds nothing but the ticket.
pub fn share(record: &TicketRecord, calendars: &CalendarSet, now: Timestamp) -> Share {
    let priority = record.decision.priority.as_str();
    let current = Holder::of(&record.decision);
    let own = Counts {
        tickets: 1,
        resolved: i64::from(record.sla.resolved_at.is_some()),
        escalations: record
            .fired
            .iter()
            .filter(|f| is_escalation(&f.name))
            .count() as i64,
        handoffs: record.handoffs.len() as i64,
        ..Counts::default()
    };
    let mut groups: BTreeMap<String, (Counts, Vec<i64>)> = BTreeMap::new();
    let mut add =
        |holder: &Holder, clock: Option<(Metric, &str)>, counts: Counts, secs: Option<i64>| {
            let (metric, calendar) =
                clock.map_or((None, None), |(m, c)| (Some(m.as_str()), Some(c)));
            let key = group_key(
                holder.party.as_str(),
                priority,
                metric,
                calendar,
                &holder.queue,
            );
            let slot = groups.entry(key).or_default();
            slot.0.add(&counts, 1);
            slot.1.extend(secs);
        };
    add(&current, None, own, None);
    for r in record.sla.readings(now, calendars).unwrap_or_default() {
        let clock = Some((r.metric, r.calendar.as_str()));
        // Durations are reported for first response and resolution.
        let timed = r.metric != Metric::NextResponse;
        let stopped = r.stopped_at.filter(|_| timed).map(|_| r.elapsed_secs);
        let outcome = |met: bool| Counts {
            met: i64::from(met),
            breached: i64::from(!met),
            ..Counts::default()
        };
        match r.state {
            ClockState::Cancelled => continue,
            ClockState::Running | ClockState::Paused => {
                let counts = Counts { running: 1, ..own };
                add(&current, clock, counts, None);
            }
            ClockState::Met => {
                add(&current, clock, own, None);
                let at = r.stopped_at.unwrap_or(now);
                add(&record.holder_at(at), clock, outcome(true), stopped);
            }
            ClockState::Breached => {
                add(&current, clock, own, None);
                let at = r.breached_at.unwrap_or(now);
                add(&record.holder_at(at), clock, outcome(false), stopped);
            }
        }
    }
    let quarter = aggregates::quarter_of(record.ticket.created_at.as_second());
    Share {
        quarter,
        entries: groups
            .into_iter()
            .map(|(group, (counts, mut secs))| {
                secs.sort_unstable();
                ShareEntry {
                    group,
                    counts,
                    secs,
                }
            })
            .collect(),
    }
}

/// The [`store::META`] key set once every stored ticket has added its share.
const BUILT: &str = "index/report_aggregates";

/// Adds, once, the share of every ticket stored by a build without reports (and keeps it on
/// the ticket); `tenants` gives each tenant's calendars. Later tickets add theirs in their
/// own transactions.
pub fn build(
    store: &Store,
    tenants: HashMap<String, Arc<CalendarSet>>,
) -> Result<usize, StoreError> {
    let now = Timestamp::now();
    store::backfill::once_over_tickets(store, BUILT, move |txn, tenant, record| {
        let Some(calendars) = tenants.get(tenant) else {
            return Ok(false);
        };
        if record.report.is_some() {
            return Ok(false);
        }
        let share = share(record, calendars, now);
        aggregates::apply(txn, tenant, None, Some(&share))?;
        record.report = Some(share);
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use switchboard_rules::{Party, Priority};

    use super::*;
    use crate::store::aggregates::{
        QUARTERS_PER_DAY, REPORT_COUNTS, REPORT_DURATIONS, bucket, bucket_floor, group_parts,
    };
    use crate::test_support::{Fixture, random_history};
    use crate::tickets::TicketView;

    /// `(party, queue, priority, metric)`.
    type Key = (Party, String, Priority, Option<Metric>);

    #[derive(Default, Debug)]
    struct Want {
        counts: Counts,
        first_response: Vec<i64>,
        resolution: Vec<i64>,
    }

    /// Who held `record` at `at`, read from its handoffs here (not by the code under test).
    fn held(record: &TicketRecord, at: Timestamp) -> (Party, String) {
        let mut holder = record.handoffs.first().map_or(
            (record.decision.party, record.decision.queue.clone()),
            |h| (h.from.party, h.from.queue.clone()),
        );
        for h in &record.handoffs {
            if h.at <= at {
                holder = (h.to.party, h.to.queue.clone());
            }
        }
        holder
    }

    /// The figures per group, recomputed from each ticket as its view reads it at `now`;
    /// `by_clock` puts the ticket's own figures on each of its clocks' groups.
    fn recompute(
        records: &[TicketRecord],
        view: &crate::tenants::TenantView,
        now: Timestamp,
        by_clock: bool,
    ) -> BTreeMap<Key, Want> {
        let mut out: BTreeMap<Key, Want> = BTreeMap::new();
        for r in records {
            let tv = TicketView::of(r, view, now);
            let d = &r.decision;
            let own = Counts {
                tickets: 1,
                resolved: i64::from(r.sla.resolved_at.is_some()),
                escalations: tv.escalations.fired.len() as i64,
                handoffs: tv.handoffs.len() as i64,
                ..Counts::default()
            };
            if !by_clock {
                let key = (d.party, d.queue.clone(), d.priority, None);
                out.entry(key).or_default().counts.add(&own, 1);
            }
            for c in &tv.sla {
                let (party, queue) = match c.state {
                    ClockState::Cancelled => continue,
                    ClockState::Running | ClockState::Paused => (d.party, d.queue.clone()),
                    ClockState::Met => {
                        let stop = r.sla.clock(c.metric).and_then(|k| k.stop).unwrap();
                        held(r, stop.at)
                    }
                    ClockState::Breached => {
                        let (party, queue) = held(r, c.breached_at.unwrap());
                        assert_eq!(Some(party), c.breached_with);
                        (party, queue)
                    }
                };
                let metric = by_clock.then_some(c.metric);
                if by_clock {
                    let key = (d.party, d.queue.clone(), d.priority, metric);
                    out.entry(key).or_default().counts.add(&own, 1);
                }
                let slot = out.entry((party, queue, d.priority, metric)).or_default();
                let stopped = r.sla.clock(c.metric).and_then(|k| k.stop).is_some();
                match c.state {
                    ClockState::Met => slot.counts.met += 1,
                    ClockState::Breached => slot.counts.breached += 1,
                    _ => {
                        out.get_mut(&(d.party, d.queue.clone(), d.priority, metric))
                            .unwrap()
                            .counts
                            .running += 1;
                        continue;
                    }
                }
                if stopped {
                    match c.metric {
                        Metric::FirstResponse => slot.first_response.push(c.elapsed_secs),
                        Metric::Resolution => slot.resolution.push(c.elapsed_secs),
                        Metric::NextResponse => {}
                    }
                }
            }
        }
        out.retain(|_, w| !w.counts.is_zero());
        out
    }

    /// The nearest-rank percentile of exact values, read as its bucket's floor.
    fn exact_percentile(values: &[i64], p: usize) -> Option<i64> {
        let mut v = values.to_vec();
        v.sort_unstable();
        let rank = (p * v.len()).div_ceil(100).max(1);
        v.get(rank - 1).map(|x| bucket_floor(bucket(*x)))
    }

    fn compare(report: &Report, want: &BTreeMap<Key, Want>, seed: u64) {
        let got: BTreeMap<Key, &ReportRow> = report
            .rows
            .iter()
            .map(|r| {
                let key = (
                    r.party.unwrap(),
                    r.queue.clone().unwrap(),
                    r.priority.unwrap(),
                    r.metric,
                );
                (key, r)
            })
            .collect();
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "seed {seed}: the groups"
        );
        for (key, w) in want {
            let row = got[key];
            let c = w.counts;
            let figures = [c.tickets, c.resolved, c.met, c.breached, c.running];
            let got_figures = [
                row.tickets,
                row.resolved,
                row.met,
                row.breached,
                row.running,
            ];
            assert_eq!(got_figures, figures, "seed {seed}: {key:?}");
            assert_eq!((row.escalations, row.handoffs), (c.escalations, c.handoffs));
            let percentiles = [
                exact_percentile(&w.first_response, 50),
                exact_percentile(&w.first_response, 90),
                exact_percentile(&w.resolution, 50),
                exact_percentile(&w.resolution, 90),
            ];
            let got_percentiles = [
                row.first_response_p50_secs,
                row.first_response_p90_secs,
                row.resolution_p50_secs,
                row.resolution_p90_secs,
            ];
            assert_eq!(got_percentiles, percentiles, "seed {seed}: {key:?}");
        }
    }

    #[tokio::test]
    async fn aggregates_equal_a_recomputation_from_the_tickets_after_random_histories() {
        for seed in 1..=4u64 {
            let f = Fixture::new().await;
            let view = f.acme();
            let start = random_history(&f, seed, 16, 97, 40, 90, 50).await;
            // Clocks that breached while running since their ticket's last write.
            crate::timers::fire_due(&f.store, &f.tenants, &f.deliveries, Timestamp::now())
                .await
                .unwrap();
            let now = Timestamp::now();
            let records: Vec<TicketRecord> = {
                let txn = f.store.read().unwrap();
                store::scan(&txn, store::TICKETS, "acme").unwrap()
            };
            let everything = Period::parse(
                Some(&(start - SignedDuration::from_hours(48)).to_string()[..10]),
                None,
                None,
                now,
            )
            .unwrap();
            let full = [
                GroupKey::Party,
                GroupKey::Queue,
                GroupKey::Priority,
                GroupKey::Metric,
            ];
            let by_ticket = &full[..3];
            for (group_by, by_clock) in [(&full[..], true), (by_ticket, false)] {
                let got = report(&f.store, "acme", &everything, group_by).unwrap();
                compare(&got, &recompute(&records, &view, now, by_clock), seed);
            }

            // One day in a zone 5½ hours ahead of UTC: its ends fall inside UTC days, read
            // from the quarter-hour rows.
            let day = Period::parse(
                Some(
                    &start
                        .to_zoned_datetime(TimeZone::get("Asia/Kolkata").unwrap())
                        .date()
                        .to_string(),
                ),
                None,
                Some("Asia/Kolkata"),
                start,
            )
            .unwrap();
            let day = Period::parse(
                Some(&day.from.tomorrow().unwrap().to_string()),
                Some(&day.from.tomorrow().unwrap().to_string()),
                Some("Asia/Kolkata"),
                now,
            )
            .unwrap();
            let inside: Vec<TicketRecord> = records
                .iter()
                .filter(|r| (day.start..day.end).contains(&r.ticket.created_at))
                .cloned()
                .collect();
            assert!(
                !inside.is_empty() && inside.len() < records.len(),
                "seed {seed}: the day holds some tickets"
            );
            let got = report(&f.store, "acme", &day, by_ticket).unwrap();
            compare(&got, &recompute(&inside, &view, now, false), seed);

            // Each UTC day's row is the sum of its quarter hours'.
            let txn = f.store.read().unwrap();
            for table in [REPORT_COUNTS, REPORT_DURATIONS] {
                let rows: Vec<(String, serde_json::Value)> = {
                    let all = store::Span::ALL;
                    store::decoded(&txn, table, all, store::Order::Ascending, usize::MAX).unwrap()
                };
                let sum = |day: bool| {
                    let mut out: BTreeMap<(i64, String), BTreeMap<usize, i64>> = BTreeMap::new();
                    for (k, v) in &rows {
                        let parts: Vec<&str> = k.splitn(4, '/').collect();
                        if (parts[1] == "d") != day {
                            continue;
                        }
                        assert!(group_parts(parts[3]).is_some(), "{k}");
                        let n: i64 = parts[2].parse().unwrap();
                        let d = if day { n } else { n / QUARTERS_PER_DAY };
                        let slot = out.entry((d, parts[3].to_owned())).or_default();
                        for (i, x) in v.as_array().unwrap().iter().enumerate() {
                            // Counts are figures by position; histograms are [bucket, n].
                            let (at, n) = match x.as_array() {
                                Some(pair) => (
                                    pair[0].as_u64().unwrap() as usize,
                                    pair[1].as_i64().unwrap(),
                                ),
                                None => (i, x.as_i64().unwrap()),
                            };
                            *slot.entry(at).or_default() += n;
                        }
                    }
                    out
                };
                assert_eq!(sum(true), sum(false), "seed {seed}: days and quarter hours");
            }
        }
    }
}
