//! The rule lifecycle: upload (validated like `rules check`), dry-run test, approval,
//! activation and rollback. Four-eyes mode keeps internal IT's authority: the key that
//! uploaded a version cannot approve it, and only a version approved by another admin can go
//! live (or come back by rollback). Every step is one transaction with its audit entry; a
//! refused step writes nothing.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;
use switchboard_rules::TicketEvent;

mod answer;
mod compiling;

use answer::AnswerBudget;
pub use answer::DRY_RUN_ANSWER_BYTES;

use crate::refusal::{Error, Refusal, RefusalKind, Result};
use crate::runtime::{EvalContext, LoadError, RuleModule, Runtime};
use crate::store::records::{RuleRecord, RuleStatus, TenantRecord};
use crate::store::{self, Store, StoreError};
use crate::tenants::{TenantView, Tenants, audit};

/// Most tickets in one dry run.
pub const MAX_TEST_TICKETS: usize = 100;

fn rule_key(t: &str, version: u32) -> String {
    store::seq_key(t, version.into())
}

fn load_rule(
    txn: &crate::store::Write<'_>,
    t: &str,
    version: u32,
) -> Result<Option<RuleRecord>, StoreError> {
    store::get(txn, store::RULES, &rule_key(t, version))
}

fn no_version(version: u32) -> Refusal {
    Refusal::not_found(format!("no rule version {version}"))
}

/// Why `rule` cannot be approved, tested or activated yet (or ever), if so.
fn not_ready(rule: &RuleRecord) -> Option<Refusal> {
    let version = rule.version;
    match rule.status {
        RuleStatus::Compiling => Some(Refusal::conflict(
            "compiling",
            format!(
                "version {version} is still compiling; it can be approved, tested and activated once its status is `uploaded`"
            ),
        )),
        RuleStatus::Failed => {
            let why = rule.error.as_ref().map_or("", |e| e.message.as_str());
            Some(Refusal::conflict(
                "compile_failed",
                format!("version {version} failed after upload and can never run: {why}"),
            ))
        }
        _ => None,
    }
}

/// Why `rule` may not be approved or activated under the tenant's `require_replay`, if so:
/// it needs a replay over the stored history that ran to its end, not one limited to named
/// tickets.
fn not_replayed(tenant: &TenantRecord, rule: &RuleRecord) -> Option<Refusal> {
    let replayed = rule
        .last_replay
        .as_ref()
        .is_some_and(|r| r.counts_for_approval());
    (tenant.settings.require_replay && !replayed).then(|| {
        let version = rule.version;
        Refusal::conflict(
            "not_replayed",
            format!("the tenant requires a replay before approval and activation: replay version {version} over the stored history (`POST …/rules/{version}/replay`, not limited to `ticket_ids`, run to its end) first"),
        )
    })
}

/// Whether a version carries an approval by a key other than its uploader's (a version
/// approved by its own uploader while four-eyes was off does not count once it is on).
fn four_eyes_approved(rule: &RuleRecord) -> bool {
    rule.approved_by
        .as_ref()
        .is_some_and(|approver| *approver != rule.uploaded_by)
}

/// Marks a version that stops being active as retired.
fn retire(txn: &crate::store::Write<'_>, t: &str, version: u32) -> Result<(), StoreError> {
    if let Some(mut old) = load_rule(txn, t, version)? {
        old.status = RuleStatus::Retired;
        store::put_in(txn, store::RULES, &rule_key(t, version), &old)?;
    }
    Ok(())
}

/// Makes `rule` the active version inside `txn`, retiring the current one onto the rollback
/// stack.
fn make_active(
    txn: &crate::store::Write<'_>,
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
    let key = rule_key(&tenant.id, rule.version);
    store::put_in(txn, store::RULES, &key, &rule)?;
    Ok(rule)
}

/// The rule lifecycle over the store, the tenant views and the runtime.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    store: Store,
    tenants: Arc<Tenants>,
    runtime: Arc<Runtime>,
}

impl Lifecycle {
    /// The lifecycle over these parts.
    pub fn new(store: Store, tenants: Arc<Tenants>, runtime: Arc<Runtime>) -> Self {
        Lifecycle {
            store,
            tenants,
            runtime,
        }
    }

    /// The compiled module of `version` (from the cache, or loaded off the async runtime);
    /// refused while the version compiles or when it failed.
    async fn module(&self, view: &TenantView, version: u32) -> Result<RuleModule> {
        let (_, module) = self.module_of(view, version, false).await?;
        Ok(module)
    }

    /// The record and compiled module of `version` for a replay: like the dry run's, except
    /// that a version which compiled but could not start on the sample ticket
    /// (`cannot_start`) is loaded too, so a replay shows on which tickets it fails.
    pub async fn replayable(
        &self,
        view: &TenantView,
        version: u32,
    ) -> Result<(RuleRecord, RuleModule)> {
        self.module_of(view, version, true).await
    }

