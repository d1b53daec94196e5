//! Replays: before internal IT approves a version, it sees what the version would have done to
//! the tickets already stored — which would have gone elsewhere, in which fields, and where
//! it fails — instead of a version number and a sha256. Every ticket keeps the input its
//! decision was made on (`routed_on`), and a replay evaluates that input again with the
//! candidate and with what it is compared with (the active version, another version, or the
//! decision stored on the ticket), using the tenant's config, calendars and limits as they
//! are now. Nothing stored about tickets changes; the summary is kept under its id, linked
//! from the version and the audit log.
//!
//! A replay runs on one thread of its own at a lower CPU priority, with a turn of the
//! runtime's background share ([`Runtime::background_slot`]), reading the store a batch per
//! read transaction: ticket intake keeps its own evaluation share and cores.

mod export;
pub mod history;
pub mod tally;

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_rules::{Decision, Ticket, TicketEvent};
use utoipa::ToSchema;

pub use self::export::{ExportLine, MAX_EXPORTS};
pub use self::history::{Order, Period};
pub use self::tally::{Figures, Outcome, Side, Tally};
use crate::lifecycle::Lifecycle;
use crate::refusal::{Error, Refusal, Result};
use crate::runtime::{EvalContext, EvalFailure, RuleModule, Runtime};
use crate::store::records::{ReplayBrief, RuleOutcome, TicketRecord};
use crate::store::{self, Store, StoreError};
use crate::tenants::{TenantView, Tenants, audit_with};
use crate::tickets;

/// Tickets replayed when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 1_000;
/// The largest `limit`.
pub const MAX_LIMIT: usize = 100_000;
/// The most `ticket_ids` one request may name.
pub const MAX_TICKET_IDS: usize = 10_000;
/// How long one replay may evaluate: it then stops and answers what it has, marked
/// incomplete (kept well under the API's request timeout).
pub const TIME_BUDGET: Duration = Duration::from_secs(20);
/// How long a replay waits for a turn of the background share before it is refused
/// (`409 replay_busy`): with the time budget, it answers within the API's request timeout.
pub const TURN_WAIT: Duration = Duration::from_secs(5);
/// Summaries kept per tenant; older ones are deleted as new ones are stored (the brief on
/// the version and the audit entry stay).
pub const KEPT: u64 = 500;

/// What the candidate is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Against {
    /// The tenant's active version.
    Active,
    /// The decision stored on each ticket.
    Stored,
    /// Another version.
    Version(u32),
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    /// What the candidate is compared with.
    pub against: Against,
    /// Most tickets evaluated (1 to [`MAX_LIMIT`]), newest first.
    pub limit: usize,
    /// Tickets created in this period.
    pub period: Period,
    /// Only these tickets (still within `period` and `limit`).
    pub ticket_ids: Option<Vec<String>>,
}

impl ReplayRequest {
    /// The request with repeated `ticket_ids` named once (first place kept).
    fn normalized(mut self) -> Self {
        if let Some(ids) = &mut self.ticket_ids {
            let mut seen = std::collections::HashSet::new();
            ids.retain(|id| seen.insert(id.clone()));
        }
        self
    }

    /// Checks the request's ranges, naming the field at fault.
    pub fn validate(&self) -> Result<(), Refusal> {
        let invalid = |m: String| Err(Refusal::invalid("invalid_body", m));
        if !(1..=MAX_LIMIT).contains(&self.limit) {
            return invalid(format!(
                "`limit` must be 1 to {MAX_LIMIT}, got {}",
                self.limit
            ));
        }
        if let (Some(since), Some(until)) = (self.period.since, self.period.until)
            && until <= since
        {
            return invalid(format!(
                "`until` ({until}) must be later than `since` ({since})"
            ));
        }
        if let Some(ids) = &self.ticket_ids
            && (ids.is_empty() || ids.len() > MAX_TICKET_IDS)
        {
            return invalid(format!(
                "`ticket_ids` must name 1 to {MAX_TICKET_IDS} tickets, got {}",
                ids.len()
            ));
        }
        Ok(())
    }
}

