//! The `switchboard rules` commands, run in-process through the same parser and entry point as
//! the binary, on real components and real files.

use std::path::Path;

use clap::Parser;
use switchboard_host::cli::{Cli, run};
use switchboard_tests::{guest_path, workspace_root};

/// The cache of compiled modules the commands share within this test process.
fn cache_dir() -> &'static str {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"));
    dir.path().to_str().expect("utf-8 path")
}

fn switchboard(args: &[&str]) -> anyhow::Result<String> {
    let cli = Cli::try_parse_from(
        std::iter::once("switchboard")
            .chain(args.iter().copied())
            .chain(["--cache-dir", cache_dir()]),
    )?;
    let mut out = Vec::new();
    run(cli, &mut out)?;
    Ok(String::from_utf8(out).expect("utf-8 output"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn example(rel: &str) -> String {
    workspace_root()
        .join("examples")
        .join(rel)
        .display()
        .to_string()
}

#[test]
fn check_reports_contract_size_and_imports() {
    let out = switchboard(&["rules", "check", path(&guest_path("vip-and-security"))]).unwrap();
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["contract"], "switchboard:rules@0.1.0");
    assert_eq!(report["size_limit"], 1 << 20);
    assert!(report["size"].as_u64().unwrap() < 1 << 20);
    let imports = report["imports"].as_array().unwrap();
    assert!(imports.iter().any(|i| i == "switchboard:rules/host@0.1.0"));
}

#[test]
fn a_second_check_reuses_the_first_compile() {
    let cache = tempfile::tempdir().unwrap();
    let module = guest_path("after-hours");
    let command = |cmd: &[&str]| {
        let args = ["switchboard", "rules"]
            .into_iter()
            .chain(cmd.iter().copied())
            .chain(["--cache-dir", path(cache.path())]);
        let mut out = Vec::new();
        run(Cli::try_parse_from(args).unwrap(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let first: serde_json::Value =
        serde_json::from_str(&command(&["check", path(&module)])).unwrap();
    assert_eq!(first["cached"], false);
    let again: serde_json::Value =
        serde_json::from_str(&command(&["check", path(&module)])).unwrap();
    assert_eq!(
        again["cached"], true,
        "the second load reuses the first compile"
    );
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 1);
}

#[test]
fn check_fails_on_a_forbidden_import_and_on_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("keyvalue.wasm");
    std::fs::write(
        &module,
        switchboard_tests::wat::importing("wasi:keyvalue/store@0.2.0"),
    )
    .unwrap();
    let err = switchboard(&["rules", "check", path(&module)]).unwrap_err();
    let text = format!("{err:#}");
    assert!(
        text.contains("is not a valid rule") && text.contains("wasi:keyvalue/store"),
        "{text}"
    );
    let err = switchboard(&["rules", "check", "/nonexistent/rule.wasm"]).unwrap_err();
    assert!(format!("{err:#}").contains("cannot read /nonexistent/rule.wasm"));
}

#[test]
fn run_prints_one_json_line_per_ticket_with_fuel() {
    let out = switchboard(&[
        "rules",
        "run",
        path(&guest_path("vip-and-security")),
        &example("tickets/sample.json"),
    ])
    .unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["ticket"], "INC-1001");
    assert_eq!(lines[0]["decision"]["queue"], "soc");
    assert_eq!(lines[1]["decision"]["queue"], "vip-desk");
    assert!(lines.iter().all(|l| l["fuel"].as_u64().unwrap() > 0));
}

#[test]
fn run_uses_config_and_calendars() {
    let out = switchboard(&[
        "rules",
        "run",
        path(&guest_path("co-managed-split")),
        &example("tickets/sample.json"),
        "--config",
        &example("config/acme.json"),
        "--calendars",
        &example("calendars"),
    ])
    .unwrap();
    let queues: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["decision"]["queue"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        queues,
        ["service-desk", "service-desk", "network-ops", "erp-team"]
    );
}

#[test]
fn rule_failures_are_reported_per_ticket_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let tickets = dir.path().join("t.json");
    std::fs::write(
        &tickets,
        r#"[{"id": "H-1", "category": "loop"}, {"id": "H-2"}]"#,
    )
    .unwrap();
    let out = switchboard(&["rules", "run", path(&guest_path("hostile")), path(&tickets)]).unwrap();
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["error"]["kind"], "fuel_exhausted");
    assert_eq!(lines[0]["error"]["class"], "limit");
    assert_eq!(lines[0]["fuel"], 11_000_000);
    assert_eq!(lines[1]["decision"]["queue"], "desk");
}

#[test]
fn bad_input_files_fail_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rule = guest_path("vip-and-security");
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases = [
        (write("a.json", "[{\"id\": "), "is not valid JSON"),
        (write("b.json", "42"), "must hold a JSON array of tickets"),
        (
            write("c.json", r#"[{"id": "T", "impact": 7}]"#),
            "`impact` must be 1, 2 or 3, got 7",
        ),
        (
            write("d.json", r#"[{"subject": "no id"}]"#),
            "ticket #1 is not a valid ticket",
        ),
        (
            write("e.json", r#"[{"id": "T", "colour": "red"}]"#),
            "ticket #1 is not a valid ticket",
        ),
    ];
    for (tickets, expected) in cases {
        let err = switchboard(&["rules", "run", path(&rule), path(&tickets)]).unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains(expected), "{text} should contain {expected}");
    }
    let tickets = write("ok.json", r#"{"id": "T"}"#);
    let bad_config = write("config.json", r#"{"raci.network": 5}"#);
    let err = switchboard(&[
        "rules",
        "run",
        path(&rule),
        path(&tickets),
        "--config",
        path(&bad_config),
    ])
    .unwrap_err();
    assert!(format!("{err:#}").contains("is not valid config JSON"));
    let cal_dir = dir.path().join("cals");
    std::fs::create_dir(&cal_dir).unwrap();
    std::fs::write(
        cal_dir.join("bad.json"),
        r#"{"timezone": "Mars/Olympus_Mons", "hours": {}}"#,
    )
    .unwrap();
    let err = switchboard(&[
        "rules",
        "run",
        path(&rule),
        path(&tickets),
        "--calendars",
        path(&cal_dir),
    ])
    .unwrap_err();
    assert!(format!("{err:#}").contains("calendar \"bad\""), "{err:#}");
}
