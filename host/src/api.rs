//! The HTTP API (SPEC's table): one router, one error type whose JSON body every failure
//! shares, extractors that turn every rejection into that body, and authorization that
//! answers 404 — never 403 — to a key without a role on the tenant, so a tenant's existence
//! never leaks to another tenant's keys.

mod admin;
mod ops;
mod rules;
mod schedules;
pub(crate) mod tickets;
mod webhooks;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::Instrument;

pub(crate) use admin::{DeadlineRequest, NewKey, NewTenant};
pub(crate) use rules::TestRequest;
pub(crate) use schedules::ScheduleInput;
pub(crate) use tickets::{EventInput, TicketChanges};
pub(crate) use webhooks::WebhookInput;

use crate::service::{Principal, Service, TenantView};
use crate::store::StoreError;
use crate::store::records::Role;

/// Largest JSON body accepted (tickets, settings, calendars, test batches).
pub const MAX_JSON_BODY: usize = 256 << 10;
/// Longest a request may take before it is answered 503.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The shared state handed to handlers.
pub type AppState = Arc<Service>;

/// Builds the router.
pub fn app(service: AppState) -> Router {
    let tenant = Router::new()
        .route("/keys", post(admin::create_key).get(admin::list_keys))
        .route("/keys/{key}", axum::routing::delete(admin::revoke_key))
        .route(
            "/settings",
            put(admin::put_settings).get(admin::get_settings),
        )
        .route("/config", put(admin::put_config).get(admin::get_config))
        .route("/calendars", get(admin::list_calendars))
        .route(
            "/calendars/{id}",
            put(admin::put_calendar).get(admin::get_calendar),
        )
        .route("/calendars/{id}/deadline", post(admin::deadline))
        .route("/audit", get(admin::audit_log))
        .route(
            "/rules",
            post(rules::upload)
                .get(rules::list)
                .layer(axum::extract::DefaultBodyLimit::max(
                    crate::limits::MAX_MODULE_BYTES + 1,
                )),
        )
        .route("/rules/rollback", post(rules::rollback))
        .route("/rules/{version}/test", post(rules::test))
        .route("/rules/{version}/approve", post(rules::approve))
        .route("/rules/{version}/activate", post(rules::activate))
        .route("/tickets", post(tickets::create).get(tickets::board))
        .route("/tickets/{id}", get(tickets::read))
        .route("/tickets/{id}/events", post(tickets::event))
        .route("/webhooks", get(webhooks::list))
        .route(
            "/webhooks/{id}",
            put(webhooks::put).delete(webhooks::delete),
        )
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route(
            "/webhooks/{id}/deliveries/{msg}/retry",
            post(webhooks::retry),
        )
        .route("/schedules", get(schedules::list))
        .route(
            "/schedules/{id}",
            put(schedules::put).delete(schedules::delete),
        );
    Router::new()
        .route("/v1/tenants", post(admin::create_tenant))
        .nest("/v1/tenants/{tenant}", tenant)
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_JSON_BODY))
        .route_layer(middleware::from_fn_with_state(service.clone(), observe))
        .with_state(service)
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

/// An API error: a status and the SPEC's body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Answer with `Connection: close`: the error was found before the request body was
    /// read, so the connection cannot be reused (hyper closes it rather than read a body
    /// nobody wants); saying so lets keep-alive clients retire it instead of failing on it.
    close: bool,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            close: false,
        }
    }

    /// Marks the error as found before the body was read (see the `close` field).
    fn before_body(mut self) -> Self {
        self.close = true;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: well-formed, but not acceptable.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 409.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    /// 403: the key has a role on the tenant, but not this one.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 500 that says nothing of the cause (which is logged).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.close {
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(&e)
    }
}

/// A JSON body whose rejections (syntax, types, unknown fields, size, content type) answer
/// with the API's error body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    let text = rejection.body_text();
    match rejection {
        JsonRejection::JsonDataError(_) => ApiError::invalid("invalid_body", text),
        JsonRejection::JsonSyntaxError(_) => ApiError::bad_request("malformed_json", text),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "expected `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(_) => too_large_or(text),
        _ => ApiError::bad_request("bad_request", text),
    }
}

fn too_large_or(text: String) -> ApiError {
    if text.contains("length limit") || text.contains("too large") {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", text)
    } else {
        ApiError::bad_request("bad_request", text)
    }
}

/// Path parameters whose rejections (e.g. a version that is not a number) answer with the
/// API's error body.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(rejection) => {
                Err(ApiError::bad_request("invalid_path", rejection.body_text()).before_body())
            }
        }
    }
}

/// Most a client-supplied instant (`created_at`, an event's `at`) may be ahead of the
/// server's clock: within it the instant counts as "now" (clock skew), beyond it the request
/// is refused, because a future instant would make every later event look out of order.
pub const MAX_CLOCK_SKEW: jiff::SignedDuration = jiff::SignedDuration::from_secs(300);

/// `at` (default `now`), refusing instants beyond the allowed clock skew.
pub fn instant_at_most_now(
    at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
    field: &str,
) -> Result<jiff::Timestamp, ApiError> {
    match at {
        None => Ok(now),
        Some(at) if at <= now => Ok(at),
        Some(at) if at.duration_since(now) <= MAX_CLOCK_SKEW => Ok(now),
        Some(at) => Err(ApiError::invalid(
            "future_instant",
            format!("`{field}` {at} is in the future (the server's clock reads {now})"),
        )),
    }
}

/// The authenticated caller (`Authorization: Bearer <key>`).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, service: &AppState) -> Result<Self, ApiError> {
        let unauthorized =
            |m: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", m).before_body();
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("missing `Authorization: Bearer <key>` header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
        service
            .authenticate(token.trim())
            .map(Caller)
            .ok_or_else(|| unauthorized("unknown or revoked key"))
    }
}

/// The tenant, if the caller has at least `min` on it. No role (or no tenant) is 404, so a
/// key learns nothing about tenants it does not serve; too small a role is 403.
pub fn require(
    service: &Service,
    caller: &Caller,
    tenant: &str,
    min: Role,
) -> Result<Arc<TenantView>, ApiError> {
    tracing::Span::current().record("tenant", tenant);
    let not_found = || ApiError::not_found(format!("no tenant {tenant:?}"));
    let role = caller.0.role_on(tenant).ok_or_else(not_found)?;
    let view = service.tenant(tenant).ok_or_else(not_found)?;
    if role < min {
        return Err(ApiError::forbidden(format!(
            "this needs the {} role on the tenant; the key has {}",
            role_name(min),
            role_name(role)
        )));
    }
    Ok(view)
}

/// A role's API name.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Viewer => "viewer",
        Role::Intake => "intake",
        Role::Operator => "operator",
        Role::Admin => "admin",
    }
}

/// `201 Created` with a JSON body.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `200 OK` with a JSON body.
pub fn ok<T: Serialize>(body: T) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}