/// A replay's answer, kept under its `replay_id`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplaySummary {
    /// Its id (`GET …/replays/{replay_id}`).
    pub replay_id: String,
    /// The version replayed.
    pub candidate: u32,
    /// What it was compared with: `active`, `stored` (the decision on each ticket) or
    /// `version`.
    pub against: String,
    /// The version compared with (for `active`, the one active when it ran).
    pub against_version: Option<u32>,
    /// When it ran.
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Key id that ran it.
    pub by: String,
    /// What the figures mean: the stored routing inputs, evaluated with the tenant's config,
    /// calendars, limits and fallback as they are now (`tenant_revision`), not as they were.
    pub basis: String,
    /// The tenant's revision whose config, calendars, limits and fallback were used.
    pub tenant_revision: u64,
    /// `false` when it stopped before `limit` tickets or the end of the history (see
    /// `stopped`).
    pub complete: bool,
    /// Why it stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Tickets in the period stored before routing inputs were kept, which cannot be
    /// replayed.
    pub skipped: u64,
    /// Named `ticket_ids` with no stored ticket.
    pub not_found: u64,
    /// Whether it was limited to named `ticket_ids`.
    pub named: bool,
    /// The comparison.
    #[serde(flatten)]
    pub figures: Figures,
}

/// What the candidate is compared with, ready to evaluate.
pub enum Baseline {
    /// The stored decision.
    Stored,
    /// Another module, in its own context.
    Module(RuleModule, EvalContext),
}

/// Evaluates tickets with a candidate and a baseline and tallies the difference: the loop
/// body of a replay, over stored history (the service) or an export (the CLI).
pub struct Replayer {
    runtime: Arc<Runtime>,
    candidate: (RuleModule, EvalContext),
    baseline: Baseline,
    fallback: Box<dyn Fn(&Ticket) -> Decision + Send>,
    tally: Tally,
}

impl Replayer {
    /// A replayer of `candidate` against `baseline`; `fallback` gives the decision that
    /// applies when a rule fails.
    pub fn new(
        runtime: Arc<Runtime>,
        candidate: (RuleModule, EvalContext),
        baseline: Baseline,
        fallback: Box<dyn Fn(&Ticket) -> Decision + Send>,
    ) -> Self {
        Replayer {
            runtime,
            candidate,
            baseline,
            fallback,
            tally: Tally::default(),
        }
    }

    fn evaluate(&self, module: &RuleModule, ctx: &EvalContext, event: &TicketEvent) -> Outcome {
        let mut eval = self.runtime.evaluate(module, ctx, event);
        // A replay runs at a low priority on a machine busy with intake: a wall-clock stop may
        // be the scheduler's, not the rule's. One more try tells them apart.
        if let Err(e) = &eval.outcome
            && matches!(e.failure, EvalFailure::WallClock { .. })
        {
            eval = self.runtime.evaluate(module, ctx, event);
        }
        let side = match eval.outcome {
            Ok(decision) => Side::Decided { decision },
            Err(e) => Side::Failed {
                error: tally::Failure {
                    kind: e.failure.kind().to_owned(),
                    message: e.to_string(),
                },
                fallback: (self.fallback)(&event.ticket),
            },
        };
        Outcome {
            side,
            fuel: eval.fuel_used,
        }
    }

    /// Replays ticket `id` routed on `event`, whose stored decision was `stored`.
    pub fn add(&mut self, id: &str, event: &TicketEvent, stored: (&Decision, &RuleOutcome)) {
        let after = self.evaluate(&self.candidate.0, &self.candidate.1, event);
        let before = match &self.baseline {
            Baseline::Stored => stored_outcome(stored.0, stored.1),
            Baseline::Module(module, ctx) => self.evaluate(module, ctx, event),
        };
        self.tally.add(id, before, after);
    }

    /// Tickets replayed so far.
    pub fn evaluated(&self) -> u64 {
        self.tally.evaluated()
    }

    /// The figures.
    pub fn finish(self) -> Figures {
        self.tally.finish()
    }
}

/// The stored side of a ticket: its decision, or its rule's failure and the fallback that
/// was applied.
pub fn stored_outcome(decision: &Decision, rule: &RuleOutcome) -> Outcome {
    let side = match &rule.error {
        Some(e) => Side::Failed {
            error: tally::Failure {
                kind: e.kind.clone(),
                message: e.message.clone(),
            },
            fallback: decision.clone(),
        },
        None => Side::Decided {
            decision: decision.clone(),
        },
    };
    Outcome {
        side,
        fuel: rule.fuel,
    }
}

/// The evaluation context of version `version` of the tenant of `view`.
fn context(view: &TenantView, version: u32, module: &RuleModule) -> EvalContext {
    EvalContext {
        tenant: view.record.id.clone(),
        version: version.to_string(),
        config: view.config.clone(),
        calendars: view.calendars.clone(),
        limits: *view.record.settings.rule_limits().get(module.toolchain()),
    }
}

