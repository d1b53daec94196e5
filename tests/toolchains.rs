//! Rules written in JavaScript and Python, built with componentize-js and componentize-py's
//! default flags: their native unit tests pass, they are recognised and run on default
//! limits, they route exactly like the Rust example, their exceptions arrive as rule errors,
//! and what their runtimes import for the network and files reaches nothing.

use std::io::ErrorKind;
use std::net::TcpListener;
use std::process::Command;

use serde_json::{Value, json};
use switchboard_host::runtime::FailureClass;
use switchboard_host::{
    EvalContext, EvalFailure, Evaluation, RuleLimits, Runtime, RuntimeConfig, Toolchain,
};
use switchboard_rules::{TicketEvent, TicketInput};
use switchboard_tests::server::TestServer;
use switchboard_tests::toolchains::{Lang, build, built, componentize_js, python_bindings};
use switchboard_tests::{compiler, guest, workspace_root};

const JS_EXAMPLE: &str = "examples/vip-and-security-js";
const PY_EXAMPLE: &str = "examples/vip-and-security-py";
const JS_ESCAPE: &str = "tests/guests/js/escape";
const PY_ESCAPE: &str = "tests/guests/python/escape";

/// A runtime compiling in the budgeted worker, as `serve` does, with an artifact cache kept
/// across test runs (the HTTP tests compile in fresh data directories).
fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        compiler: compiler(),
        cache_dir: Some(workspace_root().join("target/guests/artifacts")),
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// Compiling a 12–18 MB component takes most of both cores for 10–20 s in a test build: the
/// tests of this file compile one at a time, so each stays well inside its compile budget
/// (and the shared artifact cache makes every compile after the first a cache hit).
static COMPILING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn sample_tickets() -> Vec<TicketEvent> {
    let text = std::fs::read_to_string(workspace_root().join("examples/tickets/sample.json"))
        .expect("read the sample tickets");
    let inputs: Vec<TicketInput> = serde_json::from_str(&text).expect("sample tickets");
    let now = jiff::Timestamp::now();
    inputs
        .into_iter()
        .map(|i| TicketEvent::created(i.into_ticket(now).expect("a valid ticket")))
        .collect()
}

fn ctx(config: &[(&str, &str)], limits: &switchboard_host::Limits) -> EvalContext {
    EvalContext {
        limits: *limits,
        ..switchboard_tests::context(config)
    }
}

fn log_of(eval: &Evaluation) -> Vec<String> {
    eval.log.iter().map(|l| l.message.clone()).collect()
}

#[test]
fn the_examples_native_unit_tests_pass_under_node_and_python() {
    let root = workspace_root();
    // componentize-js's toolchain is not needed for native tests, but installing it first
    // proves the pinned lock file installs.
    assert!(componentize_js().is_file());
    let node = Command::new("node")
        .current_dir(root.join(JS_EXAMPLE))
        .arg("--test")
        .output()
        .expect("run node --test");
    let out = String::from_utf8_lossy(&node.stdout);
    assert!(node.status.success(), "node --test failed:\n{out}");
    assert!(
        out.contains("# pass 4") && out.contains("# fail 0"),
        "{out}"
    );

    let sdk = root.join("guest-sdk/python");
    let path =
        std::env::join_paths([root.join(PY_EXAMPLE), sdk.clone(), python_bindings()]).unwrap();
    let python = Command::new("python3")
        .current_dir(root.join(PY_EXAMPLE))
        .args(["-m", "unittest", "-v"])
        .env("PYTHONPATH", path)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run python -m unittest");
    let err = String::from_utf8_lossy(&python.stderr);
    assert!(python.status.success(), "python -m unittest failed:\n{err}");
    assert!(
        err.contains("Ran 4 tests") && err.ends_with("OK\n"),
        "{err}"
    );
}

