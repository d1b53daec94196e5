//! A domain layer on a temporary store, for the unit tests of `tickets`, `timers` and
//! `schedules`: the real store, tenant views and outbox, no HTTP and no background loops (the
//! tests run the passes they need themselves).

use std::sync::Arc;

use jiff::Timestamp;

use crate::metrics::Metrics;
use crate::runtime::{Runtime, RuntimeConfig};
use crate::store::records::{DeliveryRecord, TenantRecord, WebhookRecord};
use crate::store::{self, Store};
use crate::tenants::{TenantView, Tenants};
use crate::tickets::Tickets;
use crate::timers::Scheduler;
use crate::webhooks::{DeliveryConfig, Dispatcher};

/// The domain's parts on a store in a temporary directory.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) tenants: Arc<Tenants>,
    pub(crate) deliveries: Arc<Dispatcher>,
    pub(crate) tickets: Tickets,
}

impl Fixture {
    /// An empty store with the tenant `acme` (no rule: the built-in fallback routes) and one
    /// endpoint subscribed to every event type.
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("test.redb")).expect("open store");
        let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).expect("runtime"));
        let deliveries = Arc::new(Dispatcher::new(DeliveryConfig::default()));
        let timers = Arc::new(Scheduler::default());
        let now = Timestamp::now();
        let tenant = TenantRecord::new("acme", "Acme", now);
        let hook = WebhookRecord {
            id: "ops".into(),
            url: "https://hooks.example.com/".into(),
            events: crate::webhooks::EventType::ALL
                .iter()
                .map(|e| e.as_str().to_owned())
                .collect(),
            secrets: Vec::new(),
            created_at: now,
        };
        store
            .write(move |txn| {
                store::put_in(txn, store::TENANTS, "acme", &tenant)?;
                store::put_in(
                    txn,
                    store::WEBHOOKS,
                    &store::tenant_key("acme", "ops"),
                    &hook,
                )
            })
            .await
            .expect("write the tenant");
        let tenants = Arc::new(
            Tenants::load(
                store.clone(),
                runtime.clone(),
                "t",
                crate::limits::Limits::MAX,
            )
            .expect("load"),
        );
        let tickets = Tickets::new(
            store.clone(),
            runtime,
            Arc::new(Metrics::default()),
            deliveries.clone(),
            timers,
        );
        Fixture {
            _dir: dir,
            store,
            tenants,
            deliveries,
            tickets,
        }
    }

    /// The view of `acme`.
    pub(crate) fn acme(&self) -> Arc<TenantView> {
        self.tenants.get("acme").expect("acme")
    }

    /// Every delivery in the outbox, oldest first.
    pub(crate) fn outbox(&self) -> Vec<DeliveryRecord> {
        let txn = self.store.read().expect("read");
        store::scan(&txn, store::DELIVERIES, "acme").expect("scan")
    }
}

/// A ticket as the API takes it.
pub(crate) fn input(json: serde_json::Value) -> switchboard_rules::TicketInput {
    serde_json::from_value(json).expect("ticket json")
}

/// A small deterministic generator, so that a failing random history names its seed.
pub(crate) struct Lcg(pub(crate) u64);

impl Lcg {
    /// The next number below `n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}
