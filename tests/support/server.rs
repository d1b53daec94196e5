//! An in-process `switchboard serve` on `127.0.0.1:0` over a real data directory, and a small
//! HTTP client for it. Every answer comes back as status plus parsed JSON, so tests assert on
//! both, and error answers are checked against the SPEC's `{"error": {"code", "message"}}`.

use std::ops::Deref;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_host::service::{Service, ServiceOptions};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The platform admin token every test server is started with.
pub const ADMIN_TOKEN: &str = "sbadmin_test-platform-admin-token";

/// The longest [`TestServer::stop`] waits for the store to be released (a bound on a bug,
/// not a synchronisation: it returns as soon as the store closes).
pub const RELEASE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The ids of the tickets of a board answer (asserting it is a 200).
#[track_caller]
pub fn board_ids(reply: &Reply) -> Vec<String> {
    reply.expect(200)["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_owned())
        .collect()
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    /// No body.
    None,
    /// JSON with `Content-Type: application/json`.
    Json(Value),
    /// Raw bytes with the given content type (none when `None`).
    Raw(Option<&'static str>, Vec<u8>),
}

/// An answer: status, content type, and the body as text and (when it parses) as JSON.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The body as text.
    pub text: String,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
}

impl Reply {
    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub fn expect(&self, status: u16) -> &Value {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        &self.body
    }

    /// Asserts the status, the error code and the exact SPEC error shape:
    /// `{"error": {"code": "...", "message": "..."}}` and nothing else.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(
            self.status, status,
            "unexpected status; body: {}",
            self.text
        );
        assert_error_shape(self);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.text);
    }

    /// Whether this is a JSON error with exactly `{"error": {"code", "message"}}`, both
    /// non-empty strings.
    pub fn has_error_shape(&self) -> bool {
        let json = self
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json"));
        let fields = self.body.as_object().is_some_and(|outer| {
            outer.len() == 1
                && outer
                    .get("error")
                    .and_then(Value::as_object)
                    .is_some_and(|e| {
                        e.len() == 2
                            && ["code", "message"].iter().all(|f| {
                                e.get(*f)
                                    .and_then(Value::as_str)
                                    .is_some_and(|s| !s.is_empty())
                            })
                    })
        });
        json && fields
    }

    /// The error code (panics on anything but the SPEC error shape).
    #[track_caller]
    pub fn error_code(&self) -> &str {
        assert_error_shape(self);
        self.body["error"]["code"].as_str().expect("code")
    }
}

/// Asserts that `reply` is a JSON error with exactly `{"error": {"code", "message"}}`, a
/// non-empty code and message.
#[track_caller]
pub fn assert_error_shape(reply: &Reply) {
    assert!(
        reply
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "error answers are JSON; got status {} with content type {:?} and body {:?}",
        reply.status,
        reply.content_type,
        reply.text
    );
    let outer = reply
        .body
        .as_object()
        .unwrap_or_else(|| panic!("error body is an object: {}", reply.text));
    assert_eq!(outer.len(), 1, "only `error` at the top: {}", reply.text);
    let inner = outer["error"]
        .as_object()
        .unwrap_or_else(|| panic!("`error` is an object: {}", reply.text));
    assert_eq!(inner.len(), 2, "only code and message: {}", reply.text);
    for field in ["code", "message"] {
        assert!(
            inner[field].as_str().is_some_and(|s| !s.is_empty()),
            "`error.{field}` is a non-empty string: {}",
            reply.text
        );
    }
}

