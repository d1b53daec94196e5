//! Compilation under a budget. Cranelift's time and memory are not proportional to a module's
//! size, and a thread cannot be stopped or held to a memory budget, so the service compiles
//! each uploaded module in a child process of its own binary: the child caps its own data
//! segment and CPU time with `setrlimit`, and the parent kills it at a wall-clock deadline.
//! A compile bomb then costs one short-lived process, never the service's memory, and at most
//! [`MAX_CONCURRENT_COMPILES`] run at once. The child returns the precompiled artifact, which
//! the parent deserializes with the same engine settings.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Duration;

use wasmtime::{Config, Engine, InstanceAllocationStrategy};

use super::error::LoadError;

/// How many compilations may run at once; later ones wait for a turn.
pub const MAX_CONCURRENT_COMPILES: usize = 2;

/// The hidden subcommand of the `switchboard` binary that runs a compile worker.
pub const WORKER_SUBCOMMAND: &str = "__compile-worker";

/// Exit code of a worker whose module failed to compile (its stderr says why).
const EXIT_INVALID: u8 = 2;

/// Where and under which budget modules are compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compiler {
    /// In this process, with no budget: for trusted modules (benches, tools, tests of
    /// examples). Structural limits still apply.
    InProcess,
    /// In a child process running `program WORKER_SUBCOMMAND`, under `budget`.
    Worker {
        /// The `switchboard` binary.
        program: PathBuf,
        /// Time and memory the child may use.
        budget: CompileBudget,
    },
}

impl Compiler {
    /// A worker of the running binary (which must be `switchboard`) with the default budget.
    pub fn this_binary() -> std::io::Result<Self> {
        Ok(Compiler::Worker {
            program: std::env::current_exe()?,
            budget: CompileBudget::default(),
        })
    }
}

/// The time and memory one compilation may use.
///
/// ## Defaults
/// 1 s plus 3 s per MiB of module (wall clock, and that many CPU seconds per core), and 512 MiB
/// plus 48 MiB per MiB of module of data segment: a 100 KiB Rust rule compiles in well under
/// its 1.3 s, componentize-js's 12 MB default build (7–8 s in a release build) gets 35 s, and
/// a component built to be slow to compile is stopped in about a second. Compilation runs off
/// the request path, so a generous budget holds no caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileBudget {
    /// Fixed part of the time budget.
    pub base_time: Duration,
    /// Time budget per MiB of module.
    pub time_per_mib: Duration,
    /// Fixed part of the memory budget, in bytes.
    pub base_memory: u64,
    /// Memory budget per MiB of module, in bytes.
    pub memory_per_mib: u64,
}

impl Default for CompileBudget {
    fn default() -> Self {
        CompileBudget {
            base_time: Duration::from_secs(1),
            time_per_mib: Duration::from_secs(3),
            base_memory: 512 << 20,
            memory_per_mib: 48 << 20,
        }
    }
}

impl CompileBudget {
    fn mib(size: usize) -> f64 {
        size as f64 / f64::from(1u32 << 20)
    }

    /// The wall-clock (and CPU) budget for a module of `size` bytes.
    pub fn time(&self, size: usize) -> Duration {
        self.base_time + self.time_per_mib.mul_f64(Self::mib(size))
    }

    /// The memory budget for a module of `size` bytes.
    pub fn memory(&self, size: usize) -> u64 {
        self.base_memory + (self.memory_per_mib as f64 * Self::mib(size)) as u64
    }
}

/// A counting semaphore for blocking callers: compilation runs on blocking threads.
#[derive(Debug)]
pub(super) struct Permits {
    free: Mutex<usize>,
    freed: Condvar,
}

/// One compilation's turn; gives it back when dropped.
pub(super) struct Permit<'a>(&'a Permits);

impl Permits {
    pub(super) fn new(n: usize) -> Self {
        Permits {
            free: Mutex::new(n),
            freed: Condvar::new(),
        }
    }

    pub(super) fn acquire(&self) -> Permit<'_> {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        while *free == 0 {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= 1;
        Permit(self)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap_or_else(PoisonError::into_inner) += 1;
        self.0.freed.notify_one();
    }
}

