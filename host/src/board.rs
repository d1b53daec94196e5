//! The open-clock index: one row per ticket that has an SLA clock still open (running, or
//! paused), keyed by its earliest due instant, holding what the board filters on (party,
//! queue, priority, and per open clock its metric, due and at-risk instants). The board, the
//! digest and the metrics census read these rows — the few thousand open tickets — instead
//! of decoding every ticket ever stored, and a row is written in its ticket's own transaction
//! (creation, events, calendar re-plans), so it is never behind the ticket.
//!
//! Standing is decided when the row is read, from its instants: a ticket is `breached` once
//! an open clock's due has passed, `at_risk` once one has used the tenant's at-risk share of
//! its target, `paused` when no clock runs. Only the instants are stored, so a row stays
//! right as time passes; they move only when the ticket, its calendars or the at-risk
//! percentage change, and each of those rewrites the row.

use crate::store::{Order, Span, Write};
use base64::Engine as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_rules::{CalendarSet, ClockState, Metric, Party, Priority};

use crate::refusal::Refusal;
use crate::store::records::TicketRecord;
use crate::store::{self, Store, StoreError};

/// The key part of a row whose clocks are all paused before due: after every instant.
const NO_DUE: &str = "9999999999999999";

/// One open clock of a ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenClock {
    /// The metric.
    pub metric: Metric,
    /// When it is (or was) due; `None` while paused before due.
    pub due: Option<Timestamp>,
    /// When it has used the tenant's at-risk share of its target; `None` while paused.
    pub at_risk: Option<Timestamp>,
    /// Whether it is paused.
    pub paused: bool,
}

/// What the index keeps of a ticket with an open clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEntry {
    /// The external id.
    pub ticket: String,
    /// The party holding it.
    pub party: Party,
    /// Its queue.
    pub queue: String,
    /// Its priority.
    pub priority: Priority,
    /// Its open clocks.
    pub clocks: Vec<OpenClock>,
}

/// Where an open ticket stands, for the board's `sla` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BoardStanding {
    /// Running, within the at-risk threshold.
    Running,
    /// A running clock has used the at-risk share of its target.
    AtRisk,
    /// An open clock is past due.
    Breached,
    /// Every open clock is paused (none past due).
    Paused,
}

impl OpenEntry {
    /// The row of `record` at `now`, or `None` when it has no open clock (or its clocks
    /// cannot be read: a calendar it names is gone).
    pub fn of(
        record: &TicketRecord,
        calendars: &CalendarSet,
        at_risk_percent: u8,
        now: Timestamp,
    ) -> Option<OpenEntry> {
        let readings = record.sla.readings(now, calendars).ok()?;
        let mut clocks = Vec::new();
        for r in readings {
            let open = r.stopped_at.is_none()
                && matches!(
                    r.state,
                    ClockState::Running | ClockState::Paused | ClockState::Breached
                );
            if !open {
                continue;
            }
            let paused = record.sla.is_paused();
            let at_risk = if paused {
                None
            } else {
                record
                    .sla
                    .instant_at_percent(r.metric, at_risk_percent, calendars)
                    .ok()?
            };
            clocks.push(OpenClock {
                metric: r.metric,
                due: r.due,
                at_risk,
                paused,
            });
        }
        (!clocks.is_empty()).then(|| OpenEntry {
            ticket: record.ticket.id.clone(),
            party: record.decision.party,
            queue: record.decision.queue.clone(),
            priority: record.decision.priority,
            clocks,
        })
    }

    /// The earliest due instant of its clocks (the board's order).
    pub fn due(&self) -> Option<Timestamp> {
        self.clocks.iter().filter_map(|c| c.due).min()
    }

    /// Where it stands at `now`, counting only the clocks of `metric` when given (`None` when
    /// it has no open clock of that metric).
    pub fn standing(&self, metric: Option<Metric>, now: Timestamp) -> Option<BoardStanding> {
        let clocks: Vec<&OpenClock> = self
            .clocks
            .iter()
            .filter(|c| metric.is_none_or(|m| c.metric == m))
            .collect();
        if clocks.is_empty() {
            return None;
        }
        Some(if clocks.iter().any(|c| c.due.is_some_and(|d| d <= now)) {
            BoardStanding::Breached
        } else if clocks.iter().all(|c| c.paused) {
            BoardStanding::Paused
        } else if clocks
            .iter()
            .any(|c| !c.paused && c.at_risk.is_some_and(|a| a <= now))
        {
            BoardStanding::AtRisk
        } else {
            BoardStanding::Running
        })
    }

