//! The durable outbox: an event becomes one delivery record per subscribed endpoint, written
//! in the same transaction as the change that caused it, so an event is never lost between
//! "it happened" and "it was queued", and never sent for a change that did not commit.

use std::sync::atomic::{AtomicU32, Ordering};

use jiff::Timestamp;
use rand::Rng as _;
use redb::{ReadableTable, WriteTransaction};
use serde_json::{Value, json};

use crate::store::records::{DeliveryRecord, DeliveryState, WebhookRecord};
use crate::store::{self, StoreError};

/// The event types an endpoint may subscribe to.
pub const EVENT_TYPES: &[&str] = &[
    "sla.escalation",
    "sla.breached",
    "rule.failed",
    "schedule.fired",
];

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
pub fn endpoints_in(
    txn: &WriteTransaction,
    tenant: &str,
) -> Result<Vec<WebhookRecord>, StoreError> {
    let table = txn.open_table(store::WEBHOOKS)?;
    let (from, to) = store::tenant_range(tenant);
    let mut out = Vec::new();
    for entry in table.range(from.as_str()..to.as_str())? {
        let (k, v) = entry?;
        out.push(store::decode(k.value(), v.value())?);
    }
    Ok(out)
}

/// Queues `event` with `data` for every endpoint of `tenant` subscribed to it, inside `txn`.
/// The body is the Standard Webhooks envelope `{"type", "timestamp", "data"}`.
pub fn emit(
    txn: &WriteTransaction,
    tenant: &str,
    event: &str,
    data: Value,
    now: Timestamp,
) -> Result<Vec<Queued>, StoreError> {
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