/// Lowers the calling thread's CPU priority (nice 10), so that on a busy machine the
/// scheduler serves ticket intake first. The thread is the replay's own and ends with it.
#[allow(unsafe_code)]
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: `gettid` and `setpriority` take and return plain integers; on Linux the nice
    // value is per thread, so this changes only the calling thread.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10) != 0 {
            tracing::debug!("could not lower the replay thread's priority");
        }
    }
}

/// Set when the caller of a replay is gone, so that the run stops at its next ticket.
#[derive(Default)]
struct Cancel(Arc<AtomicBool>);

impl Drop for Cancel {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Replays, summaries and the export, over the store, the tenant views, the lifecycle (for
/// the modules) and the runtime.
#[derive(Debug, Clone)]
pub struct Replays {
    store: Store,
    tenants: Arc<Tenants>,
    lifecycle: Lifecycle,
    runtime: Arc<Runtime>,
    exports: Arc<tokio::sync::Semaphore>,
}

impl Replays {
    /// Replays over these parts.
    pub fn new(
        store: Store,
        tenants: Arc<Tenants>,
        lifecycle: Lifecycle,
        runtime: Arc<Runtime>,
    ) -> Self {
        Replays {
            store,
            tenants,
            lifecycle,
            runtime,
            exports: Arc::new(tokio::sync::Semaphore::new(export::MAX_EXPORTS)),
        }
    }

    /// Replays version `candidate` of the tenant of `view` as `who`, stores the summary,
    /// links it from the version and the audit log, and answers it.
    pub async fn run(
        &self,
        view: Arc<TenantView>,
        who: &str,
        candidate: u32,
        request: ReplayRequest,
    ) -> Result<ReplaySummary> {
        let deadline = Instant::now() + TIME_BUDGET;
        let request = request.normalized();
        request.validate()?;
        let named = request.ticket_ids.is_some();
        let (_, module) = self.lifecycle.replayable(&view, candidate).await?;
        let candidate_ctx = context(&view, candidate, &module);
        let (against, against_version) = match request.against {
            Against::Active => {
                let active = view.record.active.ok_or_else(|| {
                    Refusal::conflict(
                        "no_active_rule",
                        "no version is active to compare with: use `\"against\": \"stored\"` or a version number",
                    )
                })?;
                ("active", Some(active))
            }
            Against::Stored => ("stored", None),
            Against::Version(v) => ("version", Some(v)),
        };
        let baseline = match against_version {
            Some(v) => {
                let (_, m) = self.lifecycle.replayable(&view, v).await?;
                let ctx = context(&view, v, &m);
                Baseline::Module(m, ctx)
            }
            None => Baseline::Stored,
        };
        let fallback_view = view.clone();
        let mut replayer = Replayer::new(
            self.runtime.clone(),
            (module, candidate_ctx),
            baseline,
            Box::new(move |t| tickets::fallback(&fallback_view, t)),
        );
        let slot = tokio::time::timeout(TURN_WAIT, self.runtime.background_slot())
            .await
            .map_err(|_| {
                Refusal::conflict(
                    "replay_busy",
                    format!(
                        "other replays hold every background turn (at most {} at once); retry when they finish",
                        Runtime::background_share()
                    ),
                )
            })?;
        let cancel = Cancel::default();
        let cancelled = cancel.0.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (store, tenant) = (self.store.clone(), view.record.id.clone());
        std::thread::Builder::new()
            .name("switchboard-replay".into())
            .spawn(move || {
                lower_priority();
                let _slot = slot;
                let run = walk(
                    &store,
                    &tenant,
                    &request,
                    &mut replayer,
                    &cancelled,
                    deadline,
                );
                let _ = tx.send(run.map(|walked| (walked, replayer.finish())));
            })
            .map_err(|e| Error::Internal(format!("starting the replay thread: {e}")))?;
        // Dropping this future (the caller left) drops `cancel`, which stops the thread.
        let (walked, figures) = rx
            .await
            .map_err(|_| Error::Internal("the replay thread failed".into()))??;
        drop(cancel);
        let summary = ReplaySummary {
            replay_id: String::new(),
            candidate,
            against: against.to_owned(),
            against_version,
            at: Timestamp::now(),
            by: who.to_owned(),
            basis: "the stored routing inputs, evaluated with the tenant's current config, calendars, limits and fallback".into(),
            tenant_revision: view.record.revision,
            complete: walked.stopped.is_none(),
            stopped: walked.stopped,
            skipped: walked.skipped,
            not_found: walked.not_found,
            named,
            figures,
        };
        self.keep(&view, summary).await
    }

    /// Stores `summary` under a new id, with the brief on its version and its audit entry.
    async fn keep(&self, view: &TenantView, mut summary: ReplaySummary) -> Result<ReplaySummary> {
        self.tenants
            .write_with_tenant(&view.record.id, move |txn, tenant| {
                let version = summary.candidate;
                let rule_key = store::seq_key(&tenant.id, version.into());
                let Some(mut rule) =
                    store::get::<crate::store::records::RuleRecord>(txn, store::RULES, &rule_key)?
                else {
                    return Ok(Err(Refusal::not_found(format!(
                        "no rule version {version}"
                    ))));
                };
                tenant.last_replay += 1;
                let n = tenant.last_replay;
                summary.replay_id = format!("rpl_{n}");
                let f = &summary.figures;
                let brief = ReplayBrief {
                    replay_id: summary.replay_id.clone(),
                    at: summary.at,
                    by: summary.by.clone(),
                    against: match summary.against_version {
                        Some(v) if summary.against == "active" => format!("active ({v})"),
                        Some(v) => v.to_string(),
                        None => summary.against.clone(),
                    },
                    evaluated: f.evaluated,
                    changed: f.changed,
                    failed: f.failed.candidate,
                    complete: summary.complete,
                    named: summary.named,
                };
                let detail = json!({
                    "replay_id": brief.replay_id,
                    "against": summary.against,
                    "against_version": summary.against_version,
                    "evaluated": f.evaluated,
                    "unchanged": f.unchanged,
                    "changed": f.changed,
                    "failed": f.failed,
                    "complete": summary.complete,
                });
                rule.last_replay = Some(brief);
                store::put_in(txn, store::RULES, &rule_key, &rule)?;
                store::put_in(
                    txn,
                    store::REPLAYS,
                    &store::seq_key(&tenant.id, n),
                    &summary,
                )?;
                if n > KEPT {
                    txn.delete(store::REPLAYS, &store::seq_key(&tenant.id, n - KEPT))?;
                }
                let sha = Some(rule.sha256.clone());
                let target = format!("rules/{version}");
                audit_with(
                    txn,
                    tenant,
                    &summary.by,
                    "rule.replay",
                    &target,
                    sha,
                    Some(detail),
                )?;
                Ok(Ok(summary))
            })
            .await
    }

    /// The kept summary `replay_id`.
    pub fn get(&self, view: &TenantView, replay_id: &str) -> Result<ReplaySummary> {
        let missing = || Refusal::not_found(format!("no replay {replay_id:?}"));
        let n: u64 = replay_id
            .strip_prefix("rpl_")
            .and_then(|n| n.parse().ok())
            .filter(|n| format!("rpl_{n}") == replay_id)
            .ok_or_else(missing)?;
        let txn = self.store.read()?;
        let key = store::seq_key(&view.record.id, n);
        Ok(store::get(&txn, store::REPLAYS, &key)?.ok_or_else(missing)?)
    }
}

/// What a walk over the history saw besides the tally.
struct Walked {
    stopped: Option<String>,
    skipped: u64,
    not_found: u64,
}

/// Feeds the tickets `request` selects to `replayer`, newest first, until its limit, the
/// time budget, or the caller leaves.
fn walk(
    store: &Store,
    tenant: &str,
    request: &ReplayRequest,
    replayer: &mut Replayer,
    cancelled: &AtomicBool,
    deadline: Instant,
) -> Result<Walked, StoreError> {
    let mut walked = Walked {
        stopped: None,
        skipped: 0,
        not_found: 0,
    };
    let period = request.period;
    let mut step = |walked: &mut Walked, record: TicketRecord| {
        if replayer.evaluated() >= request.limit as u64 {
            return ControlFlow::Break(());
        }
        if cancelled.load(Ordering::Relaxed) {
            walked.stopped = Some("the request was abandoned".into());
            return ControlFlow::Break(());
        }
        if Instant::now() >= deadline {
            walked.stopped = Some(format!(
                "the time budget of {} s was reached",
                TIME_BUDGET.as_secs()
            ));
            return ControlFlow::Break(());
        }
        match &record.routed_on {
            Some(event) => replayer.add(&record.ticket.id, event, (&record.decision, &record.rule)),
            None => walked.skipped += 1,
        }
        ControlFlow::Continue(())
    };
    match &request.ticket_ids {
        Some(ids) => history::for_ids(store, tenant, ids, |_, record| match record {
            Some(r) if period.contains(r.ticket.created_at) => step(&mut walked, r),
            Some(_) => ControlFlow::Continue(()),
            None => {
                walked.not_found += 1;
                ControlFlow::Continue(())
            }
        })?,
        None => history::for_each(store, tenant, period, Order::NewestFirst, |r| {
            step(&mut walked, r)
        })?,
    }
    Ok(walked)
}