    /// Its index key under `tenant`.
    pub fn key(&self, tenant: &str) -> String {
        let due = self
            .due()
            .map_or_else(|| NO_DUE.to_owned(), store::created_prefix);
        format!("{tenant}/{due}/{}", self.ticket)
    }
}

/// The row `record` should have: its key and encoded value, or `None` for no row.
pub fn planned(
    record: &TicketRecord,
    tenant: &str,
    calendars: &CalendarSet,
    at_risk_percent: u8,
    now: Timestamp,
) -> Option<(String, Vec<u8>)> {
    let entry = OpenEntry::of(record, calendars, at_risk_percent, now)?;
    Some((entry.key(tenant), store::encode(&entry)))
}

/// Replaces the ticket's row `old` with `new` inside `txn`.
pub fn replace_in(
    txn: &Write<'_>,
    old: Option<&str>,
    new: Option<&(String, Vec<u8>)>,
) -> Result<(), StoreError> {
    if let Some(old) = old
        && new.is_none_or(|(k, _)| k != old)
    {
        txn.delete(store::OPEN_CLOCKS, old)?;
    }
    if let Some((key, bytes)) = new {
        txn.put_bytes(store::OPEN_CLOCKS, key, bytes)?;
    }
    Ok(())
}

/// A position on the board: after the row with this key (without its tenant), opaque to
/// callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Reads a cursor the board gave out; anything else is refused, naming `cursor`.
    pub fn parse(text: &str) -> Result<Cursor, Refusal> {
        let bad = || {
            Refusal::invalid(
                "invalid_query",
                "`cursor` is not a cursor this board gave out (pass `next_cursor` as it came)",
            )
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        let inner = String::from_utf8(bytes).map_err(|_| bad())?;
        let (due, id) = inner.split_once('/').ok_or_else(bad)?;
        if due.len() != 16 || !due.bytes().all(|b| b.is_ascii_digit()) || id.is_empty() {
            return Err(bad());
        }
        Ok(Cursor(inner))
    }

    /// The text given out as `next_cursor`.
    pub fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.0)
    }
}

/// What the board lists.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only tickets held by this party.
    pub party: Option<Party>,
    /// Only tickets in this queue.
    pub queue: Option<String>,
    /// Only tickets of this priority.
    pub priority: Option<Priority>,
    /// Only tickets with an open clock of this metric (and their standing by it).
    pub metric: Option<Metric>,
    /// Only tickets standing so.
    pub sla: Option<BoardStanding>,
}

impl Filter {
    fn keeps(&self, e: &OpenEntry, now: Timestamp) -> bool {
        self.party.is_none_or(|p| e.party == p)
            && self.queue.as_ref().is_none_or(|q| e.queue == *q)
            && self.priority.is_none_or(|p| e.priority == p)
            && e.standing(self.metric, now)
                .is_some_and(|s| self.sla.is_none_or(|want| s == want))
    }
}

/// Rows read per read transaction while paging.
const PAGE_BATCH: usize = 512;

/// Up to `limit` open tickets of `tenant` passing `filter`, by due (breached first), after
/// `cursor`; with the cursor of the last one when more may follow.
pub fn page(
    store: &Store,
    tenant: &str,
    filter: &Filter,
    limit: usize,
    cursor: Option<&Cursor>,
    now: Timestamp,
) -> Result<(Vec<OpenEntry>, Option<Cursor>), StoreError> {
    let (first, end) = store::tenant_range(tenant);
    let mut after = cursor.map(|c| format!("{tenant}/{}", c.0));
    let mut out = Vec::new();
    loop {
        let rows: Vec<(String, OpenEntry)> = {
            let txn = store.read()?;
            let span = match &after {
                Some(k) => Span::after(k, Some(&end)),
                None => Span::between(&first, &end),
            };
            store::decoded(&txn, store::OPEN_CLOCKS, span, Order::Ascending, PAGE_BATCH)?
        };
        let full = rows.len() == PAGE_BATCH;
        for (key, entry) in rows {
            after = Some(key);
            if filter.keeps(&entry, now) {
                out.push(entry);
                if out.len() == limit {
                    let last = after.as_deref().unwrap_or("");
                    let inner = last.strip_prefix(&first).unwrap_or(last).to_owned();
                    return Ok((out, Some(Cursor(inner))));
                }
            }
        }
        if !full {
            return Ok((out, None));
        }
    }
}

