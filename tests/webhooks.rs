//! Webhooks end to end: a real receiver on loopback that verifies every signature with its own
//! HMAC code (not the sender's), failure modes (500s, 429 with Retry-After, a receiver that is
//! down then back, dead-letter and manual retry), secret rotation and the outbound URL policy.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_host::webhooks::DeliveryConfig;
use switchboard_tests::guest;
use switchboard_tests::receiver::{PATIENCE, Received, Receiver, fast_delivery, receiver_on};
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

/// A tenant routed by a fallback with a 15-minute first response on `24x7` and the SOC plan
/// (50%, 90%, on breach), an endpoint for SLA events, and no rule: every ticket gets it.
async fn sla_setup(server: &TestServer, id: &str, url: &str) -> (Team, String) {
    let team = server.create_team(id).await;
    let fallback = json!({
        "queue": "soc", "party": "msp", "tier": 2, "priority": "p1",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "24x7"}],
        "escalations": [
            {"metric": "first_response", "trigger": {"percent_elapsed": 50}, "label": "soc-50", "notify": "msp-soc-oncall"},
            {"metric": "first_response", "trigger": {"percent_elapsed": 90}, "label": "soc-90", "notify": "msp-soc-lead"},
            {"metric": "first_response", "trigger": {"minutes_after_due": 0}, "label": "soc-breach", "notify": "duty-manager"}
        ],
        "reason": "SOC plan"
    });
    server.set_fallback(&team, fallback).await;
    let secret = server
        .subscribe(&team, url, &["sla.escalation", "sla.breached"])
        .await;
    (team, secret)
}

/// Creates a ticket whose 15-minute first response is due `left` from now.
async fn ticket_due_in(
    server: &TestServer,
    team: &Team,
    id: &str,
    left: Duration,
) -> jiff::Timestamp {
    let created = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(15 * 60)
        + jiff::SignedDuration::try_from(left).unwrap();
    // SLA time counts whole seconds.
    let created = jiff::Timestamp::from_second(created.as_second()).unwrap();
    server
        .post(
            &format!("/v1/tenants/{}/tickets", team.id()),
            &team.intake.key,
            json!({"id": id, "created_at": created.to_string()}),
        )
        .await
        .expect(201);
    created + jiff::SignedDuration::from_secs(15 * 60)
}

