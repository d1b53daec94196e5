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
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--data-dir"])
        .arg(data_dir)
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
