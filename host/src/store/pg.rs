//! The shared engine behind the seam: PostgreSQL, for several `serve` nodes on one database.
//! Each table of the seam is a table `(key bytea primary key, value bytea)`, so keys order
//! as bytes, exactly as in redb (and hold any UTF-8, NUL included), and every range the
//! domain reads is an index range.
//!
//! The domain's transactions are synchronous closures on the writer thread (that is what
//! makes group commit cheap), so this engine runs its own small tokio runtime for the
//! connections and the seam's calls wait on it; no call ever waits on the caller's runtime,
//! so a caller on any runtime (or none) cannot deadlock it.
//!
//! Isolation. A read is a `REPEATABLE READ, READ ONLY` transaction: one snapshot, as in
//! redb. A write is `READ COMMITTED`, and takes a transaction-scoped advisory lock on every
//! key it reads before reading it (both sent in one round trip), so a read-modify-write of a
//! key is serialized with every other node's, including the first write of a key that does
//! not exist yet (the idempotent creation of a ticket). Writes are buffered and sent in one
//! pipelined flush per table before the next range read of that table and at the commit, so
//! a ticket costs a round trip per key it reads, not per key it writes. Queues (timers, the
//! outbox) are taken with `FOR UPDATE SKIP LOCKED` ([`Write::claim`](super::Write::claim)),
//! so nodes working through them take disjoint rows.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use tokio_postgres::NoTls;
use tokio_postgres::types::ToSql;

use super::StoreError;
use super::txn::{Order, Span, Table, Visitor};

mod migrations {
    refinery::embed_migrations!("migrations");
}

/// The advisory lock key (session level) that serializes schema migrations across nodes
/// starting at once.
const MIGRATION_LOCK: i64 = 0x5357_4254_4d49_4752; // "SWBTMIGR"

/// Entries read per round trip when visiting a range.
const PAGE: usize = 1000;

/// Connections per node: the writer's, and readers'.
const POOL_SIZE: usize = 32;

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Postgres(e.to_string())
    }
}

/// The channel of the hints one node's commits give the others (`LISTEN`/`NOTIFY`).
const CHANNEL: &str = "switchboard";

/// A connection pool on its own runtime.
pub(crate) struct Pg {
    runtime: Option<tokio::runtime::Runtime>,
    handle: tokio::runtime::Handle,
    pool: Pool,
    /// Counts the hints received (and the listener's reconnections, after which hints may
    /// have been missed); see [`Pg::hints`].
    hints: tokio::sync::watch::Sender<u64>,
}

impl Drop for Pg {
    fn drop(&mut self) {
        // Allowed from inside another runtime (a plain drop of a runtime is not).
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Pg {
    /// Connects to `url`, applies the migrations this build has (under a lock, so nodes
    /// starting together apply each once), and checks that every table of `tables` exists.
    pub(crate) fn connect(url: &str, tables: &[Table]) -> Result<Arc<Pg>, StoreError> {
        let config = config_of(url)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("switchboard-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Postgres(format!("cannot start its runtime: {e}")))?;
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| StoreError::Postgres(e.to_string()))?;
        let pg = Arc::new(Pg {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
            pool,
            hints: tokio::sync::watch::Sender::new(0),
        });
        let (pool, names) = (
            pg.pool.clone(),
            tables
                .iter()
                .map(|t| t.name().to_owned())
                .collect::<Vec<_>>(),
        );
        pg.block(async move {
            let mut conn = pool.get().await?;
            conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
                .await?;
            let applied = migrations::migrations::runner()
                .run_async(&mut **conn)
                .await
                .map_err(|e| StoreError::Postgres(format!("migrations: {e}")));
            conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
                .await?;
            applied?;
            let present: Vec<String> = conn
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_name = ANY($1)",
                    &[&names],
                )
                .await?
                .iter()
                .map(|r| r.get(0))
                .collect();
            match names.iter().find(|n| !present.contains(n)) {
                Some(missing) => Err(StoreError::Postgres(format!(
                    "the schema has no table {missing}"
                ))),
                None => Ok(()),
            }
        })??;
        pg.spawn(listen(config_of(url)?, pg.hints.clone()));
        Ok(pg)
    }

    /// A receiver that changes when another node's commit hinted that shared state moved (or
    /// when hints may have been lost: the listener reconnected). Only a hint: whoever waits
    /// on it also polls.
    pub(crate) fn hints(&self) -> tokio::sync::watch::Receiver<u64> {
        self.hints.subscribe()
    }

    /// Runs `fut` on this engine's runtime and waits for it (from any thread).
    pub(crate) fn block<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| StoreError::Closed)
    }

    /// A pooled connection, for the writer.
    pub(crate) fn connection(&self) -> Result<Arc<Object>, StoreError> {
        let pool = self.pool.clone();
        Ok(Arc::new(self.block(async move { pool.get().await })??))
    }

    /// Runs `fut` without waiting for it.
    fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) {
        self.handle.spawn(fut);
    }
}