/// The engine settings a worker compiles with: the service's, but allocating instances on
/// demand, since a worker never instantiates (the pool's reservations would be wasted, and
/// allocation strategy is not part of an artifact's compatibility).
pub(super) fn worker_config(service: &Config) -> Config {
    let mut config = service.clone();
    config.allocation_strategy(InstanceAllocationStrategy::OnDemand);
    config
}

/// Compiles `bytes` in a worker process under `budget`; returns the precompiled artifact.
pub(super) fn in_worker(
    program: &Path,
    budget: &CompileBudget,
    bytes: &[u8],
) -> Result<Vec<u8>, LoadError> {
    let time = budget.time(bytes.len());
    let memory = budget.memory(bytes.len());
    // Cranelift compiles functions on every core, so the worker may spend the wall-clock
    // budget in CPU seconds on each of them.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
    let cpu = time.as_secs().saturating_add(1).saturating_mul(cores);
    let mut child = Command::new(program)
        .arg(WORKER_SUBCOMMAND)
        .arg(memory.to_string())
        .arg(cpu.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LoadError::Cache(std::io::Error::other(format!("start compiler: {e}"))))?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    let owned = bytes.to_vec();
    std::thread::spawn(move || {
        // A write error means the child died early; its exit status says why.
        let _ = stdin.write_all(&owned);
        drop(stdin);
        let mut artifact = Vec::new();
        let read = stdout.read_to_end(&mut artifact);
        let mut message = String::new();
        let _ = stderr.take(64 << 10).read_to_string(&mut message);
        let _ = tx.send((read.map(|_| artifact), message));
    });
    let outcome = rx.recv_timeout(time);
    if outcome.is_err() {
        let _ = child.kill();
        let _ = child.wait();
        return Err(LoadError::CompileBudget(format!(
            "still compiling after {} ms (the budget for a module of {} bytes)",
            time.as_millis(),
            bytes.len()
        )));
    }
    let (artifact, message) = outcome.expect("checked above");
    let status = child.wait()?;
    match status.code() {
        Some(0) => Ok(artifact?),
        Some(code) if code == i32::from(EXIT_INVALID) => {
            Err(LoadError::Invalid(message.trim().to_owned()))
        }
        _ => Err(LoadError::CompileBudget(format!(
            "the compiler stopped ({status}) within its budget of {} MiB and {} s: {}",
            memory >> 20,
            time.as_secs_f64().ceil(),
            message
                .lines()
                .next()
                .unwrap_or("out of memory or CPU time")
        ))),
    }
}

/// The compile worker's `main`: `switchboard __compile-worker MEMORY_BYTES CPU_SECS`, the module
/// on stdin, the artifact on stdout.
pub(super) fn worker_main(args: &[String], service: &Config) -> ExitCode {
    let parse = |i: usize| args.get(i).and_then(|a| a.parse::<u64>().ok());
    let (Some(memory), Some(cpu)) = (parse(0), parse(1)) else {
        eprintln!("usage: switchboard {WORKER_SUBCOMMAND} MEMORY_BYTES CPU_SECONDS < module.wasm");
        return ExitCode::from(64);
    };
    if let Err(e) = rlimit::setrlimit(rlimit::Resource::DATA, memory, memory)
        .and_then(|()| rlimit::setrlimit(rlimit::Resource::CPU, cpu, cpu))
    {
        eprintln!("cannot set the compile budget: {e}");
        return ExitCode::from(70);
    }
    let mut bytes = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut bytes) {
        eprintln!("read the module: {e}");
        return ExitCode::from(74);
    }
    let engine = match Engine::new(&worker_config(service)) {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("engine configuration: {e}");
            return ExitCode::from(70);
        }
    };
    match engine.precompile_component(&bytes) {
        Ok(artifact) => match std::io::stdout().lock().write_all(&artifact) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("write the artifact: {e}");
                ExitCode::from(74)
            }
        },
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(EXIT_INVALID)
        }
    }
}
