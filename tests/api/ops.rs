//! Business-hours calendars and deadlines, and the unauthenticated operational endpoints:
//! health, readiness, Prometheus metrics and the OpenAPI document.

use serde_json::json;
use switchboard_tests::guest;
use switchboard_tests::server::{Body, TestServer, clock};

use super::{berlin_9_to_17, instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn business_hours_calendars_and_deadlines() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("cal").await;
    let (admin, viewer) = (team.admin(), team.viewer.key.as_str());
    let put = server
        .put(&team.path("/calendars/berlin"), admin, berlin_9_to_17())
        .await;
    assert_eq!(put.expect(200)["calendar"], berlin_9_to_17());
    let list = server.get(&team.path("/calendars"), viewer).await;
    let mut ids: Vec<&str> = list.expect(200)["calendars"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["24x7", "berlin"]);

    let deadline = |calendar: &'static str, start: &'static str, minutes: u32| {
        let server = &server;
        let path = team.path(&format!("/calendars/{calendar}/deadline"));
        async move {
            let r = server
                .post(&path, viewer, json!({"start": start, "minutes": minutes}))
                .await;
            instant(&r.expect(200)["due"])
        }
    };
    // Expected instants worked out by hand (CET = UTC+1, CEST from 2026-03-29 = UTC+2):
    // Friday 16:00 CET + 120: 16–17 on Friday, 09–10 on Monday → Monday 10:00 CET.
    assert_eq!(
        deadline("berlin", "2026-03-06T15:00:00Z", 120).await,
        instant(&json!("2026-03-09T09:00:00Z"))
    );
    // Saturday noon + 30: closed all weekend → Monday 09:30 CET.
    assert_eq!(
        deadline("berlin", "2026-03-07T11:00:00Z", 30).await,
        instant(&json!("2026-03-09T08:30:00Z"))
    );
    // Friday 16:30 CET + 60, across the switch to summer time → Monday 09:30 CEST.
    assert_eq!(
        deadline("berlin", "2026-03-27T15:30:00Z", 60).await,
        instant(&json!("2026-03-30T07:30:00Z"))
    );
    // Thursday 16:00 CEST + 120, Good Friday a holiday → Monday 10:00 CEST.
    assert_eq!(
        deadline("berlin", "2026-04-02T14:00:00Z", 120).await,
        instant(&json!("2026-04-06T08:00:00Z"))
    );
    assert_eq!(
        deadline("24x7", "2026-03-07T11:00:00Z", 90).await,
        instant(&json!("2026-03-07T12:30:00Z"))
    );

    // `24x7` is built in.
    server
        .put(&team.path("/calendars/24x7"), admin, berlin_9_to_17())
        .await
        .expect_error(409, "builtin_calendar");
    let builtin = server.get(&team.path("/calendars/24x7"), viewer).await;
    assert_eq!(builtin.expect(200)["builtin"], true);

    // Replacing a calendar takes effect at once: 08–16 instead of 09–17.
    let day = json!([["08:00", "16:00"]]);
    server
        .put(
            &team.path("/calendars/berlin"),
            admin,
            json!({"timezone": "Europe/Berlin", "hours": {"mon": day, "fri": day}}),
        )
        .await
        .expect(200);
    // Friday 15:00 CET + 120: 15–16 on Friday, 08–09 on Monday.
    assert_eq!(
        deadline("berlin", "2026-03-06T14:00:00Z", 120).await,
        instant(&json!("2026-03-09T08:00:00Z"))
    );

    // A ticket's SLA counts on the tenant calendar its decision names.
    let fallback = json!({
        "queue": "biz", "party": "internal", "tier": 1, "priority": "p3",
        "sla": [{"metric": "first_response", "minutes": 120, "calendar": "berlin"}],
    });
    server
        .put(
            &team.path("/settings"),
            admin,
            json!({"fallback": fallback}),
        )
        .await
        .expect(200);
    let t = server
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": "CAL-1", "created_at": "2026-03-06T14:00:00Z"}),
        )
        .await;
    let fr = clock(t.expect(201), "first_response");
    assert_eq!(fr["calendar"], "berlin");
    assert_eq!(instant(&fr["due"]), instant(&json!("2026-03-09T08:00:00Z")));
    assert_eq!(fr["state"], "breached");
    server.stop().await;
}