    async fn module_of(
        &self,
        view: &TenantView,
        version: u32,
        unstartable: bool,
    ) -> Result<(RuleRecord, RuleModule)> {
        let rule: Option<RuleRecord> = store::get(
            &self.store.read()?,
            store::RULES,
            &rule_key(&view.record.id, version),
        )?;
        let rule = rule.ok_or_else(|| no_version(version))?;
        let compiled_only = unstartable
            && rule
                .error
                .as_ref()
                .is_some_and(|e| e.code == LoadError::CANNOT_START);
        if let Some(refusal) = not_ready(&rule).filter(|_| !compiled_only) {
            return Err(refusal.into());
        }
        let tenants = self.tenants.clone();
        let (t, limits) = (view.record.id.clone(), view.record.settings.rule_limits());
        let module = tokio::task::spawn_blocking(move || tenants.module_for(&t, version, &limits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|_| Error::from(no_version(version)))?;
        Ok((rule, module))
    }

    /// Checks `bytes` under the tenant's limits (everything that needs no compiling), stores
    /// them as a new version uploaded by `who` with the status `compiling`, and compiles it in
    /// the background: the version becomes `uploaded` once its artifact is compiled, cached
    /// and it has started on a sample ticket, or `failed` with the reason.
    pub async fn upload(
        &self,
        view: &TenantView,
        who: &str,
        bytes: bytes::Bytes,
    ) -> Result<RuleRecord> {
        let limits = view.record.settings.rule_limits();
        let runtime = self.runtime.clone();
        let checked = tokio::task::spawn_blocking({
            let bytes = bytes.clone();
            move || runtime.check(&bytes, limits)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let checked = match checked {
            Ok(checked) => checked,
            Err(e @ LoadError::TooLarge { .. }) => {
                let kind = RefusalKind::TooLarge;
                return Err(Refusal::new(kind, "module_too_large", e.to_string()).into());
            }
            Err(e) => return Err(Refusal::invalid(e.code(), e.to_string()).into()),
        };
        let who = who.to_owned();
        let stored = bytes.clone();
        let record = self
            .tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
                tenant.last_version += 1;
                let record = RuleRecord {
                    version: tenant.last_version,
                    sha256: checked.sha256.clone(),
                    size: checked.size,
                    contract: checked.contract,
                    status: RuleStatus::Compiling,
                    toolchain: checked.toolchain,
                    error: None,
                    ready_at: None,
                    uploaded_by: who.clone(),
                    uploaded_at: Timestamp::now(),
                    approved_by: None,
                    approved_at: None,
                    activated_at: None,
                    last_replay: None,
                };
                txn.put_bytes(store::MODULES, &checked.sha256, stored.as_ref())?;
                let key = rule_key(&tenant.id, record.version);
                store::put_in(txn, store::RULES, &key, &record)?;
                let target = format!("rules/{}", record.version);
                audit(
                    txn,
                    tenant,
                    &who,
                    "rule.upload",
                    &target,
                    Some(checked.sha256),
                )?;
                Ok(Ok(record))
            })
            .await?;
        self.spawn_compile(view.record.id.clone(), record.version, bytes);
        Ok(record)
    }

    /// Every version of the tenant, oldest first.
    pub fn list(&self, view: &TenantView) -> Result<Vec<RuleRecord>> {
        let txn = self.store.read()?;
        Ok(store::scan(&txn, store::RULES, &view.record.id)?)
    }

    /// Approves `version` as `who` (under four-eyes, not its uploader).
    pub async fn approve(&self, view: &TenantView, who: &str, version: u32) -> Result<RuleRecord> {
        let who = who.to_owned();
        self.tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
                let Some(mut rule) = load_rule(txn, &tenant.id, version)? else {
                    return Ok(Err(no_version(version)));
                };
                if let Some(refusal) = not_ready(&rule) {
                    return Ok(Err(refusal));
                }
                if tenant.settings.four_eyes && rule.uploaded_by == who {
                    return Ok(Err(Refusal::forbidden(
                        "four-eyes approval is on: the key that uploaded a version cannot approve it",
                    )));
                }
                if let Some(refusal) = not_replayed(tenant, &rule) {
                    return Ok(Err(refusal));
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
            .await
    }

    /// Activates `version` as `who` (under four-eyes, approved by another admin than its
    /// uploader). Its module is compiled (or fetched) first, so an active version always runs.
    pub async fn activate(&self, view: &TenantView, who: &str, version: u32) -> Result<RuleRecord> {
        self.module(view, version).await?;
        let who = who.to_owned();
        self.tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
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
                if let Some(refusal) = not_replayed(tenant, &rule) {
                    return Ok(Err(refusal));
                }
                let sha = rule.sha256.clone();
                let rule = make_active(txn, tenant, rule)?;
                audit(txn, tenant, &who, "rule.activate", &format!("rules/{version}"), Some(sha))?;
                Ok(Ok(rule))
            })
            .await
    }

    /// Re-activates the version that was active before the current one.
    pub async fn rollback(&self, view: &TenantView, who: &str) -> Result<RuleRecord> {
        let who = who.to_owned();
        self.tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
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
            .await
    }

    /// Evaluates `version` on `events` without storing anything: per event, the report
    /// `rules run` prints (decision or error, fuel, log).
    pub async fn dry_run(
        &self,
        view: &TenantView,
        version: u32,
        events: Vec<TicketEvent>,
    ) -> Result<Vec<Value>> {
        let module = self.module(view, version).await?;
        let limits = *view.record.settings.rule_limits().get(module.toolchain());
        let ctx = EvalContext {
            tenant: view.record.id.clone(),
            version: version.to_string(),
            config: view.config.clone(),
            calendars: view.calendars.clone(),
            limits,
        };
        let runtime = Arc::clone(&self.runtime);
        let slot = runtime.slot(&ctx.tenant).await;
        // A caller that gives up (a timeout, a closed connection) stops the run at the next
        // ticket instead of leaving it to evaluate the rest for no one.
        let cancel = Cancel::default();
        let cancelled = cancel.0.clone();
        let results = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let mut budget = AnswerBudget::new(DRY_RUN_ANSWER_BYTES);
            let mut results = Vec::with_capacity(events.len());
            for event in &events {
                if cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let eval = runtime.evaluate(&module, &ctx, event);
                results.push(budget.fit(eval, &event.ticket.id));
            }
            results
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        drop(cancel);
        Ok(results)
    }
}

/// Set when the dry run's caller is gone.
#[derive(Default)]
struct Cancel(Arc<std::sync::atomic::AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}