/// Closes `conn` instead of returning it to the pool, if this is its last handle: after a
/// failed BEGIN, COMMIT or ROLLBACK its session may still be in a transaction, and nothing
/// would end it; closing it has the server roll back what it held.
pub(crate) fn discard(conn: Arc<Object>) {
    if let Ok(conn) = Arc::try_unwrap(conn) {
        drop(Object::take(conn));
    }
}

/// The advisory lock of `key` in `table`: the first 8 bytes of the SHA-256 of `table/key`, the
/// same on every node and every build (a collision only makes two keys take turns).
fn lock_id(table: Table, key: &str) -> i64 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::new()
        .chain_update(table.name())
        .chain_update(b"/")
        .chain_update(key)
        .finalize();
    i64::from_be_bytes(digest[..8].try_into().expect("8 bytes"))
}

/// A key as stored (`bytea`: byte order, like redb, and any UTF-8 including NUL).
fn key_of(bytes: Vec<u8>) -> Result<String, StoreError> {
    String::from_utf8(bytes).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(e.as_bytes()).into_owned(),
        error: "a key that is not UTF-8".into(),
    })
}

fn get_sql(table: Table) -> String {
    format!(r#"SELECT value FROM "{}" WHERE key = $1"#, table.name())
}

/// One page of a range: keys after (or from) `from`, below `to`, in `order`.
#[allow(clippy::too_many_arguments)]
async fn page(
    conn: &Object,
    table: Table,
    from: &str,
    from_included: bool,
    to: Option<&str>,
    order: Order,
    limit: usize,
    claim: bool,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let sql = format!(
        r#"SELECT key, value FROM "{}" WHERE key {} $1{} ORDER BY key {} LIMIT $2{}"#,
        table.name(),
        if from_included { ">=" } else { ">" },
        if to.is_some() { " AND key < $3" } else { "" },
        match order {
            Order::Ascending => "ASC",
            Order::Descending => "DESC",
        },
        if claim { " FOR UPDATE SKIP LOCKED" } else { "" },
    );
    let statement = conn.prepare_cached(&sql).await?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let from = from.as_bytes();
    let rows = match to {
        Some(to) => {
            conn.query(&statement, &[&from, &limit, &to.as_bytes()])
                .await?
        }
        None => conn.query(&statement, &[&from, &limit]).await?,
    };
    rows.iter()
        .map(|r| Ok((key_of(r.get(0))?, r.get(1))))
        .collect()
}

/// Visits `span` of `table` on `conn` a page at a time.
#[allow(clippy::too_many_arguments)]
fn visit_pages(
    pg: &Pg,
    conn: &Arc<Object>,
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
    claim: bool,
    visit: &mut Visitor<'_>,
) -> Result<(), StoreError> {
    if span.is_empty() {
        return Ok(());
    }
    let (mut from, mut included, mut to) = (
        span.from.to_owned(),
        !span.past_from,
        span.to.map(str::to_owned),
    );
    let mut left = limit;
    while left > 0 {
        let n = left.min(PAGE);
        let (c, f, t) = (conn.clone(), from.clone(), to.clone());
        let rows = pg.block(async move {
            page(&c, table, &f, included, t.as_deref(), order, n, claim).await
        })??;
        let got = rows.len();
        let mut last = None;
        for (k, v) in rows {
            left -= 1;
            if !visit(&k, &v)? {
                return Ok(());
            }
            last = Some(k);
        }
        let Some(last) = last.filter(|_| got == n) else {
            break;
        };
        match order {
            Order::Ascending => (from, included) = (last, false),
            Order::Descending => to = Some(last),
        }
    }
    Ok(())
}

/// A read snapshot on a pooled connection; ended (and the connection returned) on drop.
pub(crate) struct PgRead {
    pg: Arc<Pg>,
    conn: Option<Arc<Object>>,
}

impl PgRead {
    /// Begins a snapshot.
    pub(crate) fn begin(pg: &Arc<Pg>) -> Result<PgRead, StoreError> {
        let pool = pg.pool.clone();
        let conn = pg.block(async move {
            let conn = pool.get().await?;
            conn.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .await?;
            Ok::<_, StoreError>(conn)
        })??;
        Ok(PgRead {
            pg: pg.clone(),
            conn: Some(Arc::new(conn)),
        })
    }

    fn conn(&self) -> &Arc<Object> {
        self.conn.as_ref().expect("open until dropped")
    }

    /// One key.
    pub(crate) fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let (conn, key) = (self.conn().clone(), key.as_bytes().to_vec());
        self.pg.block(async move {
            let statement = conn.prepare_cached(&get_sql(table)).await?;
            let row = conn.query_opt(&statement, &[&key]).await?;
            Ok(row.map(|r| r.get(0)))
        })?
    }

    /// A range.
    pub(crate) fn visit(
        &self,
        table: Table,
        span: Span<'_>,
        order: Order,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        visit_pages(
            &self.pg,
            self.conn(),
            table,
            span,
            order,
            limit,
            false,
            visit,
        )
    }
}

