//! Webhook endpoints and their deliveries log: internal IT's admins say where events go; the
//! server makes the `whsec_` secret and shows it once; rotating keeps the old secret signing
//! for a grace period so receivers can switch without dropping a delivery.

use axum::extract::State;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use serde_json::json;

use super::admin::write_with_tenant;
use super::{ApiError, ApiJson, ApiPath, AppState, Caller, created, ok, require};
use crate::service::audit;
use crate::store::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, Role, SecretRecord, WebhookRecord,
};
use crate::store::{self, StoreError};
use crate::webhooks::{EVENT_TYPES, Queued, Secret};

/// How long a rotated-out secret keeps signing.
pub(crate) const ROTATION_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// Most deliveries listed at once.
const MAX_LISTED: usize = 100;

/// `PUT …/webhooks/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookInput {
    /// Where deliveries go (http or https).
    url: String,
    /// Event types: `sla.escalation`, `sla.breached`, `rule.failed`, `schedule.fired`.
    events: Vec<String>,
    /// Make a new secret; the old one keeps signing for 24 hours.
    #[serde(default)]
    rotate_secret: bool,
}

/// `PUT …/webhooks/{id}` (admin): creates or updates an endpoint; answers the secret when it
/// is new (creation or rotation).
pub(crate) async fn put(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<WebhookInput>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    if !super::admin::valid_id(&id) {
        return Err(ApiError::invalid(
            "invalid_id",
            "webhook id must be 1-64 characters of a-z, 0-9, '-', '_', '.'",
        ));
    }
    service
        .deliveries
        .policy()
        .check_url(&body.url)
        .map_err(|e| ApiError::invalid("invalid_url", e.to_string()))?;
    if body.events.is_empty() {
        return Err(ApiError::invalid(
            "invalid_events",
            "subscribe to at least one event type",
        ));
    }
    if let Some(bad) = body
        .events
        .iter()
        .find(|e| !EVENT_TYPES.contains(&e.as_str()))
    {
        return Err(ApiError::invalid(
            "invalid_events",
            format!(
                "unknown event type {bad:?}; known: {}",
                EVENT_TYPES.join(", ")
            ),
        ));
    }
    let who = caller.0.id().to_owned();
    let now = Timestamp::now();
    let (fresh, record, secret) = write_with_tenant(&service, &t, {
        let id = id.clone();
        move |txn, tenant| {
            let key = store::tenant_key(&tenant.id, &id);
            let existing = store::get_in::<WebhookRecord>(txn, store::WEBHOOKS, &key)?;
            let fresh = existing.is_none();
            let mut record = existing.unwrap_or_else(|| WebhookRecord {
                id: id.clone(),
                url: String::new(),
                events: Vec::new(),
                secrets: Vec::new(),
                created_at: now,
            });
            record.url = body.url;
            record.events = body.events;
            let mut shown = None;
            if fresh || body.rotate_secret {
                let secret = Secret::generate().expose();
                record
                    .secrets
                    .retain(|s| s.expires_at.is_none_or(|e| e > now));
                for old in &mut record.secrets {
                    old.expires_at.get_or_insert(now + ROTATION_GRACE);
                }
                record.secrets.insert(
                    0,
                    SecretRecord {
                        secret: secret.clone(),
                        created_at: now,
                        expires_at: None,
                    },
                );
                shown = Some(secret);
            }
            store::put_in(txn, store::WEBHOOKS, &key, &record)?;
            let action = if shown.is_some() && !fresh {
                "webhook.rotate"
            } else {
                "webhook.put"
            };
            audit(txn, tenant, &who, action, &format!("webhooks/{id}"), None)?;
            Ok((fresh, record, shown))
        }
    })
    .await?;
    let mut answer = json!({"id": record.id, "url": record.url, "events": record.events});
    if let Some(secret) = secret {
        answer["secret"] = json!(secret);
    }
    Ok(if fresh { created(answer) } else { ok(answer) })
}

