//! The JavaScript and Python guests: their toolchains (componentize-js from the npm registry,
//! componentize-py from PyPI, at the versions pinned in `guest-sdk/`) installed on first use
//! under `target/guests/toolchains`, and the example rules built with each tool's default
//! flags. A build takes 10–25 s, so each component is cached under `target/guests/{js,python}`
//! by a hash of everything it is built from; a test run rebuilds only what changed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use crate::workspace_root;

fn guests_dir() -> PathBuf {
    workspace_root().join("target/guests")
}

/// Runs `cmd`, panicking with its output when it fails.
/// Runs `cmd` for `what`, panicking with its output unless it succeeds; its stdout and
/// stderr, one after the other.
pub fn run(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed ({cmd:?}):\n{text}");
    text
}

/// Hex sha256 over the files of `paths` (recursively, sorted by path; dependencies, caches
/// and built components skipped).
fn hash_files(paths: &[PathBuf]) -> String {
    fn walk(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
                .map(|e| e.expect("dir entry").path())
                .collect();
            entries.sort();
            for e in entries {
                let name = e.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if name == "node_modules" || name == "__pycache__" || name.ends_with(".wasm") {
                    continue;
                }
                walk(&e, out);
            }
        } else if path.is_file() {
            out.push(path.to_owned());
        }
    }
    let mut files = Vec::new();
    for p in paths {
        walk(p, &mut files);
    }
    let mut h = Sha256::new();
    for f in files {
        h.update(f.to_string_lossy().as_bytes());
        h.update(std::fs::read(&f).unwrap_or_else(|e| panic!("read {}: {e}", f.display())));
    }
    hex::encode(&h.finalize()[..8])
}

/// Installs `what` into `dir` with `install` unless `dir/.stamp` says the inputs hashed to
/// `stamp` already.
fn installed(dir: &Path, stamp: &str, install: impl FnOnce(&Path)) {
    let file = dir.join(".stamp");
    if std::fs::read_to_string(&file).is_ok_and(|s| s == stamp) {
        return;
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the toolchain directory");
    install(dir);
    std::fs::write(&file, stamp).expect("write the toolchain stamp");
}

/// The `componentize-js` command of the pinned toolchain (`npm ci` on first use).
pub fn componentize_js() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = workspace_root().join("guest-sdk/js/toolchain");
        let dir = guests_dir().join("toolchains/js");
        installed(&dir, &hash_files(std::slice::from_ref(&src)), |dir| {
            for f in ["package.json", "package-lock.json"] {
                std::fs::copy(src.join(f), dir.join(f)).expect("copy the toolchain manifest");
            }
            run(
                Command::new("npm").current_dir(dir).args([
                    "ci",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                ]),
                "installing componentize-js (npm ci)",
            );
        });
        dir.join("node_modules/.bin/componentize-js")
    })
    .clone()
}

/// The virtual environment with the pinned componentize-py (`pip install` on first use).
pub fn python_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let requirements = workspace_root().join("guest-sdk/python/requirements.txt");
        let dir = guests_dir().join("toolchains/python");
        installed(
            &dir,
            &hash_files(std::slice::from_ref(&requirements)),
            |dir| {
                run(
                    Command::new("python3").args(["-m", "venv"]).arg(dir),
                    "creating the Python venv",
                );
                run(
                    Command::new(dir.join("bin/pip"))
                        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                        .arg(&requirements),
                    "installing componentize-py (pip)",
                );
            },
        );
        dir
    })
    .clone()
}

/// componentize-py's Python bindings of the contract (`wit_world`), which the SDK and native
/// tests import.
pub fn python_bindings() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let venv = python_venv();
        let root = workspace_root();
        let wit = root.join("rules/wit/v0.1.0");
        let dir = guests_dir().join("python/bindings");
        let stamp = hash_files(&[wit.clone(), root.join("guest-sdk/python/requirements.txt")]);
        installed(&dir, &stamp, |dir| {
            run(
                Command::new(venv.join("bin/componentize-py"))
                    .arg("-d")
                    .arg(&wit)
                    .args(["-w", "ticket-rules", "bindings"])
                    .arg(dir),
                "generating the Python bindings",
            );
        });
        dir
    })
    .clone()
}

/// The languages a rule can be written in besides Rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// componentize-js.
    Js,
    /// componentize-py.
    Python,
}

/// Builds `examples/{example}` (or any directory under the workspace) with `lang`'s tool and
/// its default flags, cached by a hash of its sources, the SDK, the contract and the pinned
/// toolchain; returns the component's path.
pub fn build(lang: Lang, example: &str) -> PathBuf {
    static BUILDING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let root = workspace_root();
    let src = root.join(example);
    let (sdk, pins, kind) = match lang {
        Lang::Js => ("guest-sdk/js", "guest-sdk/js/toolchain", "js"),
        Lang::Python => (
            "guest-sdk/python",
            "guest-sdk/python/requirements.txt",
            "python",
        ),
    };
    let key = hash_files(&[
        src.clone(),
        root.join(sdk),
        root.join(pins),
        root.join("rules/wit/v0.1.0"),
    ]);
    let name = example.rsplit('/').next().expect("a name");
    let out = guests_dir().join(kind).join(format!("{name}-{key}.wasm"));
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(out.parent().expect("a parent")).expect("create the guest dir");
    let partial = out.with_extension("partial");
    match lang {
        // componentize-js reads files only below its working directory, so it runs from the
        // workspace root, where the example can import the SDK by a relative path.
        Lang::Js => run(
            Command::new(componentize_js())
                .current_dir(&root)
                .arg(format!("{example}/main.js"))
                .args([
                    "--wit",
                    "rules/wit/v0.1.0",
                    "--world-name",
                    "ticket-rules",
                    "-o",
                ])
                .arg(&partial),
            &format!("building {example} with componentize-js"),
        ),
        Lang::Python => run(
            Command::new(python_venv().join("bin/componentize-py"))
                .current_dir(&src)
                .arg("-d")
                .arg(root.join("rules/wit/v0.1.0"))
                .args(["-w", "ticket-rules", "componentize", "-p", "."])
                .arg("-p")
                .arg(root.join("guest-sdk/python"))
                .arg("app")
                .arg("-o")
                .arg(&partial),
            &format!("building {example} with componentize-py"),
        ),
    };
    std::fs::rename(&partial, &out).expect("move the built component into place");
    out
}

/// The bytes of `build(lang, example)`.
pub fn built(lang: Lang, example: &str) -> Vec<u8> {
    let path = build(lang, example);
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
