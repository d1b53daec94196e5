//! The per-evaluation store state: what a rule can reach, and the meters that stop it. WASI is
//! linked so components from any toolchain run, but locked down: no preopened directories, no
//! environment or arguments, no network, clocks frozen at the event time, random seeded from
//! the event, stdout/stderr into the capped rule log, and sleeping refused (a sleeping rule
//! would hold a host thread past its wall-clock deadline, which epochs cannot interrupt).
//!
//! The toolchains' default builds import capabilities a rule may not use: componentize-js
//! links `wasi:http` for `fetch`, componentize-py every `wasi:sockets` interface. Refusing
//! those imports would refuse every default build, so they are linked to the libraries' own
//! implementations with everything denied: wasmtime-wasi's socket policy allows no TCP, UDP
//! or name lookup and no address, and `wasmtime-wasi-http` gets a hook that refuses every
//! request before it is made.
//! The WASI context is built lazily, on a rule's first WASI call: most rules never make one,
//! and building it is a measurable part of a fresh instance's cost.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use rand::SeedableRng;
use serde::Serialize;
use switchboard_rules::{CalendarSet, LogLevel};
use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{DynPollable, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView,
};
use wasmtime_wasi_http::p2::body::HostOutgoingBody;
use wasmtime_wasi_http::p2::types::{HostOutgoingRequest, HostOutgoingResponse};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

/// One line of a rule's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Severity (`stdout` lines are `info`, `stderr` lines `error`).
    pub level: LogLevel,
    /// The text.
    pub message: String,
}

/// A limit hit inside a host call; carried through wasmtime as the trap's error so the
/// runtime can report exactly which limit and by how much.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LimitHit {
    #[error("memory limit: asked for {requested} bytes, limit {limit}")]
    Memory { requested: u64, limit: u64 },
    #[error("log limit: tried to log {attempted} bytes, limit {limit}")]
    Log { attempted: u64, limit: u64 },
    #[error("a rule may not sleep or wait: the sandbox clock is frozen at the event time")]
    Sleep,
}

/// Bytes each log line counts against the log limit besides its text. Counting text alone
/// made empty lines free: a loop of `log(info, "")` filled a dry-run answer with millions of
/// lines. With this, the default 16 KiB limit allows at most 512 lines, whatever their text.
pub(crate) const LINE_COST: usize = 32;

