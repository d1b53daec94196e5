//! The sandboxed rule runtime: one shared wasmtime `Engine`, a fresh instance per evaluation
//! from a cached `InstancePre`, and limits on everything a rule can consume.
//!
//! A fresh instance per ticket is a promise (nothing leaks between tickets), so its cost is
//! the hot path: the pooling allocator reuses pre-reserved slots, copy-on-write images map a
//! module's data instead of copying it, `pagemap_scan` plus `linear_memory_keep_resident`
//! reset only the pages an evaluation dirtied (no page faults on the next one), and the WASI
//! context is built only if a rule actually calls WASI. Evaluation is synchronous and
//! CPU-bound: async callers run it on a blocking thread.

mod cache;
mod compile;
mod error;
mod inspect;
mod load;
mod outcome;
mod sandbox;
mod slots;
mod structure;
mod ticker;
mod v0_1_0;
mod validate;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use switchboard_rules::CalendarSet;
use switchboard_rules::model::{Decision, TicketEvent};
use wasmtime::component::Linker;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap,
};

pub use compile::{CompileBudget, Compiler, MAX_CONCURRENT_COMPILES, WORKER_SUBCOMMAND};
pub use error::{EvalError, EvalFailure, FailureClass, LoadError};
pub use load::Checked;
pub use sandbox::LogLine;
pub use slots::{BackgroundSlot, EvalSlot};
pub use structure::{Expansion, StructureLimits, check as check_structure};

use crate::limits::{self, Limits, Toolchain};
use cache::ArtifactCache;
use outcome::{Raw, arm, classify_trap, failed, finish, input_too_large, watch_deadline};
use sandbox::{LimitHit, State};
use ticker::Ticker;

/// How many evaluations may run at once (pooling-allocator slots).
pub const MAX_CONCURRENT_EVALUATIONS: u32 = 256;

/// Runtime settings.
///
/// ## Defaults
/// No artifact cache (every load compiles), compiled in this process; 2 MiB of each linear memory kept resident and
/// reset with `PAGEMAP_SCAN` where the kernel has it.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for precompiled artifacts; `None` compiles on every load.
    pub cache_dir: Option<PathBuf>,
    /// Bytes at the start of each linear memory kept resident between evaluations and reset
    /// in place instead of being returned to the kernel, so the next evaluation in the slot
    /// takes no page faults there.
    pub keep_resident_bytes: usize,
    /// Reset only the pages an evaluation dirtied, found with the `PAGEMAP_SCAN` ioctl
    /// (Linux 6.7+; ignored elsewhere), instead of all `keep_resident_bytes`.
    pub pagemap_scan: bool,
    /// Where modules are compiled: in a budgeted worker process for untrusted uploads.
    pub compiler: Compiler,
    /// Evaluations one tenant may run at once (see [`Runtime::slot`]).
    pub tenant_evaluations: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            keep_resident_bytes: 2 << 20,
            pagemap_scan: true,
            compiler: Compiler::InProcess,
            tenant_evaluations: slots::default_share(),
        }
    }
}

/// A loaded, validated rule module, ready to evaluate. Cheap to clone.
#[derive(Clone)]
pub struct RuleModule {
    inner: Arc<ModuleInner>,
}

struct ModuleInner {
    sha256: String,
    size: usize,
    contract: String,
    toolchain: Toolchain,
    imports: Vec<String>,
    pre: Pre,
    from_cache: bool,
}

/// The pre-linked instance, one variant per supported contract version.
enum Pre {
    V0_1_0(v0_1_0::TicketRulesPre<State>),
}

impl std::fmt::Debug for RuleModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleModule")
            .field("sha256", &self.inner.sha256)
            .field("size", &self.inner.size)
            .field("contract", &self.inner.contract)
            .finish_non_exhaustive()
    }
}

impl RuleModule {
    /// Hex sha256 of the module bytes.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// Size of the module in bytes.
    pub fn size(&self) -> usize {
        self.inner.size
    }

    /// The contract version the module implements.
    pub fn contract_version(&self) -> &str {
        &self.inner.contract
    }