/// An HTTP client bound to one server's base URL. Cheap to clone (for concurrent requests).
#[derive(Debug, Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client of the server at `base` (e.g. a `switchboard serve` process).
    pub fn at(base: &str) -> Api {
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Api {
            base: base.trim_end_matches('/').to_owned(),
            client,
        }
    }

    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request and reads the whole answer.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Body) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => {
                let req = req.body(bytes);
                match ct {
                    Some(ct) => req.header(reqwest::header::CONTENT_TYPE, ct),
                    None => req,
                }
            }
        };
        let res = req.send().await.expect("the server answers");
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = res.text().await.expect("read the body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            text,
            body,
        }
    }

    /// `GET`.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, Some(token), Body::None).await
    }

    /// `POST` with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(token), Body::Json(body))
            .await
    }

    /// `POST` without a body.
    pub async fn post_empty(&self, path: &str, token: &str) -> Reply {
        self.call(Method::POST, path, Some(token), Body::None).await
    }

    /// Sets `team`'s fallback decision (what a ticket gets with no active rule, or when the
    /// rule fails).
    pub async fn set_fallback(&self, team: &Team, fallback: Value) {
        self.put(
            &team.path("/settings"),
            team.admin(),
            serde_json::json!({"fallback": fallback}),
        )
        .await
        .expect(200);
    }

    /// Creates `team`'s webhook endpoint `ops` for `events` at `url`; returns its secret
    /// (`whsec_…`, shown once).
    pub async fn subscribe(&self, team: &Team, url: &str, events: &[&str]) -> String {
        let reply = self
            .put(
                &team.path("/webhooks/ops"),
                team.admin(),
                serde_json::json!({"url": url, "events": events}),
            )
            .await;
        let secret = reply.expect(201)["secret"]
            .as_str()
            .expect("secret shown on creation")
            .to_owned();
        assert!(secret.starts_with("whsec_"), "{secret}");
        secret
    }

    /// `PUT` with a JSON body.
    pub async fn put(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(token), Body::Json(body))
            .await
    }

    /// `DELETE`.
    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.call(Method::DELETE, path, Some(token), Body::None)
            .await
    }

    /// Uploads a rule module (`Content-Type: application/wasm`) and answers at once, with
    /// the status `compiling` when it was accepted.
    pub async fn upload_only(&self, tenant: &str, token: &str, wasm: Vec<u8>) -> Reply {
        self.call(
            Method::POST,
            &format!("/v1/tenants/{tenant}/rules"),
            Some(token),
            Body::Raw(Some("application/wasm"), wasm),
        )
        .await
    }

    /// Uploads a rule module and, when it was accepted, waits until it has compiled: the
    /// answer is the upload's, with the version's `status` (`uploaded` or `failed`) and
    /// `error` once compiling is over.
    pub async fn upload(&self, tenant: &str, token: &str, wasm: Vec<u8>) -> Reply {
        let mut reply = self.upload_only(tenant, token, wasm).await;
        if reply.status != 201 {
            return reply;
        }
        assert_eq!(reply.body["status"], "compiling", "{}", reply.text);
        let version = reply.body["version"].clone();
        let record = self.wait_compiled(tenant, token, &version).await;
        reply.body["status"] = record["status"].clone();
        if let Some(error) = record.get("error") {
            reply.body["error"] = error.clone();
        }
        reply.text = reply.body.to_string();
        reply
    }

    /// Waits (up to two minutes) until `version` of `tenant` is no longer `compiling`, and
    /// returns its record from `GET …/rules`.
    pub async fn wait_compiled(&self, tenant: &str, token: &str, version: &Value) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let list = self
                .get(&format!("/v1/tenants/{tenant}/rules"), token)
                .await;
            let rules = list.expect(200)["rules"].as_array().expect("rules").clone();
            let record = rules
                .into_iter()
                .find(|r| r["version"] == *version)
                .expect("the uploaded version is listed");
            if record["status"] != "compiling" {
                return record;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "version {version} still compiling after two minutes"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The ids of `team`'s NDJSON export (every stored ticket with its routing inputs),
    /// oldest first, read with its operator key.
    pub async fn exported_ids(&self, team: &Team) -> Vec<String> {
        let export = self
            .get(&team.path("/tickets/export"), &team.operator.key)
            .await;
        assert_eq!(export.status, 200, "{}", export.text);
        export
            .text
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).expect("an NDJSON line")["id"]
                    .as_str()
                    .expect("an id")
                    .to_owned()
            })
            .collect()
    }

    /// Creates a tenant with the platform admin token.
    pub async fn create_tenant(&self, id: &str) -> Tenant {
        let reply = self
            .post(
                "/v1/tenants",
                ADMIN_TOKEN,
                json!({"id": id, "name": format!("Tenant {id}")}),
            )
            .await;
        let body = reply.expect(201);
        assert_eq!(body["id"], id);
        let admin = Key {
            id: body["admin_key_id"]
                .as_str()
                .expect("admin_key_id")
                .to_owned(),
            key: body["admin_key"].as_str().expect("admin_key").to_owned(),
        };
        assert!(
            admin.key.contains(&admin.id),
            "the key id is part of the key"
        );
        Tenant {
            id: id.to_owned(),
            admin,
        }
    }

    /// Creates a key with `role` on `tenant`, using an admin key.
    pub async fn create_key(&self, tenant: &str, admin: &str, name: &str, role: &str) -> Key {
        let reply = self
            .post(
                &format!("/v1/tenants/{tenant}/keys"),
                admin,
                json!({"name": name, "role": role}),
            )
            .await;
        let body = reply.expect(201);
        assert_eq!(body["role"], role);
        Key {
            id: body["id"].as_str().expect("key id").to_owned(),
            key: body["key"].as_str().expect("key").to_owned(),
        }
    }

    /// A tenant with one key of every role, and a second admin for four-eyes approvals.
    pub async fn create_team(&self, id: &str) -> Team {
        let tenant = self.create_tenant(id).await;
        let admin = tenant.admin.key.as_str();
        Team {
            admin2: self.create_key(id, admin, "second admin", "admin").await,
            operator: self.create_key(id, admin, "msp engineer", "operator").await,
            intake: self.create_key(id, admin, "mail intake", "intake").await,
            viewer: self.create_key(id, admin, "auditor", "viewer").await,
            tenant,
        }
    }

    /// Uploads `wasm` with `uploader`, approves it with `approver` and activates it with
    /// `approver`; returns the version.
    pub async fn deploy(&self, tenant: &str, uploader: &str, approver: &str, wasm: Vec<u8>) -> u64 {
        let up = self.upload(tenant, uploader, wasm).await;
        let version = up.expect(201)["version"].as_u64().expect("version");
        let rules = format!("/v1/tenants/{tenant}/rules/{version}");
        self.post_empty(&format!("{rules}/approve"), approver)
            .await
            .expect(200);
        self.post_empty(&format!("{rules}/activate"), approver)
            .await
            .expect(200);
        version
    }
}

