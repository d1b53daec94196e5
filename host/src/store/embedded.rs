//! The embedded engine behind the seam: one redb file. A redb write transaction is the only
//! one at a time, so reads inside it need no locks, and a claim is a plain range read.

use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, WriteTransaction};

use super::StoreError;
use super::txn::{Order, Span, Table, Visitor};

fn bounds<'a>(span: &Span<'a>) -> (Bound<&'a str>, Bound<&'a str>) {
    (
        if span.past_from {
            Bound::Excluded(span.from)
        } else {
            Bound::Included(span.from)
        },
        span.to.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// `get` on a table of a read snapshot (a table never created reads as empty).
pub(crate) fn get(
    txn: &ReadTransaction,
    table: Table,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let table = match txn.open_table(table.redb()) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
}

/// `get` inside the write transaction.
pub(crate) fn get_in(
    txn: &WriteTransaction,
    table: Table,
    key: &str,
) -> Result<Option<Vec<u8>>, StoreError> {
    let table = txn.open_table(table.redb())?;
    Ok(table.get(key)?.map(|v| v.value().to_vec()))
}

fn visit_table(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    span: Span<'_>,
    order: Order,
    limit: usize,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError> {
    if span.is_empty() {
        return Ok(());
    }
    let range = table.range::<&str>(bounds(&span))?;
    let entries: Box<dyn Iterator<Item = _>> = match order {
        Order::Ascending => Box::new(range),
        Order::Descending => Box::new(range.rev()),
    };
    for entry in entries.take(limit) {
        let (k, v) = entry?;
        if !visit(k.value(), v.value())? {
            break;
        }
    }
    Ok(())
}

/// A range of a read snapshot.
pub(crate) fn visit_read(
    txn: &ReadTransaction,
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError> {
    match txn.open_table(table.redb()) {
        Ok(t) => visit_table(&t, span, order, limit, visit),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A range inside the write transaction (it sees the transaction's own writes).
pub(crate) fn visit_write(
    txn: &WriteTransaction,
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError> {
    visit_table(&txn.open_table(table.redb())?, span, order, limit, visit)
}

/// Writes one entry.
pub(crate) fn put(
    txn: &WriteTransaction,
    table: Table,
    key: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    txn.open_table(table.redb())?.insert(key, bytes)?;
    Ok(())
}

/// Deletes one entry.
pub(crate) fn delete(txn: &WriteTransaction, table: Table, key: &str) -> Result<(), StoreError> {
    txn.open_table(table.redb())?.remove(key)?;
    Ok(())
}

/// Deletes every entry of a table.
pub(crate) fn clear(txn: &WriteTransaction, table: Table) -> Result<(), StoreError> {
    txn.open_table(table.redb())?.retain(|_, _| false)?;
    Ok(())
}
