//! The real `switchboard serve` binary as an operator runs it: flags and env, SIGTERM for a
//! graceful stop that keeps everything committed, and a restart on the same data directory.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ADMIN: &str = "process-test-admin-token";
/// A bound on bugs (a server that never starts or never stops), not a synchronisation.
const PATIENCE: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

struct Server {
    child: Child,
    base: String,
}

fn start(data_dir: &Path) -> Server {
    start_with(data_dir, &[])
}

fn start_with(data_dir: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
        .args(extra)
        .env("SWITCHBOARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start switchboard serve");
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    let client = reqwest::blocking::Client::new();
    while client
        .get(format!("{}/readyz", server.base))
        .send()
        .is_err()
    {
        assert!(
            started.elapsed() < PATIENCE,
            "the server did not become ready"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

impl Server {
    fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::blocking::Client::new()
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().expect("the server answers");
        let status = res.status().as_u16();
        (status, res.json().unwrap_or_default())
    }

    fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, token, Some(body))
    }

    fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, token, None)
    }

    /// Sends SIGTERM and waits for the process to exit; returns whether it exited cleanly.
    fn terminate(mut self) -> bool {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        let started = Instant::now();
        loop {
            if let Some(exit) = self.child.try_wait().expect("wait") {
                return exit.success();
            }
            if started.elapsed() > PATIENCE {
                let _ = self.child.kill();
                panic!("switchboard did not stop within {PATIENCE:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn sigterm_stops_gracefully_and_a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let (status, tenant) = server.post("/v1/tenants", ADMIN, json!({"id": "acme", "name": "Acme"}));
    assert_eq!(status, 201, "{tenant}");
    let admin = tenant["admin_key"].as_str().unwrap().to_owned();
    let (status, ticket) = server.post(
        "/v1/tenants/acme/tickets",
        &admin,
        json!({"id": "INC-1", "subject": "printer on fire", "impact": 1, "urgency": 1}),
    );
    assert_eq!(status, 201, "{ticket}");
    assert_eq!(ticket["decision"]["priority"], "p1");
    assert!(server.terminate(), "a SIGTERM exits with status 0");

    let restarted = start(dir.path());
    let (status, stored) = restarted.get("/v1/tenants/acme/tickets/INC-1", &admin);
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored["decision"], ticket["decision"]);
    assert_eq!(stored["ticket"]["subject"], "printer on fire");
    assert!(restarted.terminate());
}

/// A receiver on loopback that records every delivery (id, event label, body).
fn receiver() -> (String, std::sync::mpsc::Receiver<(String, String, String)>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new().route(
                "/hook",
                axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
                    let tx = tx.clone();
                    async move {
                        let v: Value = serde_json::from_str(&body).unwrap();
                        let label = match v["type"].as_str().unwrap() {
                            "sla.breached" => "breached".to_owned(),
                            _ => v["data"]["label"].as_str().unwrap_or("?").to_owned(),
                        };
                        let id = headers["webhook-id"].to_str().unwrap().to_owned();
                        let _ = tx.send((id, label, body));
                        "ok"
                    }
                }),
            );
            axum::serve(listener, app).await.unwrap();
        });
    });
    (format!("http://{addr}/hook"), rx)
}

#[test]
fn sigkill_with_escalations_pending_loses_none_and_duplicates_keep_their_id() {
    let dir = tempfile::tempdir().unwrap();
    let allow = ["--webhook-allow", "127.0.0.1/32"];
    let (url, deliveries) = receiver();
    let mut server = start_with(dir.path(), &allow);
    let (_, tenant) = server.post("/v1/tenants", ADMIN, json!({"id": "acme", "name": "Acme"}));
    let admin = tenant["admin_key"].as_str().unwrap().to_owned();
    let fallback = json!({
        "queue": "soc", "party": "msp", "tier": 2, "priority": "p1",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "24x7"}],
        "escalations": [
            {"metric": "first_response", "trigger": {"percent_elapsed": 50}, "label": "soc-50", "notify": "oncall"},
            {"metric": "first_response", "trigger": {"percent_elapsed": 90}, "label": "soc-90", "notify": "lead"},
            {"metric": "first_response", "trigger": {"minutes_after_due": 0}, "label": "soc-breach", "notify": "duty"}
        ]
    });
    let put = |path: &str, body: Value| {
        let res = reqwest::blocking::Client::new()
            .put(format!("{}{path}", server.base))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.text().unwrap());
    };
    put("/v1/tenants/acme/settings", json!({"fallback": fallback}));
    put(
        "/v1/tenants/acme/webhooks/ops",
        json!({"url": url, "events": ["sla.escalation", "sla.breached"]}),
    );
    // Due in 2 s: 50% and 90% are overdue at once, the breach comes while the server is dead.
    let created = jiff::Timestamp::now().as_second() - 15 * 60 + 2;
    let due = jiff::Timestamp::from_second(created + 15 * 60).unwrap();
    let created = jiff::Timestamp::from_second(created).unwrap();
    let (status, body) = server.post(
        "/v1/tenants/acme/tickets",
        &admin,
        json!({"id": "K-1", "created_at": created.to_string()}),
    );
    assert_eq!(status, 201, "{body}");
    server.child.kill().expect("SIGKILL");
    server.child.wait().unwrap();
    while jiff::Timestamp::now() <= due {
        std::thread::sleep(Duration::from_millis(50));
    }
    server = start_with(dir.path(), &allow);
    let mut seen: std::collections::BTreeMap<String, (String, String)> = Default::default();
    let wanted = ["breached", "soc-50", "soc-90", "soc-breach"];
    let started = Instant::now();
    while !wanted.iter().all(|w| seen.values().any(|(l, _)| l == w)) {
        let left = PATIENCE.saturating_sub(started.elapsed());
        let (id, label, body) = deliveries
            .recv_timeout(left)
            .expect("every escalation arrives");
        if let Some((l, b)) = seen.insert(id, (label.clone(), body.clone())) {
            assert_eq!((l, b), (label, body), "a duplicate is the same message");
        }
    }
    assert_eq!(seen.len(), 4, "one webhook-id per escalation: {seen:?}");
    assert!(server.terminate());
}
