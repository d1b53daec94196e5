//! SLA timers end to end: escalation steps and breaches arrive at the receiver at their
//! instants, in order, signed; a pause delays them, a met target cancels them, a re-route
//! that changes the plan fires only the new steps, a calendar change moves them, and timers
//! due while the server was down fire at once after a restart.

use std::time::Duration;

use serde_json::json;
use switchboard_tests::receiver::{Received, Receiver, fast_delivery};
use switchboard_tests::server::{Team, TestServer};

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

    // Due 2 to 3 s from now: time to pause it first, even on a loaded machine.
    let due = ticket_due_in(&server, &team, "P-1", Duration::from_secs(3)).await;
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
    // Paused through the old due instant and 2.5 s past it: nothing fires.
    let paused = jiff::Timestamp::now();
    let left = due - paused;
    let to_due = Duration::try_from(left).unwrap_or_default();
    let quiet = receiver.within(to_due + Duration::from_millis(2500)).await;
    assert!(quiet.is_none(), "a paused clock must not breach: {quiet:?}");
    let resumed = jiff::Timestamp::now();
    server
        .post(
            &events,
            &team.intake.key,
            json!({"type": "status", "status": "open"}),
        )
        .await
        .expect(200);
    // The time that was left runs from the resume (SLA time counts whole seconds: the pause
    // and the resume may each move it by one).
    let breach = receiver.next().await;
    let breached = jiff::Timestamp::now();
    assert!(
        breached >= resumed + left - jiff::SignedDuration::from_secs(2),
        "breached at {breached}, resumed at {resumed} with {left} left"
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
