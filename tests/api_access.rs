//! Who may do what: every tenant route against every role (allowed answers 2xx, refused
//! answers 403), the platform admin and tenant keys kept to their own routes, missing or
//! unknown bearers (401), and tenant isolation — a key of one tenant gets the same 404 on
//! another tenant's resources as on a tenant that does not exist.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::guest;
use switchboard_tests::routes::{route_table, template_of};
use switchboard_tests::server::{ADMIN_TOKEN, Api, Body, Reply, Team, TestServer, unique_id};

/// Every tenant route of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    CreateKey,
    ListKeys,
    RevokeKey,
    PutSettings,
    GetSettings,
    PutConfig,
    GetConfig,
    ListCalendars,
    PutCalendar,
    GetCalendar,
    Deadline,
    Upload,
    ListRules,
    TestRule,
    Approve,
    Activate,
    Rollback,
    CreateTicket,
    Board,
    ReadTicket,
    PostEvent,
    Audit,
    PutWebhook,
    ListWebhooks,
    Deliveries,
    DeleteWebhook,
    PutSchedule,
    ListSchedules,
    DeleteSchedule,
    RetryDelivery,
    Replay,
    GetReplay,
    Export,
    Report,
    Me,
}

/// Every tenant route, one request each (the roles come from the route table).
const ROUTES: [Route; 35] = [
    Route::CreateKey,
    Route::ListKeys,
    Route::RevokeKey,
    Route::PutSettings,
    Route::GetSettings,
    Route::PutConfig,
    Route::GetConfig,
    Route::ListCalendars,
    Route::PutCalendar,
    Route::GetCalendar,
    Route::Deadline,
    Route::Upload,
    Route::ListRules,
    Route::TestRule,
    Route::Approve,
    Route::Activate,
    Route::Rollback,
    Route::CreateTicket,
    Route::Board,
    Route::ReadTicket,
    Route::PostEvent,
    Route::Audit,
    Route::PutWebhook,
    Route::ListWebhooks,
    Route::Deliveries,
    Route::DeleteWebhook,
    Route::PutSchedule,
    Route::ListSchedules,
    Route::DeleteSchedule,
    Route::RetryDelivery,
    Route::Replay,
    Route::GetReplay,
    Route::Export,
    Route::Report,
    Route::Me,
];

/// Tenant roles, least first.
const ROLES: [&str; 4] = ["viewer", "intake", "operator", "admin"];

/// A request: method, path, body.
struct Req(Method, String, Body);