/// A tenant and its first admin key.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant id.
    pub id: String,
    /// The admin key returned at creation.
    pub admin: Key,
}

/// A key: its public id and the full bearer token.
#[derive(Debug, Clone)]
pub struct Key {
    /// Key id (as recorded in the audit log and on rule versions).
    pub id: String,
    /// The bearer token.
    pub key: String,
}

/// A tenant with a key of every role.
#[derive(Debug, Clone)]
pub struct Team {
    /// The tenant and its first admin.
    pub tenant: Tenant,
    /// A second admin (approves what the first uploads).
    pub admin2: Key,
    /// An operator.
    pub operator: Key,
    /// An intake key.
    pub intake: Key,
    /// A viewer.
    pub viewer: Key,
}

impl Team {
    /// The tenant id.
    pub fn id(&self) -> &str {
        &self.tenant.id
    }

    /// The first admin's token.
    pub fn admin(&self) -> &str {
        &self.tenant.admin.key
    }

    /// `/v1/tenants/{id}{rest}`.
    pub fn path(&self, rest: &str) -> String {
        format!("/v1/tenants/{}{rest}", self.tenant.id)
    }
}

/// A server running in this process on a real data directory.
pub struct TestServer {
    api: Api,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    /// Resolves when the store (and so the data directory) is released.
    closed: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>>,
    /// The running service, without keeping it alive past the server.
    service: std::sync::Weak<Service>,
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("api", &self.api)
            .finish_non_exhaustive()
    }
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

/// Why a server could not start.
pub type StartError = switchboard_host::service::StartError;

impl TestServer {
    /// Opens `data_dir` and serves it on `127.0.0.1:0`; panics when it cannot start.
    pub async fn start(data_dir: &Path) -> TestServer {
        Self::try_start(data_dir)
            .await
            .unwrap_or_else(|e| panic!("start the server on {}: {e}", data_dir.display()))
    }

    /// Opens `data_dir` and serves it on `127.0.0.1:0`.
    pub async fn try_start(data_dir: &Path) -> Result<TestServer, StartError> {
        Self::try_start_with(
            data_dir,
            switchboard_host::webhooks::DeliveryConfig::default(),
        )
        .await
    }

