//! Webhook endpoints and their deliveries log: internal IT's admins say where events go; the
//! server makes the `whsec_` secret and shows it once; rotating keeps the old secret signing
//! for a grace period so receivers can switch without dropping a delivery.

use axum::extract::State;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, created, ok};
use super::params::{DeliveryPath, IdPath, TenantPath};
use super::{ApiError, AppState};
use crate::refusal::Refusal;
use crate::store::records::{
    AttemptRecord, DeliveryRecord, DeliveryState, SecretRecord, WebhookRecord,
};
use crate::store::{self, StoreError};
use crate::tenants::{audit, invalid_id, valid_id};
use crate::webhooks::{EventType, Queued, Secret};

/// How long a rotated-out secret keeps signing.
pub(crate) const ROTATION_GRACE: SignedDuration = SignedDuration::from_hours(24);
/// Most deliveries listed at once.
const MAX_LISTED: usize = 100;

/// `PUT …/webhooks/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookInput {
    /// Where deliveries go (http or https, resolving to a public address unless the operator
    /// allowed it with `--webhook-allow`).
    url: String,
    /// Event types (at least one): `sla.escalation`, `sla.breached`, `rule.failed`,
    /// `schedule.fired`.
    #[schema(value_type = Vec<EventType>, min_items = 1)]
    events: Vec<String>,
    /// Make a new secret; the old one keeps signing for 24 hours.
    #[serde(default)]
    rotate_secret: bool,
}

/// An endpoint as the API shows it (never its secrets, but the new one once).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    /// Its id.
    id: String,
    /// Where deliveries go.
    url: String,
    /// The event types it receives.
    events: Vec<String>,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
    /// The new `whsec_` secret: on creation and rotation only, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn of(w: &WebhookRecord, secret: Option<String>) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            created_at: w.created_at,
            secret,
        }
    }
}

/// `PUT …/webhooks/{id}`: creates or updates an endpoint; answers the secret when it is new
/// (creation or rotation).
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/webhooks/{id}", tag = "webhooks",
    summary = "Create or update an endpoint `{url, events, rotate_secret?}`; answers `{secret}` (`whsec_…`) when it is new.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath), request_body = WebhookInput,
    responses(
        (status = 201, description = "Created, with its secret.", body = WebhookView),
        (status = 200, description = "Updated (with the new secret when rotated).", body = WebhookView),
    )
)]
pub(crate) async fn put(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(body): ApiJson<WebhookInput>,
) -> Result<Response, ApiError> {
    let id = path.id;
    if !valid_id(&id) {
        return Err(invalid_id("webhook id").into());
    }
    service
        .deliveries
        .policy()
        .check_url_resolved(&body.url)
        .await
        .map_err(|e| ApiError::invalid("invalid_url", format!("`url`: {e}")))?;
    if body.events.is_empty() {
        return Err(ApiError::invalid(
            "invalid_events",
            "`events`: subscribe to at least one event type",
        ));
    }
    for name in &body.events {
        EventType::parse(name)
            .map_err(|e| ApiError::invalid("invalid_events", format!("`events`: {e}")))?;
    }
    let who = access.who();
    let now = Timestamp::now();
    let (fresh, record, secret) = service
        .tenants
        .write_with_tenant(access.id(), {
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
                Ok(Ok((fresh, record, shown)))
            }
        })
        .await?;
    let answer = WebhookView::of(&record, secret);
    Ok(if fresh { created(answer) } else { ok(answer) })
}

/// An endpoint's deliveries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryList {
    /// Newest first, at most 100.
    deliveries: Vec<DeliveryRecord>,
}

/// `GET …/webhooks/{id}/deliveries`: attempts, status and next retry, newest first (also
/// after the endpoint was deleted).
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/webhooks/{id}/deliveries", tag = "webhooks",
    summary = "Deliveries of the endpoint: attempts, status, next retry.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath),
    responses((status = 200, description = "The deliveries.", body = DeliveryList))
)]
pub(crate) async fn deliveries(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    let (t, id) = (access.id(), path.id);
    let txn = service.store.read()?;
    let mut all: Vec<DeliveryRecord> = store::scan(&txn, store::DELIVERIES, t)?;
    all.retain(|d| d.endpoint == id);
    // A deleted endpoint's log stays readable.
    if all.is_empty()
        && store::get::<WebhookRecord>(&txn, store::WEBHOOKS, &store::tenant_key(t, &id))?.is_none()
    {
        return Err(ApiError::not_found(format!("no webhook {id:?}")));
    }
    all.reverse();
    all.truncate(MAX_LISTED);
    Ok(ok(DeliveryList { deliveries: all }))
}

/// `POST …/webhooks/{id}/deliveries/{msg}/retry`: one more attempt now, whatever the
/// delivery's state (a dead-lettered one included); the history is kept.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/webhooks/{id}/deliveries/{msg}/retry", tag = "webhooks",
    summary = "One more attempt of a delivery now (dead-lettered ones included).",
    extensions(("x-min-role" = json!("operator"))),
    params(DeliveryPath),
    responses((status = 200, description = "Queued again.", body = DeliveryRecord))
)]
pub(crate) async fn retry(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<DeliveryPath>,
) -> Result<Response, ApiError> {
    let (t, id, msg) = (access.id().to_owned(), path.id, path.msg);
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

/// The endpoints of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookList {
    /// The endpoints, without their secrets.
    webhooks: Vec<WebhookView>,
}

/// `GET …/webhooks`: the endpoints, without their secrets.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/webhooks", tag = "webhooks",
    summary = "Endpoints with their URLs and event types (never their secrets).",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The endpoints.", body = WebhookList))
)]
pub(crate) async fn list(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    let txn = service.store.read()?;
    let all: Vec<WebhookRecord> = store::scan(&txn, store::WEBHOOKS, access.id())?;
    let webhooks = all.iter().map(|w| WebhookView::of(w, None)).collect();
    Ok(ok(WebhookList { webhooks }))
}

/// An endpoint removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookDeleted {
    /// Its id.
    id: String,
    /// Always true.
    deleted: bool,
    /// How many pending deliveries were dead-lettered.
    dead_lettered: usize,
}

/// `DELETE …/webhooks/{id}`: removes an endpoint; its pending deliveries are dead-lettered in
/// the same transaction (their log stays readable).
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/webhooks/{id}", tag = "webhooks",
    summary = "Remove an endpoint; its pending deliveries are dead-lettered.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath),
    responses((status = 200, description = "Removed.", body = WebhookDeleted))
)]
pub(crate) async fn delete(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    let (t, id) = (access.id().to_owned(), path.id);
    let who = access.who();
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
    let dead = service
        .tenants
        .write_with_tenant(&t, {
            let id = id.clone();
            move |txn, tenant| {
                let key = store::tenant_key(&tenant.id, &id);
                if txn
                    .open_table(store::WEBHOOKS)?
                    .remove(key.as_str())?
                    .is_none()
                {
                    return Ok(Err(Refusal::not_found(format!("no webhook {id:?}"))));
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
                Ok(Ok(pending.len()))
            }
        })
        .await?;
    Ok(ok(WebhookDeleted {
        id,
        deleted: true,
        dead_lettered: dead,
    }))
}