/// The capped rule log shared by the `log` import and WASI stdout/stderr.
#[derive(Debug)]
pub(crate) struct RuleLog {
    lines: Vec<LogLine>,
    limit: usize,
    attempted: usize,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl RuleLog {
    fn new(limit: usize) -> Self {
        RuleLog {
            lines: Vec::new(),
            limit,
            attempted: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    fn charge(&mut self, bytes: usize) -> Result<(), LimitHit> {
        self.attempted = self.attempted.saturating_add(bytes);
        if self.attempted > self.limit {
            return Err(LimitHit::Log {
                attempted: self.attempted as u64,
                limit: self.limit as u64,
            });
        }
        Ok(())
    }

    pub(crate) fn push(&mut self, level: LogLevel, message: String) -> Result<(), LimitHit> {
        self.charge(message.len() + LINE_COST)?;
        self.lines.push(LogLine { level, message });
        Ok(())
    }

    fn write_stream(&mut self, stderr: bool, bytes: &[u8]) -> Result<(), LimitHit> {
        self.charge(bytes.len())?;
        let (buf, level) = if stderr {
            (&mut self.stderr, LogLevel::Error)
        } else {
            (&mut self.stdout, LogLevel::Info)
        };
        buf.extend_from_slice(bytes);
        while let Some(end) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=end).collect();
            if end > 0 {
                self.attempted = self.attempted.saturating_add(LINE_COST);
                let message = String::from_utf8_lossy(&line[..end]).into_owned();
                self.lines.push(LogLine { level, message });
                if self.attempted > self.limit {
                    return Err(LimitHit::Log {
                        attempted: self.attempted as u64,
                        limit: self.limit as u64,
                    });
                }
            }
        }
        Ok(())
    }

    /// The lines, with any unterminated stdout/stderr text as a last line each.
    pub(crate) fn finish(mut self) -> Vec<LogLine> {
        for (buf, level) in [
            (self.stdout, LogLevel::Info),
            (self.stderr, LogLevel::Error),
        ] {
            if !buf.is_empty() {
                let message = String::from_utf8_lossy(&buf).into_owned();
                self.lines.push(LogLine { level, message });
            }
        }
        self.lines
    }
}

type SharedLog = Arc<Mutex<RuleLog>>;

fn lock(log: &SharedLog) -> MutexGuard<'_, RuleLog> {
    // A poisoned log only means another writer panicked mid-push; the lines are still valid.
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one evaluation may see and how much it may use.
pub(crate) struct State {
    pub(crate) config: Arc<BTreeMap<String, String>>,
    pub(crate) calendars: Arc<CalendarSet>,
    pub(crate) log: SharedLog,
    pub(crate) limiter: MemoryLimiter,
    /// When the running call's wall clock runs out (set by `arm` before each call).
    pub(crate) deadline: std::time::Instant,
    event_time: Timestamp,
    seed: u64,
    wasi: Option<WasiCtx>,
    http: WasiHttpCtx,
    deny_http: DenyHttp,
    table: ResourceTable,
}

impl State {
    pub(crate) fn new(
        config: Arc<BTreeMap<String, String>>,
        calendars: Arc<CalendarSet>,
        memory_limit: u64,
        log_limit: usize,
        event_time: Timestamp,
        seed: u64,
    ) -> Self {
        State {
            config,
            calendars,
            log: Arc::new(Mutex::new(RuleLog::new(log_limit))),
            limiter: MemoryLimiter::new(memory_limit),
            deadline: std::time::Instant::now(),
            event_time,
            seed,
            wasi: None,
            http: WasiHttpCtx::new(),
            deny_http: DenyHttp,
            table: ResourceTable::new(),
        }
    }

    /// Takes the log out of the state once the evaluation is over.
    pub(crate) fn take_log(&self) -> Vec<LogLine> {
        let mut log = lock(&self.log);
        let limit = log.limit;
        std::mem::replace(&mut *log, RuleLog::new(limit)).finish()
    }

    fn build_wasi(&self) -> WasiCtx {
        let since_epoch = Duration::from_secs(self.event_time.as_second().max(0) as u64);
        let mut b = WasiCtxBuilder::new();
        b.stdout(LogStream {
            log: self.log.clone(),
            stderr: false,
        })
        .stderr(LogStream {
            log: self.log.clone(),
            stderr: true,
        })
        .wall_clock(EventClock(since_epoch))
        .monotonic_clock(FrozenMonotonic(since_epoch.as_nanos() as u64))
        .secure_random(rand::rngs::StdRng::seed_from_u64(self.seed))
        .insecure_random(rand::rngs::StdRng::seed_from_u64(self.seed ^ 0x5EED))
        .insecure_random_seed(u128::from(self.seed))
        .max_random_size(64 << 10)
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
        b.build()
    }
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        if self.wasi.is_none() {
            self.wasi = Some(self.build_wasi());
        }
        WasiCtxView {
            ctx: self.wasi.as_mut().expect("built above"),
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for State {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.deny_http,
        }
    }
}

/// The `wasi:http` hooks of a rule: every outgoing request is refused before anything is
/// resolved or connected, and the guest sees `HTTP-request-denied`.
struct DenyHttp;

impl WasiHttpHooks for DenyHttp {
    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<wasmtime_wasi_http::RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>,
                )>,
            > + Send,
    > {
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}

/// Refuses growth past the tenant's memory limit, counted over *all* of an instance's linear
/// memories and tables together (a component with two memories gets the limit once, not
/// twice), remembering what was asked for.
pub(crate) struct MemoryLimiter {
    limit: u64,
    /// Bytes granted so far: every memory's size plus every table's elements.
    used: u64,
    /// The last growth granted, taken back if the growth then fails.
    last_grant: u64,
    table_elements: u64,
    pub(crate) denied: Option<u64>,
}

/// Most table elements a rule may have, over all its tables (function tables of ordinary
/// guests hold hundreds).
const MAX_TABLE_ELEMENTS: u64 = 100_000;

/// Bytes one table element counts against the memory limit (wasmtime stores a pointer).
const TABLE_ELEMENT_BYTES: u64 = 8;

impl MemoryLimiter {
    pub(crate) fn new(limit: u64) -> Self {
        MemoryLimiter {
            limit,
            used: 0,
            last_grant: 0,
            table_elements: 0,
            denied: None,
        }
    }

