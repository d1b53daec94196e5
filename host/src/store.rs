//! Durable state, in one embedded redb file or in a PostgreSQL database several nodes share
//! (the engines behind the seam in `txn`), written through a single writer thread that
//! batches concurrent writes into one transaction (group commit): every caller is answered
//! only after the commit that holds its write is durable, and one commit serves the whole
//! batch, so durability does not cap throughput at one fsync per ticket.
//!
//! Records are JSON in `key → bytes` tables: easy to inspect, and the schema evolves with
//! serde defaults instead of migrations (PostgreSQL's migrations only create the tables).

pub mod aggregates;
pub mod backfill;
pub mod backup;
mod embedded;
mod pg;
pub mod records;
mod txn;

pub use txn::{
    Order, Read, Reader, Span, Table, Visitor, Write, count, decoded, entries, first_key, get,
    keys, put_in, scan,
};

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread;

use redb::{Database, ReadableDatabase, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

/// Tenants by id.
pub const TENANTS: Table = Table::new("tenants");
/// API keys by key id.
pub const KEYS: Table = Table::new("keys");
/// Rule versions by `tenant/version` (version zero-padded, so a range scan is in order).
pub const RULES: Table = Table::new("rules");
/// Module bytes by sha256.
pub const MODULES: Table = Table::new("modules");
/// Tickets by `tenant/external id`.
pub const TICKETS: Table = Table::new("tickets");
/// Audit entries by `tenant/sequence` (zero-padded).
pub const AUDIT: Table = Table::new("audit");
/// Webhook endpoints by `tenant/id`.
pub const WEBHOOKS: Table = Table::new("webhooks");
/// Pending SLA timers by `due (ms, zero-padded)/tenant/ticket/timer`: the first key is the
/// next timer to fire, so the scheduler never scans tickets.
pub const TIMERS: Table = Table::new("timers");
/// The outbox: webhook deliveries by `tenant/message id` (ids sort by creation).
pub const DELIVERIES: Table = Table::new("deliveries");
/// Cron schedules by `tenant/id`.
pub const SCHEDULES: Table = Table::new("schedules");
/// Tickets by creation: `tenant/created (ms, offset, zero-padded)/external id` → nothing
/// (see [`created_key`]), so history is read newest first, or over a period, without
/// decoding every ticket of the tenant.
pub const TICKETS_BY_CREATION: Table = Table::new("tickets_by_creation");
/// Tickets with an open SLA clock by `tenant/earliest due (as in [`created_prefix`])/external
/// id` (see `board`): the board reads open tickets only.
pub const OPEN_CLOCKS: Table = Table::new("open_clocks");
/// Replay summaries by `tenant/sequence` (zero-padded).
pub const REPLAYS: Table = Table::new("replays");
/// The nodes serving a shared database, by node id: each one's last heartbeat (see
/// `cluster`). Empty on the embedded store.
pub const NODES: Table = Table::new("nodes");
/// Webhook deliveries a node has taken to send, by the delivery's key: which node and until
/// when (see `webhooks::delivery`). Only on a shared database.
pub const LEASES: Table = Table::new("leases");
/// Facts about the file itself (which one-time index builds have run).
pub const META: Table = Table::new("meta");

/// Every table, created at open so that readers never meet a missing one.
pub(crate) const TABLES: [Table; 18] = [
    TENANTS,
    KEYS,
    RULES,
    MODULES,
    TICKETS,
    AUDIT,
    WEBHOOKS,
    DELIVERIES,
    TIMERS,
    SCHEDULES,
    TICKETS_BY_CREATION,
    OPEN_CLOCKS,
    REPLAYS,
    META,
    NODES,
    LEASES,
    aggregates::REPORT_COUNTS,
    aggregates::REPORT_DURATIONS,
];

/// The [`META`] key set once [`TICKETS_BY_CREATION`] holds every stored ticket.
const CREATION_INDEX_BUILT: &str = "index/tickets_by_creation";

/// Added to an instant's milliseconds so that every instant jiff can represent (years -9999
/// to 9999) is a non-negative number of 16 digits, and keys sort as instants do.
const CREATED_OFFSET_MS: i64 = 400_000_000_000_000;

/// Most writes folded into one transaction.
pub const MAX_BATCH: usize = 4096;

/// Under concurrent load (the previous commit carried more than one write), how long the
/// writer waits for more writes before committing. Each commit costs an fsync and a rewrite
/// of the B-tree's touched pages whatever it carries, so a short wait for company cuts the
/// writer's CPU per write; an isolated write (no concurrency) commits at once.
pub const GATHER: std::time::Duration = std::time::Duration::from_micros(150);

/// A storage failure. Callers answer 500 without the details; the details are logged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// redb failed.
    #[error("storage: {0}")]
    Redb(#[from] redb::Error),
    /// A stored record does not parse.
    #[error("corrupt record {key}: {error}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The parse error.
        error: String,
    },
    /// The writer thread is gone (the store is shutting down).
    #[error("the store is closed")]
    Closed,
    /// A blocking task reading the store panicked or was cancelled.
    #[error("a store task failed: {0}")]
    Task(String),
    /// PostgreSQL failed (or could not be reached).
    #[error("postgres: {0}")]
    Postgres(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Redb(e.into())
            }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// The key of a record that belongs to a tenant.
pub fn tenant_key(tenant: &str, id: &str) -> String {
    format!("{tenant}/{id}")
}

/// The key of a numbered tenant record (rule version, audit sequence), ordered by number.
pub fn seq_key(tenant: &str, n: u64) -> String {
    format!("{tenant}/{n:020}")
}

/// The [`TICKETS_BY_CREATION`] key of ticket `id` created at `at`.
pub fn created_key(tenant: &str, at: jiff::Timestamp, id: &str) -> String {
    format!("{tenant}/{}/{id}", created_prefix(at))
}

/// The part of a [`created_key`] that orders it: an instant as 16 digits, so a range from
/// `tenant/{created_prefix(since)}` to `tenant/{created_prefix(until)}` holds the tickets
/// created in `[since, until)`.
pub fn created_prefix(at: jiff::Timestamp) -> String {
    format!("{:016}", at.as_millisecond() + CREATED_OFFSET_MS)
}

/// The external id in a [`created_key`].
pub fn id_of_created_key(key: &str) -> &str {
    key.splitn(3, '/').nth(2).unwrap_or("")
}

/// The key range of one tenant's records: `tenant/` up to (not including) `tenant0`.
pub fn tenant_range(tenant: &str) -> (String, String) {
    (format!("{tenant}/"), format!("{tenant}0"))
}

/// Serializes a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

/// Parses a record.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        key: key.to_owned(),
        error: e.to_string(),
    })
}

