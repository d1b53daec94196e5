//! The HTTP API (SPEC's table). Each route is declared once, on its handler, with
//! `#[utoipa::path]`: method, path, the least role that may call it (`x-min-role`), its
//! parameters, body and answers. [`routes`] collects them into one table from which come the
//! axum router, the OpenAPI document ([`openapi`]) and the access check ([`access`]), which
//! authorizes every request from that same table before anything else of it is read.
//! Authorization answers 404 — never 403 — to a key without a role on the tenant, so a
//! tenant's existence never leaks to another tenant's keys.

pub mod access;
mod admin;
mod backup;
pub mod console;
pub mod extract;
pub mod openapi;
mod ops;
pub mod params;
mod replay;
mod reports;
mod rules;
mod schedules;
mod settings;
mod tickets;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use self::extract::{ApiError, ApiJson, ApiPath, ApiQuery, Authorized, ErrorBody};
use crate::service::Service;

/// Largest JSON body accepted (tickets, settings, calendars, test batches).
pub const MAX_JSON_BODY: usize = 256 << 10;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared state handed to handlers.
pub type AppState = Arc<Service>;

/// The route table: every route of the API with its handler and its OpenAPI operation.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(admin::create_tenant))
        .routes(routes!(backup::backup))
        .routes(routes!(admin::create_key, admin::list_keys))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(admin::me))
        .routes(routes!(settings::put_settings, settings::get_settings))
        .routes(routes!(settings::put_config, settings::get_config))
        .routes(routes!(settings::list_calendars))
        .routes(routes!(settings::put_calendar, settings::get_calendar))
        .routes(routes!(settings::deadline))
        .routes(routes!(admin::audit_log))
        .routes(routes!(rules::upload, rules::list))
        .routes(routes!(rules::rollback))
        .routes(routes!(rules::test))
        .routes(routes!(rules::approve))
        .routes(routes!(rules::activate))
        .routes(routes!(replay::replay))
        .routes(routes!(replay::get_replay))
        .routes(routes!(replay::export))
        .routes(routes!(tickets::create, tickets::board))
        .routes(routes!(tickets::read))
        .routes(routes!(tickets::event))
        .routes(routes!(reports::sla))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::put, webhooks::delete))
        .routes(routes!(webhooks::deliveries))
        .routes(routes!(webhooks::retry))
        .routes(routes!(schedules::list))
        .routes(routes!(schedules::put, schedules::delete))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(ops::openapi))
        .routes(routes!(console::index))
        .routes(routes!(console::file))
}

/// Builds the router.
pub fn app(service: AppState) -> Router {
    let (router, document) = routes().split_for_parts();
    let document = openapi::finish(document);
    let table = Arc::new(access::Table::from_document(&document));
    let document = Arc::new(document);
    router
        // Rule uploads are modules, not JSON: their route takes a larger body.
        .layer(axum::extract::DefaultBodyLimit::max(
            crate::limits::MAX_MODULE_BYTES + 1,
        ))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .route_layer(middleware::from_fn_with_state(
            (service.clone(), table),
            access::authorize,
        ))
        .route_layer(middleware::from_fn_with_state(service.clone(), observe))
        .layer(axum::Extension(document))
        .layer(middleware::map_response(secure))
        .with_state(service)
}

/// Sets [`console::SECURITY_HEADERS`] on every answer.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in console::SECURITY_HEADERS {
        headers
            .entry(name)
            .or_insert(axum::http::HeaderValue::from_static(value));
    }
    response
}

/// Per request: a tracing span, the timeout, and the metrics.
async fn observe(State(service): State<AppState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        path = %request.uri().path(),
        tenant = tracing::field::Empty,
        ticket = tracing::field::Empty,
        rule_version = tracing::field::Empty,
    );
    let response =
        match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request).instrument(span.clone()))
            .await
        {
            Ok(response) => response,
            Err(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                format!(
                    "the request took longer than {} s",
                    REQUEST_TIMEOUT.as_secs()
                ),
            )
            .into_response(),
        };
    let status = response.status().as_u16();
    service
        .metrics
        .request(&route, &method, status, start.elapsed());
    span.in_scope(|| {
        tracing::debug!(
            status,
            micros = start.elapsed().as_micros() as u64,
            "answered"
        )
    });
    response
}
