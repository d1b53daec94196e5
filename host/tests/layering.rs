//! The host's modules are layered (docs/ARCHITECTURE.md): infrastructure, then the domain,
//! then the wiring, then the edges (API, CLI, `serve`). Each module may use only modules of a
//! lower rank, which also rules out import cycles. This test reads every source file of the
//! crate and checks each `crate::…` path against that order, so a handler that reaches into a
//! loop, or a domain module that imports the API, fails here before review.

use std::path::{Path, PathBuf};

/// Every top-level module of the host, lowest first. A module may use those before it.
const ORDER: &[&str] = &[
    // Infrastructure.
    "limits",
    "store",
    "background",
    "cron",
    "metrics",
    "runtime",
    "webhooks",
    // Domain.
    "refusal",
    "board",
    "reports",
    "tenants",
    "lifecycle",
    "endpoints",
    "timers",
    "tickets",
    "replay",
    "schedules",
    "cluster",
    // Wiring.
    "service",
    // Edges.
    "api",
    "serve",
    "scaffold",
    "cli",
];

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`api/tickets.rs` → `api`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let rank = |m: &str| ORDER.iter().position(|o| *o == m);
    let mut seen_modules = std::collections::BTreeSet::new();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        if ["lib", "main", "test_support"].contains(&module.as_str()) {
            continue;
        }
        seen_modules.insert(module.clone());
        let own = rank(&module).unwrap_or_else(|| {
            panic!("module `{module}` is not in the layer order of this test: place it")
        });
        let text = std::fs::read_to_string(file).expect("read source");
        // Unit tests may drive a module from above (a timer test creates tickets): the
        // layering is that of the code that ships.
        let shipped = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
        for (n, line) in shipped.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for (at, _) in code.match_indices("crate::") {
                let used: String = code[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if used == "test_support" || used.is_empty() {
                    continue;
                }
                match rank(&used) {
                    Some(r) if r <= own => {}
                    _ => violations.push(format!(
                        "{}:{}: `{module}` uses `{used}`, which is above it",
                        file.strip_prefix(&src).unwrap().display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    // The order names only modules that exist, so it cannot go stale unnoticed.
    for m in ORDER {
        assert!(
            seen_modules.contains(*m),
            "`{m}` is in the order but not in src/"
        );
    }
}