/// What a queued write does after its transaction commits (or fails).
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;
/// A queued write: applies itself to the batch's transaction (`None` when no transaction
/// could be started) and says whether that worked.
type Job = Box<dyn FnOnce(Option<&Write<'_>>) -> (bool, Completion) + Send>;

/// Counts of the group-commit writer, for metrics.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Writes carried by those transactions.
    pub writes: AtomicU64,
}

/// The database and its group-commit writer. Cheap to clone; when the last clone is dropped
/// the writer finishes the writes already queued and the file is closed (so the same data
/// directory can be opened again at once).
#[derive(Clone)]
pub struct Store {
    inner: std::sync::Arc<Inner>,
}

/// The engine under the seam.
#[derive(Clone)]
pub(crate) enum Engine {
    /// One redb file (the default).
    Embedded(std::sync::Arc<Database>),
    /// A PostgreSQL database that several nodes may share.
    Postgres(std::sync::Arc<pg::Pg>),
}

struct Inner {
    engine: Engine,
    writer: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
    stats: std::sync::Arc<WriterStats>,
    /// Dropped last, after the writer is joined and the database closed: its receivers learn
    /// that the file is free.
    closed: tokio::sync::watch::Sender<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the channel ends the writer loop after the queued jobs; joining it drops
        // the writer's handle on the database before ours goes.
        drop(self.writer.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, creates the tables, and starts the writer.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = std::sync::Arc::new(Database::create(path)?);
        let txn = db.begin_write()?;
        for table in TABLES {
            txn.open_table(table.redb())?;
        }
        build_creation_index(&txn)?;
        txn.commit()?;
        Self::start(Engine::Embedded(db))
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://…`), migrates its schema to
    /// this build's (once, under a lock, whichever node starts first), and starts the writer.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Self::start(Engine::Postgres(pg::Pg::connect(url, &TABLES)?))
    }

    fn start(engine: Engine) -> Result<Self, StoreError> {
        let (writer, jobs) = mpsc::channel::<Job>();
        let writer_engine = engine.clone();
        let stats = std::sync::Arc::new(WriterStats::default());
        let writer_stats = stats.clone();
        let thread = thread::Builder::new()
            .name("switchboard-writer".into())
            .spawn(move || write_loop(&writer_engine, &jobs, &writer_stats))
            .map_err(|e| StoreError::Redb(redb::StorageError::from(e).into()))?;
        Ok(Store {
            inner: std::sync::Arc::new(Inner {
                engine,
                writer: Some(writer),
                thread: Some(thread),
                stats,
                closed: tokio::sync::watch::Sender::new(()),
            }),
        })
    }

    /// The redb file, when this store is one (backups copy it; benches read its statistics).
    pub fn embedded(&self) -> Option<&std::sync::Arc<Database>> {
        match &self.inner.engine {
            Engine::Embedded(db) => Some(db),
            Engine::Postgres(_) => None,
        }
    }

