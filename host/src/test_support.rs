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

/// A random history on `acme`: `tickets` tickets created `spacing_mins` apart from
/// `hours_back` hours ago (random impact and urgency), then `events` events in time order, a
/// random 1 to `max_gap_mins` minutes apart, on random tickets: responses, pauses and
/// resumes, priority changes (a re-route), handoffs to random parties and queues, resolves
/// and reopens. Events that do not apply (a reopen of an open ticket) are refused, as the
/// API would. Returns when the first ticket was created.
pub(crate) async fn random_history(
    f: &Fixture,
    seed: u64,
    tickets: u64,
    spacing_mins: i64,
    hours_back: i64,
    events: usize,
    max_gap_mins: u64,
) -> Timestamp {
    use jiff::SignedDuration;
    use switchboard_rules::{Party, Priority};

    use crate::tickets::EventInput;

    let view = f.acme();
    let mut rng = Lcg(seed);
    let start = Timestamp::now() - SignedDuration::from_hours(hours_back);
    for i in 0..tickets {
        let at = start + SignedDuration::from_mins(i as i64 * spacing_mins);
        let t = serde_json::json!({"id": format!("T-{i}"), "impact": 1 + rng.below(3),
            "urgency": 1 + rng.below(3), "created_at": at});
        f.tickets.create(&view, input(t)).await.expect("create");
    }
    let mut at = start + SignedDuration::from_hours(1);
    for _ in 0..events {
        at += SignedDuration::from_mins(1 + rng.below(max_gap_mins) as i64);
        let id = format!("T-{}", rng.below(tickets));
        let party = Party::ALL[rng.below(3) as usize];
        let event = match rng.below(8) {
            0 => EventInput::Responded { at: Some(at) },
            1 => EventInput::Status {
                status: "pending_customer".into(),
                at: Some(at),
            },
            2 => EventInput::Status {
                status: "open".into(),
                at: Some(at),
            },
            3 => EventInput::Priority {
                priority: Priority::ALL[rng.below(4) as usize],
                at: Some(at),
            },
            4 | 5 => EventInput::Assigned {
                party,
                queue: Some(format!("q{}", rng.below(2))),
                at: Some(at),
            },
            6 => EventInput::Resolved { at: Some(at) },
            _ => EventInput::Reopened { at: Some(at) },
        };
        let _ = f.tickets.apply(&view, &id, event, "k").await;
    }
    start
}