    /// Like [`TestServer::start`], with webhook delivery settings (URL policy, schedule).
    pub async fn start_with(
        data_dir: &Path,
        delivery: switchboard_host::webhooks::DeliveryConfig,
    ) -> TestServer {
        Self::try_start_with(data_dir, delivery)
            .await
            .unwrap_or_else(|e| panic!("start the server on {}: {e}", data_dir.display()))
    }

    /// Like [`TestServer::try_start`], with webhook delivery settings.
    pub async fn try_start_with(
        data_dir: &Path,
        delivery: switchboard_host::webhooks::DeliveryConfig,
    ) -> Result<TestServer, StartError> {
        let options = ServiceOptions {
            delivery,
            ..ServiceOptions::default()
        };
        Self::try_start_options(data_dir, options).await
    }

    /// Like [`TestServer::try_start`], with all service options. Uploads are compiled by a
    /// worker process of the `switchboard` binary, as `serve` does.
    pub async fn try_start_options(
        data_dir: &Path,
        options: ServiceOptions,
    ) -> Result<TestServer, StartError> {
        let database = options.database.clone().or_else(|| {
            crate::postgres::suite_on_postgres().then(|| crate::postgres::database_for(data_dir))
        });
        Self::try_start_on(
            data_dir,
            ServiceOptions {
                database,
                ..options
            },
        )
        .await
    }

    /// Like [`TestServer::start`], always on the redb file in `data_dir` (for tests of that
    /// file itself, such as how a newer build reads an older build's file), also when the
    /// suite runs on PostgreSQL.
    pub async fn start_embedded(data_dir: &Path) -> TestServer {
        Self::try_start_on(data_dir, ServiceOptions::default())
            .await
            .unwrap_or_else(|e| panic!("start the server on {}: {e}", data_dir.display()))
    }

    async fn try_start_on(
        data_dir: &Path,
        options: ServiceOptions,
    ) -> Result<TestServer, StartError> {
        let dir = data_dir.to_owned();
        let options = ServiceOptions {
            compiler: crate::compiler(),
            ..options
        };
        let service =
            tokio::task::spawn_blocking(move || Service::open_with(&dir, ADMIN_TOKEN, options))
                .await
                .expect("open task")?;
        let closed = Box::pin(service.store.closed());
        let service = Arc::new(service);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = oneshot::channel::<()>();
        let weak = Arc::downgrade(&service);
        let task = tokio::spawn(switchboard_host::serve::run(service, listener, async {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        Ok(TestServer {
            api: Api {
                base: format!("http://{addr}"),
                client,
            },
            shutdown: Some(tx),
            task: Some(task),
            closed: Some(closed),
            service: weak,
        })
    }

    /// The running service (for looking inside, e.g. at the store); panics once it stopped.
    pub fn service(&self) -> Arc<Service> {
        self.service.upgrade().expect("the server is running")
    }

    /// The platform admin token the server was started with.
    pub fn admin_token(&self) -> &'static str {
        ADMIN_TOKEN
    }

    /// A clone of the client (for concurrent requests from spawned tasks).
    pub fn api(&self) -> Api {
        self.api.clone()
    }

    /// Graceful shutdown: stops accepting, finishes in-flight requests, waits for the serve
    /// task, and then for the store to be closed (axum's connection tasks release their copy
    /// of the service a moment after `serve` returns). Panics if the store is not released
    /// within [`RELEASE_TIMEOUT`].
    pub async fn stop(mut self) {
        let _ = self.shutdown.take().expect("running").send(());
        self.task
            .take()
            .expect("running")
            .await
            .expect("the serve task does not panic")
            .expect("the server shuts down cleanly");
        let closed = self.closed.take().expect("running");
        tokio::time::timeout(RELEASE_TIMEOUT, closed)
            .await
            .expect("handles on the service outlived the server: the store was not closed");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// A fresh ticket id, unique within the test process.
pub fn unique_id(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The reading of one SLA clock in a ticket answer's `sla` list.
#[track_caller]
pub fn clock<'a>(answer: &'a Value, metric: &str) -> &'a Value {
    answer["sla"]
        .as_array()
        .unwrap_or_else(|| panic!("`sla` is a list: {answer}"))
        .iter()
        .find(|c| c["metric"] == metric)
        .unwrap_or_else(|| panic!("no {metric} clock in {answer}"))
}