impl Drop for PgRead {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        self.pg.spawn(async move {
            if conn.batch_execute("ROLLBACK").await.is_err() {
                discard(conn);
            }
        });
    }
}

/// What a write transaction will send: the last value per key (`None`: delete).
type Pending = BTreeMap<(Table, String), Option<Vec<u8>>>;

/// The writer's transaction: one per group commit, on the writer's connection.
pub(crate) struct PgWrite {
    pg: Arc<Pg>,
    conn: Arc<Object>,
    pending: RefCell<Pending>,
    locked: RefCell<HashSet<(Table, String)>>,
    /// Whether the commit notifies the other nodes.
    notify: std::cell::Cell<bool>,
}

impl PgWrite {
    /// Begins a transaction on `conn`.
    pub(crate) fn begin(pg: &Arc<Pg>, conn: Arc<Object>) -> Result<PgWrite, StoreError> {
        let c = conn.clone();
        if let Err(e) = pg.block(async move { c.batch_execute("BEGIN").await })? {
            discard(conn);
            return Err(e.into());
        }
        Ok(PgWrite {
            pg: pg.clone(),
            conn,
            pending: RefCell::default(),
            locked: RefCell::default(),
            notify: std::cell::Cell::new(false),
        })
    }

    /// Its connection.
    pub(crate) fn connection(&self) -> Arc<Object> {
        self.conn.clone()
    }

