//! A restart on the same data directory: tenants, keys, rules (the active version routes
//! without a re-upload), tickets and the audit log are all still there.

use serde_json::json;
use switchboard_tests::guest;
use switchboard_tests::server::{ADMIN_TOKEN, TestServer, clock};

use super::{berlin_9_to_17, instant, now_s, plus};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_on_the_same_data_dir_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("persist").await;
    let (admin, viewer, intake) = (team.admin(), &team.viewer.key, &team.intake.key);
    server
        .put(&team.path("/calendars/berlin"), admin, berlin_9_to_17())
        .await
        .expect(200);
    server
        .put(&team.path("/config"), admin, json!({"calendar": "berlin"}))
        .await
        .expect(200);
    server
        .deploy(
            "persist",
            &team.operator.key,
            admin,
            guest("vip-and-security"),
        )
        .await;
    let c = plus(now_s(), -10);
    server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "P-1", "category": "security", "created_at": c.to_string()}),
        )
        .await
        .expect(201);
    server
        .post(
            &team.path("/tickets/P-1/events"),
            intake,
            json!({"type": "responded", "at": plus(c, 1).to_string()}),
        )
        .await
        .expect(200);
    server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "P-2", "category": "printing", "created_at": "2026-03-06T15:00:00Z"}),
        )
        .await
        .expect(201);
    let reads = [
        ("/rules", admin),
        ("/audit", admin),
        ("/keys", admin),
        ("/settings", admin),
        ("/config", admin),
        ("/calendars", viewer),
        ("/calendars/berlin", viewer),
    ];
    let mut before = Vec::new();
    for (path, key) in reads {
        before.push(server.get(&team.path(path), key).await.expect(200).clone());
    }
    let p1 = server
        .get(&team.path("/tickets/P-1"), viewer)
        .await
        .expect(200)
        .clone();
    let p2 = server
        .get(&team.path("/tickets/P-2"), viewer)
        .await
        .expect(200)
        .clone();

    server.stop().await;
    let server = restart(dir.path()).await;

    for ((path, key), old) in reads.into_iter().zip(&before) {
        let now = server.get(&team.path(path), key).await;
        assert_eq!(now.expect(200), old, "{path} after the restart");
    }
    for old in [&p1, &p2] {
        let id = old["ticket"]["id"].as_str().unwrap();
        let now = server
            .get(&team.path(&format!("/tickets/{id}")), viewer)
            .await;
        let now = now.expect(200);
        for field in ["ticket", "decision", "rule", "events"] {
            assert_eq!(now[field], old[field], "{id}.{field} after the restart");
        }
        for metric in ["first_response", "resolution"] {
            let (a, b) = (clock(now, metric), clock(old, metric));
            assert_eq!(
                (&a["due"], &a["calendar"]),
                (&b["due"], &b["calendar"]),
                "{id} {metric}"
            );
        }
    }
    // P-2 was routed to the service desk on the stored Berlin calendar.
    assert_eq!(
        instant(&clock(&p2, "first_response")["due"]),
        instant(&json!("2026-03-09T09:00:00Z")),
        "120 business minutes from Friday 16:00 CET: one hour on Friday, one on Monday"
    );
    // The active rule still routes, without a re-upload; keys still authenticate.
    let p3 = server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "P-3", "category": "security"}),
        )
        .await;
    let p3 = p3.expect(201);
    assert_eq!(
        (
            &p3["decision"]["queue"],
            &p3["rule"]["version"],
            &p3["rule"]["fallback"]
        ),
        (&json!("soc"), &json!(1), &json!(false))
    );
    server
        .post(&team.path("/tickets"), intake, json!({"id": "P-1"}))
        .await
        .expect(200);
    server
        .post(
            &team.path("/rules/1/test"),
            &team.operator.key,
            json!({"tickets": [{"id": "x"}]}),
        )
        .await
        .expect(200);
    server
        .post(
            "/v1/tenants",
            ADMIN_TOKEN,
            json!({"id": "persist", "name": "again"}),
        )
        .await
        .expect_error(409, "tenant_exists");
    server.stop().await;
}

/// Starts a server on a data directory a stopped server has just let go of.
async fn restart(data_dir: &std::path::Path) -> TestServer {
    match TestServer::try_start(data_dir).await {
        Ok(s) => s,
        Err(e) => panic!(
            "restart on the same data directory failed: {e} \
             (the previous server's serve task ended and every handle on its service was dropped)"
        ),
    }
}

/// `stop` hands the data directory back at once, every time: a supervisor (or a test) can
/// start the next server on it without waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_server_releases_the_data_dir_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path()).await;
    let team = server.create_team("cycle").await;
    for round in 0..5 {
        let id = format!("CY-{round}");
        server
            .post(
                &team.path("/tickets"),
                &team.intake.key,
                json!({ "id": id }),
            )
            .await
            .expect(201);
        server.stop().await;
        server = restart(dir.path()).await;
        let all = server.get(&team.path("/tickets"), &team.viewer.key).await;
        let count = all.expect(200)["tickets"].as_array().unwrap().len();
        assert_eq!(count, round + 1, "every ticket survives round {round}");
    }
    server.stop().await;
}
