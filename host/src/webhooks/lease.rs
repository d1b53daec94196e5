//! Which node sends a delivery, on a database several nodes share: before an attempt a node
//! writes a lease row (node, until) in the same transaction that checks the delivery is due,
//! and no other node sends it while that lease holds, so a delivery queued on two nodes
//! (after a node was taken for dead, or a restart) still goes out once; a node that dies
//! holding leases leaves those deliveries to the others once the leases run out. On the
//! embedded store there is one node and no lease.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};

use super::delivery::ATTEMPT_TIMEOUT;
use crate::store::records::{DeliveryRecord, DeliveryState, WebhookRecord};
use crate::store::{self, Reader, Store, StoreError};

/// A queued delivery counts as due this much before its recorded next attempt (the queue
/// and the record carry the same instant; this only absorbs clock reads).
pub(super) const DUE_SLACK: SignedDuration = SignedDuration::from_millis(100);

/// How long a node's lease on a delivery it sends lasts: longer than an attempt may take
/// ([`ATTEMPT_TIMEOUT`]) plus the wait for its outcome to be recorded (at most one more
/// attempt, `RECORD_EVERY` after the first). A dead node's deliveries go out again this
/// long after it took them, at the latest.
pub(super) const LEASE: Duration = Duration::from_secs(30);

/// A node's hold on a delivery it is sending (the [`store::LEASES`] row).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct Lease {
    /// The node (its [`Dispatcher::node`]).
    node: String,
    /// When the hold runs out.
    until: Timestamp,
}

/// Deliveries a node takes in one transaction on a shared database.
pub(super) const TAKE_AHEAD: usize = 16;
/// Room kept in a lease for recording the outcome after an attempt.
pub(super) const LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Takes delivery `key` for `node` until `until` inside `txn`, if it is due and no other
/// node holds an unexpired lease on it (this node's own lease is renewed).
pub(super) fn take_in(
    txn: &store::Write<'_>,
    tenant: &str,
    key: &str,
    node: &str,
    now: Timestamp,
    until: Timestamp,
) -> Result<Taken, StoreError> {
    let Some((record, endpoint)) = due_in(txn, tenant, key, now)? else {
        return Ok(Taken::NotDue);
    };
    if let Some(lease) = store::get::<Lease>(txn, store::LEASES, key)?
        && lease.until > now
        && lease.node != node
    {
        return Ok(Taken::Held(lease.until));
    }
    let lease = Lease {
        node: node.to_owned(),
        until,
    };
    store::put_in(txn, store::LEASES, key, &lease)?;
    Ok(Taken::Send(Box::new((record, endpoint))))
}

/// What [`Dispatcher::take`] found.
pub(super) enum Taken {
    /// Send it (the delivery, and its endpoint unless deleted).
    Send(Box<(DeliveryRecord, Option<WebhookRecord>)>),
    /// Settled, gone, or not due yet.
    NotDue,
    /// Another node holds it until then.
    Held(Timestamp),
}

/// The delivery at `key` and its endpoint (`None`: deleted), if it is pending with its next
/// attempt due at `now`, as `txn` sees them.
#[allow(clippy::type_complexity)]
pub(super) fn due_in(
    txn: &impl Reader,
    tenant: &str,
    key: &str,
    now: Timestamp,
) -> Result<Option<(DeliveryRecord, Option<WebhookRecord>)>, StoreError> {
    let Some(record) = store::get::<DeliveryRecord>(txn, store::DELIVERIES, key)? else {
        return Ok(None);
    };
    let due = record.state == DeliveryState::Pending
        && record
            .next_attempt_at
            .is_none_or(|at| at <= now + DUE_SLACK);
    if !due {
        return Ok(None);
    }
    let endpoint_key = store::tenant_key(tenant, &record.endpoint);
    let endpoint = store::get::<WebhookRecord>(txn, store::WEBHOOKS, &endpoint_key)?;
    Ok(Some((record, endpoint)))
}

/// Ends `node`'s lease on delivery `key` inside `txn` (its outcome is being recorded); a lease
/// another node took after this one ran out is that node's, and stays.
pub(super) fn release_in(txn: &store::Write<'_>, key: &str, node: &str) -> Result<(), StoreError> {
    if txn.is_shared()
        && store::get::<Lease>(txn, store::LEASES, key)?.is_some_and(|l| l.node == node)
    {
        txn.delete(store::LEASES, key)?;
    }
    Ok(())
}

/// Ends every lease `node` holds, inside `txn`, and answers how many: the node is stopping,
/// so what it took and did not record goes to the other nodes now, not when the leases run
/// out. (An attempt it abandoned may have reached its receiver: it goes again, under the same
/// `webhook-id`.)
pub(crate) fn release_all_in(txn: &store::Write<'_>, node: &str) -> Result<usize, StoreError> {
    let all = store::Span::ALL;
    let leases =
        store::decoded::<Lease>(txn, store::LEASES, all, store::Order::Ascending, usize::MAX)?;
    let mut ended = 0;
    for (key, lease) in leases {
        if lease.node == node {
            txn.delete(store::LEASES, &key)?;
            ended += 1;
        }
    }
    Ok(ended)
}

/// The delivery at `keys[0]` and its endpoint, if it is pending and due now and (on a shared
/// database) `node` could take it: no other node holds an unexpired lease on it. The
/// lease is written in the same transaction that checked it, so two nodes never both
/// take a delivery while its lease runs; a node that dies holding one leaves it to the
/// others once it has run out.
///
/// On a shared database the next [`TAKE_AHEAD`] deliveries of `keys` are taken in one
/// transaction (one commit for many sends, not one each); `keys[0]` is the one answered,
/// the rest go into `ahead`, to be used while their lease has room for an attempt.
pub(super) async fn take(
    store: &Store,
    node: &str,
    tenant: &str,
    keys: &[String],
    ahead: &mut HashMap<String, (Instant, Taken)>,
) -> Result<Taken, StoreError> {
    let first = &keys[0];
    if !store.is_shared() {
        return Ok(
            match due_in(&store.read()?, tenant, first, Timestamp::now())? {
                Some(due) => Taken::Send(Box::new(due)),
                None => Taken::NotDue,
            },
        );
    }
    if let Some((at, taken)) = ahead.remove(first)
        && at.elapsed() + ATTEMPT_TIMEOUT + LEASE_MARGIN < LEASE
    {
        return Ok(taken);
    }
    let (tenant, node) = (tenant.to_owned(), node.to_owned());
    let batch: Vec<String> = keys.iter().take(TAKE_AHEAD).cloned().collect();
    let at = Instant::now();
    let mut taken = store
        .write(move |txn| {
            let now = Timestamp::now();
            let until = now + SignedDuration::try_from(LEASE).unwrap_or_default();
            let mut out = Vec::with_capacity(batch.len());
            for key in batch {
                let taken = take_in(txn, &tenant, &key, &node, now, until)?;
                out.push((key, taken));
            }
            Ok(out)
        })
        .await?
        .into_iter();
    let (_, answer) = taken.next().expect("the first key is taken");
    ahead.extend(taken.map(|(key, t)| (key, (at, t))));
    Ok(answer)
}
