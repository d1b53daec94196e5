//! Webhook endpoints and their deliveries log: internal IT's admins say where events go; the
//! server makes the `whsec_` secret and shows it once; rotating keeps the old secret signing
//! for a grace period so receivers can switch without dropping a delivery. Deleting an
//! endpoint dead-letters what it had pending in the same transaction, and a manual retry puts
//! one delivery back on the queue whatever its state.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};

use crate::refusal::{Error, Refusal, Result};
use crate::store::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, SecretRecord, WebhookRecord,
};
use crate::store::{self, Reader as _, Store, StoreError};
use crate::tenants::{TenantView, Tenants, audit, check_id};
use crate::webhooks::{Dispatcher, EventType, Queued, Secret};

/// How long a rotated-out secret keeps signing.
pub const ROTATION_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// Most deliveries listed at once.
pub const MAX_LISTED: usize = 100;

/// What a `PUT` of an endpoint asks for.
#[derive(Debug, Clone)]
pub struct EndpointChange {
    /// Where deliveries go.
    pub url: String,
    /// The event types it receives.
    pub events: Vec<String>,
    /// Make a new secret (the old one keeps signing for [`ROTATION_GRACE`]).
    pub rotate_secret: bool,
}

/// An endpoint after a `PUT`.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Whether it was created.
    pub fresh: bool,
    /// The endpoint.
    pub record: WebhookRecord,
    /// Its new secret, when one was made (creation or rotation).
    pub secret: Option<String>,
}

/// Endpoint management over the store, the tenant views and the dispatcher.
#[derive(Debug, Clone)]
pub struct Endpoints {
    store: Store,
    tenants: Arc<Tenants>,
    deliveries: Arc<Dispatcher>,
}

impl Endpoints {
    /// Endpoint management over these parts.
    pub fn new(store: Store, tenants: Arc<Tenants>, deliveries: Arc<Dispatcher>) -> Self {
        Endpoints {
            store,
            tenants,
            deliveries,
        }
    }

