//! The rule lifecycle: upload (validated like `rules check`), dry-run test, approval,
//! activation and rollback. Four-eyes mode keeps internal IT's authority: the key that
//! uploaded a version cannot approve it, and only an approved version can go live.

use std::sync::Arc;

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
use crate::refusal::Refusal;
use crate::runtime::EvalContext;
use crate::store::records::{RuleRecord, RuleStatus, TenantRecord};
use crate::store::{self, StoreError};
use crate::tenants::audit;

/// Most tickets in one dry run.
const MAX_TEST_TICKETS: usize = 100;

fn rule_key(t: &str, version: u32) -> String {
    store::seq_key(t, version.into())
}

/// A version just uploaded.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Uploaded {
    /// The new version number.
    version: u32,
    /// The module's sha256.
    sha256: String,
    /// `uploaded`.
    status: RuleStatus,
    /// The contract version it implements.
    contract: String,
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
        (status = 201, description = "Stored as a new version.", body = Uploaded),
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
    let limits = access.tenant.record.settings.limits;
    let runtime = service.runtime.clone();
    let module = tokio::task::spawn_blocking({
        let body = body.clone();
        move || runtime.load(&body, &limits)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| match e {
        crate::runtime::LoadError::TooLarge { .. } => {
            ApiError::too_large("module_too_large", e.to_string())
        }
        crate::runtime::LoadError::Cache(_) => ApiError::internal(&e),
        other => ApiError::invalid(other.code(), other.to_string()),
    })?;
    let who = access.who();
    let (sha256, contract, size) = (
        module.sha256().to_owned(),
        module.contract_version().to_owned(),
        module.size(),
    );
    let record = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            tenant.last_version += 1;
            let record = RuleRecord {
                version: tenant.last_version,
                sha256: sha256.clone(),
                size,
                contract,
                status: RuleStatus::Uploaded,
                uploaded_by: who.clone(),
                uploaded_at: Timestamp::now(),
                approved_by: None,
                approved_at: None,
                activated_at: None,
            };
            {
                let mut modules = txn.open_table(store::MODULES)?;
                modules.insert(sha256.as_str(), body.as_ref())?;
            }
            store::put_in(
                txn,
                store::RULES,
                &rule_key(&tenant.id, record.version),
                &record,
            )?;
            let target = format!("rules/{}", record.version);
            audit(txn, tenant, &who, "rule.upload", &target, Some(sha256))?;
            Ok(Ok(record))
        })
        .await?;
    service.tenants.remember_module(module);
    Ok(created(Uploaded {
        version: record.version,
        sha256: record.sha256,
        status: record.status,
        contract: record.contract,
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
    let txn = service.store.read()?;
    let rules: Vec<RuleRecord> = store::scan(&txn, store::RULES, access.id())?;
    Ok(ok(RuleList {
        active: access.tenant.record.active,
        rules,
    }))
}

fn load_rule(
    txn: &redb::WriteTransaction,
    t: &str,
    version: u32,
) -> Result<Option<RuleRecord>, StoreError> {
    store::get_in(txn, store::RULES, &rule_key(t, version))
}

fn no_version(version: u32) -> Refusal {
    Refusal::not_found(format!("no rule version {version}"))
}

/// `POST …/rules/{version}/approve` (not the uploader when four-eyes is on).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/approve", tag = "rules",
    summary = "Approve a version (under four-eyes, not by its uploader).",
    extensions(("x-min-role" = json!("admin"))),
    params(VersionPath),
    responses((status = 200, description = "Approved.", body = RuleRecord))
)]
pub(crate) async fn approve(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
) -> Result<Response, ApiError> {
    let (who, version) = (access.who(), path.version);
    let record = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            let Some(mut rule) = load_rule(txn, &tenant.id, version)? else {
                return Ok(Err(no_version(version)));
            };
            if tenant.settings.four_eyes && rule.uploaded_by == who {
                return Ok(Err(Refusal::forbidden(
                    "four-eyes approval is on: the key that uploaded a version cannot approve it",
                )));
            }
            if rule.approved_by.is_some() {
                return Ok(Ok(rule));
            }
            rule.approved_by = Some(who.clone());
            rule.approved_at = Some(Timestamp::now());
            if rule.status == RuleStatus::Uploaded {
                rule.status = RuleStatus::Approved;
            }
            store::put_in(txn, store::RULES, &rule_key(&tenant.id, version), &rule)?;
            let (target, sha) = (format!("rules/{version}"), Some(rule.sha256.clone()));
            audit(txn, tenant, &who, "rule.approve", &target, sha)?;
            Ok(Ok(rule))
        })
        .await?;
    Ok(ok(record))
}

/// Whether a version carries an approval by a key other than its uploader's (a version
/// approved by its own uploader while four-eyes was off does not count once it is on).
fn four_eyes_approved(rule: &RuleRecord) -> bool {
    rule.approved_by
        .as_ref()
        .is_some_and(|approver| *approver != rule.uploaded_by)
}

/// Marks a version that stops being active as retired.
fn retire(txn: &redb::WriteTransaction, t: &str, version: u32) -> Result<(), StoreError> {
    if let Some(mut old) = load_rule(txn, t, version)? {
        old.status = RuleStatus::Retired;
        store::put_in(txn, store::RULES, &rule_key(t, version), &old)?;
    }
    Ok(())
}

