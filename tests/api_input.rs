//! Bad input on every route: each gets a 4xx with the SPEC's error body
//! `{"error": {"code", "message"}}`, and nothing of it is stored — the tenant's settings,
//! config, calendars, keys, rules, tickets and audit log read the same afterwards.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_tests::guest;
use switchboard_tests::server::{ADMIN_TOKEN, Api, Body, Team, TestServer};

/// A tenant with an active rule, a calendar, config and one ticket with one event.
async fn furnished(api: &Api, id: &str) -> Team {
    let team = api.create_team(id).await;
    api.deploy(
        id,
        &team.operator.key,
        team.admin(),
        guest("vip-and-security"),
    )
    .await;
    api.put(
        &team.path("/calendars/berlin"),
        team.admin(),
        json!({"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]}}),
    )
    .await
    .expect(200);
    api.put(
        &team.path("/config"),
        team.admin(),
        json!({"calendar": "24x7"}),
    )
    .await
    .expect(200);
    api.post(
        &team.path("/tickets"),
        &team.intake.key,
        json!({"id": "T-1", "category": "security"}),
    )
    .await
    .expect(201);
    api.post(
        &team.path("/tickets/T-1/events"),
        &team.intake.key,
        json!({"type": "status", "status": "in_progress"}),
    )
    .await
    .expect(200);
    team
}

/// Everything a refused request could have touched, as the admin reads it. SLA readings
/// move with the clock, so tickets are compared by what is stored, not by what is read.
async fn snapshot(api: &Api, team: &Team) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/settings",
        "/config",
        "/calendars",
        "/calendars/berlin",
        "/keys",
        "/rules",
        "/audit",
    ] {
        out.push(
            api.get(&team.path(path), team.admin())
                .await
                .expect(200)
                .clone(),
        );
    }
    let board = api.get(&team.path("/tickets"), team.admin()).await;
    let ids: Vec<Value> = board.expect(200)["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].clone())
        .collect();
    out.push(json!(ids));
    let t1 = api.get(&team.path("/tickets/T-1"), team.admin()).await;
    let t1 = t1.expect(200);
    out.push(json!([
        t1["ticket"],
        t1["decision"],
        t1["rule"],
        t1["events"]
    ]));
    out
}

/// One JSON route with a body of wrong types and one with an unknown field (when the
/// route's body is a struct that denies them).
struct JsonRoute {
    method: Method,
    path: String,
    token: String,
    wrong_types: Value,
    unknown_field: Option<Value>,
    /// The code of a body that is JSON but not the route's shape.
    shape_code: &'static str,
}

fn json_routes(team: &Team) -> Vec<JsonRoute> {
    let admin = team.admin().to_owned();
    let intake = team.intake.key.clone();
    let route =
        |method: Method, path: String, token: &str, wrong: Value, unknown: Option<Value>| {
            JsonRoute {
                method,
                path,
                token: token.to_owned(),
                wrong_types: wrong,
                unknown_field: unknown,
                shape_code: "invalid_body",
            }
        };
    let start = "2026-03-06T15:00:00Z";
    vec![
        route(
            Method::POST,
            "/v1/tenants".into(),
            ADMIN_TOKEN,
            json!({"id": 5, "name": "Five"}),
            Some(json!({"id": "newco", "name": "NewCo", "plan": "gold"})),
        ),
        route(
            Method::POST,
            team.path("/keys"),
            &admin,
            json!({"name": 5, "role": "viewer"}),
            Some(json!({"name": "x", "role": "viewer", "scope": "all"})),
        ),
        route(
            Method::PUT,
            team.path("/settings"),
            &admin,
            json!({"four_eyes": "yes"}),
            Some(json!({"four_eyes": false, "fourEyes": false})),
        ),
        route(
            Method::PUT,
            team.path("/settings"),
            &admin,
            json!({"limits": {"fuel": "lots"}}),
            Some(json!({"four_eyes": false, "limits": {"fuel_units": 5}})),
        ),
        route(
            Method::PUT,
            team.path("/config"),
            &admin,
            json!({"calendar": 7}),
            None,
        ),
        route(
            Method::PUT,
            team.path("/calendars/newcal"),
            &admin,
            json!({"timezone": 5}),
            Some(json!({"timezone": "UTC", "holydays": []})),
        ),
        route(
            Method::POST,
            team.path("/calendars/berlin/deadline"),
            &admin,
            json!({"start": "yesterday", "minutes": 5}),
            Some(json!({"start": start, "minutes": 5, "calendar": "berlin"})),
        ),
        route(
            Method::POST,
            team.path("/rules/1/test"),
            &admin,
            json!({"tickets": "T-9"}),
            Some(json!({"tickets": [{"id": "T-9"}], "store": true})),
        ),
        route(
            Method::POST,
            team.path("/tickets"),
            &intake,
            json!({"id": "T-9", "impact": "high"}),
            Some(json!({"id": "T-9", "colour": "red"})),
        ),
        route(
            Method::POST,
            team.path("/tickets"),
            &intake,
            json!({"id": "T-9", "requester": {"email": "a@b.test", "vip": "yes"}}),
            Some(json!({"id": "T-9", "requester": {"email": "a@b.test", "title": "CEO"}})),
        ),
        JsonRoute {
            shape_code: "invalid_event",
            ..route(
                Method::POST,
                team.path("/tickets/T-1/events"),
                &intake,
                json!({"type": "status", "status": 5}),
                // A misspelt `at` must not silently become "now".
                Some(json!({"type": "responded", "when": "2026-01-01T00:00:00Z"})),
            )
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_on_every_json_route() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "badjson").await;
    let before = snapshot(&server, &team).await;
    let oversize = json!({"id": "T-9", "description": "x".repeat(300 << 10)});

    let mut failures = Vec::new();
    for r in json_routes(&team) {
        let mut cases = vec![
            (
                "malformed",
                Body::Raw(Some("application/json"), b"{,}".to_vec()),
                400,
                "malformed_json",
            ),
            (
                "no content type",
                Body::Raw(None, br#"{"id": "T-9"}"#.to_vec()),
                415,
                "unsupported_media_type",
            ),
            (
                "text/plain",
                Body::Raw(Some("text/plain"), br#"{"id": "T-9"}"#.to_vec()),
                415,
                "unsupported_media_type",
            ),
            (
                "wrong types",
                Body::Json(r.wrong_types.clone()),
                422,
                r.shape_code,
            ),
            (
                "oversize",
                Body::Json(oversize.clone()),
                413,
                "payload_too_large",
            ),
        ];
        if let Some(unknown) = &r.unknown_field {
            cases.push((
                "unknown field",
                Body::Json(unknown.clone()),
                422,
                r.shape_code,
            ));
        }
        for (case, body, status, code) in cases {
            let reply = server
                .call(r.method.clone(), &r.path, Some(&r.token), body)
                .await;
            let shape_ok = reply.has_error_shape();
            if reply.status != status || !shape_ok || reply.body["error"]["code"] != code {
                failures.push(format!(
                    "{} {} {case}: expected {status} {code}, got {} {}",
                    r.method, r.path, reply.status, reply.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(snapshot(&server, &team).await, before);
    // None of the refused tenant creations happened.
    server
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            json!({"id": "newco", "name": "NewCo"}),
        )
        .await
        .expect(201);
    server.stop().await;
}

/// A request the route refuses: `"METHOD path"` (under the tenant unless absolute), the JSON
/// body (empty: none), and the expected status and code.
type Refusal = (&'static str, &'static str, u16, &'static str);

#[rustfmt::skip]
const PLATFORM_REFUSALS: &[Refusal] = &[
    ("POST /v1/tenants", r#"{"id": "Bad Id", "name": "x"}"#, 422, "invalid_id"),
    ("POST /v1/tenants", r#"{"id": "blank", "name": "  "}"#, 422, "invalid_name"),
    ("POST /v1/tenants", r#"{"id": "values", "name": "2"}"#, 409, "tenant_exists"),
];

#[rustfmt::skip]
const ADMIN_REFUSALS: &[Refusal] = &[
    ("POST /keys", r#"{"name": "x", "role": "root"}"#, 422, "invalid_body"),
    ("POST /keys", r#"{"name": " ", "role": "viewer"}"#, 422, "invalid_name"),
    ("POST /keys", r#"{"role": "viewer"}"#, 422, "invalid_body"),
    ("POST /keys", r#"{"name": "x", "key_id": "VIEWER", "role": "viewer"}"#, 422, "invalid_body"),
    ("POST /keys", r#"{"key_id": "0000000000000000", "role": "viewer"}"#, 404, "not_found"),
    ("PUT /settings", r#"{"limits": {"fuel": 0}}"#, 422, "invalid_limits"),
    ("PUT /settings", r#"{"limits": {"memory_bytes": 1099511627776}}"#, 422, "invalid_limits"),
    ("PUT /settings", r#"{"at_risk_percent": 0}"#, 422, "invalid_settings"),
    // Fallback decisions naming a calendar the tenant does not have, or an impossible tier.
    ("PUT /settings", FALLBACK_ON_UNKNOWN_CALENDAR, 422, "invalid_fallback"),
    ("PUT /settings", FALLBACK_ON_TIER_NINE, 422, "invalid_fallback"),
    ("PUT /config", r#"{"": "empty key"}"#, 422, "invalid_config"),
    ("PUT /calendars/mars", r#"{"timezone": "Mars/Olympus_Mons"}"#, 422, "invalid_calendar"),
    ("PUT /calendars/berlin", r#"{"timezone": "Europe/Berlln"}"#, 422, "invalid_calendar"),
    ("PUT /calendars/mars", r#"{"timezone": "UTC", "hours": {"funday": []}}"#, 422, "invalid_calendar"),
    ("PUT /calendars/mars", CALENDAR_AT_25_OCLOCK, 422, "invalid_calendar"),
    ("PUT /calendars/mars", r#"{"timezone": "UTC", "holidays": ["2026-13-01"]}"#, 422, "invalid_calendar"),
    ("PUT /calendars/Mars", r#"{"timezone": "UTC"}"#, 422, "invalid_id"),
    ("PUT /calendars/24x7", r#"{"timezone": "UTC"}"#, 409, "builtin_calendar"),
    ("POST /calendars/mars/deadline", DEADLINE_IN_5, 404, "not_found"),
    ("POST /calendars/berlin/deadline", DEADLINE_IN_MINUS_5, 422, "invalid_body"),
    ("POST /rules/9/test", r#"{"tickets": [{"id": "x"}]}"#, 404, "not_found"),
    ("POST /rules/1/test", r#"{"tickets": []}"#, 422, "invalid_body"),
    ("POST /rules/1/test", r#"{"tickets": [{"id": "x", "impact": 9}]}"#, 422, "invalid_ticket"),
    ("POST /rules/1/test", r#"{"tickets": [{"subject": "no id"}]}"#, 422, "invalid_ticket"),
    ("POST /rules/9/approve", "", 404, "not_found"),
    ("POST /rules/9/activate", "", 404, "not_found"),
    ("POST /rules/rollback", "", 409, "nothing_to_roll_back"),
];

#[rustfmt::skip]
const INTAKE_REFUSALS: &[Refusal] = &[
    ("POST /tickets", r#"{"id": "T-9", "impact": 7}"#, 422, "invalid_ticket"),
    ("POST /tickets", r#"{"id": "", "subject": "x"}"#, 422, "invalid_ticket"),
    ("POST /tickets", r#"{"id": "T-9", "priority": "p0"}"#, 422, "invalid_body"),
    ("GET /tickets?sla=late", "", 400, "invalid_query"),
    ("GET /tickets?limit=many", "", 400, "invalid_query"),
    ("GET /tickets?colour=red", "", 400, "invalid_query"),
    ("GET /tickets/T-9", "", 404, "not_found"),
    ("POST /tickets/T-9/events", r#"{"type": "responded"}"#, 404, "not_found"),
    ("POST /tickets/T-1/events", r#"{"type": "escalated"}"#, 422, "invalid_event"),
    ("POST /tickets/T-1/events", r#"{"status": "open"}"#, 422, "invalid_event"),
    ("POST /tickets/T-1/events", r#"{"type": "status", "status": ""}"#, 422, "invalid_event"),
    ("POST /tickets/T-1/events", r#"{"type": "priority", "priority": "p9"}"#, 422, "invalid_event"),
    ("POST /tickets/T-1/events", r#"{"type": "updated", "changes": {"impact": 9}}"#, 422, "invalid_event"),
    ("POST /tickets/T-1/events", r#"{"type": "updated", "changes": {"owner": "b"}}"#, 422, "invalid_event"),
    // Dated before the ticket's last event.
    ("POST /tickets/T-1/events", r#"{"type": "responded", "at": "2020-01-01T00:00:00Z"}"#, 409, "out_of_order"),
    ("POST /tickets/T-1/events", r#"{"type": "resolved", "at": "2020-01-01T00:00:00Z"}"#, 409, "out_of_order"),
];

const FALLBACK_ON_UNKNOWN_CALENDAR: &str = r#"{"fallback": {"queue": "q", "party": "msp",
    "tier": 1, "priority": "p3",
    "sla": [{"metric": "resolution", "minutes": 60, "calendar": "nope"}]}}"#;
const FALLBACK_ON_TIER_NINE: &str =
    r#"{"fallback": {"queue": "q", "party": "msp", "tier": 9, "priority": "p3"}}"#;
const CALENDAR_AT_25_OCLOCK: &str =
    r#"{"timezone": "UTC", "hours": {"mon": [["09:00", "25:00"]]}}"#;
const DEADLINE_IN_5: &str = r#"{"start": "2026-03-06T15:00:00Z", "minutes": 5}"#;
const DEADLINE_IN_MINUS_5: &str = r#"{"start": "2026-03-06T15:00:00Z", "minutes": -5}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_values_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "values").await;
    let before = snapshot(&server, &team).await;
    let mut failures = Vec::new();
    for (token, refusals) in [
        (ADMIN_TOKEN, PLATFORM_REFUSALS),
        (team.admin(), ADMIN_REFUSALS),
        (team.intake.key.as_str(), INTAKE_REFUSALS),
    ] {
        for &(request, body, status, code) in refusals {
            let (method, path) = request.split_once(' ').unwrap();
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let path = match path.starts_with("/v1/") {
                true => path.to_owned(),
                false => team.path(path),
            };
            let body = body.replace("VIEWER", &team.viewer.id);
            let json = match body.as_str() {
                "" => Body::None,
                b => Body::Json(serde_json::from_str(b).expect("valid test JSON")),
            };
            let reply = server.call(method.clone(), &path, Some(token), json).await;
            let code_ok = reply.has_error_shape() && reply.body["error"]["code"] == code;
            if reply.status != status || !code_ok {
                failures.push(format!(
                    "{method} {path} {body}: expected {status} {code}, got {} {}",
                    reply.status, reply.text
                ));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert_eq!(snapshot(&server, &team).await, before);
    server
        .get(&team.path("/calendars/mars"), team.admin())
        .await
        .expect_error(404, "not_found");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_paths_and_methods_answer_in_the_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "paths").await;
    let admin = team.admin();
    let mut failures = Vec::new();
    let cases = [
        (Method::POST, team.path("/rules/abc/approve")),
        (Method::POST, team.path("/rules/-1/activate")),
        (Method::POST, team.path("/rules/4294967296/test")),
        (Method::GET, "/v1/nothing-here".to_owned()),
        (Method::GET, team.path("/webhooks-typo")),
        (Method::DELETE, team.path("/settings")),
        (Method::PATCH, team.path("/tickets/T-1")),
        (Method::GET, "/v1/tenants".to_owned()),
    ];
    for (method, path) in cases {
        let body = Body::Json(json!({"tickets": [{"id": "x"}]}));
        let reply = server.call(method.clone(), &path, Some(admin), body).await;
        let shape_ok = reply.has_error_shape();
        if !(400..500).contains(&reply.status) || !shape_ok {
            failures.push(format!(
                "{method} {path}: got {} {:?} {:?}",
                reply.status, reply.content_type, reply.text
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "every error answer is {{\"error\": {{\"code\", \"message\"}}}}:\n{}",
        failures.join("\n")
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_are_validated_and_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("uploads").await;
    let (admin, operator) = (team.admin(), team.operator.key.as_str());
    let rules = team.path("/rules");
    let before = snapshot_rules(&server, &team).await;

    let vip = guest("vip-and-security");
    let mut big = b"\0asm\x0d\0\x01\0".to_vec();
    big.resize((1 << 20) + 1, 0);
    let mut huge = b"\0asm".to_vec();
    huge.resize((32 << 20) + 2, 0);
    let mut garbage_component = b"\0asm\x0d\0\x01\0".to_vec();
    garbage_component.extend_from_slice(b"this is not a component section");
    let cases: Vec<(Option<&'static str>, Vec<u8>, u16, &str)> = vec![
        (
            Some("application/json"),
            vip.clone(),
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/octet-stream"),
            vip.clone(),
            415,
            "unsupported_media_type",
        ),
        (None, vip.clone(), 415, "unsupported_media_type"),
        (
            Some("application/wasm"),
            b"hello, world".to_vec(),
            422,
            "not_wasm",
        ),
        (Some("application/wasm"), Vec::new(), 422, "not_wasm"),
        (
            Some("application/wasm"),
            b"\0asm\x01\0\0\0".to_vec(),
            422,
            "not_a_component",
        ),
        (
            Some("application/wasm"),
            garbage_component,
            422,
            "invalid_component",
        ),
        (
            Some("application/wasm"),
            switchboard_tests::wat::importing("wasi:http/incoming-handler@0.2.3"),
            422,
            "forbidden_import",
        ),
        (Some("application/wasm"), big, 413, "module_too_large"),
        (Some("application/wasm"), huge, 413, "payload_too_large"),
    ];
    for (content_type, bytes, status, code) in cases {
        let size = bytes.len();
        let reply = server
            .call(
                Method::POST,
                &rules,
                Some(operator),
                Body::Raw(content_type, bytes),
            )
            .await;
        assert_eq!(
            (reply.status, reply.error_code()),
            (status, code),
            "{content_type:?}, {size} bytes: {}",
            reply.text
        );
    }
    // The tenant's module limit applies: lowered below the module's size, the upload is
    // refused; back at the default, it is accepted.
    server
        .put(
            &team.path("/settings"),
            admin,
            json!({"limits": {"module_bytes": 32 << 10}}),
        )
        .await
        .expect(200);
    server
        .upload("uploads", operator, vip.clone())
        .await
        .expect_error(413, "module_too_large");
    assert_eq!(snapshot_rules(&server, &team).await, before);
    server
        .put(&team.path("/settings"), admin, json!({}))
        .await
        .expect(200);
    // Nothing refused used up a version number.
    let ok = server.upload("uploads", operator, vip).await;
    assert_eq!(ok.expect(201)["version"], 1);
    server.stop().await;
}

/// The rule list and the rule entries of the audit log.
async fn snapshot_rules(api: &Api, team: &Team) -> (Value, Vec<Value>) {
    let rules = api.get(&team.path("/rules"), team.admin()).await;
    let audit = api.get(&team.path("/audit"), team.admin()).await;
    let rule_entries = audit.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"].as_str().unwrap().starts_with("rule."))
        .cloned()
        .collect();
    (rules.expect(200).clone(), rule_entries)
}

/// An event or a ticket dated in the future is bad input: stored, it would make every later
/// event without `at` "out of order" until that instant, and the SLA figures meaningless.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_in_the_future_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = furnished(&server, "future").await;
    let intake = team.intake.key.as_str();
    let tomorrow = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(24))
        .unwrap()
        .to_string();
    let before = snapshot(&server, &team).await;

    let event = server
        .post(
            &team.path("/tickets/T-1/events"),
            intake,
            json!({"type": "status", "status": "pending_customer", "at": tomorrow}),
        )
        .await;
    let ticket = server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "FUT-1", "created_at": tomorrow}),
        )
        .await;
    for (what, reply) in [("event", &event), ("ticket", &ticket)] {
        assert!(
            (400..500).contains(&reply.status) && reply.has_error_shape(),
            "{what} dated tomorrow: {} {}",
            reply.status,
            reply.text
        );
    }
    assert_eq!(snapshot(&server, &team).await, before);
    // The ticket still takes events as they happen.
    server
        .post(
            &team.path("/tickets/T-1/events"),
            intake,
            json!({"type": "responded"}),
        )
        .await
        .expect(200);
    server.stop().await;
}