fn berlin() -> Value {
    json!({"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}})
}

/// A tenant with two approved rule versions, a calendar and a ticket, so that every route
/// has something to act on.
async fn furnished(api: &Api, id: &str) -> Team {
    let team = api.create_team(id).await;
    for _ in 0..2 {
        let v = api
            .upload(id, &team.operator.key, guest("vip-and-security"))
            .await;
        let v = v.expect(201)["version"].as_u64().unwrap();
        api.post_empty(&team.path(&format!("/rules/{v}/approve")), team.admin())
            .await
            .expect(200);
    }
    api.post_empty(&team.path("/rules/1/activate"), team.admin())
        .await
        .expect(200);
    api.put(&team.path("/calendars/berlin"), team.admin(), berlin())
        .await
        .expect(200);
    api.post(
        &team.path("/tickets"),
        &team.intake.key,
        json!({"id": "T-1"}),
    )
    .await
    .expect(201);
    api.put(&team.path("/webhooks/ops"), team.admin(), webhook())
        .await
        .expect(201);
    api.put(&team.path("/schedules/digest"), team.admin(), schedule())
        .await
        .expect(201);
    team
}

fn webhook() -> Value {
    json!({"url": "https://example.com/hook", "events": ["schedule.fired"]})
}

fn schedule() -> Value {
    json!({"cron": "0 8 * * 1-5", "timezone": "America/New_York", "event": "sla.digest"})
}

/// A valid request for `route` on `team`'s tenant, preparing with its admin whatever the
/// request needs (a key to revoke, a version to approve, a version to roll back to).
async fn request(api: &Api, team: &Team, route: Route) -> Req {
    let p = |rest: &str| team.path(rest);
    let admin = team.admin();
    match route {
        Route::CreateKey => Req(
            Method::POST,
            p("/keys"),
            Body::Json(json!({"name": "extra", "role": "viewer"})),
        ),
        Route::ListKeys => Req(Method::GET, p("/keys"), Body::None),
        Route::RevokeKey => {
            let victim = api.create_key(team.id(), admin, "victim", "viewer").await;
            Req(
                Method::DELETE,
                p(&format!("/keys/{}", victim.id)),
                Body::None,
            )
        }
        Route::PutSettings => Req(
            Method::PUT,
            p("/settings"),
            Body::Json(json!({"four_eyes": true})),
        ),
        Route::GetSettings => Req(Method::GET, p("/settings"), Body::None),
        Route::PutConfig => Req(
            Method::PUT,
            p("/config"),
            Body::Json(json!({"calendar": "24x7"})),
        ),
        Route::GetConfig => Req(Method::GET, p("/config"), Body::None),
        Route::ListCalendars => Req(Method::GET, p("/calendars"), Body::None),
        Route::PutCalendar => Req(Method::PUT, p("/calendars/berlin"), Body::Json(berlin())),
        Route::GetCalendar => Req(Method::GET, p("/calendars/berlin"), Body::None),
        Route::Deadline => Req(
            Method::POST,
            p("/calendars/berlin/deadline"),
            Body::Json(json!({"start": "2026-03-06T15:00:00Z", "minutes": 60})),
        ),
        Route::Upload => Req(
            Method::POST,
            p("/rules"),
            Body::Raw(Some("application/wasm"), guest("vip-and-security")),
        ),
        Route::ListRules => Req(Method::GET, p("/rules"), Body::None),
        Route::TestRule => Req(
            Method::POST,
            p("/rules/1/test"),
            Body::Json(json!({"tickets": [{"id": "dry"}]})),
        ),
        Route::Approve => {
            let up = api
                .upload(team.id(), &team.operator.key, guest("vip-and-security"))
                .await;
            let v = up.expect(201)["version"].as_u64().unwrap();
            Req(Method::POST, p(&format!("/rules/{v}/approve")), Body::None)
        }
        Route::Activate => Req(Method::POST, p("/rules/1/activate"), Body::None),
        Route::Rollback => {
            for v in [1, 2] {
                api.post_empty(&p(&format!("/rules/{v}/activate")), admin)
                    .await
                    .expect(200);
            }
            Req(Method::POST, p("/rules/rollback"), Body::None)
        }
        Route::CreateTicket => Req(
            Method::POST,
            p("/tickets"),
            Body::Json(json!({"id": unique_id("NEW")})),
        ),
        Route::Board => Req(Method::GET, p("/tickets?sla=at_risk"), Body::None),
        Route::ReadTicket => Req(Method::GET, p("/tickets/T-1"), Body::None),
        Route::PostEvent => Req(
            Method::POST,
            p("/tickets/T-1/events"),
            Body::Json(json!({"type": "status", "status": "open"})),
        ),
        Route::Audit => Req(Method::GET, p("/audit"), Body::None),
        Route::Me => Req(Method::GET, p("/me"), Body::None),
        Route::PutWebhook => Req(Method::PUT, p("/webhooks/ops"), Body::Json(webhook())),
        Route::ListWebhooks => Req(Method::GET, p("/webhooks"), Body::None),
        Route::Deliveries => Req(Method::GET, p("/webhooks/ops/deliveries"), Body::None),
        Route::DeleteWebhook => {
            let id = unique_id("gone");
            api.put(&p(&format!("/webhooks/{id}")), admin, webhook())
                .await
                .expect(201);
            Req(Method::DELETE, p(&format!("/webhooks/{id}")), Body::None)
        }
        Route::PutSchedule => Req(Method::PUT, p("/schedules/digest"), Body::Json(schedule())),
        Route::ListSchedules => Req(Method::GET, p("/schedules"), Body::None),
        Route::DeleteSchedule => {
            let id = unique_id("gone");
            api.put(&p(&format!("/schedules/{id}")), admin, schedule())
                .await
                .expect(201);
            Req(Method::DELETE, p(&format!("/schedules/{id}")), Body::None)
        }
        Route::Replay => Req(
            Method::POST,
            p("/rules/1/replay"),
            Body::Json(json!({"against": "stored", "limit": 10})),
        ),
        Route::GetReplay => {
            let body = json!({"against": "stored", "limit": 1});
            let run = api.post(&p("/rules/1/replay"), admin, body).await;
            let id = run.expect(200)["replay_id"].as_str().unwrap().to_owned();
            Req(Method::GET, p(&format!("/replays/{id}")), Body::None)
        }
        Route::Export => Req(Method::GET, p("/tickets/export"), Body::None),
        Route::Report => Req(
            Method::GET,
            p("/reports/sla?group_by=party,metric"),
            Body::None,
        ),
        // No delivery of that id: a caller allowed past the role check learns just that.
        Route::RetryDelivery => Req(
            Method::POST,
            p("/webhooks/ops/deliveries/msg_none/retry"),
            Body::None,
        ),
    }
}

async fn send(api: &Api, req: Req, token: Option<&str>) -> Reply {
    let Req(method, path, body) = req;
    api.call(method, &path, token, body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "roles").await;
    let keys = [
        (0, "viewer", team.viewer.key.as_str()),
        (1, "intake", team.intake.key.as_str()),
        (2, "operator", team.operator.key.as_str()),
        (3, "admin", team.admin2.key.as_str()),
    ];
    let table = route_table(&server).await;
    let mut covered = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for route in ROUTES {
        for (rank, role, key) in keys {
            let req = request(&server, &team, route).await;
            let (method, path) = (req.0.clone(), req.1.clone());
            let (_, template, least) = template_of(&table, &method, &path);
            covered.insert((method.to_string(), template.clone()));
            let least = ROLES
                .iter()
                .position(|r| r == least)
                .unwrap_or_else(|| panic!("{method} {template}: {least:?} is no tenant role"));
            let reply = send(&server, req, Some(key)).await;
            let allowed = rank >= least;
            let ok = if allowed && route == Route::RetryDelivery {
                reply.status == 404 && reply.text.contains("no delivery")
            } else if allowed {
                (200..300).contains(&reply.status)
            } else {
                reply.status == 403 && reply.error_code() == "forbidden"
            };
            if !ok {
                failures.push(format!(
                    "{route:?} as {role} ({method} {path}): expected {}, got {} {}",
                    if allowed { "2xx" } else { "403 forbidden" },
                    reply.status,
                    reply.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every tenant route of the table was tried.
    let tenant_routes: std::collections::BTreeSet<_> = table
        .iter()
        .filter(|(_, t, _)| t.starts_with("/v1/tenants/{tenant}"))
        .map(|(m, t, _)| (m.to_string(), t.clone()))
        .collect();
    assert_eq!(covered, tenant_routes, "routes of the table not tried");

    // Refused calls changed nothing: the refused revokes left their victims, the refused
    // uploads left no version.
    let keys = server.get(&team.path("/keys"), team.admin()).await;
    let victims = keys.expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["name"] == "victim")
        .count();
    assert_eq!(victims, 3, "viewer, intake and operator could not revoke");
    let rules = server.get(&team.path("/rules"), team.admin()).await;
    let uploaded_by: Vec<&str> = rules.expect(200)["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uploaded_by"].as_str().unwrap())
        .collect();
    // Two at setup and four for the approve route (by the operator), one each by the
    // operator and the admin on the upload route.
    assert_eq!(uploaded_by.len(), 8, "{uploaded_by:?}");
    assert_eq!(
        uploaded_by.iter().filter(|u| **u == team.admin2.id).count(),
        1
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn platform_token_and_tenant_keys_stay_on_their_own_routes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "own").await;

    // Tenant keys, even admins, cannot create tenants; nothing is created.
    for key in [team.admin(), &team.operator.key, &team.viewer.key] {
        server
            .post("/v1/tenants", key, json!({"id": "rogue", "name": "Rogue"}))
            .await
            .expect_error(403, "forbidden");
    }
    // The platform admin token has no role on a tenant: refused everywhere, like a stranger.
    for route in ROUTES {
        let req = request(&server, &team, route).await;
        let reply = send(&server, req, Some(ADMIN_TOKEN)).await;
        assert_eq!(reply.status, 404, "{route:?}: {}", reply.text);
        assert_eq!(reply.error_code(), "not_found", "{route:?}");
    }
    // The refusals above created nothing.
    server
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            json!({"id": "rogue", "name": "Rogue"}),
        )
        .await
        .expect(201);

    // No bearer, a garbage bearer, another scheme, a known key id with a wrong secret: 401.
    let wrong_secret = format!("sb_{}.not-the-secret", team.viewer.id);
    let basic = "Basic dXNlcjpwYXNz";
    for route in ROUTES {
        for token in [None, Some("garbage"), Some(wrong_secret.as_str())] {
            let req = request(&server, &team, route).await;
            let reply = send(&server, req, token).await;
            reply.expect_error(401, "unauthorized");
        }
        let Req(method, path, body) = request(&server, &team, route).await;
        let reply = raw_auth(&server, method, &path, basic, body).await;
        reply.expect_error(401, "unauthorized");
    }
    server
        .call(
            Method::POST,
            "/v1/tenants",
            None,
            Body::Json(json!({"id": "anon", "name": "Anon"})),
        )
        .await
        .expect_error(401, "unauthorized");
    server.stop().await;
}

/// A request with a literal `Authorization` header.
async fn raw_auth(api: &Api, method: Method, path: &str, authorization: &str, body: Body) -> Reply {
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut req = client
        .request(method, format!("{}{path}", api.base()))
        .header(reqwest::header::AUTHORIZATION, authorization);
    req = match body {
        Body::Json(v) => req.json(&v),
        Body::Raw(ct, bytes) => req
            .header(reqwest::header::CONTENT_TYPE, ct.unwrap_or(""))
            .body(bytes),
        Body::None => req,
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let text = res.text().await.unwrap();
    Reply {
        status,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        content_type,
        text,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenant_looks_exactly_like_no_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let a = furnished(&server, "alpha").await;
    let b = furnished(&server, "bravo").await;
    let audit_before = server.get(&b.path("/audit"), b.admin()).await;
    let b_audit = audit_before.expect(200)["entries"]
        .as_array()
        .unwrap()
        .len();

    for route in ROUTES {
        let Req(method, path, body) = request(&server, &b, route).await;
        let on_b = server
            .call(method.clone(), &path, Some(a.admin()), body.clone())
            .await;
        // A ghost: the same request on a tenant that does not exist.
        let ghost_path = path.replacen("/v1/tenants/bravo", "/v1/tenants/ghost", 1);
        let on_ghost = server
            .call(method.clone(), &ghost_path, Some(a.admin()), body)
            .await;
        on_b.expect_error(404, "not_found");
        on_ghost.expect_error(404, "not_found");
        assert_eq!(
            on_b.body["error"]["message"]
                .as_str()
                .unwrap()
                .replace("bravo", "ghost"),
            on_ghost.body["error"]["message"],
            "{route:?}: {method} {path}"
        );
    }
    // Nothing of A's probing reached B: its audit log only has what B's admin prepared, its
    // ticket is unchanged, its rules are as B left them.
    let audit = server.get(&b.path("/audit"), b.admin()).await;
    let entries = audit.expect(200)["entries"].as_array().unwrap();
    assert!(
        entries
            .iter()
            .all(|e| e["key_id"] != a.tenant.admin.id.as_str()),
        "{entries:?}"
    );
    assert!(entries.len() > b_audit);
    let t1 = server.get(&b.path("/tickets/T-1"), b.admin()).await;
    assert_eq!(t1.expect(200)["events"], json!([]));
    // And A's own routes cannot reach into B: B's ticket id on A is just an unknown ticket.
    server
        .get(&a.path("/tickets/NEW-1"), a.admin())
        .await
        .expect_error(404, "not_found");
    server
        .delete(&a.path(&format!("/keys/{}", b.viewer.id)), a.admin())
        .await
        .expect_error(404, "not_found");
    let b_viewer = server.get(&b.path("/rules"), &b.viewer.key).await;
    b_viewer.expect(200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_granted_on_two_tenants_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let a = furnished(&server, "north").await;
    let b = furnished(&server, "south").await;
    let engineer = &a.operator;

    // Before the grant, B is invisible to A's operator.
    server
        .get(&b.path("/rules"), &engineer.key)
        .await
        .expect_error(404, "not_found");
    let grant = server
        .post(
            &b.path("/keys"),
            b.admin(),
            json!({"key_id": engineer.id, "role": "viewer"}),
        )
        .await;
    let grant = grant.expect(201);
    assert_eq!(
        (&grant["id"], &grant["role"]),
        (&json!(engineer.id), &json!("viewer"))
    );
    assert!(grant.get("key").is_none(), "the secret is not shown again");

    // The same key: operator on A, viewer on B.
    server
        .get(&a.path("/rules"), &engineer.key)
        .await
        .expect(200);
    server
        .get(&b.path("/rules"), &engineer.key)
        .await
        .expect(200);
    server
        .get(&b.path("/tickets/T-1"), &engineer.key)
        .await
        .expect(200);
    server
        .post(&a.path("/tickets"), &engineer.key, json!({"id": "GR-1"}))
        .await
        .expect(201);
    server
        .post(&b.path("/tickets"), &engineer.key, json!({"id": "GR-1"}))
        .await
        .expect_error(403, "forbidden");
    let listed = server.get(&b.path("/keys"), b.admin()).await;
    assert!(
        listed.expect(200)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["id"] == engineer.id.as_str() && k["role"] == "viewer")
    );
    // Granting again changes the role (one grant per tenant).
    server
        .post(
            &b.path("/keys"),
            b.admin(),
            json!({"key_id": engineer.id, "role": "intake"}),
        )
        .await
        .expect(201);
    server
        .post(&b.path("/tickets"), &engineer.key, json!({"id": "GR-2"}))
        .await
        .expect(201);

    // B revokes its grant: B is gone for the key (404, not 403), A is untouched.
    let revoked = server
        .delete(&b.path(&format!("/keys/{}", engineer.id)), b.admin())
        .await;
    assert_eq!(revoked.expect(200)["revoked"], true);
    for path in ["/rules", "/tickets/T-1", "/settings"] {
        server
            .get(&b.path(path), &engineer.key)
            .await
            .expect_error(404, "not_found");
    }
    server
        .get(&a.path("/rules"), &engineer.key)
        .await
        .expect(200);
    // Revoking twice: there is no grant left to revoke.
    server
        .delete(&b.path(&format!("/keys/{}", engineer.id)), b.admin())
        .await
        .expect_error(404, "not_found");
    // A revokes too: the key reaches nothing.
    server
        .delete(&a.path(&format!("/keys/{}", engineer.id)), a.admin())
        .await
        .expect(200);
    server
        .get(&a.path("/rules"), &engineer.key)
        .await
        .expect_error(404, "not_found");
    let audit = server.get(&b.path("/audit"), b.admin()).await;
    let actions: Vec<&str> = audit.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["target"] == format!("keys/{}", engineer.id).as_str())
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["key.grant", "key.grant", "key.revoke"]);
    server.stop().await;
}

/// Four-eyes holds against the sidesteps a single admin could try: switching it off alone,
/// activating a version they approved themselves while it was off, or rolling back to one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_eyes_cannot_be_sidestepped_by_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("fe").await;
    let (admin, admin2) = (team.admin().to_owned(), team.admin2.key.clone());
    let settings = "/v1/tenants/fe/settings";
    let off = json!({"four_eyes": false});
    let on = json!({"four_eyes": true});
    let four_eyes = |reply: Reply| reply.expect(200)["four_eyes"].clone();

    // Switching off takes two different admins; the same admin asking twice is still pending.
    server.put(settings, &admin, off.clone()).await.expect(202);
    server.put(settings, &admin, off.clone()).await.expect(202);
    assert_eq!(four_eyes(server.get(settings, &admin).await), true);
    server.put(settings, &admin2, off.clone()).await.expect(200);
    assert_eq!(four_eyes(server.get(settings, &admin).await), false);

    // With four-eyes off, an admin uploads, approves and activates alone.
    let v1 = server
        .upload("fe", &admin, guest("vip-and-security"))
        .await
        .expect(201)["version"]
        .as_u64()
        .unwrap();
    let rules = "/v1/tenants/fe/rules";
    server
        .post_empty(&format!("{rules}/{v1}/approve"), &admin)
        .await
        .expect(200);
    server
        .post_empty(&format!("{rules}/{v1}/activate"), &admin)
        .await
        .expect(200);
    // v2 goes through a real second pair of eyes.
    let v2 = server
        .upload("fe", &team.operator.key, guest("co-managed-split"))
        .await
        .expect(201)["version"]
        .as_u64()
        .unwrap();
    server
        .post_empty(&format!("{rules}/{v2}/approve"), &admin)
        .await
        .expect(200);
    server
        .post_empty(&format!("{rules}/{v2}/activate"), &admin)
        .await
        .expect(200);

    // Switching on takes one admin. Then the self-approved v1 can neither be activated nor
    // rolled back to.
    server.put(settings, &admin, on).await.expect(200);
    server
        .post_empty(&format!("{rules}/{v1}/activate"), &admin2)
        .await
        .expect_error(409, "not_approved");
    server
        .post_empty(&format!("{rules}/rollback"), &admin2)
        .await
        .expect_error(409, "not_approved");
    let list = server.get(rules, &admin).await;
    assert_eq!(list.expect(200)["active"], v2, "nothing changed");
    server.stop().await;
}