/// Makes `version` the active rule inside `txn`, retiring the current one onto the
/// rollback stack.
fn make_active(
    txn: &redb::WriteTransaction,
    tenant: &mut TenantRecord,
    mut rule: RuleRecord,
) -> Result<RuleRecord, StoreError> {
    if let Some(current) = tenant.active.filter(|&v| v != rule.version) {
        retire(txn, &tenant.id, current)?;
        tenant.history.push(current);
    }
    rule.status = RuleStatus::Active;
    rule.activated_at = Some(Timestamp::now());
    tenant.active = Some(rule.version);
    store::put_in(
        txn,
        store::RULES,
        &rule_key(&tenant.id, rule.version),
        &rule,
    )?;
    Ok(rule)
}

/// `POST …/rules/{version}/activate` (an approved version when four-eyes is on).
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/activate", tag = "rules",
    summary = "Activate a version (approved, under four-eyes); the previous one stays for rollback.",
    extensions(("x-min-role" = json!("admin"))),
    params(VersionPath),
    responses(
        (status = 200, description = "Active.", body = RuleRecord),
        (status = 409, description = "Not approved by another admin than its uploader.", body = ErrorBody),
    )
)]
pub(crate) async fn activate(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
) -> Result<Response, ApiError> {
    let version = path.version;
    // Compile (or fetch) the module before committing, so an activated version always runs.
    let tenants = service.tenants.clone();
    let (t, limits) = (access.id().to_owned(), access.tenant.record.settings.limits);
    tokio::task::spawn_blocking(move || tenants.module_for(&t, version, &limits))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|_| no_version(version))?;
    let who = access.who();
    let record = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            let Some(rule) = load_rule(txn, &tenant.id, version)? else {
                return Ok(Err(no_version(version)));
            };
            if tenant.settings.four_eyes && !four_eyes_approved(&rule) {
                return Ok(Err(Refusal::conflict(
                    "not_approved",
                    format!("four-eyes approval is on: version {version} must be approved by another admin than its uploader first"),
                )));
            }
            if tenant.active == Some(version) {
                return Ok(Ok(rule));
            }
            let sha = rule.sha256.clone();
            let rule = make_active(txn, tenant, rule)?;
            audit(txn, tenant, &who, "rule.activate", &format!("rules/{version}"), Some(sha))?;
            Ok(Ok(rule))
        })
        .await?;
    Ok(ok(record))
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
    let record = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            let Some(previous) = tenant.history.last().copied() else {
                return Ok(Err(Refusal::conflict(
                    "nothing_to_roll_back",
                    "no version was active before the current one",
                )));
            };
            let Some(rule) = load_rule(txn, &tenant.id, previous)? else {
                return Err(StoreError::Corrupt {
                    key: rule_key(&tenant.id, previous),
                    error: "rollback target missing".into(),
                });
            };
            if tenant.settings.four_eyes && !four_eyes_approved(&rule) {
                return Ok(Err(Refusal::conflict(
                    "not_approved",
                    format!("four-eyes approval is on: version {previous} was never approved by another admin than its uploader, so it cannot come back"),
                )));
            }
            tenant.history.pop();
            if let Some(current) = tenant.active.take() {
                retire(txn, &tenant.id, current)?;
            }
            let sha = rule.sha256.clone();
            let rule = make_active(txn, tenant, rule)?;
            let target = format!("rules/{previous}");
            audit(txn, tenant, &who, "rule.rollback", &target, Some(sha))?;
            Ok(Ok(rule))
        })
        .await?;
    Ok(ok(record))
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
    responses((status = 200, description = "The results.", body = TestResults))
)]
pub(crate) async fn test(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
    ApiJson(body): ApiJson<TestRequest>,
) -> Result<Response, ApiError> {
    let version = path.version;
    if body.tickets.is_empty() || body.tickets.len() > MAX_TEST_TICKETS {
        return Err(ApiError::invalid(
            "invalid_body",
            format!("`tickets` must hold 1 to {MAX_TEST_TICKETS} tickets"),
        ));
    }
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(body.tickets.len());
    for (i, value) in body.tickets.into_iter().enumerate() {
        let input: TicketInput = from_value_at(value, "invalid_ticket", &format!("tickets[{i}]"))?;
        let ticket = input
            .into_ticket(now)
            .map_err(|e| ApiError::invalid("invalid_ticket", format!("`tickets[{i}]`: {e}")))?;
        events.push(TicketEvent::created(ticket));
    }
    let limits = access.tenant.record.settings.limits;
    let tenants = service.tenants.clone();
    let t = access.id().to_owned();
    let module = tokio::task::spawn_blocking(move || tenants.module_for(&t, version, &limits))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|_| no_version(version))?;
    let ctx = EvalContext {
        tenant: access.id().to_owned(),
        version: version.to_string(),
        config: access.tenant.config.clone(),
        calendars: access.tenant.calendars.clone(),
        limits,
    };
    let runtime = Arc::clone(&service.runtime);
    let slot = runtime.slot().await;
    let results = tokio::task::spawn_blocking(move || {
        let _slot = slot;
        events
            .iter()
            .map(|event| {
                runtime
                    .evaluate(&module, &ctx, event)
                    .report(&event.ticket.id)
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ApiError::internal(&e))?;
    Ok(ok(TestResults { version, results }))
}