/// Every open row of `tenant`, in due order.
pub fn all(store: &Store, tenant: &str) -> Result<Vec<OpenEntry>, StoreError> {
    let (entries, _) = page(
        store,
        tenant,
        &Filter::default(),
        usize::MAX,
        None,
        Timestamp::now(),
    )?;
    Ok(entries)
}

/// The [`store::META`] key set once every stored ticket has its row.
const BUILT: &str = "index/open_clocks";

/// What a tenant's rows are computed with: its calendars and at-risk percentage.
pub type RowContext = (std::sync::Arc<CalendarSet>, u8);

/// Gives, once, every ticket stored by a build without the open-clock index its row (and
/// records the row's key on the ticket); `tenants` says each tenant's calendars and at-risk
/// percentage. Later tickets get their row in their own transactions.
pub fn build(
    store: &Store,
    tenants: std::collections::HashMap<String, RowContext>,
) -> Result<usize, StoreError> {
    let now = Timestamp::now();
    store::backfill::once_over_tickets(store, BUILT, move |txn, tenant, record| {
        let Some((calendars, percent)) = tenants.get(tenant) else {
            return Ok(false);
        };
        let row = planned(record, tenant, calendars, *percent, now);
        if row.is_none() && record.board.is_none() {
            return Ok(false);
        }
        record.board = row.as_ref().map(|(key, _)| key.clone());
        replace_in(txn, None, row.as_ref())?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use switchboard_rules::Priority;

    use super::*;
    use crate::test_support::{Fixture, random_history};

    #[tokio::test]
    async fn rows_equal_a_recomputation_after_random_histories() {
        for seed in 1..=3u64 {
            let f = Fixture::new().await;
            let view = f.acme();
            random_history(&f, seed, 12, 7, 30, 60, 40).await;
            let txn = f.store.read().unwrap();
            let records: Vec<TicketRecord> = store::scan(&txn, store::TICKETS, "acme").unwrap();
            let pct = view.record.settings.at_risk_percent;
            let now = Timestamp::now();
            let mut expected: Vec<(String, OpenEntry)> = records
                .iter()
                .filter_map(|r| OpenEntry::of(r, &view.calendars, pct, now))
                .map(|e| (e.key("acme"), e))
                .collect();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            let stored: Vec<(String, OpenEntry)> = store::decoded(
                &txn,
                store::OPEN_CLOCKS,
                Span::ALL,
                Order::Ascending,
                usize::MAX,
            )
            .unwrap();
            assert_eq!(stored, expected, "seed {seed}");
            for r in &records {
                let want = OpenEntry::of(r, &view.calendars, pct, now).map(|e| e.key("acme"));
                assert_eq!(r.board, want, "seed {seed}: the ticket names its row");
            }
        }
    }

    #[test]
    fn standing_is_read_from_the_instants() {
        let at = |m: i64| Timestamp::from_second(1_800_000_000 + m * 60).unwrap();
        let clock = |metric, due: Option<i64>, risk: Option<i64>, paused| OpenClock {
            metric,
            due: due.map(at),
            at_risk: risk.map(at),
            paused,
        };
        let entry = OpenEntry {
            ticket: "T".into(),
            party: Party::Msp,
            queue: "desk".into(),
            priority: Priority::P2,
            clocks: vec![
                clock(Metric::FirstResponse, Some(60), Some(45), false),
                clock(Metric::Resolution, Some(480), Some(360), false),
            ],
        };
        assert_eq!(entry.standing(None, at(10)), Some(BoardStanding::Running));
        assert_eq!(entry.standing(None, at(45)), Some(BoardStanding::AtRisk));
        assert_eq!(entry.standing(None, at(60)), Some(BoardStanding::Breached));
        let resolution = Some(Metric::Resolution);
        assert_eq!(
            entry.standing(resolution, at(60)),
            Some(BoardStanding::Running)
        );
        assert_eq!(entry.standing(Some(Metric::NextResponse), at(60)), None);
        assert_eq!(entry.due(), Some(at(60)));
        let mut paused = entry.clone();
        paused.clocks = vec![clock(Metric::Resolution, None, None, true)];
        assert_eq!(paused.standing(None, at(999)), Some(BoardStanding::Paused));
        assert!(paused.key("t").starts_with(&format!("t/{NO_DUE}/")));
        let c = Cursor(format!("{}/T-1", store::created_prefix(at(5))));
        assert_eq!(Cursor::parse(&c.encode()).unwrap(), c);
        for bad in ["", "%%%", "MTIz", "YWJjZC9U"] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
