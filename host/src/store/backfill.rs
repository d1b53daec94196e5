//! One-time passes over every stored ticket, for what a newer build keeps on each ticket
//! and an older build did not (an index row, a report share): run once, in one transaction,
//! a chunk of tickets in memory at a time, and marked done in [`META`](super::META) so that
//! later starts skip them.

use super::{Order, Reader, Span, Write};

use super::records::TicketRecord;
use super::{META, Store, StoreError, TICKETS, decode, put_in};

/// Tickets decoded at a time.
const CHUNK: usize = 1024;

/// Unless `flag` is set, passes every stored ticket (with its tenant) to `visit`, which may
/// write what it derives in the same transaction and answers whether it changed the ticket
/// (then written back); sets `flag` and answers how many changed. A record that does not
/// parse is left alone.
pub fn once_over_tickets<F>(
    store: &Store,
    flag: &'static str,
    mut visit: F,
) -> Result<usize, StoreError>
where
    F: FnMut(&Write<'_>, &str, &mut TicketRecord) -> Result<bool, StoreError> + Send + 'static,
{
    {
        let txn = store.read()?;
        if txn.get_bytes(META, flag)?.is_some() {
            return Ok(0);
        }
    }
    store.write_blocking(move |txn| {
        let (mut after, mut changed) = (None::<String>, 0);
        loop {
            let (mut chunk, mut seen) = (Vec::with_capacity(CHUNK), 0);
            // Past the last key of the previous chunk.
            let start = after.clone();
            let span = start.as_deref().map_or(Span::ALL, |k| Span::after(k, None));
            txn.visit(TICKETS, span, Order::Ascending, CHUNK, &mut |k, v| {
                seen += 1;
                after = Some(k.to_owned());
                if let Ok(record) = decode::<TicketRecord>(k, v) {
                    chunk.push((k.to_owned(), record));
                }
                Ok(true)
            })?;
            let last = seen < CHUNK;
            for (key, mut record) in chunk {
                let tenant = key.split('/').next().unwrap_or("").to_owned();
                if visit(txn, &tenant, &mut record)? {
                    put_in(txn, TICKETS, &key, &record)?;
                    changed += 1;
                }
            }
            if last {
                break;
            }
        }
        txn.put_bytes(META, flag, &[])?;
        Ok(changed)
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::store::{get, tenant_key};
    use crate::test_support::{Fixture, input};

    #[tokio::test]
    async fn every_ticket_is_visited_once_across_chunks_and_the_pass_runs_once() {
        let f = Fixture::new().await;
        let view = f.acme();
        f.tickets
            .create(&view, input(json!({"id": "T-0"})))
            .await
            .unwrap();
        let bytes = {
            let txn = f.store.read().unwrap();
            txn.get_bytes(TICKETS, &tenant_key("acme", "T-0"))
                .unwrap()
                .unwrap()
        };
        // 2.5 chunks of copies, and a record that does not parse in the middle.
        let copies = CHUNK * 5 / 2;
        f.store
            .write(move |txn| {
                for i in 1..copies {
                    txn.put_bytes(TICKETS, &tenant_key("acme", &format!("T-{i}")), &bytes)?;
                }
                txn.put_bytes(TICKETS, &tenant_key("acme", "T-1500x"), b"not json")
            })
            .await
            .unwrap();
        let mut seen = Vec::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let changed = once_over_tickets(&f.store, "test/flag", move |_, tenant, record| {
            assert_eq!(tenant, "acme");
            record.ticket.subject = "visited".into();
            tx.send(()).unwrap();
            Ok(true)
        })
        .unwrap();
        seen.extend(rx.try_iter());
        assert_eq!((changed, seen.len()), (copies, copies));
        let txn = f.store.read().unwrap();
        let last: TicketRecord = get(&txn, TICKETS, &tenant_key("acme", "T-2000"))
            .unwrap()
            .unwrap();
        assert_eq!(last.ticket.subject, "visited");
        drop(txn);
        let again = once_over_tickets(&f.store, "test/flag", |_, _, _| Ok(true)).unwrap();
        assert_eq!(again, 0, "flagged: not run again");
    }
}
