//! Several `serve` nodes on one PostgreSQL database (a private cluster per test process,
//! `support/postgres.rs`): what one node does is seen by the other, each escalation is fired
//! once while both are alive, one stopped cleanly hands its deliveries over at once, and when
//! one is killed with SIGKILL the survivor delivers every breach, a repeat always under the
//! same `webhook-id`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchboard_host::service::ServiceOptions;
use switchboard_tests::postgres;
use switchboard_tests::process::Node;
use switchboard_tests::receiver::{Received, Receiver, fast_delivery};
use switchboard_tests::server::{Api, Team, TestServer};

/// Two in-process nodes on one new database of this process's cluster.
async fn two_nodes(a: &Path, b: &Path) -> (TestServer, TestServer) {
    let url = postgres::database_for(a);
    let on = |url: &str| ServiceOptions {
        database: Some(url.to_owned()),
        delivery: fast_delivery(),
        ..ServiceOptions::default()
    };
    let first = TestServer::try_start_options(a, on(&url)).await.unwrap();
    let second = TestServer::try_start_options(b, on(&url)).await.unwrap();
    assert!(first.service().store.is_shared() && second.service().store.is_shared());
    (first, second)
}

/// A fallback route with a 15-minute first response on `24x7` and `escalations`.
fn fallback(escalations: Value) -> Value {
    json!({
        "queue": "soc", "party": "msp", "tier": 2, "priority": "p1",
        "sla": [{"metric": "first_response", "minutes": 15, "calendar": "24x7"}],
        "escalations": escalations,
        "reason": "SOC plan"
    })
}

/// Posts ticket `id` to `api` with its 15-minute first response due `left` from now.
async fn ticket_due_in(api: &Api, team: &Team, id: &str, left: Duration) -> u16 {
    let created = Timestamp::now() - SignedDuration::from_secs(15 * 60)
        + SignedDuration::try_from(left).unwrap();
    let created = Timestamp::from_second(created.as_second()).unwrap();
    let body = json!({"id": id, "created_at": created.to_string()});
    api.post(&team.path("/tickets"), &team.intake.key, body)
        .await
        .status
}

/// The ticket and what fired (`breached` or the escalation's label) of a delivery.
fn what(r: &Received) -> (String, String) {
    let data = &r.body["data"];
    let fired = match r.body["type"].as_str().unwrap() {
        "sla.breached" => "breached".to_owned(),
        _ => data["label"].as_str().unwrap().to_owned(),
    };
    (data["ticket"].as_str().unwrap().to_owned(), fired)
}