    fn grant(&mut self, more: u64) -> wasmtime::Result<bool> {
        let total = self.used.saturating_add(more);
        if total > self.limit {
            self.denied = Some(total);
            return Err(wasmtime::Error::new(LimitHit::Memory {
                requested: total,
                limit: self.limit,
            }));
        }
        self.used = total;
        self.last_grant = more;
        Ok(true)
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.grant((desired as u64).saturating_sub(current as u64))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.used = self
            .used
            .saturating_sub(std::mem::take(&mut self.last_grant));
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let more = (desired as u64).saturating_sub(current as u64);
        if self.table_elements.saturating_add(more) > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.grant(more * TABLE_ELEMENT_BYTES)?;
        self.table_elements += more;
        Ok(true)
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        let bytes = std::mem::take(&mut self.last_grant);
        self.used = self.used.saturating_sub(bytes);
        self.table_elements = self
            .table_elements
            .saturating_sub(bytes / TABLE_ELEMENT_BYTES);
        Ok(())
    }
}

/// Wall clock frozen at the event time.
struct EventClock(Duration);

impl HostWallClock for EventClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        self.0
    }
}

/// Monotonic clock frozen at the event time (in nanoseconds).
struct FrozenMonotonic(u64);

impl HostMonotonicClock for FrozenMonotonic {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        self.0
    }
}

/// stdout or stderr of a rule, into the rule log.
struct LogStream {
    log: SharedLog,
    stderr: bool,
}

impl IsTerminal for LogStream {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogStream {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LogStream {
            log: self.log.clone(),
            stderr: self.stderr,
        })
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp3 asks for this, and the sandbox links WASIp2 only.
        Box::new(tokio::io::sink())
    }
}

#[async_trait::async_trait]
impl Pollable for LogStream {
    async fn ready(&mut self) {}
}

impl OutputStream for LogStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        lock(&self.log)
            .write_stream(self.stderr, &bytes)
            .map_err(|hit| StreamError::Trap(wasmtime::Error::new(hit)))
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        // Always accept a chunk; the cap is enforced (as a trap) on write, so a rule that logs
        // too much fails with a log-limit error instead of spinning on a full stream.
        Ok(64 << 10)
    }
}