    /// One key: this transaction's own write of it, or the stored value, read under the
    /// key's lock.
    pub(crate) fn get(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let id = (table, key.to_owned());
        if let Some(value) = self.pending.borrow().get(&id) {
            return Ok(value.clone());
        }
        let lock = self.locked.borrow_mut().insert(id);
        let (conn, id, key) = (
            self.conn.clone(),
            lock_id(table, key),
            key.as_bytes().to_vec(),
        );
        self.pg.block(async move {
            let statement = conn.prepare_cached(&get_sql(table)).await?;
            let row = if lock {
                let locker = conn
                    .prepare_cached("SELECT pg_advisory_xact_lock($1)")
                    .await?;
                // Both go out before either answer is read: one round trip. The select's
                // snapshot is taken after the lock is granted (read committed).
                let (_, row) = futures_util::future::try_join(
                    conn.execute(&locker, &[&id]),
                    conn.query_opt(&statement, &[&key]),
                )
                .await?;
                row
            } else {
                conn.query_opt(&statement, &[&key]).await?
            };
            Ok(row.map(|r| r.get(0)))
        })?
    }

    /// Takes `key`'s lock if no other transaction holds it; whether it now holds it.
    pub(crate) fn try_lock(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        let id = (table, key.to_owned());
        if self.locked.borrow().contains(&id) {
            return Ok(true);
        }
        let (conn, id_of_lock) = (self.conn.clone(), lock_id(table, key));
        let taken: bool = self.pg.block(async move {
            let statement = conn
                .prepare_cached("SELECT pg_try_advisory_xact_lock($1)")
                .await?;
            Ok::<_, StoreError>(conn.query_one(&statement, &[&id_of_lock]).await?.get(0))
        })??;
        if taken {
            self.locked.borrow_mut().insert(id);
        }
        Ok(taken)
    }

    /// A range, after this transaction's writes to the table are sent; `claim` takes the
    /// rows (`FOR UPDATE SKIP LOCKED`).
    pub(crate) fn visit(
        &self,
        table: Table,
        span: Span<'_>,
        order: Order,
        limit: usize,
        claim: bool,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        self.flush(Some(table))?;
        visit_pages(
            &self.pg, &self.conn, table, span, order, limit, claim, visit,
        )
    }

    /// Buffers a write (`None`: a delete).
    pub(crate) fn put(&self, table: Table, key: &str, value: Option<Vec<u8>>) {
        self.pending
            .borrow_mut()
            .insert((table, key.to_owned()), value);
    }

