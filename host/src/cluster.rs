//! What a node does because other nodes share its database. The database is the only thing
//! nodes share, so everything here is a read or a write of it; no node talks to another.
//!
//! - **Views.** Each node keeps tenants and keys in memory for the hot path. Every change of
//!   one advances a revision in the same transaction, whose commit also sends a `NOTIFY`. A
//!   node reads that revision when notified and every [`VIEWS_POLL`] anyway: a key revoked on
//!   one node is refused on every other within that (plus the reload) even when the
//!   notification is lost, and usually within milliseconds.
//! - **Liveness.** Each node writes a heartbeat every [`HEARTBEAT`]. A node whose heartbeat is
//!   older than [`DEAD_AFTER`] is taken for dead: a live node removes its row and queues every
//!   pending delivery, so the webhooks the dead node had queued go out (its leases run out
//!   first, so none is sent twice while a lease holds). Timers and schedules need no such
//!   step: every node polls them in the database ([`SHARED_POLL`](crate::background::SHARED_POLL)).
//! - **Leaving.** A node stopped cleanly ([`leave`]) ends its leases and dates its heartbeat
//!   back, so the others take its deliveries at their next heartbeat: a rolling restart hands
//!   work over in about a second, not in [`DEAD_AFTER`] plus a lease.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::store::{self, Order, Span, Store, StoreError};
use crate::tenants::Tenants;
use crate::webhooks::Dispatcher;

/// How often a node reads the views' revision without a hint: the bound on how long another
/// node's change (a revoked key) can go unseen here when notifications are lost.
pub const VIEWS_POLL: Duration = Duration::from_millis(500);
/// How often a node writes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// How old a heartbeat is when its node is taken for dead.
pub const DEAD_AFTER: SignedDuration = SignedDuration::from_secs(10);

/// A node's row in [`store::NODES`].
#[derive(Debug, Clone, Serialize, Deserialize)]
struct NodeRecord {
    /// Its last heartbeat.
    heartbeat_at: Timestamp,
}

/// Runs until `stop` turns true, on a shared database: keeps the views current, writes this
/// node's heartbeat, and takes over the deliveries of nodes that stopped.
pub async fn run(
    store: Store,
    tenants: Arc<Tenants>,
    deliveries: Arc<Dispatcher>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut beat: Option<Instant> = None;
    // Set when a node was found dead and its deliveries are not queued here yet.
    let mut rescue = false;
    let mut hints = store.hints();
    loop {
        if *stop.borrow() {
            break;
        }
        let views = tenants.clone();
        match tokio::task::spawn_blocking(move || views.refresh()).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => tracing::debug!(views = n, "views changed on another node reloaded"),
            Ok(Err(e)) => tracing::error!(error = %e, "reloading views changed elsewhere failed"),
            Err(e) => tracing::error!(error = %e, "the views reload task failed"),
        }
        if beat.is_none_or(|at| at.elapsed() >= HEARTBEAT) {
            beat = Some(Instant::now());
            match heartbeat(&store, deliveries.node()).await {
                Ok(dead) if dead.is_empty() => {}
                Ok(dead) => {
                    tracing::warn!(nodes = ?dead, "nodes stopped; queueing their deliveries here");
                    rescue = true;
                }
                Err(e) => tracing::error!(error = %e, "writing the heartbeat failed"),
            }
            if rescue {
                // Until it works: the dead node's row is gone, so nothing would start it again.
                let (store, deliveries) = (store.clone(), deliveries.clone());
                match tokio::task::spawn_blocking(move || deliveries.recover(&store)).await {
                    Ok(Ok(n)) => {
                        tracing::info!(deliveries = n, "pending deliveries queued");
                        rescue = false;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "queueing deliveries failed; retrying")
                    }
                    Err(e) => tracing::error!(error = %e, "the recovery task failed; retrying"),
                }
            }
        }
        let hinted = async {
            let heard = match hints.as_mut() {
                Some(h) => h.changed().await.is_ok(),
                None => false,
            };
            if !heard {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = hinted => {}
            () = tokio::time::sleep(VIEWS_POLL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Writes `node`'s heartbeat and removes (and answers) the nodes whose heartbeat is older
/// than [`DEAD_AFTER`], in one transaction.
async fn heartbeat(store: &Store, node: &str) -> Result<Vec<String>, StoreError> {
    let node = node.to_owned();
    store
        .write(move |txn| {
            let now = Timestamp::now();
            store::put_in(txn, store::NODES, &node, &NodeRecord { heartbeat_at: now })?;
            let all = Span::ALL;
            let nodes =
                store::decoded::<NodeRecord>(txn, store::NODES, all, Order::Ascending, 1000)?;
            let mut dead = Vec::new();
            for (id, record) in nodes {
                if id != node && record.heartbeat_at < now - DEAD_AFTER {
                    txn.delete(store::NODES, &id)?;
                    dead.push(id);
                }
            }
            Ok(dead)
        })
        .await
}

/// Hands `node`'s work to the other nodes as it stops cleanly (after its loops ended): ends
/// its delivery leases and dates its heartbeat to the epoch, in one transaction, so a live
/// node takes it for dead at its next heartbeat and queues its pending deliveries. Answers
/// how many leases ended.
pub async fn leave(store: &Store, node: &str) -> Result<usize, StoreError> {
    let node = node.to_owned();
    store
        .write(move |txn| {
            let ended = crate::webhooks::release_all_in(txn, &node)?;
            let gone = NodeRecord {
                heartbeat_at: Timestamp::UNIX_EPOCH,
            };
            store::put_in(txn, store::NODES, &node, &gone)?;
            Ok(ended)
        })
        .await
}
