//! Liveness, readiness, metrics and the OpenAPI document: unauthenticated, for the platform's
//! load balancer, Prometheus and API clients.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::ok;
use super::{ApiError, AppState, ErrorBody};
use crate::board::BoardStanding;
use crate::store::StoreError;

/// `GET /healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    /// `ok`.
    status: String,
}

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get, path = "/healthz", tag = "operations", summary = "Liveness.",
    extensions(("x-min-role" = json!("none"))),
    responses((status = 200, description = "Alive.", body = Health))
)]
pub(crate) async fn healthz() -> Response {
    ok(Health {
        status: "ok".into(),
    })
}

/// `GET /readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Ready {
    /// `ready`.
    status: String,
    /// How many tenants are loaded.
    tenants: usize,
}

/// `GET /readyz`: the store answers reads and its writer runs.
#[utoipa::path(
    get, path = "/readyz", tag = "operations", summary = "Readiness (the store answers).",
    extensions(("x-min-role" = json!("none"))),
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "The store's writer has stopped.", body = ErrorBody),
        (status = 500, description = "The store does not answer.", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(service): State<AppState>) -> Result<Response, ApiError> {
    service.store.read()?;
    if !service.store.writer_alive() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the store's writer has stopped",
        ));
    }
    Ok(ok(Ready {
        status: "ready".into(),
        tenants: service.tenants.all().len(),
    }))
}

/// `GET /metrics`: Prometheus text format.
#[utoipa::path(
    get, path = "/metrics", tag = "operations", summary = "Prometheus metrics.",
    extensions(("x-min-role" = json!("none"))),
    responses(
        (status = 200, description = "Prometheus text format.", body = String, content_type = "text/plain"),
        (status = 500, description = "The store does not answer.", body = ErrorBody),
    )
)]
pub(crate) async fn metrics(State(service): State<AppState>) -> Result<Response, ApiError> {
    let mut cache = service.metrics.clocks.lock().await;
    let clocks = match &*cache {
        Some((taken, clocks)) if taken.elapsed() < crate::metrics::CLOCKS_MAX_AGE => clocks.clone(),
        _ => {
            let clocks = census(&service).await?;
            *cache = Some((std::time::Instant::now(), clocks.clone()));
            clocks
        }
    };
    drop(cache);
    let body = service.metrics.render(&clocks, service.store.stats());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// Open SLA clocks by standing (running, at risk, breached, paused), over every tenant's
/// open-clock rows.
async fn census(service: &AppState) -> Result<BTreeMap<String, u64>, ApiError> {
    let (store, tenants) = (service.store.clone(), service.tenants.clone());
    let clocks =
        tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, u64>, StoreError> {
            let now = Timestamp::now();
            let mut counts: BTreeMap<String, u64> = ["running", "at_risk", "breached", "paused"]
                .into_iter()
                .map(|s| (s.to_owned(), 0))
                .collect();
            for view in tenants.all() {
                for entry in crate::board::all(&store, &view.record.id)? {
                    for clock in &entry.clocks {
                        let state = match entry.standing(Some(clock.metric), now) {
                            Some(BoardStanding::Running) | None => "running",
                            Some(BoardStanding::AtRisk) => "at_risk",
                            Some(BoardStanding::Breached) => "breached",
                            Some(BoardStanding::Paused) => "paused",
                        };
                        *counts.entry(state.to_owned()).or_default() += 1;
                    }
                }
            }
            Ok(counts)
        })
        .await
        .map_err(|e| ApiError::internal(&e))??;
    Ok(clocks)
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "operations", summary = "This document.",
    extensions(("x-min-role" = json!("none"))),
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object))
)]
pub(crate) async fn openapi(
    axum::Extension(document): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Response {
    ok(&*document)
}
