//! Delivery: at-least-once from the outbox, signed, with exponential back-off and jitter,
//! `Retry-After` honoured and a dead-letter state after the last attempt. Each endpoint has
//! its own worker that sends its due deliveries one at a time, in order (so escalations
//! arrive in the order they fired), and a slow or dead receiver only ever holds its own
//! worker — never other endpoints', other tenants' or ticket intake. The schedule lives in memory and is rebuilt
//! from the outbox on start, so a restart resumes every pending delivery.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use rand::{Rng as _, RngExt as _};
use tokio::sync::{Notify, mpsc};

use super::lease::{DUE_SLACK, Taken, release_in, take};
use super::outbox::Queued;
use super::policy::UrlPolicy;
use super::signing::{Secret, sign};
use crate::store::records::{AttemptRecord, DeliveryRecord, DeliveryState, WebhookRecord};
use crate::store::{self, Store, StoreError};

/// Svix's schedule: the delay before each attempt (the first is immediate).
pub const DEFAULT_SCHEDULE: [Duration; 8] = [
    Duration::ZERO,
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// Per-attempt timeout.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `Retry-After` honoured.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 3600);

/// The default shortest gap between two fires of a schedule: one minute, Unix cron's grain.
pub const DEFAULT_MIN_SCHEDULE_INTERVAL: Duration = Duration::from_secs(60);

/// The default retention of finished deliveries: 30 days, as Stripe keeps events.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// How often the outbox is swept.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Delivery settings.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Where webhooks may go.
    pub policy: UrlPolicy,
    /// Delay before each attempt; its length is the number of attempts.
    pub schedule: Vec<Duration>,
    /// The shortest gap allowed between two fires of a cron schedule (each fire is a
    /// delivery to every subscribed endpoint, and a digest reads the tenant's tickets).
    pub min_schedule_interval: Duration,
    /// How long finished (delivered or dead-lettered) deliveries stay in the outbox and
    /// its log.
    pub retention: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            policy: UrlPolicy::default(),
            schedule: DEFAULT_SCHEDULE.to_vec(),
            min_schedule_interval: DEFAULT_MIN_SCHEDULE_INTERVAL,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Most due deliveries one endpoint's worker takes in one go.
const WORKER_BATCH: usize = 64;
/// How often a worker records the outcomes of a batch it is still sending.
const RECORD_EVERY: Duration = Duration::from_millis(250);

/// What an attempt came to.
struct Outcome {
    attempt: AttemptRecord,
    state: DeliveryState,
    next: Option<Timestamp>,
}

/// The delivery dispatcher.
pub struct Dispatcher {
    /// This node's id (in its leases and heartbeats on a shared database).
    node: String,
    config: DeliveryConfig,
    client: reqwest::Client,
    queue: Mutex<BTreeSet<(Timestamp, String, String, String)>>,
    wake: Notify,
}

/// The due deliveries of one endpoint, in order.
type Worker = mpsc::UnboundedSender<String>;

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher").finish_non_exhaustive()
    }
}