/// `GET …/webhooks/{id}/deliveries` (any role): attempts, status and next retry, newest first
/// (also after the endpoint was deleted).
pub(crate) async fn deliveries(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Viewer)?;
    let txn = service.store.read()?;
    let mut all: Vec<DeliveryRecord> = store::scan(&txn, store::DELIVERIES, &t)?;
    all.retain(|d| d.endpoint == id);
    // A deleted endpoint's log stays readable.
    if all.is_empty()
        && store::get::<WebhookRecord>(&txn, store::WEBHOOKS, &store::tenant_key(&t, &id))?
            .is_none()
    {
        return Err(ApiError::not_found(format!("no webhook {id:?}")));
    }
    all.reverse();
    all.truncate(MAX_LISTED);
    Ok(ok(json!({"deliveries": all})))
}

/// `POST …/webhooks/{id}/deliveries/{msg}/retry` (operator, admin): one more attempt now,
/// whatever the delivery's state (a dead-lettered one included); the history is kept.
pub(crate) async fn retry(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id, msg)): ApiPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Operator)?;
    let now = Timestamp::now();
    let key = store::tenant_key(&t, &msg);
    let endpoint = id.clone();
    let record = service
        .store
        .write(move |txn| -> Result<Option<DeliveryRecord>, StoreError> {
            let Some(mut d) = store::get_in::<DeliveryRecord>(txn, store::DELIVERIES, &key)? else {
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
        .ok_or_else(|| ApiError::not_found(format!("no delivery {msg:?} for webhook {id:?}")))?;
    service.deliveries.enqueue([Queued {
        tenant: t,
        endpoint: record.endpoint.clone(),
        id: record.id.clone(),
        due: now,
    }]);
    Ok(ok(record))
}

/// `GET …/webhooks` (any role): the endpoints, without their secrets.
pub(crate) async fn list(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Viewer)?;
    let txn = service.store.read()?;
    let all: Vec<WebhookRecord> = store::scan(&txn, store::WEBHOOKS, &t)?;
    let listed: Vec<_> = all
        .iter()
        .map(|w| json!({"id": w.id, "url": w.url, "events": w.events, "created_at": w.created_at}))
        .collect();
    Ok(ok(json!({"webhooks": listed})))
}

/// `DELETE …/webhooks/{id}` (admin): removes an endpoint; its pending deliveries are
/// dead-lettered in the same transaction (their log stays readable).
pub(crate) async fn delete(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    let now = Timestamp::now();
    // The endpoint's pending deliveries, found in a snapshot (the tenant's whole outbox is
    // read off the writer) and checked again in the write. One queued after the snapshot
    // meets the deleted endpoint at its attempt and is dead-lettered there.
    let candidates = {
        let (store, t, id) = (service.store.clone(), t.clone(), id.clone());
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
        .map_err(|e| ApiError::internal(&e))??
    };
    let removed = write_with_tenant(&service, &t, {
        let id = id.clone();
        move |txn, tenant| -> Result<Option<usize>, StoreError> {
            let key = store::tenant_key(&tenant.id, &id);
            if txn
                .open_table(store::WEBHOOKS)?
                .remove(key.as_str())?
                .is_none()
            {
                return Ok(None);
            }
            let mut pending = Vec::new();
            for k in candidates {
                let d = store::get_in::<DeliveryRecord>(txn, store::DELIVERIES, &k)?;
                if let Some(d) = d.filter(|d| d.state == DeliveryState::Pending) {
                    pending.push((k, d));
                }
            }
            for (k, mut d) in pending.iter().cloned() {
                d.state = DeliveryState::Dead;
                d.next_attempt_at = None;
                d.attempts.push(AttemptRecord {
                    at: now,
                    status: None,
                    error: Some("the endpoint was deleted".into()),
                    duration_ms: 0,
                });
                store::put_in(txn, store::DELIVERIES, &k, &d)?;
            }
            audit(
                txn,
                tenant,
                &who,
                "webhook.delete",
                &format!("webhooks/{id}"),
                None,
            )?;
            Ok(Some(pending.len()))
        }
    })
    .await?;
    let Some(dead) = removed else {
        return Err(ApiError::not_found(format!("no webhook {id:?}")));
    };
    Ok(ok(
        json!({"id": id, "deleted": true, "dead_lettered": dead}),
    ))
}
