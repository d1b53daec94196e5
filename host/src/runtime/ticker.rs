//! The epoch ticker behind the wall-clock limit. Epoch interruption is cheap for the guest
//! (one counter compare at loop heads) but needs someone to advance the epoch; a thread per
//! runtime does it, and parks when no evaluation runs, so the deadline costs an idle service
//! nothing and a busy one no wake-up per evaluation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use wasmtime::Engine;

use crate::limits;

/// The epoch ticker: advances the engine's epoch every [`limits::EPOCH_TICK`] while
/// evaluations run, and parks after [`TICKER_IDLE`] without one, so an idle service burns no
/// CPU while a busy one pays no wake-up per evaluation.
#[derive(Clone)]
pub(super) struct Ticker {
    pub(super) stop: Arc<AtomicBool>,
    running: Arc<std::sync::atomic::AtomicUsize>,
    parked: Arc<AtomicBool>,
    pub(super) thread: thread::Thread,
}

/// How long the ticker keeps ticking after the last evaluation before it parks.
const TICKER_IDLE: Duration = Duration::from_millis(200);

/// Counts one evaluation as running for the ticker while alive.
pub(super) struct Running<'a>(&'a Ticker);

impl Ticker {
    pub(super) fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let parked = Arc::new(AtomicBool::new(false));
        let (stop2, running2, parked2) = (stop.clone(), running.clone(), parked.clone());
        let weak = engine.weak();
        let handle = thread::Builder::new()
            .name("switchboard-epoch".into())
            .spawn(move || {
                let mut last_busy = Instant::now();
                while !stop2.load(Ordering::Relaxed) {
                    if running2.load(Ordering::Acquire) > 0 {
                        last_busy = Instant::now();
                    } else if last_busy.elapsed() > TICKER_IDLE {
                        parked2.store(true, Ordering::SeqCst);
                        // Re-check after announcing the park: an evaluation that started in
                        // between saw `parked` false and did not unpark us.
                        if running2.load(Ordering::SeqCst) == 0 {
                            thread::park_timeout(Duration::from_secs(1));
                        }
                        parked2.store(false, Ordering::SeqCst);
                        last_busy = Instant::now();
                        continue;
                    }
                    thread::sleep(limits::EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Ticker {
            stop,
            running,
            parked,
            thread: handle.thread().clone(),
        })
    }

    pub(super) fn running(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::SeqCst);
        if self.parked.load(Ordering::SeqCst) {
            self.thread.unpark();
        }
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}