    /// On a shared database, a receiver that changes when another node's commit hinted that
    /// shared state moved ([`Write::notify`]), or when hints may have been missed. A hint
    /// only: whoever waits on it must poll as well.
    pub fn hints(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        match &self.inner.engine {
            Engine::Embedded(_) => None,
            Engine::Postgres(pg) => Some(pg.hints()),
        }
    }

    /// Whether other nodes may share this store's database.
    pub fn is_shared(&self) -> bool {
        matches!(self.inner.engine, Engine::Postgres(_))
    }

    /// Resolves once every clone of this store is dropped, the writer has finished and the
    /// database file is closed (so it can be opened again).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.inner.closed.subscribe();
        async move { while rx.changed().await.is_ok() {} }
    }

    /// Whether the writer thread is still running (it only ends when the store closes, or
    /// if it panicked: then no write can commit, and the service is not ready).
    pub fn writer_alive(&self) -> bool {
        self.inner.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Commits and writes so far.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// A consistent snapshot for reading.
    pub fn read(&self) -> Result<Read, StoreError> {
        let inner = match &self.inner.engine {
            Engine::Embedded(db) => txn::ReadInner::Embedded(db.begin_read()?),
            Engine::Postgres(pg) => txn::ReadInner::Postgres(pg::PgRead::begin(pg)?),
        };
        Ok(Read { inner })
    }

    /// [`Store::write`] for a caller that is not async (start-up work): blocks the calling
    /// thread until the transaction holding `op` is durably committed.
    pub fn write_blocking<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Write<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Result<R, StoreError>>();
        self.submit(op, move |outcome| {
            let _ = tx.send(outcome);
        })?;
        rx.recv().map_err(|_| StoreError::Closed)?
    }

    /// Runs `op` in the next group-commit transaction and returns its result once that
    /// transaction is durably committed. `op` must check before it writes: an `Err` from it
    /// aborts the whole batch (every write in it fails), so domain refusals belong in `R`.
    pub async fn write<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Write<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<R, StoreError>>();
        self.submit(op, move |outcome| {
            let _ = tx.send(outcome);
        })?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `op` for the writer; `reply` gets its result once its batch committed (or
    /// failed).
    fn submit<R, F>(
        &self,
        op: F,
        reply: impl FnOnce(Result<R, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Write<'_>) -> Result<R, StoreError> + Send + 'static,
    {
        let job: Job = Box::new(move |txn| {
            let result = match txn {
                Some(txn) => op(txn),
                None => Err(StoreError::Closed),
            };
            let ok = result.is_ok();
            let done: Completion = Box::new(move |commit| {
                reply(match commit {
                    Ok(()) => result,
                    Err(message) => Err(result.err().unwrap_or(StoreError::Corrupt {
                        key: "(batch)".into(),
                        error: message,
                    })),
                });
            });
            (ok, done)
        });
        let writer = self.inner.writer.as_ref().ok_or(StoreError::Closed)?;
        writer.send(job).map_err(|_| StoreError::Closed)
    }
}

/// Indexes, once, the tickets a build without [`TICKETS_BY_CREATION`] stored (every later
/// ticket is indexed in its own creating transaction).
pub(crate) fn build_creation_index(txn: &WriteTransaction) -> Result<(), StoreError> {
    use redb::ReadableTable;
    let mut meta = txn.open_table(META.redb())?;
    if meta.get(CREATION_INDEX_BUILT)?.is_some() {
        return Ok(());
    }
    let tickets = txn.open_table(TICKETS.redb())?;
    let mut index = txn.open_table(TICKETS_BY_CREATION.redb())?;
    for entry in tickets.iter()? {
        let (k, v) = entry?;
        // A record this build cannot read is left out of the index (and said so) rather than
        // keeping the whole file from opening; reading it elsewhere reports it.
        let record: records::TicketRecord = match decode(k.value(), v.value()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "a ticket that does not parse is not indexed");
                continue;
            }
        };
        let tenant = k.value().split('/').next().unwrap_or("");
        let key = created_key(tenant, record.ticket.created_at, &record.ticket.id);
        index.insert(key.as_str(), [].as_slice())?;
    }
    meta.insert(CREATION_INDEX_BUILT, [].as_slice())?;
    Ok(())
}

fn write_loop(engine: &Engine, jobs: &mpsc::Receiver<Job>, stats: &WriterStats) {
    aggregates::defer_on_this_thread();
    let mut busy = false;
    // The writer's own connection, on PostgreSQL (taken again after it breaks).
    let mut connection = None;
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        let deadline = std::time::Instant::now() + GATHER;
        while batch.len() < MAX_BATCH {
            let next = if busy {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                jobs.recv_timeout(left).ok()
            } else {
                jobs.try_recv().ok()
            };
            match next {
                Some(job) => batch.push(job),
                None => break,
            }
        }
        busy = batch.len() > 1;
        let n = batch.len() as u64;
        let (commit, completions) = match engine {
            Engine::Embedded(db) => commit_embedded(db, batch),
            Engine::Postgres(pg) => commit_postgres(pg, &mut connection, batch),
        };
        match &commit {
            Ok(()) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                stats.writes.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(error = %e, "group commit failed"),
        }
        for done in completions {
            done(commit.clone());
        }
    }
}

