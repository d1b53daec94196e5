//! The rule lifecycle: upload (validated like `rules check`), dry-run test, approval,
//! activation and rollback. Four-eyes mode keeps internal IT's authority: the key that
//! uploaded a version cannot approve it, and only an approved version can go live.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_rules::{TicketEvent, TicketInput};

use super::admin::write_with_tenant as with_tenant;
use super::{ApiError, ApiJson, ApiPath, AppState, Caller, created, ok, require};
use crate::runtime::EvalContext;
use crate::service::audit;
use crate::store::records::{Role, RuleRecord, RuleStatus, TenantRecord};
use crate::store::{self, StoreError};

/// Most tickets in one dry run.
const MAX_TEST_TICKETS: usize = 100;

fn rule_key(t: &str, version: u32) -> String {
    store::seq_key(t, version.into())
}

/// `POST …/rules` (operator, admin): body `application/wasm`.
pub(crate) async fn upload(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Operator)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/wasm") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "upload the component with `Content-Type: application/wasm`",
        ));
    }
    let body = body.map_err(|e| {
        let text = e.body_text();
        super::too_large_or(text)
    })?;
    let limits = view.record.settings.limits;
    let runtime = service.runtime.clone();
    let module = tokio::task::spawn_blocking({
        let body = body.clone();
        move || runtime.load(&body, &limits)
    })
    .await
    .map_err(|e| ApiError::internal(&e))?
    .map_err(|e| match e {
        crate::runtime::LoadError::TooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "module_too_large",
            e.to_string(),
        ),
        crate::runtime::LoadError::Cache(_) => ApiError::internal(&e),
        other => ApiError::invalid(other.code(), other.to_string()),
    })?;
    let who = caller.0.id().to_owned();
    let (sha256, contract, size) = (
        module.sha256().to_owned(),
        module.contract_version().to_owned(),
        module.size(),
    );
    let record = with_tenant(&service, &t, move |txn, tenant| {
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
        Ok(record)
    })
    .await?;
    service.remember_module(module);
    Ok(created(json!({
        "version": record.version,
        "sha256": record.sha256,
        "status": record.status,
        "contract": record.contract,
        "size": record.size,
    })))
}

/// `GET …/rules` (any role): versions with status, uploader, approver, sha256.
pub(crate) async fn list(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    let txn = service.store.read()?;
    let rules: Vec<RuleRecord> = store::scan(&txn, store::RULES, &t)?;
    Ok(ok(json!({"active": view.record.active, "rules": rules})))
}

fn load_rule(
    txn: &redb::WriteTransaction,
    t: &str,
    version: u32,
) -> Result<Option<RuleRecord>, StoreError> {
    store::get_in(txn, store::RULES, &rule_key(t, version))
}

/// What a lifecycle step decided inside its transaction.
enum Step {
    Done(RuleRecord),
    Refused(ApiError),
}

async fn lifecycle_step(
    service: &AppState,
    t: &str,
    step: impl FnOnce(&redb::WriteTransaction, &mut TenantRecord) -> Result<Step, StoreError>
    + Send
    + 'static,
) -> Result<RuleRecord, ApiError> {
    let outcome = with_tenant(service, t, step).await?;
    match outcome {
        Step::Done(record) => Ok(record),
        Step::Refused(e) => Err(e),
    }
}

