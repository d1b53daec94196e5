//! The rule lifecycle: upload (validated like `rules check`), dry-run test, approval,
//! activation and rollback. Four-eyes mode keeps internal IT's authority: the key that
//! uploaded a version cannot approve it, and only a version approved by another admin can go
//! live (or come back by rollback). Every step is one transaction with its audit entry; a
//! refused step writes nothing.

use std::sync::Arc;

use jiff::Timestamp;
use serde_json::Value;
use switchboard_rules::TicketEvent;

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
    txn: &redb::WriteTransaction,
    t: &str,
    version: u32,
) -> Result<Option<RuleRecord>, StoreError> {
    store::get_in(txn, store::RULES, &rule_key(t, version))
}

fn no_version(version: u32) -> Refusal {
    Refusal::not_found(format!("no rule version {version}"))
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

/// Makes `rule` the active version inside `txn`, retiring the current one onto the rollback
/// stack.
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

    /// The compiled module of `version` (from the cache, or loaded off the async runtime).
    async fn module(&self, view: &TenantView, version: u32) -> Result<RuleModule> {
        let tenants = self.tenants.clone();
        let (t, limits) = (view.record.id.clone(), view.record.settings.limits);
        tokio::task::spawn_blocking(move || tenants.module_for(&t, version, &limits))
            .await
            .map_err(|e| Error::Internal(e.to_string()))?
            .map_err(|_| no_version(version).into())
    }

    /// Validates and compiles `bytes` under the tenant's limits, and stores them as a new
    /// version uploaded by `who`.
    pub async fn upload(
        &self,
        view: &TenantView,
        who: &str,
        bytes: bytes::Bytes,
    ) -> Result<RuleRecord> {
        let limits = view.record.settings.limits;
        let runtime = self.runtime.clone();
        let loaded = tokio::task::spawn_blocking({
            let bytes = bytes.clone();
            move || runtime.load(&bytes, &limits)
        })
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
        let module = match loaded {
            Ok(module) => module,
            Err(e @ LoadError::TooLarge { .. }) => {
                let kind = RefusalKind::TooLarge;
                return Err(Refusal::new(kind, "module_too_large", e.to_string()).into());
            }
            Err(e @ LoadError::Cache(_)) => return Err(Error::Internal(e.to_string())),
            Err(e) => return Err(Refusal::invalid(e.code(), e.to_string()).into()),
        };
        let who = who.to_owned();
        let (sha256, contract, size) = (
            module.sha256().to_owned(),
            module.contract_version().to_owned(),
            module.size(),
        );
        let record = self
            .tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
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
                txn.open_table(store::MODULES)?
                    .insert(sha256.as_str(), bytes.as_ref())?;
                let key = rule_key(&tenant.id, record.version);
                store::put_in(txn, store::RULES, &key, &record)?;
                let target = format!("rules/{}", record.version);
                audit(txn, tenant, &who, "rule.upload", &target, Some(sha256))?;
                Ok(Ok(record))
            })
            .await?;
        self.tenants.remember_module(module);
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
        let limits = view.record.settings.limits;
        let module = self.module(view, version).await?;
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

/// The most bytes of reports one dry-run answer carries. Each report is already bounded by
/// the tenant's output and log limits, but a hundred of them at raised limits would not be;
/// past this, a report loses its log, then its decision, keeping its outcome and fuel.
pub const DRY_RUN_ANSWER_BYTES: usize = 4 << 20;

/// What is left of a dry-run answer's size budget.
struct AnswerBudget {
    left: usize,
}

/// Counts the bytes of JSON written to it.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The size of `value` as JSON, without building the JSON.
fn json_size(value: &impl serde::Serialize) -> usize {
    let mut counter = Counter(0);
    serde_json::to_writer(&mut counter, value).map_or(usize::MAX, |()| counter.0)
}

impl AnswerBudget {
    fn new(bytes: usize) -> Self {
        AnswerBudget { left: bytes }
    }

    /// The report of `eval` as it fits in what is left: whole, without its log (measured
    /// before it is turned into JSON, so a log that does not fit costs nothing more), or as a
    /// summary.
    fn fit(&mut self, mut eval: crate::runtime::Evaluation, id: &str) -> Value {
        let log = std::mem::take(&mut eval.log);
        let mut report = eval.report(id);
        let mut size = json_size(&report);
        let log_size = json_size(&log);
        if size.saturating_add(log_size) <= self.left {
            report["log"] = serde_json::to_value(&log).unwrap_or_default();
            size += log_size;
        } else {
            report["log_omitted"] = log.len().into();
            size = json_size(&report);
        }
        if size > self.left {
            let outcome = match report.get("error") {
                Some(e) => e["kind"].clone(),
                None => "decision".into(),
            };
            report = serde_json::json!({
                "ticket": id,
                "omitted": "the dry-run answer reached its size limit",
                "outcome": outcome,
                "fuel": report["fuel"],
            });
            size = json_size(&report);
        }
        self.left = self.left.saturating_sub(size);
        report
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;
    use crate::runtime::{Evaluation, LogLine};
    use switchboard_rules::LogLevel;
    use switchboard_rules::model::{Decision, Party, Priority};

    fn eval() -> Evaluation {
        let line = LogLine {
            level: LogLevel::Info,
            message: "x".repeat(1000),
        };
        Evaluation {
            outcome: Ok(Decision {
                queue: "q".repeat(100),
                party: Party::Msp,
                tier: 1,
                priority: Priority::P3,
                sla: Vec::new(),
                escalations: Vec::new(),
                tags: Vec::new(),
                reason: "r".repeat(2000),
            }),
            fuel_used: 7,
            elapsed: std::time::Duration::ZERO,
            log: vec![line; 10],
        }
    }

    #[test]
    fn a_dry_run_answer_stays_within_its_budget() {
        let whole = eval().report("T-1");
        let size = json_size(&whole);
        assert_eq!(size, serde_json::to_vec(&whole).unwrap().len());
        let mut budget = AnswerBudget::new(size + 3000);
        assert_eq!(budget.fit(eval(), "T-1"), whole, "the first fits whole");
        let second = budget.fit(eval(), "T-1");
        assert_eq!(second["log"], serde_json::json!([]));
        assert_eq!(second["log_omitted"], 10);
        assert_eq!(second["decision"], whole["decision"]);
        let third = budget.fit(eval(), "T-1");
        assert_eq!(third["outcome"], "decision");
        assert_eq!(third["fuel"], 7);
        assert!(third.get("decision").is_none());
    }
}
