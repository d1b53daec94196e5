//! Reading a tenant's stored tickets in creation order, a batch per read transaction: a
//! replay or an export of a year of history then never holds one snapshot (and the pages it
//! pins) for its whole run, and never decodes a ticket outside the asked period.

use std::ops::ControlFlow;

use jiff::Timestamp;

use crate::store::Order::{Ascending, Descending};
use crate::store::records::TicketRecord;
use crate::store::{self, Span, Store, StoreError};

/// Tickets read per read transaction.
pub const BATCH: usize = 256;

/// Which part of the history to read: tickets created in `[since, until)`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// First creation instant included (default: the beginning).
    pub since: Option<Timestamp>,
    /// First creation instant left out (default: none).
    pub until: Option<Timestamp>,
}

impl Period {
    /// Whether `at` is in the period.
    pub fn contains(&self, at: Timestamp) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

/// In which order to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Latest created first (a replay of the recent past).
    NewestFirst,
    /// Earliest first (an export).
    OldestFirst,
}

/// Calls `each` with every ticket of `tenant` created in `period`, in `order`, until it
/// breaks. Each batch is decoded inside its read transaction and handed out after it ends, so
/// a slow `each` (an export to a slow client, a replay's evaluations) pins no snapshot.
pub fn for_each(
    store: &Store,
    tenant: &str,
    period: Period,
    order: Order,
    mut each: impl FnMut(TicketRecord) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    // Index keys hold milliseconds: the range is widened to whole milliseconds and each
    // ticket is then held to the exact period.
    let (first, last) = store::tenant_range(tenant);
    let low = period.since.map_or(first, |at| {
        format!("{tenant}/{}", store::created_prefix(at))
    });
    let high = period.until.map_or(last, |at| {
        let next_ms = at + jiff::SignedDuration::from_millis(1);
        format!("{tenant}/{}", store::created_prefix(next_ms))
    });
    if low >= high {
        return Ok(());
    }
    // The cursor: the last index key handed out, excluded from the next batch.
    let mut cursor: Option<String> = None;
    loop {
        let (records, last_key, full) = {
            let txn = store.read()?;
            let (span, direction) = match (order, &cursor) {
                (Order::OldestFirst, None) => (Span::between(&low, &high), Ascending),
                (Order::NewestFirst, None) => (Span::between(&low, &high), Descending),
                (Order::OldestFirst, Some(c)) => (Span::after(c, Some(&high)), Ascending),
                (Order::NewestFirst, Some(c)) => (Span::between(&low, c), Descending),
            };
            let keys = store::keys(&txn, store::TICKETS_BY_CREATION, span, direction, BATCH)?;
            let mut records = Vec::with_capacity(keys.len());
            for key in &keys {
                let ticket_key = store::tenant_key(tenant, store::id_of_created_key(key));
                if let Some(record) = store::get::<TicketRecord>(&txn, store::TICKETS, &ticket_key)?
                    && period.contains(record.ticket.created_at)
                {
                    records.push(record);
                }
            }
            (records, keys.last().cloned(), keys.len() == BATCH)
        };
        for record in records {
            if each(record).is_break() {
                return Ok(());
            }
        }
        match last_key {
            Some(key) if full => cursor = Some(key),
            _ => return Ok(()),
        }
    }
}