/// `POST …/rules/{v}/approve` (admin; not the uploader when four-eyes is on).
pub(crate) async fn approve(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, version)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    let record = lifecycle_step(&service, &t, move |txn, tenant| {
        let Some(mut rule) = load_rule(txn, &tenant.id, version)? else {
            return Ok(Step::Refused(ApiError::not_found(format!(
                "no rule version {version}"
            ))));
        };
        if tenant.settings.four_eyes && rule.uploaded_by == who {
            return Ok(Step::Refused(ApiError::forbidden(
                "four-eyes approval is on: the key that uploaded a version cannot approve it",
            )));
        }
        if rule.approved_by.is_some() {
            return Ok(Step::Done(rule));
        }
        rule.approved_by = Some(who.clone());
        rule.approved_at = Some(Timestamp::now());
        if rule.status == RuleStatus::Uploaded {
            rule.status = RuleStatus::Approved;
        }
        store::put_in(txn, store::RULES, &rule_key(&tenant.id, version), &rule)?;
        let target = format!("rules/{version}");
        audit(
            txn,
            tenant,
            &who,
            "rule.approve",
            &target,
            Some(rule.sha256.clone()),
        )?;
        Ok(Step::Done(rule))
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

/// `POST …/rules/{v}/activate` (admin; an approved version when four-eyes is on).
pub(crate) async fn activate(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, version)): ApiPath<(String, u32)>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Admin)?;
    // Compile (or fetch) the module before committing, so an activated version always runs.
    let service2 = service.clone();
    let (t2, limits) = (t.clone(), view.record.settings.limits);
    tokio::task::spawn_blocking(move || service2.module_for(&t2, version, &limits))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|_| ApiError::not_found(format!("no rule version {version}")))?;
    let who = caller.0.id().to_owned();
    let record = lifecycle_step(&service, &t, move |txn, tenant| {
        let Some(rule) = load_rule(txn, &tenant.id, version)? else {
            return Ok(Step::Refused(ApiError::not_found(format!("no rule version {version}"))));
        };
        if tenant.settings.four_eyes && !four_eyes_approved(&rule) {
            return Ok(Step::Refused(ApiError::conflict(
                "not_approved",
                format!("four-eyes approval is on: version {version} must be approved by another admin than its uploader first"),
            )));
        }
        if tenant.active == Some(version) {
            return Ok(Step::Done(rule));
        }
        let sha = rule.sha256.clone();
        let rule = make_active(txn, tenant, rule)?;
        audit(txn, tenant, &who, "rule.activate", &format!("rules/{version}"), Some(sha))?;
        Ok(Step::Done(rule))
    })
    .await?;
    Ok(ok(record))
}

/// `POST …/rules/rollback` (admin): re-activates the version that was active before.
pub(crate) async fn rollback(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    let record = lifecycle_step(&service, &t, move |txn, tenant| {
        // Look before popping: a refusal below still writes the tenant record.
        let Some(previous) = tenant.history.last().copied() else {
            return Ok(Step::Refused(ApiError::conflict(
                "nothing_to_roll_back",
                "no version was active before the current one",
            )));
        };
        let Some(rule) = load_rule(txn, &tenant.id, previous)? else {
            return Ok(Step::Refused(ApiError::internal(
                &"rollback target missing",
            )));
        };
        if tenant.settings.four_eyes && !four_eyes_approved(&rule) {
            return Ok(Step::Refused(ApiError::conflict(
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
        audit(
            txn,
            tenant,
            &who,
            "rule.rollback",
            &format!("rules/{previous}"),
            Some(sha),
        )?;
        Ok(Step::Done(rule))
    })
    .await?;
    Ok(ok(record))
}

/// `POST …/rules/{v}/test` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TestRequest {
    #[schema(value_type = Vec<TicketInput>)]
    tickets: Vec<Value>,
}

/// `POST …/rules/{v}/test` (operator, admin): dry run on sample tickets; nothing stored.
pub(crate) async fn test(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, version)): ApiPath<(String, u32)>,
    ApiJson(body): ApiJson<TestRequest>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Operator)?;
    if body.tickets.is_empty() || body.tickets.len() > MAX_TEST_TICKETS {
        return Err(ApiError::invalid(
            "invalid_body",
            format!("`tickets` must hold 1 to {MAX_TEST_TICKETS} tickets"),
        ));
    }
    let now = Timestamp::now();
    let mut events = Vec::with_capacity(body.tickets.len());
    for (i, value) in body.tickets.into_iter().enumerate() {
        let input: TicketInput = serde_json::from_value(value)
            .map_err(|e| ApiError::invalid("invalid_ticket", format!("tickets[{i}]: {e}")))?;
        let ticket = input
            .into_ticket(now)
            .map_err(|e| ApiError::invalid("invalid_ticket", format!("tickets[{i}]: {e}")))?;
        events.push(TicketEvent::created(ticket));
    }
    let limits = view.record.settings.limits;
    let service2 = service.clone();
    let t2 = t.clone();
    let module = tokio::task::spawn_blocking(move || service2.module_for(&t2, version, &limits))
        .await
        .map_err(|e| ApiError::internal(&e))?
        .map_err(|_| ApiError::not_found(format!("no rule version {version}")))?;
    let ctx = EvalContext {
        tenant: t.clone(),
        version: version.to_string(),
        config: view.config.clone(),
        calendars: view.calendars.clone(),
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
    Ok(ok(json!({"version": version, "results": results})))
}