#[test]
fn default_builds_are_recognised_and_route_exactly_like_the_rust_example() {
    let _one_at_a_time = COMPILING.blocking_lock();
    let rt = runtime();
    let defaults = RuleLimits::default();
    let rust = rt.load(&guest("vip-and-security"), defaults).unwrap();
    let js = rt.load(&built(Lang::Js, JS_EXAMPLE), defaults).unwrap();
    let py = rt.load(&built(Lang::Python, PY_EXAMPLE), defaults).unwrap();
    assert_eq!(rust.toolchain(), Toolchain::Native);
    assert_eq!(js.toolchain(), Toolchain::Javascript);
    assert_eq!(py.toolchain(), Toolchain::Python);
    // The default builds import what the sandbox denies.
    assert!(
        js.imports()
            .iter()
            .any(|i| i.starts_with("wasi:http/outgoing-handler@"))
    );
    assert!(
        py.imports()
            .iter()
            .any(|i| i.starts_with("wasi:sockets/tcp@"))
    );
    for config in [&[][..], &[("calendar", "24x7")][..]] {
        for event in sample_tickets() {
            let expect = rt.evaluate(&rust, &ctx(config, &defaults.native), &event);
            let expect = expect.outcome.expect("the Rust rule routes");
            for (module, name) in [(&js, "js"), (&py, "python")] {
                let limits = defaults.get(module.toolchain());
                let eval = rt.evaluate(module, &ctx(config, limits), &event);
                let got = eval.outcome.as_ref().unwrap_or_else(|e| {
                    panic!(
                        "{name} on {}: {e} (log {:?})",
                        event.ticket.id,
                        log_of(&eval)
                    )
                });
                assert_eq!(got, &expect, "{name} on {}", event.ticket.id);
                assert!(
                    eval.fuel_used > 0 && eval.fuel_used < limits.fuel / 4,
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn thrown_errors_become_rule_errors_with_their_message_and_stack_in_the_log() {
    let _one_at_a_time = COMPILING.blocking_lock();
    let rt = runtime();
    let defaults = RuleLimits::default();
    for (lang, dir, exception, trace) in [
        (
            Lang::Js,
            JS_ESCAPE,
            "TypeError: no queue for this ticket",
            "main.js",
        ),
        (
            Lang::Python,
            PY_ESCAPE,
            "KeyError: 'no queue for this ticket'",
            "Traceback",
        ),
    ] {
        let module = rt.load(&built(lang, dir), defaults).unwrap();
        let limits = defaults.get(module.toolchain());
        let thrown = switchboard_tests::created(json!({"id": "T-1", "category": "throw"}));
        let eval = rt.evaluate(&module, &ctx(&[], limits), &thrown);
        let failure = eval
            .outcome
            .as_ref()
            .map(|_| ())
            .unwrap_err()
            .failure
            .clone();
        match &failure {
            EvalFailure::RuleError { error } => {
                assert_eq!(
                    (error.code.as_str(), error.message.as_str()),
                    ("exception", exception)
                );
            }
            other => panic!("{lang:?}: expected a rule error, got {other}"),
        }
        let log = log_of(&eval).join("\n");
        assert!(
            log.contains(exception) && log.contains(trace),
            "{lang:?}: {log}"
        );

        let reported = switchboard_tests::created(json!({"id": "T-2", "category": "rule-error"}));
        let eval = rt.evaluate(&module, &ctx(&[], limits), &reported);
        let failure = &eval.outcome.as_ref().map(|_| ()).unwrap_err().failure;
        assert_eq!(failure.class(), FailureClass::Reported);
        assert_eq!(
            failure.to_string(),
            "rule error missing-config: set `calendar`",
            "{lang:?}"
        );
    }
}

#[test]
fn fetch_sockets_and_files_reach_nothing_and_answers_stay_deterministic() {
    let _one_at_a_time = COMPILING.blocking_lock();
    let rt = runtime();
    let defaults = RuleLimits::default();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let event = switchboard_tests::created(
        json!({"id": "X-1", "category": "network", "description": "secret payroll data"}),
    );

    let js = rt.load(&built(Lang::Js, JS_ESCAPE), defaults).unwrap();
    let url = format!("http://{addr}/exfil");
    let js_ctx = ctx(&[("target", &url)], defaults.get(js.toolchain()));
    let first = rt.evaluate(&js, &js_ctx, &event);
    let again = rt.evaluate(&js, &js_ctx, &event);
    let log = log_of(&first);
    assert!(first.outcome.is_ok(), "{:?} {log:?}", first.outcome);
    assert!(!log.iter().any(|l| l.contains("ALLOWED")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("fetch:")), "{log:?}");
    assert_eq!(
        first.outcome, again.outcome,
        "random and clocks are per event"
    );
    // A request with a body gets no body to write (a blocked write would hold the host
    // thread past any deadline): the rule stops at once, and the ticket falls back.
    let post_ctx = ctx(
        &[("target", &url), ("post", "yes")],
        defaults.get(js.toolchain()),
    );
    let post = rt.evaluate(&js, &post_ctx, &event);
    let failure = &post.outcome.as_ref().map(|_| ()).unwrap_err().failure;
    assert_eq!(failure.class(), FailureClass::Trap, "{failure}");
    assert!(
        post.elapsed < std::time::Duration::from_secs(5),
        "{:?}",
        post.elapsed
    );

    let py = rt.load(&built(Lang::Python, PY_ESCAPE), defaults).unwrap();
    let py_ctx = ctx(&[("target", &addr)], defaults.get(py.toolchain()));
    let first = rt.evaluate(&py, &py_ctx, &event);
    let again = rt.evaluate(&py, &py_ctx, &event);
    let log = log_of(&first);
    assert!(first.outcome.is_ok(), "{:?} {log:?}", first.outcome);
    for what in ["tcp", "dns", "read", "write"] {
        let line = log.iter().find(|l| l.starts_with(&format!("{what}: ")));
        assert!(
            line.is_some_and(|l| l.starts_with(&format!("{what}: denied"))),
            "{what}: {log:?}"
        );
    }
    assert!(log.contains(&"env: 0 variables".to_owned()), "{log:?}");
    assert_eq!(
        first.outcome, again.outcome,
        "random and clocks are per event"
    );

    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("a rule reached the loopback listener: {other:?}"),
    }
}

/// Waits for `version` to finish compiling and returns its record.
async fn ready(server: &TestServer, team: &switchboard_tests::server::Team, v: &Value) -> Value {
    server.api().wait_compiled(team.id(), team.admin(), v).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_and_python_rules_upload_compile_and_route_over_http_on_default_settings() {
    let _one_at_a_time = COMPILING.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("polyglot").await;
    let (operator, admin, admin2) = (
        team.operator.key.as_str(),
        team.admin(),
        team.admin2.key.as_str(),
    );
    for (lang, dir, toolchain) in [
        (Lang::Js, JS_EXAMPLE, "javascript"),
        (Lang::Python, PY_EXAMPLE, "python"),
    ] {
        let bytes = built(lang, dir);
        let started = std::time::Instant::now();
        let up = server.api().upload_only(team.id(), operator, bytes).await;
        let answered = started.elapsed();
        let up = up.expect(201).clone();
        assert_eq!(
            (&up["status"], &up["toolchain"]),
            (&json!("compiling"), &json!(toolchain))
        );
        let v = up["version"].clone();
        // While it compiles, it cannot be approved.
        let approve = team.path(&format!("/rules/{v}/approve"));
        let early = server.post_empty(&approve, admin).await;
        let record = ready(&server, &team, &v).await;
        if early.status != 200 {
            early.expect_error(409, "compiling");
        }
        let compiled = started.elapsed();
        assert_eq!(
            record["status"],
            if early.status == 200 {
                "approved"
            } else {
                "uploaded"
            }
        );
        assert!(
            answered * 4 < compiled,
            "{toolchain}: the upload answered in {answered:?}, compiling took {compiled:?}"
        );
        eprintln!("{toolchain}: upload answered in {answered:?}, ready after {compiled:?}");
        server.post_empty(&approve, admin).await.expect(200);
        server
            .post_empty(&team.path(&format!("/rules/{v}/activate")), admin2)
            .await
            .expect(200);
        let id = format!("SEC-{toolchain}");
        let reply = server
            .post(
                &team.path("/tickets"),
                operator,
                json!({"id": id, "subject": "Suspicious login", "category": "security"}),
            )
            .await;
        let body = reply.expect(201);
        assert_eq!(body["decision"]["queue"], "soc", "{body}");
        assert_eq!(body["rule"]["version"], v);
        assert_eq!(body["rule"]["fallback"], false, "{body}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_cannot_start_within_its_limits_fails_with_the_reason_and_is_never_approved() {
    let _one_at_a_time = COMPILING.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("tight").await;
    let admin = team.admin();
    // Python's runtime starts with 12.3 MiB of memory: 10 MiB cannot hold it.
    let settings = json!({"toolchain_limits": {"python": {"memory_bytes": 10485760}}});
    server
        .put(&team.path("/settings"), admin, settings)
        .await
        .expect(200);
    let got = server.get(&team.path("/settings"), admin).await;
    let limits = &got.expect(200)["toolchain_limits"];
    assert_eq!(limits["python"]["memory_bytes"], 10485760);
    assert_eq!(
        limits["python"]["module_bytes"], 25165824,
        "other limits keep their defaults"
    );
    let up = server
        .api()
        .upload(
            team.id(),
            &team.operator.key,
            built(Lang::Python, PY_EXAMPLE),
        )
        .await;
    let up = up.expect(201);
    assert_eq!(up["status"], "failed", "{up}");
    assert_eq!(up["error"]["code"], "cannot_start", "{up}");
    let message = up["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("memory limit") && message.contains("python"),
        "{message}"
    );
    let v = &up["version"];
    server
        .post_empty(&team.path(&format!("/rules/{v}/approve")), admin)
        .await
        .expect_error(409, "compile_failed");
    server.stop().await;
}

#[test]
fn rules_check_reports_the_toolchain_limits_and_sample_run() {
    let _one_at_a_time = COMPILING.blocking_lock();
    let module = build(Lang::Js, JS_EXAMPLE);
    let out = Command::new(switchboard_tests::switchboard_binary())
        .args(["rules", "check"])
        .arg(&module)
        .args(["--cache-dir"])
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["toolchain"], "javascript");
    assert_eq!(report["limits"]["memory_bytes"], 32 << 20);
    assert_eq!(report["sample"]["outcome"], "decision");
    assert!(
        report["sample"]["fuel"].as_u64().unwrap() > 100_000,
        "{report}"
    );
}

/// Runs `cmd` in `dir`, panicking with its output when it fails; returns stdout and stderr.
fn run_in(dir: &std::path::Path, cmd: &mut Command) -> String {
    switchboard_tests::toolchains::run(cmd.current_dir(dir), &format!("in {}", dir.display()))
}

#[test]
fn rules_new_scaffolds_projects_that_test_and_build_as_written() {
    let _one_at_a_time = COMPILING.blocking_lock();
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    let switchboard = switchboard_tests::switchboard_binary();
    for lang in ["js", "python", "rust"] {
        let dir = tmp.path().join(format!("triage-{lang}"));
        run_in(
            tmp.path(),
            Command::new(&switchboard)
                .args(["rules", "new", "triage", "--lang", lang, "--dir"])
                .arg(&dir),
        );
        let module = match lang {
            "js" => {
                let tests = run_in(&dir, Command::new("node").arg("--test"));
                assert!(tests.contains("# pass 2"), "{tests}");
                run_in(
                    &dir,
                    Command::new(componentize_js()).args([
                        "main.js",
                        "--wit",
                        "wit",
                        "--world-name",
                        "ticket-rules",
                        "-o",
                        "rule.wasm",
                    ]),
                );
                dir.join("rule.wasm")
            }
            "python" => {
                let cpy = switchboard_tests::toolchains::python_venv().join("bin/componentize-py");
                let wit = ["-d", "wit", "-w", "ticket-rules"];
                run_in(
                    &dir,
                    Command::new(&cpy).args(wit).args(["bindings", "bindings"]),
                );
                let tests = run_in(
                    &dir,
                    Command::new("python3")
                        .args(["-m", "unittest"])
                        .env("PYTHONPATH", "bindings")
                        .env("PYTHONDONTWRITEBYTECODE", "1"),
                );
                assert!(tests.contains("Ran 2 tests"), "{tests}");
                run_in(
                    &dir,
                    Command::new(&cpy)
                        .args(wit)
                        .args(["componentize", "app", "-o", "rule.wasm"]),
                );
                dir.join("rule.wasm")
            }
            _ => {
                // The workspace's lock file keeps the project on the versions CI knows build.
                std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
                let target = root.join("target/guests/scaffold");
                let tests = run_in(
                    &dir,
                    Command::new(&cargo)
                        .args(["test", "--target-dir"])
                        .arg(&target),
                );
                assert!(tests.contains("2 passed"), "{tests}");
                run_in(
                    &dir,
                    Command::new(&cargo)
                        .args(["build", "--release", "--target", "wasm32-wasip2"])
                        .arg("--target-dir")
                        .arg(&target)
                        .env_remove("RUSTFLAGS")
                        .env_remove("CARGO_ENCODED_RUSTFLAGS"),
                );
                target.join("wasm32-wasip2/release/triage.wasm")
            }
        };
        let check = run_in(
            &dir,
            Command::new(&switchboard)
                .args(["rules", "check"])
                .arg(&module)
                .arg("--cache-dir")
                .arg(tmp.path().join("cache")),
        );
        let report: Value = serde_json::from_str(&check).unwrap();
        let expect = match lang {
            "js" => "javascript",
            "python" => "python",
            _ => "native",
        };
        assert_eq!(report["toolchain"], expect, "{check}");
        assert_eq!(report["sample"]["outcome"], "decision", "{check}");
    }
    // The same name again is refused, and nothing is overwritten.
    let again = Command::new(&switchboard)
        .args(["rules", "new", "triage", "--lang", "js", "--dir"])
        .arg(tmp.path().join("triage-js"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_left_compiling_by_a_stopped_process_is_compiled_at_start() {
    use switchboard_host::store::records::{RuleRecord, RuleStatus};
    use switchboard_host::store::{self, Store};
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("resume").await;
    let up = server
        .api()
        .upload(team.id(), &team.operator.key, guest("vip-and-security"))
        .await;
    assert_eq!(up.expect(201)["status"], "uploaded");
    server.stop().await;

    // A crash while version 1 compiled: its record still says `compiling`.
    let db = Store::open(&dir.path().join("switchboard.redb")).unwrap();
    db.write(|txn| {
        let key = store::seq_key("resume", 1);
        let mut rule: RuleRecord = store::get(txn, store::RULES, &key)?.expect("version 1");
        rule.status = RuleStatus::Compiling;
        rule.ready_at = None;
        store::put_in(txn, store::RULES, &key, &rule)
    })
    .await
    .unwrap();
    drop(db);

    let server = TestServer::start(dir.path()).await;
    let record = server
        .api()
        .wait_compiled("resume", team.admin(), &json!(1))
        .await;
    assert_eq!(record["status"], "uploaded", "{record}");
    assert!(record["ready_at"].is_string(), "{record}");
    server.stop().await;
}
