//! Webhooks end to end: a real receiver on loopback that verifies every signature with its own
//! HMAC code (not the sender's), failure modes (500s, 429 with Retry-After, a receiver that is
//! down then back, dead-letter and manual retry), secret rotation and the outbound URL policy.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_host::webhooks::DeliveryConfig;
use switchboard_tests::guest;
use switchboard_tests::receiver::{PATIENCE, Receiver, fast_delivery, receiver_on};
use switchboard_tests::server::{Team, TestServer};

/// A team with the hostile rule active (category `loop` fails the rule) and an endpoint.
async fn setup(server: &TestServer, id: &str, url: &str) -> (Team, String) {
    let team = server.create_team(id).await;
    server
        .deploy(id, &team.operator.key, team.admin(), guest("hostile"))
        .await;
    let secret = server.subscribe(&team, url, &["rule.failed"]).await;
    (team, secret)
}

async fn fail_a_rule(server: &TestServer, team: &Team, ticket: &str) {
    server
        .post(
            &format!("/v1/tenants/{}/tickets", team.id()),
            &team.intake.key,
            json!({"id": ticket, "category": "loop"}),
        )
        .await
        .expect(201);
}

/// Waits for a delivery's log entry to reach `state`, returning it.
async fn delivery_state(server: &TestServer, team: &Team, msg: &str, state: &str) -> Value {
    let started = Instant::now();
    loop {
        let reply = server
            .get(
                &format!("/v1/tenants/{}/webhooks/ops/deliveries", team.id()),
                &team.viewer.key,
            )
            .await;
        let list = reply.expect(200)["deliveries"].as_array().unwrap().clone();
        if let Some(d) = list.iter().find(|d| d["id"] == msg && d["state"] == state) {
            return d.clone();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "delivery {msg} never reached {state}: {list:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rule_is_delivered_signed_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = setup(&server, "hooks", &receiver.url()).await;
    receiver.trust(secret);

    fail_a_rule(&server, &team, "T-1").await;
    let got = receiver.next().await;
    assert_eq!(
        got.verified, 1,
        "the signature verifies with the endpoint's secret"
    );
    assert!(got.id.starts_with("msg_"));
    assert_eq!(got.body["type"], "rule.failed");
    assert_eq!(got.body["data"]["ticket"], "T-1");
    assert_eq!(got.body["data"]["kind"], "fuel_exhausted");
    assert_eq!(got.body["data"]["fallback"]["queue"], "triage");
    let log = delivery_state(&server, &team, &got.id, "delivered").await;
    assert_eq!(log["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(log["attempts"][0]["status"], 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_that_fails_on_reroute_is_delivered_too() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = setup(&server, "reroute", &receiver.url()).await;
    receiver.trust(secret);

    // Routed fine at creation; the category change re-runs the rule, which now fails.
    server
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": "R-1", "category": "fine"}),
        )
        .await
        .expect(201);
    let reply = server
        .post(
            &team.path("/tickets/R-1/events"),
            &team.operator.key,
            json!({"type": "updated", "changes": {"category": "loop"}}),
        )
        .await;
    assert_eq!(reply.expect(200)["decision"]["queue"], "triage");
    let got = receiver.next().await;
    assert_eq!(got.verified, 1);
    assert_eq!(got.body["type"], "rule.failed");
    assert_eq!(got.body["data"]["ticket"], "R-1");
    assert_eq!(got.body["data"]["kind"], "fuel_exhausted");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_holds_up_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    // Tenant A's receiver accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hang_url = format!("http://{}/hook", hang.local_addr().unwrap());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel();
    let hanging = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = hang.accept().await {
            held.push(socket);
            let _ = accepted_tx.send(());
        }
    });
    let (slow, _) = setup(&server, "slow", &hang_url).await;
    let mut receiver = Receiver::start().await;
    let (fast, secret) = setup(&server, "fast", &receiver.url()).await;
    receiver.trust(secret);

    fail_a_rule(&server, &slow, "S-1").await;
    fail_a_rule(&server, &slow, "S-2").await;
    tokio::time::timeout(PATIENCE, accepted.recv())
        .await
        .expect("tenant A's attempt is in flight");
    // While it hangs, tenant A's intake goes on and tenant B's events are delivered.
    fail_a_rule(&server, &slow, "S-3").await;
    fail_a_rule(&server, &fast, "F-1").await;
    let got = receiver.next().await;
    assert_eq!(got.body["data"]["ticket"], "F-1");
    assert_eq!(got.verified, 1);
    assert!(
        accepted.try_recv().is_err(),
        "tenant A's deliveries wait for its own attempt, one at a time"
    );
    server.stop().await;
    hanging.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_stops_deliveries_already_handed_to_the_worker() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    // A receiver that takes a second to answer 200, and counts what it gets.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (seen_tx, mut seen) = tokio::sync::mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let seen_tx = seen_tx.clone();
            async move {
                let _ = seen_tx.send(());
                tokio::time::sleep(Duration::from_secs(1)).await;
                "ok"
            }
        }),
    );
    let slow = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let (team, _) = setup(&server, "midway", &url).await;

    for id in ["M-1", "M-2", "M-3"] {
        fail_a_rule(&server, &team, id).await;
    }
    tokio::time::timeout(PATIENCE, seen.recv())
        .await
        .expect("the first delivery is in flight");
    let deleted = server
        .delete(&team.path("/webhooks/ops"), team.admin())
        .await;
    assert_eq!(
        deleted.expect(200)["dead_lettered"],
        3,
        "the one in flight is pending too"
    );
    // The in-flight attempt ends (200) after the deletion: that does not revive it, and the
    // worker sends nothing more.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(seen.try_recv().is_err(), "nothing sent after the deletion");
    let log = server
        .get(&team.path("/webhooks/ops/deliveries"), &team.viewer.key)
        .await;
    let states: Vec<String> = log.expect(200)["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["dead", "dead", "dead"]);
    server.stop().await;
    slow.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_and_retry_after_are_retried_with_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = setup(&server, "retries", &receiver.url()).await;
    receiver.trust(secret);
    receiver
        .script
        .lock()
        .unwrap()
        .extend([(500, None), (429, Some("1"))]);

    fail_a_rule(&server, &team, "T-2").await;
    let first = receiver.next().await;
    let second = receiver.next().await;
    let third = receiver.next().await;
    assert_eq!(
        (first.id.as_str(), second.id.as_str()),
        (third.id.as_str(), third.id.as_str())
    );
    assert!(first.verified == 1 && second.verified == 1 && third.verified == 1);
    // The schedule says 200 ms, the receiver's Retry-After says 1 s: the later one wins.
    assert!(
        third.at - second.at >= Duration::from_millis(900),
        "{:?}",
        third.at - second.at
    );
    let log = delivery_state(&server, &team, &first.id, "delivered").await;
    let statuses: Vec<&Value> = log["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(statuses, [&json!(500), &json!(429), &json!(200)]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_is_down_gets_everything_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    // Take a port, then close it: the receiver is "down".
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/hook");
    let server = TestServer::start_with(
        dir.path(),
        DeliveryConfig {
            schedule: vec![
                Duration::ZERO,
                Duration::from_millis(300),
                Duration::from_millis(600),
                Duration::from_millis(1200),
                Duration::from_secs(2),
            ],
            ..fast_delivery()
        },
    )
    .await;
    let (team, secret) = setup(&server, "down", &url).await;
    for n in 0..3 {
        fail_a_rule(&server, &team, &format!("D-{n}")).await;
    }
    // Every delivery has failed at least once against the closed port.
    let started = Instant::now();
    loop {
        let reply = server
            .get(
                &format!("/v1/tenants/{}/webhooks/ops/deliveries", team.id()),
                &team.viewer.key,
            )
            .await;
        let list = reply.expect(200)["deliveries"].as_array().unwrap().clone();
        if list.len() == 3
            && list
                .iter()
                .all(|d| !d["attempts"].as_array().unwrap().is_empty())
        {
            assert!(
                list.iter()
                    .all(|d| d["state"] == "pending" && d["attempts"][0]["error"].is_string())
            );
            break;
        }
        assert!(started.elapsed() < PATIENCE, "{list:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Back up on the same port: all three arrive, none lost.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut receiver = receiver_on(listener).await;
    receiver.trust(secret);
    let mut tickets = Vec::new();
    for _ in 0..3 {
        let got = receiver.next().await;
        assert_eq!(got.verified, 1);
        tickets.push(got.body["data"]["ticket"].as_str().unwrap().to_owned());
    }
    tickets.sort();
    assert_eq!(tickets, ["D-0", "D-1", "D-2"]);
    receiver.task.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_take_a_manual_retry_and_rotation_signs_with_both_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, old) = setup(&server, "dead", &receiver.url()).await;
    receiver.trust(old.clone());
    receiver.script.lock().unwrap().extend([(500, None); 4]);

    fail_a_rule(&server, &team, "X-1").await;
    let mut id = String::new();
    for _ in 0..4 {
        id = receiver.next().await.id;
    }
    let dead = delivery_state(&server, &team, &id, "dead").await;
    assert_eq!(dead["attempts"].as_array().unwrap().len(), 4);
    assert!(dead.get("next_attempt_at").is_none());

    // Rotate: the new secret is shown once; the old one keeps signing during the grace period.
    let reply = server
        .put(
            &format!("/v1/tenants/{}/webhooks/ops", team.id()),
            team.admin(),
            json!({"url": receiver.url(), "events": ["rule.failed"], "rotate_secret": true}),
        )
        .await;
    let new = reply.expect(200)["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    receiver.trust(new);

    // An operator retries the dead letter by hand; it arrives signed with both secrets.
    server
        .post_empty(
            &format!(
                "/v1/tenants/{}/webhooks/ops/deliveries/{id}/retry",
                team.id()
            ),
            &team.operator.key,
        )
        .await
        .expect(200);
    let again = receiver.next().await;
    assert_eq!(again.id, id);
    assert_eq!(again.verified, 2, "one signature per active secret");
    delivery_state(&server, &team, &id, "delivered").await;
    // Viewers may read the log but not retry.
    server
        .post_empty(
            &format!(
                "/v1/tenants/{}/webhooks/ops/deliveries/{id}/retry",
                team.id()
            ),
            &team.viewer.key,
        )
        .await
        .expect_error(403, "forbidden");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_endpoint_dead_letters_what_it_had_pending() {
    let dir = tempfile::tempdir().unwrap();
    let slow_retry = DeliveryConfig {
        schedule: vec![Duration::ZERO, Duration::from_secs(600)],
        ..fast_delivery()
    };
    let server = TestServer::start_with(dir.path(), slow_retry).await;
    let mut receiver = Receiver::start().await;
    receiver.script.lock().unwrap().push_back((500, None));
    let (team, secret) = setup(&server, "gone", &receiver.url()).await;
    receiver.trust(secret);
    let listed = server.get(&team.path("/webhooks"), &team.viewer.key).await;
    let listed = listed.expect(200)["webhooks"].clone();
    assert_eq!(listed[0]["id"], "ops");
    assert_eq!(listed[0]["url"], receiver.url());
    assert!(listed[0].get("secret").is_none() && listed[0].get("secrets").is_none());

    fail_a_rule(&server, &team, "G-1").await;
    let first = receiver.next().await;
    // The failed attempt is logged, and the retry is ten minutes away.
    let pending = loop {
        let d = delivery_state(&server, &team, &first.id, "pending").await;
        if !d["attempts"].as_array().unwrap().is_empty() {
            break d;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(pending["attempts"][0]["status"], 500);

    let deleted = server
        .delete(&team.path("/webhooks/ops"), team.admin())
        .await;
    assert_eq!(deleted.expect(200)["dead_lettered"], 1);
    let dead = delivery_state(&server, &team, &first.id, "dead").await;
    assert_eq!(dead["attempts"][1]["error"], "the endpoint was deleted");
    let listed = server.get(&team.path("/webhooks"), &team.viewer.key).await;
    assert_eq!(listed.expect(200)["webhooks"], json!([]));
    server
        .delete(&team.path("/webhooks/ops"), team.admin())
        .await
        .expect_error(404, "not_found");
    // Nothing more is sent for it.
    fail_a_rule(&server, &team, "G-2").await;
    assert!(receiver.within(Duration::from_millis(500)).await.is_none());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_url_policy_refuses_internal_addresses_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // Default policy: public addresses only.
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("policy").await;
    let path = "/v1/tenants/policy/webhooks/ops";
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "ftp://example.com/x",
    ] {
        server
            .put(
                path,
                team.admin(),
                json!({"url": url, "events": ["rule.failed"]}),
            )
            .await
            .expect_error(422, "invalid_url");
    }
    server
        .put(
            path,
            team.admin(),
            json!({"url": "https://hooks.example.com/x", "events": ["nope"]}),
        )
        .await
        .expect_error(422, "invalid_events");
    server
        .get(&format!("{path}/deliveries"), team.admin())
        .await
        .expect_error(404, "not_found");
    server.stop().await;
}