/// Calls `each` with the stored ticket of every id in `ids` (in that order; `None` for an
/// id with no ticket), until it breaks; like [`for_each`], a batch per read transaction,
/// handed out after it ends.
pub fn for_ids(
    store: &Store,
    tenant: &str,
    ids: &[String],
    mut each: impl FnMut(&str, Option<TicketRecord>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH) {
        let records = {
            let txn = store.read()?;
            let mut records = Vec::with_capacity(chunk.len());
            for id in chunk {
                let key = store::tenant_key(tenant, id);
                records.push(store::get::<TicketRecord>(&txn, store::TICKETS, &key)?);
            }
            records
        };
        for (id, record) in chunk.iter().zip(records) {
            if each(id, record).is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use serde_json::json;

    use super::*;
    use crate::test_support::{Fixture, input};

    /// `n` tickets `T-<i>`, created `i` minutes after a fixed instant.
    async fn history(n: i64) -> (Fixture, Timestamp) {
        let f = Fixture::new().await;
        let view = f.acme();
        let start: Timestamp = "2026-01-05T09:00:00Z".parse().unwrap();
        for i in 0..n {
            let at = start + SignedDuration::from_mins(i);
            let t = json!({"id": format!("T-{i}"), "created_at": at});
            f.tickets.create(&view, input(t)).await.unwrap();
        }
        (f, start)
    }

    fn ids(store: &Store, period: Period, order: Order, most: usize) -> Vec<String> {
        let mut out = Vec::new();
        for_each(store, "acme", period, order, |r| {
            out.push(r.ticket.id);
            if out.len() == most {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
        out
    }

    #[tokio::test]
    async fn batches_read_every_ticket_once_in_creation_order_within_the_period() {
        let n = (2 * BATCH + 40) as i64;
        let (f, start) = history(n).await;
        let all = Period::default();
        let newest = ids(&f.store, all, Order::NewestFirst, usize::MAX);
        let expected: Vec<String> = (0..n).rev().map(|i| format!("T-{i}")).collect();
        assert_eq!(newest, expected);
        let mut oldest = ids(&f.store, all, Order::OldestFirst, usize::MAX);
        oldest.reverse();
        assert_eq!(oldest, expected);
        // [since, until): tickets 100 to 399, and a walk that stops.
        let period = Period {
            since: Some(start + SignedDuration::from_mins(100)),
            until: Some(start + SignedDuration::from_mins(400)),
        };
        let inside = ids(&f.store, period, Order::NewestFirst, usize::MAX);
        assert_eq!((inside.len(), inside[0].as_str()), (300, "T-399"));
        assert_eq!(inside.last().unwrap(), "T-100");
        assert_eq!(
            ids(&f.store, period, Order::OldestFirst, 3),
            ["T-100", "T-101", "T-102"]
        );
        let empty = Period {
            since: period.until,
            until: period.since,
        };
        assert!(ids(&f.store, empty, Order::NewestFirst, usize::MAX).is_empty());
        // Bounds are exact, below the index's milliseconds.
        let t5 = start + SignedDuration::from_mins(5);
        let just_after = Period {
            since: Some(t5 + SignedDuration::from_micros(1)),
            until: Some(t5 + SignedDuration::from_mins(1) + SignedDuration::from_micros(1)),
        };
        assert_eq!(
            ids(&f.store, just_after, Order::OldestFirst, usize::MAX),
            ["T-6"]
        );
        // Named tickets, with one missing.
        let mut seen = Vec::new();
        let named = ["T-7".to_owned(), "nope".to_owned()];
        for_ids(&f.store, "acme", &named, |id, r| {
            seen.push((id.to_owned(), r.map(|r| r.ticket.id)));
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(
            seen,
            [("T-7".into(), Some("T-7".into())), ("nope".into(), None)]
        );
    }

    #[tokio::test]
    async fn tickets_stored_before_the_index_are_indexed_once_at_open() {
        let (f, _) = history(5).await;
        f.store
            .write(|txn| {
                txn.clear(store::TICKETS_BY_CREATION)?;
                txn.clear(store::META)?;
                Ok(())
            })
            .await
            .unwrap();
        assert!(ids(&f.store, Period::default(), Order::OldestFirst, usize::MAX).is_empty());
        let db = f.store.embedded().unwrap();
        let txn = db.begin_write().unwrap();
        store::build_creation_index(&txn).unwrap();
        txn.commit().unwrap();
        let rebuilt = ids(&f.store, Period::default(), Order::OldestFirst, usize::MAX);
        assert_eq!(rebuilt, ["T-0", "T-1", "T-2", "T-3", "T-4"]);
    }
}