/// The value of a Prometheus sample `name` (with its labels, if any) in `text`.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {name} in\n{text}"))
        .trim()
        .parse()
        .expect("a number")
}

/// `{tenant}` style parameters, whatever their names.
fn shape(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_metrics_and_openapi() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let health = server
        .call(reqwest::Method::GET, "/healthz", None, Body::None)
        .await;
    assert_eq!(health.expect(200)["status"], "ok");
    let ready = server
        .call(reqwest::Method::GET, "/readyz", None, Body::None)
        .await;
    assert_eq!(ready.expect(200)["status"], "ready");

    let team = server.create_team("ops").await;
    server
        .deploy(
            "ops",
            &team.operator.key,
            team.admin(),
            guest("vip-and-security"),
        )
        .await;
    server
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": "M-1", "category": "security"}),
        )
        .await
        .expect(201);
    let metrics = server
        .call(reqwest::Method::GET, "/metrics", None, Body::None)
        .await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .content_type
            .as_deref()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = &metrics.text;
    assert_eq!(sample(text, "switchboard_rule_evaluations_total"), 1.0);
    assert!(sample(text, "switchboard_rule_fuel_total") > 0.0);
    assert_eq!(
        sample(text, "switchboard_sla_clocks{state=\"running\"}"),
        2.0
    );
    assert_eq!(
        sample(text, "switchboard_sla_clocks{state=\"breached\"}"),
        0.0
    );
    assert!(text.contains("switchboard_http_requests_total{"));

    // Every path of the SPEC's table (this rows) is documented with its method.
    let doc = server
        .call(reqwest::Method::GET, "/openapi.json", None, Body::None)
        .await;
    let doc = doc.expect(200);
    let paths = doc["paths"].as_object().expect("paths");
    let documented: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(|m| (m.to_uppercase(), p.clone()))
                .collect::<Vec<_>>()
        })
        .collect();
    let spec = [
        ("POST", "/v1/tenants"),
        ("POST", "/v1/tenants/{t}/keys"),
        ("DELETE", "/v1/tenants/{t}/keys/{id}"),
        ("PUT", "/v1/tenants/{t}/settings"),
        ("PUT", "/v1/tenants/{t}/config"),
        ("PUT", "/v1/tenants/{t}/calendars/{id}"),
        ("POST", "/v1/tenants/{t}/calendars/{id}/deadline"),
        ("POST", "/v1/tenants/{t}/rules"),
        ("POST", "/v1/tenants/{t}/rules/{v}/test"),
        ("POST", "/v1/tenants/{t}/rules/{v}/approve"),
        ("POST", "/v1/tenants/{t}/rules/{v}/activate"),
        ("POST", "/v1/tenants/{t}/rules/rollback"),
        ("GET", "/v1/tenants/{t}/rules"),
        ("POST", "/v1/tenants/{t}/tickets"),
        ("POST", "/v1/tenants/{t}/tickets/{id}/events"),
        ("GET", "/v1/tenants/{t}/tickets/{id}"),
        ("GET", "/v1/tenants/{t}/tickets"),
        ("GET", "/v1/tenants/{t}/audit"),
        ("PUT", "/v1/tenants/{t}/webhooks/{id}"),
        ("GET", "/v1/tenants/{t}/webhooks/{id}/deliveries"),
        ("PUT", "/v1/tenants/{t}/schedules/{id}"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/openapi.json"),
    ];
    for (method, path) in spec {
        assert!(
            documented
                .iter()
                .any(|(m, p)| m == method && shape(p) == shape(path)),
            "{method} {path} is not in /openapi.json"
        );
    }
    // And everything documented is served: unauthenticated calls get 401, not 404 or 405.
    for (method, path) in &documented {
        let concrete = path
            .split('/')
            .map(|s| match s {
                "{version}" => "1",
                "{asset}" => "app.js",
                s if s.starts_with('{') => "ops",
                s => s,
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = server
            .call(method.clone(), &concrete, None, Body::None)
            .await;
        let public = [
            "/healthz",
            "/readyz",
            "/metrics",
            "/openapi.json",
            "/",
            "/console/{asset}",
        ]
        .contains(&path.as_str());
        if public {
            assert_eq!(r.status, 200, "{method} {concrete}");
        } else {
            r.expect_error(401, "unauthorized");
        }
    }
    server.stop().await;
}
