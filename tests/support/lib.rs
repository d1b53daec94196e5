//! Shared test support: builds the guest components (example rules and the hostile corpus)
//! for `wasm32-wasip2` once per test process, in their own target directory so the nested
//! cargo never waits on the outer build's lock.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use jiff::Timestamp;
use switchboard_rules::{Ticket, TicketEvent, TicketInput};

/// Every guest crate the tests use, by package name.
pub const GUESTS: &[&str] = &[
    "co-managed-split",
    "vip-and-security",
    "after-hours",
    "hostile",
    "network-exfil",
];

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_owned()
}

/// The target guests are built for.
pub const GUEST_TARGET: &str = "wasm32-wasip2";

/// Makes sure the toolchain building the tests has the guest target. rustup installs the
/// `targets` of `rust-toolchain.toml` only when it installs the toolchain itself, so a machine
/// that already had Rust 1.95.0 lacks it; the tests then add it, as a new user would be told
/// to. Without rustup (a distribution's Rust), the target must already be there.
fn ensure_guest_target(root: &Path) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let sysroot = Command::new(&rustc)
        .current_dir(root)
        .args(["--print", "sysroot"])
        .output()
        .expect("run rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(GUEST_TARGET).is_dir() {
        return;
    }
    // `RUSTUP_TOOLCHAIN` is set by rustup's proxies to the toolchain in use.
    let mut cmd = Command::new("rustup");
    cmd.current_dir(root).args(["target", "add", GUEST_TARGET]);
    if let Ok(toolchain) = std::env::var("RUSTUP_TOOLCHAIN") {
        cmd.args(["--toolchain", &toolchain]);
    }
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("the {GUEST_TARGET} target is missing and rustup could not be run to add it: {e}")
    });
    assert!(
        out.status.success(),
        "`rustup target add {GUEST_TARGET}` failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn build_guests() -> PathBuf {
    let root = workspace_root();
    ensure_guest_target(&root);
    let target_dir = root.join("target").join("guests");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        .args([
            "build",
            "--profile",
            "guest",
            "--target",
            GUEST_TARGET,
            "--target-dir",
        ])
        .arg(&target_dir)
        // The outer cargo's flags are for the host target; guests build with their own.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS");
    for g in GUESTS {
        cmd.args(["-p", g]);
    }
    let out = cmd
        .output()
        .expect("run cargo to build the guest components");
    assert!(
        out.status.success(),
        "building the guest components failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    target_dir.join(GUEST_TARGET).join("guest")
}

/// The path of a guest's `.wasm` component (building all guests on first use).
pub fn guest_path(package: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    assert!(GUESTS.contains(&package), "unknown guest {package}");
    DIR.get_or_init(build_guests)
        .join(format!("{}.wasm", package.replace('-', "_")))
}

/// The bytes of a guest's `.wasm` component.
pub fn guest(package: &str) -> Vec<u8> {
    let path = guest_path(package);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `switchboard` binary cargo built beside this test (`cargo test --workspace` builds it).
pub fn switchboard_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join(format!("switchboard{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p switchboard-host` (or run `cargo test --workspace`)",
        bin.display()
    );
    bin
}

/// The compiler `serve` uses: a budgeted worker process of the `switchboard` binary.
pub fn compiler() -> switchboard_host::runtime::Compiler {
    switchboard_host::runtime::Compiler::Worker {
        program: switchboard_binary(),
        budget: switchboard_host::runtime::CompileBudget::default(),
    }
}

/// Parses an RFC 3339 instant.
pub fn ts(rfc3339: &str) -> Timestamp {
    rfc3339.parse().expect("valid RFC 3339")
}

/// A ticket from its API JSON.
pub fn ticket(json: serde_json::Value) -> Ticket {
    let input: TicketInput = serde_json::from_value(json).expect("valid ticket JSON");
    input
        .into_ticket(ts("2026-03-02T09:00:00Z"))
        .expect("valid ticket")
}

/// An evaluation context of tenant `acme`, version `v1`, with `config` (no calendars but the
/// built-in ones, default limits).
pub fn context(config: &[(&str, &str)]) -> switchboard_host::EvalContext {
    switchboard_host::EvalContext {
        config: std::sync::Arc::new(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..switchboard_host::EvalContext::new("acme", "v1")
    }
}

/// The `created` event of a ticket given as API JSON.
pub fn created(json: serde_json::Value) -> TicketEvent {
    TicketEvent::created(ticket(json))
}

pub mod browser;
pub mod older;
pub mod postgres;
pub mod process;
pub mod receiver;
pub mod routes;
pub mod server;
pub mod toolchains;
pub mod wat;
