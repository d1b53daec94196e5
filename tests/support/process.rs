//! `switchboard serve` as its own process, for what only a whole process shows: a backup
//! taken from a running server, a restart after SIGKILL.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::{ADMIN_TOKEN, Api};

/// A running `switchboard serve` on a loopback port.
pub struct Node {
    child: Child,
    /// A client of it.
    pub api: Api,
}

impl Node {
    /// Starts `switchboard serve` on `data_dir` (platform token [`ADMIN_TOKEN`], webhooks
    /// allowed to loopback) and waits until `/readyz` answers 200.
    pub async fn start(data_dir: &Path) -> Node {
        Self::start_on(data_dir, None).await
    }

    /// [`Node::start`] with its state in the PostgreSQL database at `database` (when given)
    /// instead of the redb file: several nodes may share it.
    pub async fn start_on(data_dir: &Path, database: Option<&str>) -> Node {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(crate::switchboard_binary());
        if let Some(url) = database {
            command.env("SWITCHBOARD_DATABASE_URL", url);
        }
        let child = command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--webhook-allow", "127.0.0.1/32"])
            .env("SWITCHBOARD_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start switchboard serve");
        let mut node = Node {
            child,
            api: Api::at(&format!("http://127.0.0.1:{port}")),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready = reqwest::get(format!("{}/readyz", node.api.base()))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready {
                return node;
            }
            if let Some(status) = node.child.try_wait().expect("poll the server") {
                panic!(
                    "switchboard serve on {} exited: {status}",
                    data_dir.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "switchboard serve never got ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ends the process with SIGKILL (no shutdown of any kind) and waits for it.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