    /// Creates or updates endpoint `id` as `who`, refusing a URL delivery would refuse.
    pub async fn put(
        &self,
        view: &TenantView,
        who: &str,
        id: &str,
        change: EndpointChange,
    ) -> Result<Stored> {
        check_id(id, "webhook id")?;
        self.deliveries
            .policy()
            .check_url_resolved(&change.url)
            .await
            .map_err(|e| Refusal::invalid("invalid_url", format!("`url`: {e}")))?;
        if change.events.is_empty() {
            return Err(Refusal::invalid(
                "invalid_events",
                "`events`: subscribe to at least one event type",
            )
            .into());
        }
        for name in &change.events {
            EventType::parse(name)
                .map_err(|e| Refusal::invalid("invalid_events", format!("`events`: {e}")))?;
        }
        let (who, id) = (who.to_owned(), id.to_owned());
        let now = Timestamp::now();
        self.tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
                let key = store::tenant_key(&tenant.id, &id);
                let existing = store::get::<WebhookRecord>(txn, store::WEBHOOKS, &key)?;
                let fresh = existing.is_none();
                let mut record = existing.unwrap_or_else(|| WebhookRecord {
                    id: id.clone(),
                    url: String::new(),
                    events: Vec::new(),
                    secrets: Vec::new(),
                    created_at: now,
                });
                record.url = change.url;
                record.events = change.events;
                let mut secret = None;
                if fresh || change.rotate_secret {
                    let new = Secret::generate().expose();
                    record
                        .secrets
                        .retain(|s| s.expires_at.is_none_or(|e| e > now));
                    for old in &mut record.secrets {
                        old.expires_at.get_or_insert(now + ROTATION_GRACE);
                    }
                    record.secrets.insert(
                        0,
                        SecretRecord {
                            secret: new.clone(),
                            created_at: now,
                            expires_at: None,
                        },
                    );
                    secret = Some(new);
                }
                store::put_in(txn, store::WEBHOOKS, &key, &record)?;
                let action = if secret.is_some() && !fresh {
                    "webhook.rotate"
                } else {
                    "webhook.put"
                };
                audit(txn, tenant, &who, action, &format!("webhooks/{id}"), None)?;
                Ok(Ok(Stored {
                    fresh,
                    record,
                    secret,
                }))
            })
            .await
    }

    /// The tenant's endpoints.
    pub fn list(&self, view: &TenantView) -> Result<Vec<WebhookRecord>> {
        let txn = self.store.read()?;
        Ok(store::scan(&txn, store::WEBHOOKS, &view.record.id)?)
    }

    /// Up to [`MAX_LISTED`] deliveries of endpoint `id`, newest first (also after the
    /// endpoint was deleted).
    pub fn deliveries(&self, view: &TenantView, id: &str) -> Result<Vec<DeliveryRecord>> {
        let t = &view.record.id;
        let txn = self.store.read()?;
        let mut all: Vec<DeliveryRecord> = store::scan(&txn, store::DELIVERIES, t)?;
        all.retain(|d| d.endpoint == id);
        let key = store::tenant_key(t, id);
        if all.is_empty() && store::get::<WebhookRecord>(&txn, store::WEBHOOKS, &key)?.is_none() {
            return Err(Refusal::not_found(format!("no webhook {id:?}")).into());
        }
        all.reverse();
        all.truncate(MAX_LISTED);
        Ok(all)
    }

    /// One more attempt of delivery `msg` of endpoint `id` now, whatever its state (a
    /// dead-lettered one included); its history is kept.
    pub async fn retry(&self, view: &TenantView, id: &str, msg: &str) -> Result<DeliveryRecord> {
        let t = view.record.id.clone();
        let now = Timestamp::now();
        let key = store::tenant_key(&t, msg);
        let endpoint = id.to_owned();
        let record = self
            .store
            .write(move |txn| -> Result<Option<DeliveryRecord>, StoreError> {
                let Some(mut d) = store::get::<DeliveryRecord>(txn, store::DELIVERIES, &key)?
                else {
                    return Ok(None);
                };
                if d.endpoint != endpoint {
                    return Ok(None);
                }
                d.state = DeliveryState::Pending;
                d.next_attempt_at = Some(now);
                store::put_in(txn, store::DELIVERIES, &key, &d)?;
                Ok(Some(d))
            })
            .await?
            .ok_or_else(|| Refusal::not_found(format!("no delivery {msg:?} for webhook {id:?}")))?;
        self.deliveries.enqueue([Queued {
            tenant: t,
            endpoint: record.endpoint.clone(),
            id: record.id.clone(),
            due: now,
        }]);
        Ok(record)
    }

    /// Removes endpoint `id` as `who`; its pending deliveries are dead-lettered in the same
    /// transaction (their log stays readable). Returns how many were.
    pub async fn delete(&self, view: &TenantView, who: &str, id: &str) -> Result<usize> {
        let (t, id, who) = (view.record.id.clone(), id.to_owned(), who.to_owned());
        let now = Timestamp::now();
        // The endpoint's pending deliveries, found in a snapshot (the tenant's whole outbox is
        // read off the writer) and checked again in the write. One queued after the snapshot
        // meets the deleted endpoint at its attempt and is dead-lettered there.
        let candidates = {
            let (store, t, id) = (self.store.clone(), t.clone(), id.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<String>, StoreError> {
                let txn = store.read()?;
                let all: Vec<DeliveryRecord> = store::scan(&txn, store::DELIVERIES, &t)?;
                Ok(all
                    .into_iter()
                    .filter(|d| d.endpoint == id && d.state == DeliveryState::Pending)
                    .map(|d| store::tenant_key(&t, &d.id))
                    .collect())
            })
            .await
            .map_err(|e| Error::Internal(e.to_string()))??
        };
        self.tenants
            .write_with_tenant(&t, move |txn, tenant| {
                let key = store::tenant_key(&tenant.id, &id);
                if txn.get_bytes(store::WEBHOOKS, &key)?.is_none() {
                    return Ok(Err(Refusal::not_found(format!("no webhook {id:?}"))));
                }
                txn.delete(store::WEBHOOKS, &key)?;
                let mut dead = 0;
                for k in candidates {
                    let d = store::get::<DeliveryRecord>(txn, store::DELIVERIES, &k)?;
                    let Some(mut d) = d.filter(|d| d.state == DeliveryState::Pending) else {
                        continue;
                    };
                    d.state = DeliveryState::Dead;
                    d.next_attempt_at = None;
                    d.attempts.push(AttemptRecord {
                        at: now,
                        status: None,
                        error: Some("the endpoint was deleted".into()),
                        duration_ms: 0,
                    });
                    store::put_in(txn, store::DELIVERIES, &k, &d)?;
                    dead += 1;
                }
                let target = format!("webhooks/{id}");
                audit(txn, tenant, &who, "webhook.delete", &target, None)?;
                Ok(Ok(dead))
            })
            .await
    }
}