/// Every delivery until `done` says enough arrived, or `patience` passed since the last one.
async fn collect(
    receiver: &mut Receiver,
    patience: Duration,
    done: impl Fn(&[Received]) -> bool,
) -> Vec<Received> {
    let mut all = Vec::new();
    while !done(&all) {
        match receiver.within(patience).await {
            Some(r) => all.push(r),
            None => break,
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_and_key_made_on_one_node_work_on_the_other_and_a_revocation_is_refused_there() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = two_nodes(a_dir.path(), b_dir.path()).await;
    let team = a.create_team("shared").await;
    // Made on A, used on B: within the views' poll. The viewer key is the team's last.
    let me = team.path("/me");
    let started = Instant::now();
    loop {
        let reply = b.get(&me, &team.viewer.key).await;
        if reply.status == 200 {
            assert_eq!(reply.expect(200)["role"], "viewer");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never accepted the key"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("key made on A accepted on B after {:?}", started.elapsed());

    // The same ticket posted to both at once is stored once: one 201, one 200.
    for i in 0..20 {
        let id = format!("DUP-{i}");
        let body = json!({"id": id, "subject": format!("posted twice {i}")});
        let path = team.path("/tickets");
        let (x, y) = tokio::join!(
            a.post(&path, &team.intake.key, body.clone()),
            b.post(&path, &team.intake.key, body.clone())
        );
        let mut statuses = [x.status, y.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 201], "{id}: {} / {}", x.text, y.text);
    }
    let stored = a.exported_ids(&team).await;
    assert_eq!(stored.len(), 20, "{stored:?}");
    assert_eq!(stored.iter().collect::<BTreeSet<_>>().len(), 20);

    // Revoked on A: refused on B within the bound.
    let revoke = team.path(&format!("/keys/{}", team.operator.id));
    a.delete(&revoke, team.admin()).await.expect(200);
    let started = Instant::now();
    // What A answers the revoked key, B must answer too.
    let refused = a.get(&me, &team.operator.key).await.status;
    assert!((400..500).contains(&refused), "A refuses it: {refused}");
    loop {
        let status = b.get(&me, &team.operator.key).await.status;
        if status == refused {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "B still accepts a key revoked on A after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!(
        "key revoked on A refused on B after {:?}",
        started.elapsed()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_both_nodes_alive_every_escalation_is_fired_exactly_once() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = two_nodes(a_dir.path(), b_dir.path()).await;
    let mut receiver = Receiver::start().await;
    let team = a.create_team("once").await;
    let plan = json!([
        {"metric": "first_response", "trigger": {"percent_elapsed": 50}, "label": "soc-50", "notify": "oncall"},
        {"metric": "first_response", "trigger": {"percent_elapsed": 90}, "label": "soc-90", "notify": "lead"},
        {"metric": "first_response", "trigger": {"minutes_after_due": 0}, "label": "soc-breach", "notify": "duty"}
    ]);
    a.set_fallback(&team, fallback(plan)).await;
    let secret = a
        .subscribe(&team, &receiver.url(), &["sla.escalation", "sla.breached"])
        .await;
    receiver.trust(secret);
    // Seen by B before its tickets are posted.
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 60 tickets, half through each node, due 1 to 8 s from now: 50% and 90% are behind
    // them (they fire at once), then the breach step and the breach itself.
    let n = 60;
    for i in 0..n {
        let node = if i % 2 == 0 { a.api() } else { b.api() };
        let left = Duration::from_millis(1000 + 7000 * i / n);
        let status = ticket_due_in(&node, &team, &format!("X-{i}"), left).await;
        assert_eq!(status, 201);
    }
    let expected = 4 * n as usize;
    let all = collect(&mut receiver, Duration::from_secs(20), |all| {
        all.len() >= expected
    })
    .await;
    // Anything fired twice would come within a few more seconds.
    let mut all = all;
    while let Some(extra) = receiver.within(Duration::from_secs(3)).await {
        all.push(extra);
    }
    let mut count: BTreeMap<(String, String), usize> = BTreeMap::new();
    for r in &all {
        assert_eq!(r.verified, 1, "signed");
        *count.entry(what(r)).or_default() += 1;
    }
    let twice: Vec<_> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "fired more than once: {twice:?}");
    assert_eq!(all.len(), expected, "each of 4 events of {n} tickets, once");
    assert_eq!(count.len(), expected);
    for i in 0..n {
        for fired in ["soc-50", "soc-90", "soc-breach", "breached"] {
            assert!(count.contains_key(&(format!("X-{i}"), fired.to_owned())));
        }
    }
    let ids: BTreeSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), expected, "one webhook-id per event");
    a.stop().await;
    b.stop().await;
}

/// The webhook-ids of the deliveries node `of` holds a lease on, as the database says.
fn leases_of(server: &TestServer, of: &str) -> BTreeSet<String> {
    use switchboard_host::store::{self, LEASES, Order, Span};
    let service = server.service();
    let txn = service.store.read().unwrap();
    store::decoded::<Value>(&txn, LEASES, Span::ALL, Order::Ascending, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|(_, lease)| lease["node"] == of)
        .map(|(key, _)| key.split_once('/').unwrap().1.to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_stopped_cleanly_hands_its_deliveries_over_at_once() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = two_nodes(a_dir.path(), b_dir.path()).await;
    let mut receiver = Receiver::start().await;
    let team = a.create_team("handover").await;
    a.set_fallback(&team, fallback(json!([]))).await;
    let secret = a.subscribe(&team, &receiver.url(), &["sla.breached"]).await;
    receiver.trust(secret);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 20 tickets on A, breaching 2, 3 and 4 s from now. The receiver takes attempts but
    // answers none, so the node that fired a breach has it in flight, or queued behind one
    // (an endpoint's deliveries go one at a time) under a lease it took ahead. A fires its
    // timers when due, B when its poll claims them first: A fires some of the three seconds'.
    receiver.hold.send_replace(true);
    let n = 20;
    let posted = Instant::now();
    for i in 0..n {
        let left = Duration::from_secs(2 + i as u64 % 3);
        let status = ticket_due_in(&a.api(), &team, &format!("H-{i}"), left).await;
        assert_eq!(status, 201);
    }
    tokio::time::sleep((posted + Duration::from_secs(5)).saturating_duration_since(Instant::now()))
        .await;
    let mut all = Vec::new();
    while let Some(r) = receiver.within(Duration::ZERO).await {
        all.push(r);
    }
    let node_a = a.service().deliveries.node().to_owned();
    let leased_by_a = leases_of(&a, &node_a);
    let in_flight_on_a: BTreeSet<String> = all
        .iter()
        .map(|r| r.id.clone())
        .filter(|id| leased_by_a.contains(id))
        .collect();
    assert!(
        !in_flight_on_a.is_empty(),
        "A is sending a breach: {leased_by_a:?}"
    );

    // A stops cleanly: its attempt in flight is abandoned and its leases end with it. B
    // takes its deliveries at its next heartbeat, not once A's heartbeat is DEAD_AFTER old
    // (10 s) and its leases have run out (30 s).
    let stopped = Instant::now();
    a.stop().await;
    let stop_took = stopped.elapsed();
    assert!(
        leases_of(&b, &node_a).is_empty(),
        "A's leases ended when it left"
    );
    receiver.hold.send_replace(false);
    let before = all.len();
    let rest = collect(&mut receiver, Duration::from_secs(8), |got| {
        let seen: BTreeSet<String> = all.iter().chain(got).map(|r| what(r).0).collect();
        seen.len() >= n && got.len() + before >= n + in_flight_on_a.len()
    })
    .await;
    let took = stopped.elapsed();
    all.extend(rest);
    println!(
        "A had {} breaches leased ({} in flight) at its stop; all {n} delivered {took:?} after \
         the stop began (the stop took {stop_took:?})",
        leased_by_a.len(),
        in_flight_on_a.len()
    );
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut sends: BTreeMap<String, usize> = BTreeMap::new();
    for r in &all {
        assert_eq!(r.verified, 1, "signed");
        ids.entry(what(r).0).or_default().insert(r.id.clone());
        *sends.entry(r.id.clone()).or_default() += 1;
    }
    assert_eq!(ids.len(), n, "every breach delivered: {:?}", ids.keys());
    assert!(
        ids.values().all(|set| set.len() == 1),
        "one webhook-id each"
    );
    assert!(took < Duration::from_secs(8), "handed over in {took:?}");
    // Sent twice: exactly A's abandoned attempts, again under their webhook-id.
    let twice: BTreeSet<String> = sends
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id.clone())
        .collect();
    assert_eq!(twice, in_flight_on_a);
    assert!(sends.values().all(|n| *n <= 2));
    // Nothing else comes.
    assert!(receiver.within(Duration::from_secs(2)).await.is_none());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_a_node_is_killed_the_survivor_delivers_every_breach() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let url = postgres::database_for(a_dir.path());
    let a = Node::start_on(a_dir.path(), Some(&url)).await;
    let b = Node::start_on(b_dir.path(), Some(&url)).await;
    let mut receiver = Receiver::start().await;
    let team = a.api.create_team("failover").await;
    a.api.set_fallback(&team, fallback(json!([]))).await;
    let secret = a
        .api
        .subscribe(&team, &receiver.url(), &["sla.breached"])
        .await;
    receiver.trust(secret);
    tokio::time::sleep(Duration::from_secs(1)).await;

    // 200 tickets, posted to both nodes in turn, breaching over the next 10 to 30 s.
    let n = 200;
    let posted = Instant::now();
    for i in 0..n {
        let node = if i % 2 == 0 { &a.api } else { &b.api };
        let left = Duration::from_millis(10_000 + 20_000 * i / n);
        let status = ticket_due_in(node, &team, &format!("F-{i}"), left).await;
        assert_eq!(status, 201, "F-{i}");
    }
    assert!(
        posted.elapsed() < Duration::from_secs(10),
        "posted before the first breach"
    );
    // Breaches are being delivered. Then the receiver stops answering, so a node sending has
    // its attempt in flight (received here, not yet answered), and A is killed meanwhile.
    let mut all = collect(&mut receiver, Duration::from_secs(30), |all| {
        all.len() >= 40
    })
    .await;
    assert!(all.len() >= 40, "breaches before the kill: {}", all.len());
    receiver.hold.send_replace(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    let killed = Instant::now();
    receiver.hold.send_replace(false);
    let unique = |all: &[Received]| all.iter().map(|r| what(r).0).collect::<BTreeSet<_>>().len();
    // The rest: the survivor fires A's timers as well as its own, queues what A had queued
    // once A's heartbeat is 10 s old, and sends A's attempt in flight again once A's lease on
    // it has run out (30 s).
    let patience = Duration::from_secs(45);
    let rest = collect(&mut receiver, patience, |got| {
        let both = || all.iter().chain(got);
        let seen: BTreeSet<String> = both().map(|r| what(r).0).collect();
        // A's attempt in flight, if A had one when it was killed, comes again after its
        // lease: wait for it for a while once everything else is in.
        let repeated = both().count() > seen.len();
        seen.len() >= n as usize && (repeated || killed.elapsed() > Duration::from_secs(45))
    })
    .await;
    all.extend(rest);
    println!(
        "every breach delivered {:?} after the kill; {} deliveries for {} tickets",
        killed.elapsed(),
        all.len(),
        unique(&all)
    );
    let mut ids: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &all {
        assert_eq!(r.verified, 1, "signed");
        assert_eq!(r.body["type"], "sla.breached");
        ids.entry(what(r).0).or_default().insert(r.id.clone());
    }
    let missing: Vec<String> = (0..n)
        .map(|i| format!("F-{i}"))
        .filter(|t| !ids.contains_key(t))
        .collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    for (ticket, set) in &ids {
        assert_eq!(
            set.len(),
            1,
            "{ticket}: a repeat has the same webhook-id: {set:?}"
        );
    }
    println!(
        "repeat deliveries (A's attempts in flight at the kill, sent again): {}",
        all.len() - n as usize
    );
    // Each breach fired once (one message id each) even though both nodes fired timers.
    let messages: BTreeSet<&String> = ids.values().flatten().collect();
    assert_eq!(messages.len(), n as usize);
    drop(b);
}
