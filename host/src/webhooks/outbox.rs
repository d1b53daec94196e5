//! The durable outbox: an event becomes one delivery record per subscribed endpoint, written
//! in the same transaction as the change that caused it, so an event is never lost between
//! "it happened" and "it was queued", and never sent for a change that did not commit.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::{Order, Reader, Span, Write};
use jiff::Timestamp;
use rand::Rng as _;
use serde_json::{Value, json};

use super::EventType;
use crate::store::records::{DeliveryRecord, DeliveryState, WebhookRecord};
use crate::store::{self, StoreError};

/// A delivery to hand to the dispatcher once its transaction has committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    /// Tenant id.
    pub tenant: String,
    /// Endpoint id (deliveries to one endpoint go out one at a time, in order).
    pub endpoint: String,
    /// Delivery (message) id.
    pub id: String,
    /// When its next attempt is due.
    pub due: Timestamp,
}

/// A new message id: `msg_` + creation time in ms + a per-process sequence + 32 random
/// bits, so ids sort by creation (events of one transaction keep their order) and stay
/// unique across restarts.
pub fn message_id(now: Timestamp) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let random: u32 = rand::rng().next_u32();
    format!("msg_{:013}{seq:08x}{random:08x}", now.as_millisecond())
}

/// The endpoints of `tenant`, read inside a write transaction.
pub fn endpoints_in(txn: &Write<'_>, tenant: &str) -> Result<Vec<WebhookRecord>, StoreError> {
    store::scan(txn, store::WEBHOOKS, tenant)
}

/// Queues `event` with `data` for every endpoint of `tenant` subscribed to it, inside `txn`.
/// The body is the Standard Webhooks envelope `{"type", "timestamp", "data"}`.
pub fn emit(
    txn: &Write<'_>,
    tenant: &str,
    event: EventType,
    data: Value,
    now: Timestamp,
) -> Result<Vec<Queued>, StoreError> {
    let event = event.as_str();
    let mut queued = Vec::new();
    let endpoints = endpoints_in(txn, tenant)?;
    if endpoints
        .iter()
        .all(|e| !e.events.iter().any(|x| x == event))
    {
        return Ok(queued);
    }
    let body = json!({"type": event, "timestamp": now, "data": data}).to_string();
    for endpoint in endpoints
        .into_iter()
        .filter(|e| e.events.iter().any(|x| x == event))
    {
        let record = DeliveryRecord {
            id: message_id(now),
            endpoint: endpoint.id,
            event: event.to_owned(),
            body: body.clone(),
            created_at: now,
            state: DeliveryState::Pending,
            attempts: Vec::new(),
            next_attempt_at: Some(now),
        };
        store::put_in(
            txn,
            store::DELIVERIES,
            &store::tenant_key(tenant, &record.id),
            &record,
        )?;
        queued.push(Queued {
            tenant: tenant.to_owned(),
            endpoint: record.endpoint,
            id: record.id,
            due: now,
        });
    }
    Ok(queued)
}

fn finished(d: &DeliveryRecord) -> bool {
    d.state != DeliveryState::Pending
}

/// Up to [`SWEEP_BATCH`] keys of finished deliveries created before `cutoff`, after the key
/// `after`, and the last key looked at.
fn old_finished(
    store: &store::Store,
    mut after: String,
    cutoff: Timestamp,
) -> Result<(Vec<String>, String), StoreError> {
    let cutoff_ms = cutoff.as_millisecond();
    let old = |key: &str| {
        key.split_once("/msg_")
            .and_then(|(_, rest)| rest.get(..13)?.parse::<i64>().ok())
            .is_some_and(|ms| ms < cutoff_ms)
    };
    let txn = store.read()?;
    let mut keys = Vec::new();
    // Past the last key of the previous pass.
    let start = after.clone();
    txn.visit(
        store::DELIVERIES,
        Span::after(&start, None),
        Order::Ascending,
        usize::MAX,
        &mut |k, v| {
            after = k.to_owned();
            if old(k) && finished(&store::decode(k, v)?) {
                keys.push(k.to_owned());
            }
            Ok(keys.len() < SWEEP_BATCH)
        },
    )?;
    Ok((keys, after))
}

/// Finished deliveries removed per transaction by [`sweep`].
const SWEEP_BATCH: usize = 1000;

/// Deletes finished deliveries (delivered or dead-lettered) created before `cutoff`, so the
/// outbox and its log stay bounded; pending ones stay whatever their age. Returns how many
/// went. Candidates are found in a snapshot (keys carry their creation instant, so only old
/// records are decoded) and removed in small write transactions that check them again, so
/// intake never waits behind a long sweep.
pub async fn sweep(store: &store::Store, cutoff: Timestamp) -> Result<usize, StoreError> {
    let mut total = 0;
    let mut after = String::new();
    loop {
        // The scan reads the whole table over the passes: off the async runtime.
        let snapshot = store.clone();
        let (keys, last) =
            tokio::task::spawn_blocking(move || old_finished(&snapshot, after, cutoff))
                .await
                .map_err(|e| StoreError::Task(e.to_string()))??;
        after = last;
        if keys.is_empty() {
            return Ok(total);
        }
        let done = keys.len() < SWEEP_BATCH;
        total += store
            .write(move |txn| {
                let mut removed = 0;
                for k in keys {
                    // A manual retry may have made it pending again since the snapshot.
                    let still = match store::get(txn, store::DELIVERIES, &k)? {
                        Some(record) => finished(&record),
                        None => false,
                    };
                    if still {
                        txn.delete(store::DELIVERIES, &k)?;
                        removed += 1;
                    }
                }
                Ok(removed)
            })
            .await?;
        if done {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sweep_removes_old_finished_deliveries_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = store::Store::open(&dir.path().join("db.redb")).unwrap();
        let now = Timestamp::now();
        let old = now - jiff::SignedDuration::from_hours(24 * 40);
        let mut expected_left = Vec::new();
        let mut rows = Vec::new();
        for (tenant, created, state) in [
            ("a", old, DeliveryState::Delivered),
            ("a", old, DeliveryState::Dead),
            ("a", old, DeliveryState::Pending),
            ("a", now, DeliveryState::Delivered),
            ("b", old, DeliveryState::Delivered),
            ("b", now, DeliveryState::Dead),
        ] {
            let record = DeliveryRecord {
                id: message_id(created),
                endpoint: "ops".into(),
                event: "sla.breached".into(),
                body: "{}".into(),
                created_at: created,
                state,
                attempts: Vec::new(),
                next_attempt_at: None,
            };
            let key = store::tenant_key(tenant, &record.id);
            if created == now || state == DeliveryState::Pending {
                expected_left.push(key.clone());
            }
            rows.push((key, record));
        }
        store
            .write(move |txn| {
                for (k, r) in &rows {
                    store::put_in(txn, store::DELIVERIES, k, r)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let cutoff = now - jiff::SignedDuration::from_hours(24 * 30);
        assert_eq!(sweep(&store, cutoff).await.unwrap(), 3);
        assert_eq!(
            sweep(&store, cutoff).await.unwrap(),
            0,
            "nothing more to do"
        );
        let txn = store.read().unwrap();
        let mut left = store::keys(
            &txn,
            store::DELIVERIES,
            Span::ALL,
            Order::Ascending,
            usize::MAX,
        )
        .unwrap();
        left.sort();
        expected_left.sort();
        assert_eq!(left, expected_left);
    }
}
