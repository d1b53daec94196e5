//! Rule lifecycle routes: thin over [`crate::lifecycle`], which validates, stores, approves,
//! activates and rolls back (with four-eyes) and runs the dry run.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_rules::{TicketEvent, TicketInput};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, body_bytes, created, from_value_at, ok};
use super::params::{TenantPath, VersionPath};
use super::{ApiError, AppState, ErrorBody};
use crate::lifecycle::MAX_TEST_TICKETS;
use crate::store::records::{RuleRecord, RuleStatus};

/// A version just uploaded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Uploaded {
    /// The new version number.
    version: u32,
    /// The module's sha256.
    sha256: String,
    /// `compiling`: it becomes `uploaded` (or `failed`, with the reason in `error`) once
    /// compiled and started on a sample ticket; `GET …/rules` shows it.
    status: RuleStatus,
    /// The contract version it implements.
    contract: String,
    /// The toolchain that built it (`native`, `javascript`, `python`), which chooses its
    /// limits.
    toolchain: crate::limits::Toolchain,
    /// Its size in bytes.
    size: usize,
}

/// `POST …/rules`: body `application/wasm`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules", tag = "rules",
    summary = "Upload a rule component (`application/wasm`); answers `{version, sha256, status}`.",
    extensions(("x-min-role" = json!("operator"))),
    params(TenantPath),
    request_body(content = inline(String), content_type = "application/wasm", description = "The component's bytes."),
    responses(
        (status = 201, description = "Stored as a new version, `compiling`.", body = Uploaded),
        (status = 413, description = "Larger than the tenant's module size limit.", body = ErrorBody),
        (status = 415, description = "Not `application/wasm`.", body = ErrorBody),
        (status = 422, description = "Not a valid rule component.", body = ErrorBody),
    )
)]
pub(crate) async fn upload(
    State(service): State<AppState>,
    access: Authorized,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/wasm") {
        return Err(ApiError::unsupported_media_type(
            "upload the component with `Content-Type: application/wasm`",
        ));
    }
    let body = body_bytes(body)?;
    let record = service
        .lifecycle
        .upload(&access.tenant, &access.who(), body)
        .await?;
    Ok(created(Uploaded {
        version: record.version,
        sha256: record.sha256,
        status: record.status,
        contract: record.contract,
        toolchain: record.toolchain,
        size: record.size,
    }))
}

/// The rule versions of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RuleList {
    /// The active version, if any.
    active: Option<u32>,
    /// Every version, oldest first.
    rules: Vec<RuleRecord>,
}

/// `GET …/rules`: versions with status, uploader, approver, sha256.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/rules", tag = "rules",
    summary = "Rule versions with status, uploader, approver, sha256.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The versions.", body = RuleList))
)]
pub(crate) async fn list(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    let rules = service.lifecycle.list(&access.tenant)?;
    Ok(ok(RuleList {
        active: access.tenant.record.active,
        rules,
    }))
}

/// `POST …/rules/{version}/approve` (not the uploader when four-eyes is on).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/approve", tag = "rules",
    summary = "Approve a version (under four-eyes, not by its uploader).",
    extensions(("x-min-role" = json!("admin"))),
    params(VersionPath),
    responses(
        (status = 200, description = "Approved.", body = RuleRecord),
        (status = 409, description = "Still `compiling` (`compiling`), or it `failed` after upload (`compile_failed`).", body = ErrorBody),
    )
)]
pub(crate) async fn approve(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
) -> Result<Response, ApiError> {
    let who = access.who();
    let rule = service
        .lifecycle
        .approve(&access.tenant, &who, path.version)
        .await?;
    Ok(ok(rule))
}

/// `POST …/rules/{version}/activate` (an approved version when four-eyes is on).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/activate", tag = "rules",
    summary = "Activate a version (approved, under four-eyes); the previous one stays for rollback.",
    extensions(("x-min-role" = json!("admin"))),
    params(VersionPath),
    responses(
        (status = 200, description = "Active.", body = RuleRecord),
        (status = 409, description = "Not approved by another admin than its uploader, still compiling, or failed after upload.", body = ErrorBody),
    )
)]
pub(crate) async fn activate(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
) -> Result<Response, ApiError> {
    let who = access.who();
    let rule = service
        .lifecycle
        .activate(&access.tenant, &who, path.version)
        .await?;
    Ok(ok(rule))
}

/// `POST …/rules/rollback`: re-activates the version that was active before.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/rollback", tag = "rules",
    summary = "Re-activate the previously active version.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath),
    responses(
        (status = 200, description = "Active again.", body = RuleRecord),
        (status = 409, description = "Nothing to roll back to, or it was never approved.", body = ErrorBody),
    )
)]
pub(crate) async fn rollback(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    let who = access.who();
    Ok(ok(service.lifecycle.rollback(&access.tenant, &who).await?))
}

/// `POST …/rules/{version}/test` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestRequest {
    /// 1 to 100 tickets, as `POST …/tickets` takes them.
    #[schema(value_type = Vec<TicketInput>, min_items = 1, max_items = 100)]
    tickets: Vec<Value>,
}

/// A dry run's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TestResults {
    /// The version tried.
    version: u32,
    /// Per ticket, in order: `{ticket, decision, fuel, log}` or `{ticket, error, fuel, log}`.
    #[schema(value_type = Vec<Object>)]
    results: Vec<Value>,
}

/// `POST …/rules/{version}/test`: dry run on sample tickets; nothing stored.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/test", tag = "rules",
    summary = "Dry run on `{tickets: [...]}`: decision or error, fuel, log per ticket; nothing stored.",
    extensions(("x-min-role" = json!("operator"))),
    params(VersionPath), request_body = TestRequest,
    responses(
        (status = 200, description = "The results.", body = TestResults),
        (status = 409, description = "Still `compiling`, or it `failed` after upload.", body = ErrorBody),
    )
)]
pub(crate) async fn test(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
    ApiJson(body): ApiJson<TestRequest>,
) -> Result<Response, ApiError> {
    if body.tickets.is_empty() || body.tickets.len() > MAX_TEST_TICKETS {
        return Err(ApiError::invalid(
            "invalid_body",
            format!("`tickets` must hold 1 to {MAX_TEST_TICKETS} tickets"),
        ));
    }
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(body.tickets.len());
    for (i, value) in body.tickets.into_iter().enumerate() {
        let at = format!("tickets[{i}]");
        let input: TicketInput = from_value_at(value, "invalid_ticket", &at)?;
        let ticket = input
            .into_ticket(now)
            .map_err(|e| ApiError::invalid("invalid_ticket", format!("`{at}`: {e}")))?;
        events.push(TicketEvent::created(ticket));
    }
    let version = path.version;
    let results = service
        .lifecycle
        .dry_run(&access.tenant, version, events)
        .await?;
    Ok(ok(TestResults { version, results }))
}
