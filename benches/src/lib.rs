//! Criterion benches live in `benches/benches/`; this library holds what several of them
//! share: a service on a temporary data directory filled with one tenant's tickets.

use std::future::Future;
use std::sync::Arc;

use switchboard_host::service::Service;
use switchboard_host::tenants::TenantView;
use tokio::runtime::Runtime;

/// Tickets in flight while filling (the writer folds them into group commits).
const IN_FLIGHT: usize = 256;

/// A service on a temporary data directory (removed when this is dropped).
pub struct Filled {
    _dir: tempfile::TempDir,
    /// The service, with the tenant `bench`.
    pub service: Arc<Service>,
}

/// A service whose tenant `bench` (no rule: the built-in fallback routes) holds what `ticket`
/// does for each of `0..n`, run `IN_FLIGHT` at a time.
pub fn fill<F, Fut>(rt: &Runtime, n: usize, ticket: F) -> Filled
where
    F: Fn(Arc<Service>, Arc<TenantView>, usize) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let service = Arc::new(Service::open(dir.path(), "bench-admin").expect("open"));
    rt.block_on(async {
        service
            .tenants
            .create_tenant("bench", "Bench")
            .await
            .expect("tenant");
        let view = service.tenants.get("bench").expect("view");
        for chunk in (0..n).collect::<Vec<_>>().chunks(IN_FLIGHT) {
            let tasks: Vec<_> = chunk
                .iter()
                .map(|&i| tokio::spawn(ticket(service.clone(), view.clone(), i)))
                .collect();
            for t in tasks {
                t.await.expect("task");
            }
        }
    });
    Filled { _dir: dir, service }
}