    /// The toolchain that built it, which chooses its limits.
    pub fn toolchain(&self) -> Toolchain {
        self.inner.toolchain
    }

    /// The module's imports, as component import names.
    pub fn imports(&self) -> &[String] {
        &self.inner.imports
    }

    /// Whether the compiled artifact came from the on-disk cache.
    pub fn from_cache(&self) -> bool {
        self.inner.from_cache
    }
}

/// Who is evaluating, with what data and under which limits.
#[derive(Debug, Clone)]
pub struct EvalContext {
    /// Tenant id (for errors and logs).
    pub tenant: String,
    /// Rule version label (for errors and logs).
    pub version: String,
    /// Tenant configuration handed to `config(key)`.
    pub config: Arc<BTreeMap<String, String>>,
    /// Tenant calendars (with `24x7`).
    pub calendars: Arc<CalendarSet>,
    /// Sandbox limits.
    pub limits: Limits,
}

impl EvalContext {
    /// A context with no config, the built-in calendars and default limits.
    pub fn new(tenant: impl Into<String>, version: impl Into<String>) -> Self {
        EvalContext {
            tenant: tenant.into(),
            version: version.into(),
            config: Arc::default(),
            calendars: Arc::default(),
            limits: Limits::default(),
        }
    }
}

/// The result of one evaluation: the decision or the error, and what it cost.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The validated decision, or why there is none.
    pub outcome: Result<Decision, EvalError>,
    /// Fuel consumed.
    pub fuel_used: u64,
    /// Wall-clock time spent (instantiation included).
    pub elapsed: Duration,
    /// The rule log.
    pub log: Vec<LogLine>,
}

impl Evaluation {
    /// The evaluation of ticket `id` as `rules run` prints it and `…/rules/{v}/test` answers:
    /// the decision or the error (kind, class, message, detail), fuel used and the log.
    pub fn report(&self, id: &str) -> serde_json::Value {
        match &self.outcome {
            Ok(decision) => serde_json::json!({
                "ticket": id,
                "decision": decision,
                "fuel": self.fuel_used,
                "log": self.log,
            }),
            Err(e) => serde_json::json!({
                "ticket": id,
                "error": {
                    "kind": e.failure.kind(),
                    "class": e.failure.class(),
                    "message": e.to_string(),
                    "detail": e.failure,
                },
                "fuel": self.fuel_used,
                "log": self.log,
            }),
        }
    }
}

/// The shared engine: compiles, validates and evaluates rule modules.
pub struct Runtime {
    engine: Engine,
    linker: Linker<State>,
    cache: Option<ArtifactCache>,
    ticker: Ticker,
    slots: slots::Slots,
    compiler: Compiler,
    compiles: compile::Permits,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.ticker.stop.store(true, Ordering::Relaxed);
        self.ticker.thread.unpark();
    }
}

