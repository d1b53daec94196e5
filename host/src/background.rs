//! The sleep of the background loops (timer scheduler, schedule runner, delivery dispatcher):
//! each loop does a pass, learns its next instant, and sleeps until then unless woken. One
//! helper keeps the three from differing in how they treat a failed pass or a wake-up that
//! arrived while they were busy.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::sync::Notify;

use crate::store::{Store, StoreError};

/// On a database other nodes share, the longest a loop sleeps: what another node committed
/// (a timer, a schedule, a dead node's work) is looked at within this, since no notification
/// is relied on.
pub const SHARED_POLL: Duration = Duration::from_secs(1);

/// `wait`, bounded by [`SHARED_POLL`] when `store` is shared.
pub fn bounded(wait: Duration, store: &Store) -> Duration {
    if store.is_shared() {
        wait.min(SHARED_POLL)
    } else {
        wait
    }
}

/// A background loop's sleep: until `wait` has passed, `wake` is notified (a permit stored
/// while the loop was busy counts) or `stop` changes.
pub async fn nap(wake: &Notify, wait: Duration, stop: &mut tokio::sync::watch::Receiver<bool>) {
    tokio::select! {
        () = wake.notified() => {}
        () = tokio::time::sleep(wait) => {}
        _ = stop.changed() => {}
    }
}

/// After a background loop's pass that found its next instant (or failed): when to look
/// again and how long to sleep until then, measured from now, after the pass (which itself
/// takes time). Idle, it looks again in an hour; after an error, in a second.
pub fn after_pass(
    pass: Result<Option<Timestamp>, StoreError>,
    what: &str,
) -> (Option<Timestamp>, Duration) {
    match pass {
        Ok(Some(next)) => {
            let wait = Duration::try_from(next.duration_since(Timestamp::now()))
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_millis(1));
            (Some(next), wait)
        }
        Ok(None) => (None, Duration::from_secs(3600)),
        Err(e) => {
            tracing::error!(error = %e, "firing {what} failed; retrying");
            let wait = Duration::from_secs(1);
            (
                Some(Timestamp::now() + SignedDuration::try_from(wait).unwrap_or_default()),
                wait,
            )
        }
    }
}
