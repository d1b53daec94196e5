//! Reading a tenant's stored tickets in creation order, a batch per read transaction: a
//! replay or an export of a year of history then never holds one snapshot (and the pages it
//! pins) for its whole run, and never decodes a ticket outside the asked period.

use std::ops::{Bound, ControlFlow};

use jiff::Timestamp;

use crate::store::records::TicketRecord;
use crate::store::{self, Store, StoreError};

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

/// In which order to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Latest created first (a replay of the recent past).
    NewestFirst,
    /// Earliest first (an export).
    OldestFirst,
}

/// Calls `each` with every ticket of `tenant` created in `period`, in `order`, until it
/// breaks.
pub fn for_each(
    store: &Store,
    tenant: &str,
    period: Period,
    order: Order,
    mut each: impl FnMut(TicketRecord) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    let (first, last) = store::tenant_range(tenant);
    let low = period.since.map_or(first, |at| {
        format!("{tenant}/{}", store::created_prefix(at))
    });
    let high = period
        .until
        .map_or(last, |at| format!("{tenant}/{}", store::created_prefix(at)));
    if low >= high {
        return Ok(());
    }
    // The cursor: the last index key handed out, excluded from the next batch.
    let mut cursor: Option<String> = None;
    loop {
        let txn = store.read()?;
        let index = txn.open_table(store::TICKETS_BY_CREATION)?;
        let tickets = txn.open_table(store::TICKETS)?;
        let keys: Vec<String> = {
            let (from, to) = match (order, &cursor) {
                (_, None) => (
                    Bound::Included(low.as_str()),
                    Bound::Excluded(high.as_str()),
                ),
                (Order::OldestFirst, Some(c)) => {
                    (Bound::Excluded(c.as_str()), Bound::Excluded(high.as_str()))
                }
                (Order::NewestFirst, Some(c)) => {
                    (Bound::Included(low.as_str()), Bound::Excluded(c.as_str()))
                }
            };
            let range = index.range::<&str>((from, to))?;
            let keyed = |r: Result<(redb::AccessGuard<'_, &str>, _), _>| {
                r.map(
                    |(k, _): (redb::AccessGuard<'_, &str>, redb::AccessGuard<'_, &[u8]>)| {
                        k.value().to_owned()
                    },
                )
            };
            match order {
                Order::OldestFirst => range.take(BATCH).map(keyed).collect::<Result<_, _>>()?,
                Order::NewestFirst => range
                    .rev()
                    .take(BATCH)
                    .map(keyed)
                    .collect::<Result<_, _>>()?,
            }
        };
        let Some(last_key) = keys.last().cloned() else {
            return Ok(());
        };
        for key in &keys {
            let id = store::id_of_created_key(key);
            let ticket_key = store::tenant_key(tenant, id);
            let Some(bytes) = tickets.get(ticket_key.as_str())? else {
                continue;
            };
            let record: TicketRecord = store::decode(&ticket_key, bytes.value())?;
            if each(record).is_break() {
                return Ok(());
            }
        }
        if keys.len() < BATCH {
            return Ok(());
        }
        cursor = Some(last_key);
    }
}

/// Calls `each` with the stored ticket of every id in `ids` (in that order; `None` for an
/// id with no ticket), until it breaks.
pub fn for_ids(
    store: &Store,
    tenant: &str,
    ids: &[String],
    mut each: impl FnMut(&str, Option<TicketRecord>) -> ControlFlow<()>,
) -> Result<(), StoreError> {
    for chunk in ids.chunks(BATCH) {
        let txn = store.read()?;
        let tickets = txn.open_table(store::TICKETS)?;
        for id in chunk {
            let key = store::tenant_key(tenant, id);
            let record = match tickets.get(key.as_str())? {
                Some(bytes) => Some(store::decode::<TicketRecord>(&key, bytes.value())?),
                None => None,
            };
            if each(id, record).is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}