    /// Deletes every row of `table`.
    pub(crate) fn clear(&self, table: Table) -> Result<(), StoreError> {
        self.pending.borrow_mut().retain(|(t, _), _| *t != table);
        let conn = self.conn.clone();
        self.pg.block(async move {
            conn.batch_execute(&format!(r#"DELETE FROM "{}""#, table.name()))
                .await
        })??;
        Ok(())
    }

    /// Sends the buffered writes (of `table`, or all), pipelined: one upsert and one delete
    /// statement per table.
    fn flush(&self, table: Option<Table>) -> Result<(), StoreError> {
        let taken: Pending = {
            let mut pending = self.pending.borrow_mut();
            match table {
                None => std::mem::take(&mut *pending),
                Some(t) => {
                    let mut mine = Pending::new();
                    pending.retain(|id, value| {
                        if id.0 != t {
                            return true;
                        }
                        mine.insert(id.clone(), value.take());
                        false
                    });
                    mine
                }
            }
        };
        if taken.is_empty() {
            return Ok(());
        }
        // Per table: keys and values to upsert, keys to delete.
        type Rows = (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<Vec<u8>>);
        let mut by_table: BTreeMap<Table, Rows> = BTreeMap::new();
        for ((t, key), value) in taken {
            let slot = by_table.entry(t).or_default();
            match value {
                Some(v) => {
                    slot.0.push(key.into_bytes());
                    slot.1.push(v);
                }
                None => slot.2.push(key.into_bytes()),
            }
        }
        let conn = self.conn.clone();
        self.pg.block(async move {
            let mut work = Vec::new();
            for (t, (keys, values, deleted)) in &by_table {
                if !keys.is_empty() {
                    let sql = format!(
                        r#"INSERT INTO "{}" (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"#,
                        t.name()
                    );
                    let params: Vec<&(dyn ToSql + Sync)> = vec![keys, values];
                    work.push((conn.prepare_cached(&sql).await?, params));
                }
                if !deleted.is_empty() {
                    let sql = format!(r#"DELETE FROM "{}" WHERE key = ANY($1::bytea[])"#, t.name());
                    let params: Vec<&(dyn ToSql + Sync)> = vec![deleted];
                    work.push((conn.prepare_cached(&sql).await?, params));
                }
            }
            // Every statement goes out before the first answer is read.
            let sends = work
                .iter()
                .map(|(statement, params)| conn.execute_raw(statement, params.iter().copied()));
            futures_util::future::try_join_all(sends).await?;
            Ok::<_, StoreError>(())
        })??;
        Ok(())
    }

    /// Sends what is buffered and commits.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        self.flush(None)?;
        let (conn, notify) = (self.conn.clone(), self.notify.get());
        let end = if notify {
            format!("NOTIFY {CHANNEL}; COMMIT")
        } else {
            "COMMIT".to_owned()
        };
        self.pg
            .block(async move { conn.batch_execute(&end).await })??;
        Ok(())
    }

    /// Has the commit notify the other nodes (sent only if it commits).
    pub(crate) fn notify(&self) {
        self.notify.set(true);
    }

    /// Drops what is buffered and rolls back.
    pub(crate) fn rollback(self) -> Result<(), StoreError> {
        let conn = self.conn.clone();
        self.pg
            .block(async move { conn.batch_execute("ROLLBACK").await })??;
        Ok(())
    }
}

/// The connection settings of `url`, with what a node needs on top whatever the URL says:
/// a transaction left idle (its node hung or cut off mid-batch) is ended by the server after
/// [`IDLE_IN_TRANSACTION`], so its locks do not hold the other nodes up for longer; a lock
/// wait gives up after [`LOCK_TIMEOUT`] (that batch fails, nothing in it is stored); and TCP
/// keepalives notice a vanished peer in seconds, not hours.
fn config_of(url: &str) -> Result<tokio_postgres::Config, StoreError> {
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Postgres(format!("database url: {e}")))?;
    let options = format!(
        "{} -c idle_in_transaction_session_timeout={}ms -c lock_timeout={}ms",
        config.get_options().unwrap_or_default(),
        IDLE_IN_TRANSACTION.as_millis(),
        LOCK_TIMEOUT.as_millis()
    );
    config
        .options(options.trim())
        .application_name("switchboard")
        .connect_timeout(Duration::from_secs(10))
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        .tcp_user_timeout(Duration::from_secs(20));
    Ok(config)
}

/// How long the server lets a transaction sit idle before it ends it.
const IDLE_IN_TRANSACTION: Duration = Duration::from_secs(30);
/// How long a statement waits for a lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(15);

/// Listens on [`CHANNEL`] for as long as the runtime runs, reconnecting a second after the
/// connection drops; counts every notification into `hints`, and every (re)connection too,
/// since what was sent while it was away is lost.
async fn listen(config: tokio_postgres::Config, hints: tokio::sync::watch::Sender<u64>) {
    loop {
        match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                let counter = hints.clone();
                let driver = tokio::spawn(async move {
                    loop {
                        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                            Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                                counter.send_modify(|n| *n += 1);
                            }
                            Some(Ok(_)) => {}
                            Some(Err(_)) | None => break,
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        hints.send_modify(|n| *n += 1);
                        let _ = driver.await;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other nodes' hints");
                        driver.abort();
                    }
                }
                drop(client);
            }
            Err(e) => tracing::warn!(error = %e, "cannot connect to listen for other nodes' hints"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