fn label(r: &Received) -> String {
    match r.body["type"].as_str().unwrap() {
        "sla.breached" => "breached".to_owned(),
        _ => r.body["data"]["label"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escalations_fire_in_order_at_their_instants_and_the_breach_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = sla_setup(&server, "esc", &receiver.url()).await;
    receiver.trust(secret);

    // 50% and 90% of the target are already behind us; the breach is 2 s ahead.
    let due = ticket_due_in(&server, &team, "E-1", Duration::from_secs(2)).await;
    let first = receiver.next().await;
    let second = receiver.next().await;
    assert_eq!(
        (label(&first), label(&second)),
        ("soc-50".into(), "soc-90".into())
    );
    assert_eq!(first.body["data"]["notify"], "msp-soc-oncall");
    assert_eq!(
        first.body["data"]["threshold"],
        json!({"percent_elapsed": 50})
    );
    assert_eq!(first.body["data"]["ticket"], "E-1");
    let mut at_due = vec![receiver.next().await, receiver.next().await];
    for r in &at_due {
        assert_eq!(r.verified, 1);
        let now = jiff::Timestamp::now();
        assert!(
            now >= due,
            "nothing fires before due: {now} < {due}: {:?}",
            r.body
        );
    }
    at_due.sort_by_key(label);
    assert_eq!(label(&at_due[0]), "breached");
    assert_eq!(label(&at_due[1]), "soc-breach");
    assert_eq!(at_due[0].body["data"]["due"], json!(due.to_string()));
    // The ticket shows all three escalations fired, none pending.
    let reply = server
        .get(
            &format!("/v1/tenants/{}/tickets/E-1", team.id()),
            &team.viewer.key,
        )
        .await;
    let ticket = reply.expect(200);
    assert_eq!(ticket["escalations"]["fired"].as_array().unwrap().len(), 3);
    assert!(
        ticket["escalations"]["pending"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reroute_that_changes_the_plan_fires_new_steps_and_not_old_ones_again() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = sla_setup(&server, "replan", &receiver.url()).await;
    receiver.trust(secret);

    // 50% is behind us, 90% is 10 minutes ahead.
    ticket_due_in(&server, &team, "P-1", Duration::from_secs(7 * 60)).await;
    assert_eq!(label(&receiver.next().await), "soc-50");

    // The plan changes: the 50% step stays, a new first step (a 40% one) comes before it.
    let fallback = json!({
        "queue": "soc", "party": "msp", "tier": 2, "priority": "p1",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "24x7"}],
        "escalations": [
            {"metric": "first_response", "trigger": {"percent_elapsed": 40}, "label": "soc-40", "notify": "msp-soc-oncall"},
            {"metric": "first_response", "trigger": {"percent_elapsed": 50}, "label": "soc-50", "notify": "msp-soc-oncall"}
        ],
        "reason": "SOC plan, revised"
    });
    server.set_fallback(&team, fallback).await;
    server
        .post(
            &team.path("/tickets/P-1/events"),
            &team.intake.key,
            json!({"type": "priority", "priority": "p1"}),
        )
        .await
        .expect(200);
    let got = receiver.next().await;
    assert_eq!(
        label(&got),
        "soc-40",
        "the new step at a fired step's place fires"
    );
    assert!(
        receiver.within(Duration::from_millis(800)).await.is_none(),
        "the unchanged 50% step does not fire again"
    );
    let ticket = server
        .get(&team.path("/tickets/P-1"), &team.viewer.key)
        .await;
    let fired: Vec<String> = ticket.expect(200)["escalations"]["fired"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["label"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(fired, ["soc-40", "soc-50"]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_calendar_change_moves_pending_timers() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let team = server.create_team("recal").await;
    // Open around the clock, but yesterday, today and tomorrow are holidays.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let days: Vec<String> = [-1, 0, 1]
        .iter()
        .map(|d| (today + jiff::Span::new().days(*d)).to_string())
        .collect();
    let all_day = json!([["00:00", "24:00"]]);
    let hours = json!({"mon": all_day, "tue": all_day, "wed": all_day, "thu": all_day,
                       "fri": all_day, "sat": all_day, "sun": all_day});
    let calendar =
        |holidays: &[String]| json!({"timezone": "UTC", "hours": hours, "holidays": holidays});
    server
        .put(&team.path("/calendars/desk"), team.admin(), calendar(&days))
        .await
        .expect(200);
    let fallback = json!({
        "queue": "desk", "party": "msp", "tier": 1, "priority": "p2",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "desk"}],
        "reason": "desk plan"
    });
    server.set_fallback(&team, fallback).await;
    receiver.trust(
        server
            .subscribe(&team, &receiver.url(), &["sla.breached"])
            .await,
    );

    // Created 14 min 58 s ago, but the clock has not run: due after the holidays.
    let created =
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() - (15 * 60 - 2)).unwrap();
    server
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": "C-1", "created_at": created.to_string()}),
        )
        .await
        .expect(201);
    assert!(receiver.within(Duration::from_secs(3)).await.is_none());

    // The holidays are withdrawn: the deadline is now, and the breach fires at once.
    let reply = server
        .put(&team.path("/calendars/desk"), team.admin(), calendar(&[]))
        .await;
    assert_eq!(reply.expect(200)["replanned"], 1);
    let got = receiver.next().await;
    assert_eq!(got.body["type"], "sla.breached");
    assert_eq!(got.body["data"]["ticket"], "C-1");
    let due = created + jiff::SignedDuration::from_mins(15);
    assert_eq!(got.body["data"]["due"], json!(due.to_string()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_clock_delays_and_a_met_target_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let (team, secret) = sla_setup(&server, "pause", &receiver.url()).await;
    receiver.trust(secret);
    let events = format!("/v1/tenants/{}/tickets/P-1/events", team.id());

    let due = ticket_due_in(&server, &team, "P-1", Duration::from_secs(1)).await;
    assert_eq!(label(&receiver.next().await), "soc-50");
    assert_eq!(label(&receiver.next().await), "soc-90");
    server
        .post(
            &events,
            &team.intake.key,
            json!({"type": "status", "status": "pending_customer"}),
        )
        .await
        .expect(200);
    // Paused through the old due instant: nothing fires.
    let paused = Instant::now();
    let quiet = receiver.within(Duration::from_millis(2500)).await;
    assert!(quiet.is_none(), "a paused clock must not breach: {quiet:?}");
    server
        .post(
            &events,
            &team.intake.key,
            json!({"type": "status", "status": "open"}),
        )
        .await
        .expect(200);
    let breach = receiver.next().await;
    assert!(
        jiff::Timestamp::now()
            > due + jiff::SignedDuration::try_from(paused.elapsed()).unwrap()
                - jiff::SignedDuration::from_millis(1500)
    );
    assert!(["breached", "soc-breach"].contains(&label(&breach).as_str()));

    // A target met before its escalations cancels them.
    ticket_due_in(&server, &team, "M-1", Duration::from_secs(600)).await;
    let reply = server
        .post(
            &format!("/v1/tenants/{}/tickets/M-1/events", team.id()),
            &team.intake.key,
            json!({"type": "responded"}),
        )
        .await;
    let ticket = reply.expect(200);
    assert!(
        ticket["escalations"]["pending"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{ticket}"
    );
    assert!(
        ticket["escalations"]["fired"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_due_while_the_server_was_down_fire_at_once_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start().await;
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let (team, secret) = sla_setup(&server, "restart", &receiver.url()).await;
    receiver.trust(secret);
    let due = ticket_due_in(&server, &team, "R-1", Duration::from_millis(1500)).await;
    let first = receiver.next().await;
    assert_eq!(label(&first), "soc-50");
    server.stop().await;
    // Down past the due instant.
    while jiff::Timestamp::now() < due + jiff::SignedDuration::from_millis(300) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let restarted = TestServer::start_with(dir.path(), fast_delivery()).await;
    // At least once: a delivery in flight at the stop may come again, with the same id.
    let mut seen: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    while !(seen.values().any(|l| l == "breached") && seen.values().any(|l| l == "soc-breach")) {
        let got = receiver.next().await;
        assert_eq!(got.verified, 1);
        let l = label(&got);
        if let Some(previous) = seen.insert(got.id.clone(), l.clone()) {
            assert_eq!(
                previous, l,
                "a duplicate carries the same webhook-id and body"
            );
        }
    }
    assert!(jiff::Timestamp::now() >= due);
    restarted.stop().await;
}