/// Resolves names and keeps only the addresses the policy allows, so the connection goes to
/// an address that was checked (no DNS rebinding between check and connect).
struct PolicyResolver(UrlPolicy);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| match policy.check_addr(&host, a.ip()) {
                    Ok(()) => true,
                    Err(e) => {
                        refusal = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> = match refusal {
                    Some(e) => Box::new(e),
                    None => format!("{host} has no address").into(),
                };
                return Err(e);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

impl Dispatcher {
    /// A dispatcher with its HTTP client (redirects off: a redirect could leave the policy).
    pub fn new(config: DeliveryConfig) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the policy resolver.
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .dns_resolver(Arc::new(PolicyResolver(config.policy.clone())))
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the HTTP client configuration is valid");
        let mut id = [0u8; 8];
        rand::rng().fill_bytes(&mut id);
        Dispatcher {
            node: format!("node_{}", hex::encode(id)),
            config,
            client,
            queue: Mutex::default(),
            wake: Notify::new(),
        }
    }

    /// The outbound URL policy.
    pub fn policy(&self) -> &UrlPolicy {
        &self.config.policy
    }

    /// The shortest gap allowed between two fires of a schedule.
    pub fn min_schedule_interval(&self) -> Duration {
        self.config.min_schedule_interval
    }

    /// Schedules deliveries whose transaction has committed.
    pub fn enqueue(&self, items: impl IntoIterator<Item = Queued>) {
        let mut queue = self.queue.lock().expect("queue lock");
        let before = queue.len();
        for q in items {
            queue.insert((q.due, q.id, q.tenant, q.endpoint));
        }
        let added = queue.len() > before;
        drop(queue);
        if added {
            self.wake.notify_one();
        }
    }

    /// Queues every pending delivery in the store (on start).
    pub fn recover(&self, store: &Store) -> Result<usize, StoreError> {
        let txn = store.read()?;
        let mut items = Vec::new();
        let all = store::Span::ALL;
        for (k, record) in store::decoded::<DeliveryRecord>(
            &txn,
            store::DELIVERIES,
            all,
            store::Order::Ascending,
            usize::MAX,
        )? {
            if record.state == DeliveryState::Pending {
                let tenant = k.split_once('/').map_or("", |(t, _)| t).to_owned();
                let due = record.next_attempt_at.unwrap_or(record.created_at);
                items.push(Queued {
                    tenant,
                    endpoint: record.endpoint,
                    id: record.id,
                    due,
                });
            }
        }
        let n = items.len();
        self.enqueue(items);
        Ok(n)
    }

    /// Runs until `stop` turns true: at start and then hourly, removes finished deliveries
    /// older than the retention.
    pub async fn retain(
        self: Arc<Self>,
        store: Store,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            let retention =
                SignedDuration::try_from(self.config.retention).unwrap_or(SignedDuration::MAX);
            let cutoff = Timestamp::now()
                .checked_sub(retention)
                .unwrap_or(Timestamp::MIN);
            match super::outbox::sweep(&store, cutoff).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    removed = n,
                    "outbox retention: old finished deliveries removed"
                ),
                Err(e) => tracing::error!(error = %e, "outbox retention sweep failed"),
            }
            tokio::select! {
                () = tokio::time::sleep(SWEEP_EVERY) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// Runs until `stop` turns true: takes due deliveries off the schedule and attempts them.
    /// Attempts still in flight at the stop are abandoned; their deliveries stay pending in
    /// the outbox and go out again after a restart (at least once).
    pub async fn run(self: Arc<Self>, store: Store, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut workers: HashMap<(String, String), Worker> = HashMap::new();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if *stop.borrow() {
                break;
            }
            while tasks.try_join_next().is_some() {}
            let now = Timestamp::now();
            let (due, next) = {
                let mut queue = self.queue.lock().expect("queue lock");
                let mut due = Vec::new();
                while let Some(first) = queue.first() {
                    if first.0 > now {
                        break;
                    }
                    due.push(queue.pop_first().expect("first exists"));
                }
                (due, queue.first().map(|f| f.0))
            };
            for (_, id, tenant, endpoint) in due {
                let slot = (tenant, endpoint);
                if workers.get(&slot).is_none_or(|w| w.is_closed()) {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tasks.spawn(self.clone().work(store.clone(), slot.clone(), rx));
                    workers.insert(slot.clone(), tx);
                }
                let _ = workers[&slot].send(id);
            }
            let wait = next.map_or(Duration::from_secs(3600), |at| {
                at.duration_since(now)
                    .unsigned_abs()
                    .max(Duration::from_millis(1))
            });
            crate::background::nap(&self.wake, wait, &mut stop).await;
        }
        drop(workers);
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }

    /// One endpoint's worker: attempts its due deliveries one at a time, in the order they
    /// came due, and records the outcomes of what it sent together (one commit for a burst
    /// instead of one per delivery; an outcome lost to a crash before its commit only means
    /// the delivery is sent again, under the same id).
    async fn work(
        self: Arc<Self>,
        store: Store,
        (tenant, endpoint): (String, String),
        mut due: mpsc::UnboundedReceiver<String>,
    ) {
        while let Some(first) = due.recv().await {
            let mut ids = vec![first];
            while ids.len() < WORKER_BATCH {
                match due.try_recv() {
                    Ok(id) => ids.push(id),
                    Err(_) => break,
                }
            }
            if let Err(e) = self.attempt_all(&store, &tenant, &endpoint, &ids).await {
                tracing::error!(error = %e, %tenant, deliveries = ids.len(), "webhook delivery bookkeeping failed");
            }
        }
    }

    /// Attempts the deliveries among `ids` that are still due, recording outcomes once a
    /// batch has been sending for [`RECORD_EVERY`] (checked after each attempt) and at its
    /// end. Each delivery and its endpoint are read just before the send, so a deletion, a
    /// manual retry or an earlier attempt's outcome is seen. Should the bookkeeping fail,
    /// every id whose outcome was not recorded goes back on the queue.
    async fn attempt_all(
        &self,
        store: &Store,
        tenant: &str,
        endpoint: &str,
        ids: &[String],
    ) -> Result<(), StoreError> {
        let mut ids: Vec<&String> = ids.iter().collect();
        ids.sort_unstable();
        ids.dedup();
        let mut outcomes = Vec::new();
        // Sent but not yet recorded, and not read at all: what goes back on a failure.
        let (mut unrecorded, mut unread): (Vec<&String>, Vec<&String>) = (Vec::new(), Vec::new());
        let mut held: Vec<(&String, Timestamp)> = Vec::new();
        let mut since = Instant::now();
        let mut result = Ok(());
        let keys: Vec<String> = ids.iter().map(|id| store::tenant_key(tenant, id)).collect();
        let mut ahead = HashMap::new();
        for (i, id) in ids.into_iter().enumerate() {
            let key = keys[i].clone();
            let (record, endpoint) =
                match take(store, &self.node, tenant, &keys[i..], &mut ahead).await {
                    Ok(Taken::Send(due)) => *due,
                    Ok(Taken::NotDue) => continue,
                    Ok(Taken::Held(until)) => {
                        // Another node is sending it; look again once its lease has run out, in
                        // case that node died first.
                        held.push((id, until));
                        continue;
                    }
                    Err(e) => {
                        result = Err(e);
                        unread.push(id);
                        continue;
                    }
                };
            let outcome = self.attempt(&record, endpoint.as_ref()).await;
            outcomes.push((key, record.attempts.len(), outcome));
            unrecorded.push(id);
            if since.elapsed() >= RECORD_EVERY {
                match self
                    .record(store, tenant, std::mem::take(&mut outcomes))
                    .await
                {
                    Ok(()) => unrecorded.clear(),
                    Err(e) => result = Err(e),
                }
                since = Instant::now();
            }
        }
        self.enqueue(held.into_iter().map(|(id, until)| Queued {
            tenant: tenant.to_owned(),
            endpoint: endpoint.to_owned(),
            id: id.clone(),
            due: until + DUE_SLACK,
        }));
        match self.record(store, tenant, outcomes).await {
            Ok(()) if result.is_ok() => return Ok(()),
            Ok(()) => {}
            Err(e) => result = Err(e),
        }
        let retry_at = Timestamp::now() + SignedDuration::from_secs(1);
        self.enqueue(unrecorded.into_iter().chain(unread).map(|id| Queued {
            tenant: tenant.to_owned(),
            endpoint: endpoint.to_owned(),
            id: id.clone(),
            due: retry_at,
        }));
        result
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// One attempt of `record` to `endpoint` (`None`: deleted), and what follows from it.
    async fn attempt(&self, record: &DeliveryRecord, endpoint: Option<&WebhookRecord>) -> Outcome {
        let started = Instant::now();
        let at = Timestamp::now();
        let (status, error, retry_after) = match endpoint {
            None => (None, Some("the endpoint was deleted".to_owned()), None),
            Some(endpoint) => self.send(endpoint, record, at).await,
        };
        let attempt = AttemptRecord {
            at,
            status,
            error,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        let delivered = status.is_some_and(|s| (200..300).contains(&s));
        let attempts_after = record.attempts.len() + 1;
        let next =
            if delivered || endpoint.is_none() || attempts_after >= self.config.schedule.len() {
                None
            } else {
                let mut delay = jitter(self.config.schedule[attempts_after]);
                if let Some(ra) = retry_after {
                    delay = delay.max(ra.min(MAX_RETRY_AFTER));
                }
                Some(at + SignedDuration::try_from(delay).unwrap_or(SignedDuration::MAX))
            };
        let state = if delivered {
            DeliveryState::Delivered
        } else if next.is_some() {
            DeliveryState::Pending
        } else {
            DeliveryState::Dead
        };
        Outcome {
            attempt,
            state,
            next,
        }
    }

    /// Writes attempt outcomes in one transaction and queues the retries.
    async fn record(
        &self,
        store: &Store,
        tenant: &str,
        outcomes: Vec<(String, usize, Outcome)>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let node = self.node.clone();
        let retries = store
            .write(move |txn| {
                let mut retries = Vec::new();
                for (key, attempts_before, outcome) in outcomes {
                    // This node's lease ends with the outcome; one another node took after
                    // it ran out is that node's.
                    release_in(txn, &key, &node)?;
                    let Some(mut current) =
                        store::get::<DeliveryRecord>(txn, store::DELIVERIES, &key)?
                    else {
                        continue;
                    };
                    if current.state != DeliveryState::Pending
                        || current.attempts.len() != attempts_before
                    {
                        // Settled meanwhile (its endpoint deleted): that stands.
                        continue;
                    }
                    current.attempts.push(outcome.attempt);
                    current.state = outcome.state;
                    current.next_attempt_at = outcome.next;
                    store::put_in(txn, store::DELIVERIES, &key, &current)?;
                    if let Some(due) = outcome.next {
                        retries.push((current.endpoint, current.id, due));
                    }
                }
                Ok(retries)
            })
            .await?;
        self.enqueue(retries.into_iter().map(|(endpoint, id, due)| Queued {
            tenant: tenant.to_owned(),
            endpoint,
            id,
            due,
        }));
        Ok(())
    }

    /// One signed POST: the status, the error, and a `Retry-After` the receiver asked for.
    async fn send(
        &self,
        endpoint: &WebhookRecord,
        record: &DeliveryRecord,
        at: Timestamp,
    ) -> (Option<u16>, Option<String>, Option<Duration>) {
        if let Err(e) = self.config.policy.check_url(&endpoint.url) {
            return (None, Some(e.to_string()), None);
        }
        let secrets: Vec<Secret> = endpoint
            .secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|exp| exp > at))
            .filter_map(|s| Secret::parse(&s.secret).ok())
            .collect();
        let timestamp = at.as_second();
        let signature = sign(&record.id, timestamp, record.body.as_bytes(), &secrets);
        let response = self
            .client
            .post(&endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &record.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(record.body.clone())
            .send()
            .await;
        match response {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| retry_after(v, Timestamp::now()));
                let error =
                    (!res.status().is_success()).then(|| format!("the receiver answered {status}"));
                (Some(status), error, retry_after)
            }
            Err(e) => (None, Some(error_chain(&e)), None),
        }
    }
}

/// A `Retry-After` value (RFC 9110: delay-seconds or an HTTP-date) as a delay from `now`.
fn retry_after(value: &str, now: Timestamp) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(value).ok()?.timestamp();
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// ±10% jitter, so retries of many deliveries do not arrive in lockstep.
fn jitter(d: Duration) -> Duration {
    if d.is_zero() {
        return d;
    }
    let factor = rand::rng().random_range(0.9..1.1);
    d.mul_f64(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now: Timestamp = "2026-11-28T07:28:00Z".parse().unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 07:30:30 GMT", now),
            Some(Duration::from_secs(150))
        );
        assert_eq!(
            retry_after("Sat, 28 Nov 2026 07:00:00 GMT", now),
            Some(Duration::ZERO),
            "a date in the past means now"
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-5", now), None);
    }
}