/// Links the locked-down WASI into `linker`: all of WASIp2 with sockets denied by policy,
/// `wasi:http` with every request refused and no outgoing bodies (so any toolchain's
/// component links; the upload allow-list decides which interfaces a rule may import at all),
/// and sleeping replaced by a trap.
pub(crate) fn link_wasi(linker: &mut Linker<State>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_sync(linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance("wasi:clocks/monotonic-clock@0.2.12")?;
    clock.func_wrap(
        "subscribe-duration",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::Error::new(LimitHit::Sleep))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |_, (_,): (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
            Err(wasmtime::Error::new(LimitHit::Sleep))
        },
    )?;
    // An outgoing body's stream drains only into a request that is sent, and none ever is:
    // a rule writing to one with `blocking-write-and-flush` (or polling it) would wait inside
    // the host call forever, where the epoch deadline cannot stop it. So there are no
    // outgoing bodies: `body()` answers `err`, as for a body already taken.
    let mut http = linker.instance("wasi:http/types@0.2.12")?;
    http.func_wrap(
        "[method]outgoing-request.body",
        |_, (_,): (Resource<HostOutgoingRequest>,)| -> wasmtime::Result<(NoBody,)> {
            Ok((Err(()),))
        },
    )?;
    http.func_wrap(
        "[method]outgoing-response.body",
        |_, (_,): (Resource<HostOutgoingResponse>,)| -> wasmtime::Result<(NoBody,)> {
            Ok((Err(()),))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// What `body()` answers: never a body.
type NoBody = Result<Resource<HostOutgoingBody>, ()>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_splits_stream_lines_and_caps_total_bytes() {
        // "hello\nwor" (9 bytes, one line), "x" (1, one line), "0123456789" (10): 20 bytes and
        // two lines; the unterminated text becomes lines only at the end.
        let limit = 20 + 2 * LINE_COST;
        let mut log = RuleLog::new(limit);
        log.write_stream(false, b"hello\nwor").unwrap();
        log.push(LogLevel::Warn, "x".into()).unwrap();
        log.write_stream(true, b"0123456789").unwrap();
        let err = log.write_stream(true, b"!").unwrap_err();
        assert_eq!(
            err,
            LimitHit::Log {
                attempted: limit as u64 + 1,
                limit: limit as u64
            }
        );
        let lines = log.finish();
        let text: Vec<_> = lines
            .iter()
            .map(|l| (l.level, l.message.as_str()))
            .collect();
        assert_eq!(
            text,
            vec![
                (LogLevel::Info, "hello"),
                (LogLevel::Warn, "x"),
                (LogLevel::Info, "wor"),
                (LogLevel::Error, "0123456789"),
            ]
        );
    }

    #[test]
    fn empty_lines_are_not_free() {
        let limit = 16 << 10;
        let mut log = RuleLog::new(limit);
        let mut pushed = 0;
        while log.push(LogLevel::Info, String::new()).is_ok() {
            pushed += 1;
            assert!(pushed <= limit, "empty lines never hit the limit");
        }
        assert_eq!(pushed, limit / LINE_COST);
        // One-character lines on stdout are bounded the same way.
        let mut log = RuleLog::new(limit);
        let mut written = 0;
        while log.write_stream(false, b"x\n").is_ok() {
            written += 1;
            assert!(written <= limit, "short stdout lines never hit the limit");
        }
        assert_eq!(written, limit / (2 + LINE_COST));
        assert!(log.finish().len() <= limit / (2 + LINE_COST) + 1);
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn the_memory_limit_is_shared_by_all_memories_and_tables() {
        let page = 64 << 10;
        let mut l = MemoryLimiter::new(10 * page as u64);
        assert!(l.memory_growing(0, 6 * page, None).unwrap());
        // A second memory of the same size would fit alone, not beside the first.
        let err = l.memory_growing(0, 6 * page, None).unwrap_err();
        assert_eq!(
            err.downcast_ref::<LimitHit>(),
            Some(&LimitHit::Memory {
                requested: 12 * page as u64,
                limit: 10 * page as u64
            })
        );
        assert!(l.memory_growing(0, 3 * page, None).unwrap());
        // Table elements count too: 3 pages used by memory 2 leave one page, 8192 elements.
        assert!(l.table_growing(0, 8192, None).unwrap());
        assert!(l.table_growing(8192, 8193, None).is_err());
        // A growth that wasmtime could not carry out is given back.
        let mut l = MemoryLimiter::new(4 * page as u64);
        assert!(l.memory_growing(0, 4 * page, None).unwrap());
        l.memory_grow_failed(wasmtime::Error::msg("mmap failed"))
            .unwrap();
        assert!(l.memory_growing(0, 4 * page, None).unwrap());
    }
}
