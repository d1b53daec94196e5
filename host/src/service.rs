//! Wiring only: opens the data directory and puts the parts together — the store, the rule
//! runtime, the tenant views, the ticket operations and the three background loops (timers,
//! schedules, deliveries) — so that the API, the CLI and the tests all start the same thing.
//! Nothing here decides anything; the domain modules below it do.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::endpoints::Endpoints;
use crate::lifecycle::Lifecycle;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::replay::Replays;
use crate::runtime::{Compiler, LoadError, Runtime, RuntimeConfig};
use crate::schedules::Runner;
use crate::store::{Store, StoreError};
use crate::tenants::{Tenants, ViewError};
use crate::tickets::Tickets;
use crate::timers::Scheduler;
use crate::webhooks::{DeliveryConfig, Dispatcher};

/// The store's file in the data directory.
pub const STORE_FILE: &str = "switchboard.redb";

/// The running service's parts.
pub struct Service {
    /// The durable store.
    pub store: Store,
    /// The rule runtime.
    pub runtime: Arc<Runtime>,
    /// Tenants, keys and compiled modules.
    pub tenants: Arc<Tenants>,
    /// Ticket operations.
    pub tickets: Tickets,
    /// The rule lifecycle.
    pub lifecycle: Lifecycle,
    /// Replays of rule versions over the stored history, and the export.
    pub replays: Replays,
    /// Webhook endpoints.
    pub endpoints: Endpoints,
    /// Webhook delivery.
    pub deliveries: Arc<Dispatcher>,
    /// SLA timers.
    pub timers: Arc<Scheduler>,
    /// Cron schedules.
    pub schedules: Arc<Runner>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The data directory (the store file, the compiled-rule cache, backups being written).
    pub data_dir: PathBuf,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Runtime(#[from] LoadError),
    /// A stored tenant no longer loads.
    #[error(transparent)]
    Tenant(#[from] ViewError),
    /// The data directory cannot be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

/// How the service is set up beyond its data directory.
#[derive(Debug, Clone)]
pub struct ServiceOptions {
    /// Webhook delivery settings (URL policy, retry schedule).
    pub delivery: DeliveryConfig,
    /// Where uploaded modules are compiled; `serve` uses a budgeted worker process.
    pub compiler: Compiler,
    /// The most a tenant admin may raise each sandbox limit to.
    pub limit_caps: Limits,
    /// Evaluations one tenant may run at once; `None` for the runtime's default.
    pub tenant_evaluations: Option<u32>,
    /// A PostgreSQL database (`postgres://…`) to keep the state in, which several nodes may
    /// share; `None` for the redb file in the data directory.
    pub database: Option<String>,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        ServiceOptions {
            delivery: DeliveryConfig::default(),
            compiler: Compiler::InProcess,
            limit_caps: Limits::MAX,
            tenant_evaluations: None,
            database: None,
        }
    }
}

impl Service {
    /// Opens the data directory (`switchboard.redb` and the `artifacts/` cache) and loads
    /// the views. `admin_token` is the platform admin's bearer token.
    pub fn open(data_dir: &Path, admin_token: &str) -> Result<Self, StartError> {
        Self::open_with(data_dir, admin_token, ServiceOptions::default())
    }

    /// [`Service::open`] with options (webhook delivery, compiler, limit caps).
    pub fn open_with(
        data_dir: &Path,
        admin_token: &str,
        options: ServiceOptions,
    ) -> Result<Self, StartError> {
        let ServiceOptions {
            delivery,
            compiler,
            limit_caps,
            tenant_evaluations,
            database,
        } = options;
        std::fs::create_dir_all(data_dir)?;
        let store = match &database {
            Some(url) => Store::connect(url)?,
            None => Store::open(&data_dir.join(STORE_FILE))?,
        };
        let mut runtime_config = RuntimeConfig {
            cache_dir: Some(data_dir.join("artifacts")),
            compiler,
            ..RuntimeConfig::default()
        };
        if let Some(share) = tenant_evaluations {
            runtime_config.tenant_evaluations = share;
        }
        let runtime = Arc::new(Runtime::new(runtime_config)?);
        let deliveries = Arc::new(Dispatcher::new(delivery));
        deliveries.recover(&store)?;
        let tenants = Arc::new(Tenants::load(
            store.clone(),
            runtime.clone(),
            admin_token,
            limit_caps,
        )?);
        // What the one-time passes over older tickets need of each tenant.
        let (mut rows, mut calendars) = (HashMap::new(), HashMap::new());
        for v in tenants.all() {
            let context = (v.calendars.clone(), v.record.settings.at_risk_percent);
            rows.insert(v.record.id.clone(), context);
            calendars.insert(v.record.id.clone(), v.calendars.clone());
        }
        let indexed = crate::board::build(&store, rows)?;
        if indexed > 0 {
            tracing::info!(tickets = indexed, "open SLA clocks indexed");
        }
        let shared = crate::reports::build(&store, calendars)?;
        if shared > 0 {
            tracing::info!(tickets = shared, "tickets added to the report aggregates");
        }
        let metrics = Arc::new(Metrics::default());
        let timers = Arc::new(Scheduler::default());
        let tickets = Tickets::new(
            store.clone(),
            runtime.clone(),
            metrics.clone(),
            deliveries.clone(),
            timers.clone(),
        );
        let lifecycle = Lifecycle::new(store.clone(), tenants.clone(), runtime.clone());
        let endpoints = Endpoints::new(store.clone(), tenants.clone(), deliveries.clone());
        let replays = Replays::new(
            store.clone(),
            tenants.clone(),
            lifecycle.clone(),
            runtime.clone(),
        );
        Ok(Service {
            store,
            runtime,
            tenants,
            tickets,
            lifecycle,
            replays,
            endpoints,
            deliveries,
            timers,
            schedules: Arc::default(),
            metrics,
            data_dir: data_dir.to_owned(),
        })
    }

    /// Starts the background loops (delivery, its retention sweep, timers, schedules); each
    /// ends when `stop` turns true.
    pub fn spawn_loops(
        &self,
        stop: &tokio::sync::watch::Sender<bool>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        match self.lifecycle.resume_compiles() {
            Ok(0) => {}
            Ok(n) => tracing::info!(versions = n, "compiling rule versions left compiling"),
            Err(e) => tracing::error!(error = %e, "resuming rule compilations"),
        }
        let mut loops = Vec::new();
        if self.store.is_shared() {
            loops.push(tokio::spawn(crate::cluster::run(
                self.store.clone(),
                self.tenants.clone(),
                self.deliveries.clone(),
                stop.subscribe(),
            )));
        }
        loops.extend([
            tokio::spawn(self.timers.clone().run(
                self.store.clone(),
                self.tenants.clone(),
                self.deliveries.clone(),
                stop.subscribe(),
            )),
            tokio::spawn(self.schedules.clone().run(
                self.store.clone(),
                self.tenants.clone(),
                self.deliveries.clone(),
                stop.subscribe(),
            )),
            tokio::spawn(
                self.deliveries
                    .clone()
                    .retain(self.store.clone(), stop.subscribe()),
            ),
            // Last: the dispatcher finishes after the loops that feed it.
            tokio::spawn(
                self.deliveries
                    .clone()
                    .run(self.store.clone(), stop.subscribe()),
            ),
        ]);
        loops
    }
}
