//! Evaluation slots, shared fairly between tenants. Evaluations are CPU-bound, so a tenant
//! whose rule spins to its deadline on every ticket would, with a plain global semaphore, hold
//! every slot and every core while other tenants' tickets queued behind it. Each tenant gets
//! its own share (about one evaluation per core): its further tickets wait in its own FIFO
//! queue, and a slot of the global pool (sized so the instance pool never runs out) is taken
//! only once the tenant's turn has come. One tenant's slow rule then costs its own tickets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The default share of one tenant: the number of CPUs, at least 2.
pub(super) fn default_share() -> u32 {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get() as u32)
        .max(2)
}

/// How many evaluations background work (replays) may run at once: half the CPUs, at least
/// one, so that ticket intake always has cores of its own.
pub(super) fn background_share() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1) as u32)
}

/// The global pool, each tenant's share of it, and the share of background work.
#[derive(Debug)]
pub(super) struct Slots {
    global: Arc<Semaphore>,
    share: u32,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
    background: Arc<Semaphore>,
}

/// A turn for background work (a replay), which evaluates one ticket at a time: a place in
/// the background share and a slot of the pool, held for the whole run. It takes nothing
/// from any tenant's own share, so the tenant's tickets are routed as before.
#[derive(Debug)]
pub struct BackgroundSlot {
    _global: OwnedSemaphorePermit,
    _background: OwnedSemaphorePermit,
}

/// One evaluation's turn: a place in its tenant's share and a slot of the pool.
#[derive(Debug)]
pub struct EvalSlot {
    _global: OwnedSemaphorePermit,
    _tenant: OwnedSemaphorePermit,
}

impl Slots {
    /// `total` slots, `share` of them per tenant and `background` for background work (both
    /// kept below the total, so neither can take the whole pool).
    pub(super) fn new(total: u32, share: u32, background: u32) -> Self {
        let below = total.saturating_sub(1).max(1);
        Slots {
            global: Arc::new(Semaphore::new(total as usize)),
            share: share.clamp(1, total),
            tenants: Mutex::default(),
            background: Arc::new(Semaphore::new(background.clamp(1, below) as usize)),
        }
    }

    pub(super) async fn acquire_background(&self) -> BackgroundSlot {
        let background = permit(&self.background).await;
        BackgroundSlot {
            _global: permit(&self.global).await,
            _background: background,
        }
    }

    fn tenant(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        tenants
            .entry(tenant.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.share as usize)))
            .clone()
    }

    pub(super) async fn acquire(&self, tenant: &str) -> EvalSlot {
        let tenant = permit(&self.tenant(tenant)).await;
        EvalSlot {
            _global: permit(&self.global).await,
            _tenant: tenant,
        }
    }
}

/// A place in `semaphore` (never closed), in FIFO order.
async fn permit(semaphore: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    semaphore
        .clone()
        .acquire_owned()
        .await
        .expect("never closed")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_busy_tenant_waits_for_its_own_share_only() {
        let slots = Slots::new(8, 2, 1);
        let a1 = slots.acquire("a").await;
        let _a2 = slots.acquire("a").await;
        // A third evaluation of `a` waits...
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire("a"));
        assert!(waiting.await.is_err(), "tenant a got more than its share");
        // ...while `b` gets a slot at once.
        let b = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire("b"));
        assert!(b.await.is_ok(), "tenant b waited behind tenant a");
        drop(a1);
        let again = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire("a"));
        assert!(again.await.is_ok(), "a freed share was not given back");
    }

    #[tokio::test]
    async fn background_work_waits_for_its_share_and_leaves_tenants_theirs() {
        let slots = Slots::new(8, 2, 3);
        let held = vec![
            slots.acquire_background().await,
            slots.acquire_background().await,
            slots.acquire_background().await,
        ];
        let more = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            slots.acquire_background(),
        );
        assert!(
            more.await.is_err(),
            "background work got more than its share"
        );
        let a1 = slots.acquire("a").await;
        let a2 = tokio::time::timeout(std::time::Duration::from_millis(50), slots.acquire("a"));
        assert!(
            a2.await.is_ok(),
            "a tenant lost its share to background work"
        );
        drop((held, a1));
    }
}