fn engine_config(rc: &RuntimeConfig) -> Config {
    // The pool holds, for each of the evaluation slots, everything one component within the
    // structural limits can instantiate, so an evaluation holding a slot always finds room:
    // no rule can take another tenant's share of the pool.
    let per = StructureLimits::DEFAULT;
    let n = MAX_CONCURRENT_EVALUATIONS;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(n * per.core_instances as u32)
        .total_memories(n * per.memories as u32)
        .total_tables(n * per.tables as u32)
        .max_core_instances_per_component(per.core_instances as u32)
        .max_memories_per_component(per.memories as u32)
        .max_memories_per_module(per.memories as u32)
        .max_tables_per_module(per.tables as u32)
        .max_tables_per_component(per.tables as u32)
        .max_memory_size(limits::MAX_MEMORY_BYTES as usize)
        .linear_memory_keep_resident(rc.keep_resident_bytes)
        .table_keep_resident(64 << 10)
        .pagemap_scan(if rc.pagemap_scan {
            Enabled::Auto
        } else {
            Enabled::No
        });
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(true)
        .epoch_interruption(true)
        .max_wasm_stack(limits::MAX_WASM_STACK_BYTES)
        .memory_init_cow(true)
        .cranelift_nan_canonicalization(true)
        .relaxed_simd_deterministic(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

/// The `main` of a compile worker process (`switchboard __compile-worker …`); see
/// [`Compiler::Worker`].
pub fn compile_worker_main(args: &[String]) -> std::process::ExitCode {
    compile::worker_main(args, &engine_config(&RuntimeConfig::default()))
}

/// A deterministic per-evaluation seed: the same event always sees the same random stream.
fn event_seed(event: &TicketEvent) -> u64 {
    let mut h = Sha256::new();
    h.update(event.ticket.id.as_bytes());
    h.update(event.at.as_second().to_le_bytes());
    let digest = h.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// Bytes of text in a ticket event, the measure of the input limit.
fn event_size(event: &TicketEvent) -> usize {
    let t = &event.ticket;
    let opt = |o: &Option<String>| o.as_ref().map_or(0, String::len);
    let changes = match &event.kind {
        switchboard_rules::EventKind::Created => 0,
        switchboard_rules::EventKind::Updated(c) => c
            .iter()
            .map(|c| c.field.len() + opt(&c.old) + opt(&c.new))
            .sum(),
    };
    t.id.len()
        + t.subject.len()
        + t.description.len()
        + opt(&t.category)
        + opt(&t.service)
        + opt(&t.source)
        + t.status.len()
        + t.requester.email.len()
        + opt(&t.requester.department)
        + t.tags.iter().map(String::len).sum::<usize>()
        + t.fields
            .iter()
            .map(|(k, v)| k.len() + v.len())
            .sum::<usize>()
        + opt(&t.queue)
        + changes
}

impl Runtime {
    /// Builds the engine, links the sandbox and starts the epoch ticker.
    pub fn new(config: RuntimeConfig) -> Result<Self, LoadError> {
        let engine = Engine::new(&engine_config(&config))
            .map_err(|e| LoadError::Invalid(format!("engine configuration: {e}")))?;
        let mut linker = Linker::new(&engine);
        sandbox::link_wasi(&mut linker)
            .and_then(|()| v0_1_0::link(&mut linker))
            .map_err(|e| LoadError::Invalid(format!("linking the sandbox: {e}")))?;
        let cache = match &config.cache_dir {
            Some(dir) => Some(ArtifactCache::open(dir, &engine)?),
            None => None,
        };
        let ticker = Ticker::start(&engine)?;
        Ok(Runtime {
            engine,
            linker,
            cache,
            ticker,
            slots: slots::Slots::new(
                MAX_CONCURRENT_EVALUATIONS,
                config.tenant_evaluations,
                slots::background_share(),
            ),
            compiler: config.compiler,
            compiles: compile::Permits::new(MAX_CONCURRENT_COMPILES),
        })
    }

    /// Whether the artifact cache holds a compiled artifact for `sha256`.
    pub fn is_cached(&self, sha256: &str) -> bool {
        self.cache.as_ref().is_some_and(|c| c.contains(sha256))
    }

    /// Waits for `tenant`'s turn and one of the [`MAX_CONCURRENT_EVALUATIONS`] instance
    /// slots. Async callers hold one per evaluation in flight, so a burst queues here instead
    /// of exhausting the pool, and a tenant never holds more than its share (the
    /// `tenant_evaluations` setting) while another tenant waits.
    pub async fn slot(&self, tenant: &str) -> EvalSlot {
        self.slots.acquire(tenant).await
    }

    /// Waits for a turn of background work (a replay): at most
    /// [`Runtime::background_share`] run at once, each evaluating one ticket at a time on one
    /// slot of the pool, and none takes a place in any tenant's share.
    pub async fn background_slot(&self) -> BackgroundSlot {
        self.slots.acquire_background().await
    }

    /// How many background runs may evaluate at once: half the CPUs, at least one.
    pub fn background_share() -> u32 {
        slots::background_share()
    }

    /// Evaluates `event` in a fresh instance of `module`.
    pub fn evaluate(
        &self,
        module: &RuleModule,
        ctx: &EvalContext,
        event: &TicketEvent,
    ) -> Evaluation {
        self.run(module, ctx, event).0
    }

    /// [`Runtime::evaluate`], saying also whether it failed while instantiating (before the
    /// rule's own code ran), which the sample start of [`Runtime::probe`] tells apart.
    fn run(
        &self,
        module: &RuleModule,
        ctx: &EvalContext,
        event: &TicketEvent,
    ) -> (Evaluation, bool) {
        let start = Instant::now();
        if let Some(failure) = input_too_large(ctx, event) {
            return (failed(ctx, event, start, failure, 0, Vec::new()), false);
        }
        // One store, armed once: instantiation and the call share one budget.
        let _running = self.ticker.running();
        let mut store = self.new_store(ctx, event);
        let instance = match &module.inner.pre {
            Pre::V0_1_0(pre) => pre.instantiate(&mut store).map(Bindings::V0_1_0),
        };
        match instance {
            Ok(rules) => {
                let result = rules.route(&mut store, event);
                (finish(ctx, event, start, &mut store, result), false)
            }
            // No free slot is the host's shortfall, not the rule's failure.
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                let failure = EvalFailure::Host {
                    message: format!("no free instance slot: {e}"),
                };
                (failed(ctx, event, start, failure, 0, Vec::new()), true)
            }
            Err(e) => (finish(ctx, event, start, &mut store, Err(e)), true),
        }
    }

    /// Instantiates `module` once for repeated calls. **For benchmarks and diagnostics
    /// only**: the service never reuses an instance, because state would leak from one
    /// ticket to the next. The bench compares this with [`Runtime::evaluate`] to price a
    /// fresh instance.
    #[doc(hidden)]
    pub fn instantiate_reused(
        &self,
        module: &RuleModule,
        ctx: &EvalContext,
        first: &TicketEvent,
    ) -> Result<ReusedInstance, EvalFailure> {
        let _running = self.ticker.running();
        let mut store = self.new_store(ctx, first);
        let bindings = match &module.inner.pre {
            Pre::V0_1_0(pre) => pre.instantiate(&mut store).map(Bindings::V0_1_0),
        }
        .map_err(|e| classify_trap(&e, &ctx.limits, None, &[]))?;
        Ok(ReusedInstance {
            store,
            bindings,
            ctx: ctx.clone(),
            ticker: self.ticker.clone(),
        })
    }

    fn new_store(&self, ctx: &EvalContext, event: &TicketEvent) -> Store<State> {
        let limits = &ctx.limits;
        let state = State::new(
            ctx.config.clone(),
            ctx.calendars.clone(),
            limits.memory_bytes,
            limits.log_bytes,
            event.at,
            event_seed(event),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        watch_deadline(&mut store);
        arm(&mut store, limits);
        store
    }

    /// The wasmtime engine (for benches and diagnostics).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// A rule instance kept across calls; see [`Runtime::instantiate_reused`].
#[doc(hidden)]
pub struct ReusedInstance {
    store: Store<State>,
    bindings: Bindings,
    ctx: EvalContext,
    ticker: Ticker,
}

impl ReusedInstance {
    /// Calls `route` again on the same instance, with a fresh fuel budget and deadline.
    pub fn route(&mut self, event: &TicketEvent) -> Evaluation {
        let start = Instant::now();
        let _running = self.ticker.running();
        arm(&mut self.store, &self.ctx.limits);
        let result = self.bindings.route(&mut self.store, event);
        finish(&self.ctx, event, start, &mut self.store, result)
    }
}

/// An instantiated rule, one variant per supported contract version.
enum Bindings {
    V0_1_0(v0_1_0::TicketRules),
}

impl Bindings {
    fn route(&self, store: &mut Store<State>, event: &TicketEvent) -> wasmtime::Result<Raw> {
        match self {
            Bindings::V0_1_0(rules) => {
                let input = v0_1_0::event_to_wit(event);
                Ok(match rules.call_route(store, &input)? {
                    Ok(d) => Raw::Decision(v0_1_0::decision_size(&d), Box::new(d)),
                    Err(e) => Raw::RuleError(v0_1_0::rule_error_size(&e), e),
                })
            }
        }
    }
}
