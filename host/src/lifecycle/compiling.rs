//! Compilation off the request path. A JavaScript or Python rule takes seconds to compile
//! (7–8 s for componentize-js's 12 MB), longer than an upload should hold its caller, so the
//! upload answers once the checks that need no compiling pass, with the status `compiling`,
//! and this job finishes the work: compile (in the budgeted worker, filling the artifact
//! cache), start the rule once on a sample ticket, and record `uploaded` or `failed`. A
//! version that was still compiling when the process stopped is compiled again at start; one
//! that finished never is, because its artifact is in the cache.

use jiff::Timestamp;

use super::{Lifecycle, rule_key};
use crate::runtime::{EvalContext, LoadError, RuleModule};
use crate::store::records::{LoadFailure, RuleRecord, RuleStatus};
use crate::store::{self, Reader as _, StoreError};

impl Lifecycle {
    /// Compiles `version` of tenant `t` from `bytes` in the background.
    pub(super) fn spawn_compile(&self, t: String, version: u32, bytes: bytes::Bytes) {
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.compile_version(&t, version, bytes).await {
                tracing::error!(tenant = %t, version, error = %e, "compiling a rule version");
            }
        });
    }

    /// Restarts the compilation of every version left `compiling` by a stopped process.
    pub fn resume_compiles(&self) -> Result<usize, StoreError> {
        let txn = self.store.read()?;
        let mut resumed = 0;
        for view in self.tenants.all() {
            let t = &view.record.id;
            let rules: Vec<RuleRecord> = store::scan(&txn, store::RULES, t)?;
            for rule in rules.iter().filter(|r| r.status == RuleStatus::Compiling) {
                let bytes = txn
                    .get_bytes(store::MODULES, &rule.sha256)?
                    .map(bytes::Bytes::from);
                match bytes {
                    Some(bytes) => {
                        self.spawn_compile(t.clone(), rule.version, bytes);
                        resumed += 1;
                    }
                    None => {
                        tracing::error!(tenant = %t, version = rule.version, "module bytes missing")
                    }
                }
            }
        }
        Ok(resumed)
    }

    async fn compile_version(
        &self,
        t: &str,
        version: u32,
        bytes: bytes::Bytes,
    ) -> crate::refusal::Result<()> {
        let Some(view) = self.tenants.get(t) else {
            return Ok(());
        };
        let limits = view.record.settings.rule_limits();
        let mut ctx = EvalContext {
            tenant: t.to_owned(),
            version: version.to_string(),
            config: view.config.clone(),
            calendars: view.calendars.clone(),
            limits: limits.native,
        };
        let internal = |e: tokio::task::JoinError| crate::refusal::Error::Internal(e.to_string());
        // Compiling takes seconds and no evaluation slot: the tenant's tickets keep routing.
        // A host fault (the cache could not be written, the worker could not be started) is
        // tried again; only what the module itself caused makes the version `failed`.
        let mut attempt = 0;
        let compiled = loop {
            let runtime = self.runtime.clone();
            let bytes = bytes.clone();
            let compiled = tokio::task::spawn_blocking(move || runtime.load(&bytes, limits))
                .await
                .map_err(internal)?;
            match compiled {
                Err(e @ LoadError::Cache(_)) if attempt < 3 => {
                    attempt += 1;
                    tracing::warn!(tenant = %t, version, error = %e, attempt, "compiling a rule version again");
                    tokio::time::sleep(std::time::Duration::from_secs(attempt)).await;
                }
                Err(e @ LoadError::Cache(_)) => {
                    // Left `compiling`: the next start tries again.
                    return Err(crate::refusal::Error::Internal(e.to_string()));
                }
                other => break other,
            }
        };
        let loaded = match compiled {
            Ok(module) => {
                ctx.limits = *limits.get(module.toolchain());
                // The sample evaluation runs on the tenant's own share of instance slots.
                let slot = self.runtime.slot(t).await;
                let runtime = self.runtime.clone();
                tokio::task::spawn_blocking(move || -> Result<RuleModule, LoadError> {
                    let _slot = slot;
                    runtime.probe(&module, &ctx)?;
                    Ok(module)
                })
                .await
                .map_err(internal)?
            }
            Err(e) => Err(e),
        };
        let outcome = match loaded {
            Ok(module) => {
                self.tenants.remember_module(module);
                Ok(())
            }
            Err(e) => Err(LoadFailure {
                code: e.code().to_owned(),
                message: e.to_string(),
            }),
        };
        self.tenants
            .write_with_tenant(t, move |txn, tenant| {
                let key = rule_key(&tenant.id, version);
                let Some(mut rule) = store::get::<RuleRecord>(txn, store::RULES, &key)? else {
                    return Ok(Ok(()));
                };
                if rule.status != RuleStatus::Compiling {
                    return Ok(Ok(()));
                }
                match outcome {
                    Ok(()) => rule.status = RuleStatus::Uploaded,
                    Err(failure) => {
                        rule.status = RuleStatus::Failed;
                        rule.error = Some(failure);
                    }
                }
                rule.ready_at = Some(Timestamp::now());
                store::put_in(txn, store::RULES, &key, &rule)?;
                Ok(Ok(()))
            })
            .await
    }
}