/// Fails every job of a batch that has no transaction.
fn fail_all(batch: Vec<Job>, error: String) -> (Result<(), String>, Vec<Completion>) {
    tracing::error!(error = %error, "cannot begin a write transaction");
    let completions = batch.into_iter().map(|job| job(None).1).collect();
    (Err(error), completions)
}

/// Applies a batch's jobs to `txn` and folds in the report aggregates; whether all worked.
fn apply(txn: &Write<'_>, batch: Vec<Job>) -> (bool, Vec<Completion>) {
    let mut completions = Vec::with_capacity(batch.len());
    let mut all_ok = true;
    for job in batch {
        // A panicking write (a bug) fails its batch, not the writer: its caller's answer
        // channel is dropped with it (it sees `Closed`), the rest are aborted below.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(Some(txn)))) {
            Ok((ok, done)) => {
                all_ok &= ok;
                completions.push(done);
            }
            Err(_) => {
                tracing::error!("a write panicked; its batch is aborted");
                all_ok = false;
            }
        }
    }
    // The report aggregates the batch moved, folded per row, are written last.
    let all_ok = all_ok
        && aggregates::flush(txn)
            .inspect_err(|e| tracing::error!(error = %e, "cannot write the report aggregates"))
            .is_ok();
    if !all_ok {
        aggregates::discard();
    }
    (all_ok, completions)
}

const BATCH_FAILED: &str = "a write in the same batch failed; nothing in it was stored";

fn commit_embedded(db: &Database, batch: Vec<Job>) -> (Result<(), String>, Vec<Completion>) {
    let txn = match db.begin_write() {
        Ok(t) => t,
        Err(e) => return fail_all(batch, e.to_string()),
    };
    let (all_ok, completions) = apply(
        &Write {
            inner: txn::WriteInner::Embedded(&txn),
        },
        batch,
    );
    let commit = if all_ok {
        txn.commit().map_err(|e| e.to_string())
    } else {
        let _ = txn.abort();
        Err(BATCH_FAILED.to_owned())
    };
    (commit, completions)
}

fn commit_postgres(
    pg: &std::sync::Arc<pg::Pg>,
    connection: &mut Option<std::sync::Arc<deadpool_postgres::Object>>,
    batch: Vec<Job>,
) -> (Result<(), String>, Vec<Completion>) {
    if connection.as_ref().is_none_or(|c| c.is_closed()) {
        match pg.connection() {
            Ok(c) => *connection = Some(c),
            Err(e) => return fail_all(batch, e.to_string()),
        }
    }
    let conn = connection.take().expect("set above");
    let txn = match pg::PgWrite::begin(pg, conn) {
        Ok(t) => t,
        Err(e) => return fail_all(batch, e.to_string()),
    };
    *connection = Some(txn.connection());
    let (all_ok, completions) = apply(
        &Write {
            inner: txn::WriteInner::Postgres(&txn),
        },
        batch,
    );
    let ended = if all_ok { txn.commit() } else { txn.rollback() };
    if ended.is_err()
        && let Some(conn) = connection.take()
    {
        // The transaction may still be open (aborted) on this connection.
        pg::discard(conn);
    }
    let commit = match ended {
        Ok(()) if all_ok => Ok(()),
        Ok(()) => Err(BATCH_FAILED.to_owned()),
        Err(e) if all_ok => Err(e.to_string()),
        Err(_) => Err(BATCH_FAILED.to_owned()),
    };
    (commit, completions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_write_fails_its_batch_and_the_writer_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let panicked = store
            .write(|_| -> Result<(), StoreError> { panic!("a bug in a write") })
            .await;
        assert!(matches!(panicked, Err(StoreError::Closed)), "{panicked:?}");
        assert!(store.writer_alive());
        store
            .write(|txn| put_in(txn, TENANTS, "acme", &"still writing"))
            .await
            .unwrap();
        let read: Option<String> = get(&store.read().unwrap(), TENANTS, "acme").unwrap();
        assert_eq!(read.as_deref(), Some("still writing"));
    }

    #[test]
    fn every_table_is_readable_in_a_fresh_database() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let txn = store.embedded().unwrap().begin_read().unwrap();
        for table in TABLES {
            assert!(
                txn.open_table(table.redb()).is_ok(),
                "{} is created at open",
                table.name()
            );
        }
    }
}
