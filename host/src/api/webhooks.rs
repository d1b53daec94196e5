//! Webhook endpoint routes: thin over [`crate::endpoints`], which checks URLs against the
//! delivery policy, makes and rotates secrets, and dead-letters on deletion.

use axum::extract::State;
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, created, ok};
use super::params::{DeliveryPath, IdPath, TenantPath};
use super::{ApiError, AppState};
use crate::endpoints::EndpointChange;
use crate::store::records::{DeliveryRecord, WebhookRecord};
use crate::webhooks::EventType;

/// `PUT …/webhooks/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
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
    let change = EndpointChange {
        url: body.url,
        events: body.events,
        rotate_secret: body.rotate_secret,
    };
    let who = access.who();
    let stored = service
        .endpoints
        .put(&access.tenant, &who, &path.id, change)
        .await?;
    let answer = WebhookView::of(&stored.record, stored.secret);
    Ok(if stored.fresh {
        created(answer)
    } else {
        ok(answer)
    })
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
    let all = service.endpoints.list(&access.tenant)?;
    let webhooks = all.iter().map(|w| WebhookView::of(w, None)).collect();
    Ok(ok(WebhookList { webhooks }))
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
    let deliveries = service.endpoints.deliveries(&access.tenant, &path.id)?;
    Ok(ok(DeliveryList { deliveries }))
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
    let record = service
        .endpoints
        .retry(&access.tenant, &path.id, &path.msg)
        .await?;
    Ok(ok(record))
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
    let who = access.who();
    let dead = service
        .endpoints
        .delete(&access.tenant, &who, &path.id)
        .await?;
    Ok(ok(WebhookDeleted {
        id: path.id,
        deleted: true,
        dead_lettered: dead,
    }))
}
