//! Cron schedules end to end: validation with clear errors, the next fire in the schedule's
//! own time zone, the SLA digest per party delivered signed to a real receiver on schedule,
//! changes taking effect at once, and a fire missed while the server was down happening once
//! at start.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::civil::Weekday;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchboard_tests::receiver::{Received, Receiver, fast_delivery};
use switchboard_tests::server::{Team, TestServer};

fn at(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("an instant, not {v}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_checked_and_show_their_next_fire_in_their_zone() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("rhythm").await;
    let path = team.path("/schedules/weekday-digest");
    let put = |body: Value| {
        let (server, path, admin) = (&server, &path, team.admin());
        async move { server.put(path, admin, body).await }
    };

    for (body, code) in [
        (
            json!({"cron": "0 8 * *", "timezone": "UTC", "event": "sla.digest"}),
            "invalid_cron",
        ),
        (
            json!({"cron": "0 8 * * 9", "timezone": "UTC", "event": "sla.digest"}),
            "invalid_cron",
        ),
        (
            json!({"cron": "0 8 1 * 1", "timezone": "UTC", "event": "sla.digest"}),
            "invalid_cron",
        ),
        (
            json!({"cron": "0 0 30 2 *", "timezone": "UTC", "event": "sla.digest"}),
            "invalid_cron",
        ),
        (
            json!({"cron": "0 8 * * 1-5", "timezone": "Mars/Olympus", "event": "sla.digest"}),
            "invalid_timezone",
        ),
        (
            json!({"cron": "*/5 * * * * *", "timezone": "UTC", "event": "sla.digest"}),
            "too_frequent",
        ),
        (
            json!({"cron": "0 8 * * 1-5", "timezone": "UTC", "event": "party"}),
            "invalid_event",
        ),
    ] {
        let reply = put(body.clone()).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.text);
        assert_eq!(reply.error_code(), code, "{body}: {}", reply.text);
    }
    server
        .put(
            &team.path("/schedules/Bad%20Id"),
            team.admin(),
            json!({"cron": "@daily", "timezone": "UTC", "event": "heartbeat"}),
        )
        .await
        .expect_error(422, "invalid_id");
    // Nothing refused was stored.
    let listed = server.get(&team.path("/schedules"), &team.viewer.key).await;
    assert_eq!(listed.expect(200)["schedules"], json!([]));

    let before = Timestamp::now();
    let made =
        put(json!({"cron": "0 8 * * 1-5", "timezone": "America/New_York", "event": "sla.digest"}))
            .await
            .expect(201)
            .clone();
    let next = at(&made["next"]);
    let local = next.to_zoned_datetime(jiff::tz::db().get("America/New_York").unwrap());
    assert!(next > before && next - before <= SignedDuration::from_hours(24 * 4));
    assert!(
        !matches!(local.weekday(), Weekday::Saturday | Weekday::Sunday),
        "1-5 is Monday to Friday, not {:?}",
        local.weekday()
    );
    assert_eq!((local.hour(), local.minute(), local.second()), (8, 0, 0));
    let next_local = made["next_local"].as_str().unwrap();
    assert!(
        next_local.contains("T08:00:00-05:00") || next_local.contains("T08:00:00-04:00"),
        "{next_local}"
    );
    assert_eq!(
        next_local.parse::<Timestamp>().unwrap(),
        next,
        "the same instant"
    );

    // Turned off: kept, no next fire. An operator cannot change it.
    let off = put(json!({"cron": "0 8 * * 1-5", "timezone": "America/New_York", "event": "sla.digest", "enabled": false}))
        .await
        .expect(200)
        .clone();
    assert_eq!(off["next"], Value::Null);
    server
        .put(
            &path,
            &team.operator.key,
            json!({"cron": "@hourly", "timezone": "UTC", "event": "heartbeat"}),
        )
        .await
        .expect_error(403, "forbidden");
    let listed = server.get(&team.path("/schedules"), &team.viewer.key).await;
    let listed = listed.expect(200)["schedules"].clone();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["enabled"], false);
    assert_eq!(listed[0]["cron"], "0 8 * * 1-5");

    server.delete(&path, team.admin()).await.expect(200);
    server
        .delete(&path, team.admin())
        .await
        .expect_error(404, "not_found");
    let audit = server.get(&team.path("/audit"), team.admin()).await;
    let actions: Vec<String> = audit.expect(200)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| a.starts_with("schedule."))
            .collect::<Vec<_>>(),
        ["schedule.put", "schedule.put", "schedule.delete"]
    );
    server.stop().await;
}

/// A fallback plan with a 15-minute first response on `24x7` for `party`.
async fn fallback_for(server: &TestServer, team: &Team, party: &str) {
    let fallback = json!({
        "queue": format!("{party}-desk"), "party": party, "tier": 1, "priority": "p2",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "24x7"}],
        "reason": "plan"
    });
    server.set_fallback(team, fallback).await;
}

/// A ticket created `ago` minutes in the past.
async fn ticket(server: &TestServer, team: &Team, id: &str, ago: i64) {
    let created = Timestamp::now() - SignedDuration::from_mins(ago);
    server
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": id, "subject": format!("ticket {id}"), "created_at": created.to_string()}),
        )
        .await
        .expect(201);
}

async fn schedules_team(server: &TestServer, id: &str, receiver: &Receiver) -> Team {
    let team = server.create_team(id).await;
    receiver.trust(
        server
            .subscribe(&team, &receiver.url(), &["schedule.fired"])
            .await,
    );
    team
}

