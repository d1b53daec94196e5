//! Liveness, readiness, metrics and the OpenAPI document: unauthenticated, for the platform's
//! load balancer, Prometheus and API clients.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::json;
use switchboard_rules::ClockState;

use super::{ApiError, AppState, ok};
use crate::store::records::TicketRecord;
use crate::store::{self, StoreError};

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    ok(json!({"status": "ok"}))
}

/// `GET /readyz`: the store answers reads and its writer runs.
pub(crate) async fn readyz(State(service): State<AppState>) -> Result<Response, ApiError> {
    service.store.read()?;
    if !service.store.writer_alive() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the store's writer has stopped",
        ));
    }
    Ok(ok(
        json!({"status": "ready", "tenants": service.tenants().len()}),
    ))
}

/// `GET /metrics`: Prometheus text format.
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

/// SLA clocks by state, over every tenant's tickets.
async fn census(service: &AppState) -> Result<BTreeMap<String, u64>, ApiError> {
    let service2 = service.clone();
    let clocks =
        tokio::task::spawn_blocking(move || -> Result<BTreeMap<String, u64>, StoreError> {
            let now = Timestamp::now();
            let mut counts: BTreeMap<String, u64> =
                ["running", "paused", "met", "breached", "cancelled"]
                    .into_iter()
                    .map(|s| (s.to_owned(), 0))
                    .collect();
            let txn = service2.store.read()?;
            for view in service2.tenants() {
                let records: Vec<TicketRecord> =
                    store::scan(&txn, store::TICKETS, &view.record.id)?;
                for record in records {
                    for r in record
                        .sla
                        .readings(now, &view.calendars)
                        .unwrap_or_default()
                    {
                        let state = match r.state {
                            ClockState::Running => "running",
                            ClockState::Paused => "paused",
                            ClockState::Met => "met",
                            ClockState::Breached => "breached",
                            ClockState::Cancelled => "cancelled",
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
pub(crate) async fn openapi() -> Response {
    ok(crate::openapi::document())
}
