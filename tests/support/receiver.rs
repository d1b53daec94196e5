//! A real webhook receiver for end-to-end tests: it verifies Standard Webhooks signatures
//! with its own HMAC code, written from the specification (not the sender's), so a signing
//! bug cannot hide behind a shared helper.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use switchboard_host::webhooks::{DeliveryConfig, UrlPolicy};
use tokio::sync::mpsc;

/// A bound on bugs (a delivery that never comes), not a synchronisation.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One request as the receiver saw it, with its signature already checked.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `webhook-id` header.
    pub id: String,
    /// The parsed body.
    pub body: Value,
    /// How many `v1,` signatures verified with the secrets the receiver knows.
    pub verified: usize,
    /// When it arrived.
    pub at: Instant,
    /// When it arrived, on the wall clock (to compare with instants in the payload).
    pub wall: jiff::Timestamp,
}

/// What the receiver answers, in order; 200 once the script runs out.
pub type Script = Arc<Mutex<VecDeque<(u16, Option<&'static str>)>>>;

/// Verifies a Standard Webhooks signature header against `secret` (`whsec_…`), written from
/// the specification, independently of the service's signing code.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> usize {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 secret");
    let id = headers["webhook-id"].to_str().unwrap();
    let ts = headers["webhook-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    headers["webhook-signature"]
        .to_str()
        .unwrap()
        .split(' ')
        .filter(|s| *s == expected)
        .count()
}

/// A webhook receiver on loopback (`POST /hook`) that checks every signature against the
/// secrets it is told, answers as scripted, and hands each request to the test in order.
pub struct Receiver {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The endpoint secrets it verifies with.
    pub secrets: Arc<Mutex<Vec<String>>>,
    /// What it answers next.
    pub script: Script,
    /// While `true`, every request is received (and handed to the test) but not answered:
    /// its sender waits, as on a slow receiver.
    pub hold: tokio::sync::watch::Sender<bool>,
    rx: mpsc::UnboundedReceiver<Received>,
    /// The server task (abort it to take the receiver down).
    pub task: tokio::task::JoinHandle<()>,
}

/// A receiver serving on `listener`.
pub async fn receiver_on(listener: tokio::net::TcpListener) -> Receiver {
    let addr = listener.local_addr().unwrap();
    let secrets: Arc<Mutex<Vec<String>>> = Arc::default();
    let script: Script = Arc::default();
    let (tx, rx) = mpsc::unbounded_channel();
    let hold = tokio::sync::watch::Sender::new(false);
    let (s2, sc2, h2) = (secrets.clone(), script.clone(), hold.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let (secrets, script, tx, hold) = (s2.clone(), sc2.clone(), tx.clone(), h2.clone());
            async move {
                let verified = secrets
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|s| verify(s, &headers, &body))
                    .sum();
                let _ = tx.send(Received {
                    id: headers["webhook-id"].to_str().unwrap().to_owned(),
                    body: serde_json::from_slice(&body).unwrap(),
                    verified,
                    at: Instant::now(),
                    wall: jiff::Timestamp::now(),
                });
                let _ = hold.subscribe().wait_for(|held| !held).await;
                let (status, retry_after) =
                    script.lock().unwrap().pop_front().unwrap_or((200, None));
                let mut response = axum::response::Response::new(axum::body::Body::empty());
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                if let Some(ra) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", ra.parse().unwrap());
                }
                response
            }
        }),
    );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        addr,
        secrets,
        script,
        hold,
        rx,
        task,
    }
}

impl Receiver {
    /// A receiver on a fresh loopback port.
    pub async fn start() -> Receiver {
        receiver_on(tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap()).await
    }

    /// Verifies with `secret` from now on.
    pub fn trust(&self, secret: String) {
        self.secrets.lock().unwrap().push(secret);
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next request, waiting at most [`PATIENCE`].
    pub async fn next(&mut self) -> Received {
        tokio::time::timeout(PATIENCE, self.rx.recv())
            .await
            .expect("a delivery arrives")
            .expect("receiver running")
    }

    /// The next request if one comes within `wait`.
    pub async fn within(&mut self, wait: Duration) -> Option<Received> {
        tokio::time::timeout(wait, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}

/// Delivery to loopback with retries 200 ms apart, and schedules allowed every second.
pub fn fast_delivery() -> DeliveryConfig {
    DeliveryConfig {
        policy: UrlPolicy::parse("127.0.0.1/32").unwrap(),
        schedule: vec![
            Duration::ZERO,
            Duration::from_millis(200),
            Duration::from_millis(200),
            Duration::from_millis(200),
        ],
        min_schedule_interval: Duration::from_secs(1),
        ..DeliveryConfig::default()
    }
}