fn ids(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_digest_arrives_on_schedule_with_the_board_per_party() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let mut receiver = Receiver::start().await;
    let team = schedules_team(&server, "digest", &receiver).await;

    fallback_for(&server, &team, "msp").await;
    ticket(&server, &team, "M-late", 20).await; // breached
    ticket(&server, &team, "M-new", 1).await; // on track
    fallback_for(&server, &team, "internal").await;
    ticket(&server, &team, "I-close", 13).await; // 87% used: at risk (default 75%)
    ticket(&server, &team, "I-late", 16).await; // breached
    ticket(&server, &team, "I-fresh", 2).await; // on track

    let made = server
        .put(
            &team.path("/schedules/pulse"),
            team.admin(),
            json!({"cron": "*/2 * * * * *", "timezone": "Europe/Berlin", "event": "sla.digest"}),
        )
        .await
        .expect(201)
        .clone();
    let planned = at(&made["next"]);

    let first = receiver.next().await;
    assert_eq!(first.verified, 1, "signed with the endpoint's secret");
    assert_eq!(first.body["type"], "schedule.fired");
    let data = &first.body["data"];
    assert_eq!(data["schedule"], "pulse");
    assert_eq!(data["event"], "sla.digest");
    assert_eq!(data["timezone"], "Europe/Berlin");
    let scheduled = at(&data["scheduled_for"]);
    assert_eq!(
        scheduled, planned,
        "the announced next fire is the one that fired"
    );
    assert_eq!(scheduled.as_second() % 2, 0);
    assert_eq!(scheduled.subsec_nanosecond(), 0);
    assert!(
        at(&data["fired_at"]) >= scheduled,
        "never before its instant"
    );
    assert_eq!(
        data["scheduled_for_local"]
            .as_str()
            .unwrap()
            .parse::<Timestamp>()
            .unwrap(),
        scheduled
    );

    let parties = &data["digest"]["parties"];
    assert_eq!(parties["msp"]["breached"], 1);
    assert_eq!(parties["msp"]["at_risk"], 0);
    assert_eq!(
        ids(&parties["msp"]["breached_tickets"]),
        ["M-late".to_owned()].into()
    );
    assert_eq!(parties["internal"]["breached"], 1);
    assert_eq!(parties["internal"]["at_risk"], 1);
    assert_eq!(
        ids(&parties["internal"]["at_risk_tickets"]),
        ["I-close".to_owned()].into()
    );
    assert_eq!(
        ids(&parties["internal"]["breached_tickets"]),
        ["I-late".to_owned()].into()
    );
    let close = &parties["internal"]["at_risk_tickets"][0];
    assert_eq!(close["queue"], "internal-desk");
    assert_eq!(close["subject"], "ticket I-close");
    assert!(close["sla"][0]["percent_elapsed"].as_f64().unwrap() >= 75.0);

    // The next fire is the next even second, not a replay.
    let second = receiver.next().await;
    let later = at(&second.body["data"]["scheduled_for"]);
    assert!(later > scheduled && later.as_second() % 2 == 0, "{later}");
    assert_ne!(second.id, first.id);

    // A change takes effect at once: now a heartbeat (no digest).
    server
        .put(
            &team.path("/schedules/pulse"),
            team.admin(),
            json!({"cron": "*/2 * * * * *", "timezone": "UTC", "event": "heartbeat"}),
        )
        .await
        .expect(200);
    let changed = Timestamp::now();
    let beat = next_fired_after(&mut receiver, changed).await;
    assert_eq!(beat.body["data"]["event"], "heartbeat");
    assert!(beat.body["data"].get("digest").is_none());

    // Deleted: nothing more is scheduled after the deletion.
    server
        .delete(&team.path("/schedules/pulse"), team.admin())
        .await
        .expect(200);
    let deleted = Timestamp::now();
    while let Some(late) = receiver.within(Duration::from_millis(3500)).await {
        assert!(
            at(&late.body["data"]["scheduled_for"]) <= deleted,
            "fired after its deletion: {:?}",
            late.body
        );
    }
    server.stop().await;
}

/// The first delivery of a fire scheduled after `after` (earlier fires still in flight are
/// skipped).
async fn next_fired_after(receiver: &mut Receiver, after: Timestamp) -> Received {
    loop {
        let got = receiver.next().await;
        if at(&got.body["data"]["scheduled_for"]) > after {
            return got;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fire_missed_while_down_happens_once_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut receiver = Receiver::start().await;
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;
    let team = schedules_team(&server, "catchup", &receiver).await;
    server
        .put(
            &team.path("/schedules/beat"),
            team.admin(),
            json!({"cron": "*/2 * * * * *", "timezone": "UTC", "event": "heartbeat"}),
        )
        .await
        .expect(201);
    receiver.next().await;
    server.stop().await;
    let stopped = Timestamp::now();

    // Down through at least two of its instants.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let restarted = Timestamp::now();
    let server = TestServer::start_with(dir.path(), fast_delivery()).await;

    let mut missed = BTreeSet::new();
    let mut after_start = 0;
    let mut seen = BTreeSet::new();
    while after_start < 2 {
        let got = receiver.next().await;
        if !seen.insert(got.id.clone()) {
            continue; // A redelivery of one message.
        }
        let scheduled = at(&got.body["data"]["scheduled_for"]);
        let fired = at(&got.body["data"]["fired_at"]);
        if scheduled < restarted && fired >= restarted {
            assert!(
                scheduled > stopped - SignedDuration::from_secs(1),
                "{scheduled}"
            );
            missed.insert(scheduled);
        } else if scheduled >= restarted {
            after_start += 1;
        }
    }
    assert_eq!(
        missed.len(),
        1,
        "the missed instants fire once, not one by one: {missed:?}"
    );
    server.stop().await;
}
