//! Replays over real HTTP on real stored history: a candidate version evaluated again on the
//! tickets a live version routed, compared with that version, with the stored decisions, or
//! with another version; the summary kept, linked from the version and the audit log; the
//! approval gate and the index of tickets stored before it (`governance`); the export, and the
//! same replay run locally by `switchboard rules replay`.

#[path = "replay/governance.rs"]
mod governance;

use clap::Parser;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use switchboard_host::cli::{Cli, run};
use switchboard_tests::server::{Team, TestServer};
use switchboard_tests::wat::wat_rule;
use switchboard_tests::{guest, guest_path};

/// Tickets of the seeded history, by category: the RACI config routes `erp` and `network` in
/// the co-managed split; the VIP-and-security rule sends `security` to the SOC.
const SEEDED: [(&str, usize); 4] = [("erp", 6), ("network", 4), ("security", 5), ("other", 5)];

const CONFIG: &str = r#"{"raci.erp": "internal 2 erp-team", "raci.network": "msp 2 network-ops"}"#;

fn seeded_total() -> usize {
    SEEDED.iter().map(|(_, n)| n).sum()
}

/// Creation instants one minute apart, the first `n` minutes ago (the newest last).
fn minutes_ago(n: i64) -> Timestamp {
    let now = Timestamp::from_second(Timestamp::now().as_second()).expect("now");
    now - SignedDuration::from_mins(n)
}

/// A team whose VIP-and-security rule (v1, active) routed the seeded tickets, one of which
/// (`other-0`) was re-routed by a priority change; ids are `<category>-<i>`. Returns the
/// creation instant of every ticket, oldest first.
async fn seed(server: &TestServer, id: &str) -> (Team, Vec<(String, Timestamp)>) {
    let team = server.create_team(id).await;
    let config: Value = serde_json::from_str(CONFIG).unwrap();
    server
        .put(&team.path("/config"), team.admin(), config)
        .await
        .expect(200);
    let v1 = server
        .deploy(
            id,
            &team.operator.key,
            &team.admin2.key,
            guest("vip-and-security"),
        )
        .await;
    assert_eq!(v1, 1);
    let mut created = Vec::new();
    let mut age = seeded_total() as i64 + 10;
    for (category, n) in SEEDED {
        for i in 0..n {
            let tid = format!("{category}-{i}");
            let at = minutes_ago(age);
            age -= 1;
            let body = json!({"id": tid, "category": category, "subject": format!("{category} #{i}"),
                "impact": 3, "urgency": 3, "created_at": at.to_string()});
            let t = server
                .post(&team.path("/tickets"), &team.intake.key, body)
                .await;
            assert_eq!(t.expect(201)["rule"]["version"], 1);
            created.push((tid, at));
        }
    }
    let p = json!({"type": "priority", "priority": "p1"});
    let after = server
        .post(&team.path("/tickets/other-0/events"), &team.intake.key, p)
        .await;
    assert_eq!(after.expect(200)["decision"]["priority"], "p1");
    (team, created)
}

async fn replay(server: &TestServer, team: &Team, version: u64, body: Value) -> Value {
    let path = team.path(&format!("/rules/{version}/replay"));
    server
        .post(&path, &team.operator.key, body)
        .await
        .expect(200)
        .clone()
}

fn count(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` is a count: {v}"))
}

/// The decision fields whose values differ, as the summary names them (set-valued ones
/// compared as sets).
fn differing(before: &Value, after: &Value) -> Vec<String> {
    let set = |v: &Value| {
        let mut items: Vec<String> = v
            .as_array()
            .expect("a list")
            .iter()
            .map(Value::to_string)
            .collect();
        items.sort();
        items
    };
    let mut out = Vec::new();
    for f in ["queue", "party", "tier", "priority"] {
        if before[f] != after[f] {
            out.push(f.to_owned());
        }
    }
    for f in ["sla", "escalations", "tags"] {
        if set(&before[f]) != set(&after[f]) {
            out.push(f.to_owned());
        }
    }
    out
}

/// What routes the ticket on one side of a sample: the decision, or the fallback.
fn effective(side: &Value) -> &Value {
    if side.get("decision").is_some() {
        &side["decision"]
    } else {
        &side["fallback"]
    }
}

#[tokio::test]
async fn a_replay_shows_what_a_new_version_would_change_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (team, created) = seed(&server, "acme").await;
    let total = seeded_total() as u64;
    let stored_view = |id: &str| {
        let server = &server;
        let path = team.path(&format!("/tickets/{id}"));
        let token = team.viewer.key.clone();
        async move {
            let t = server.get(&path, &token).await.expect(200).clone();
            json!([t["decision"], t["rule"], t["events"], t["ticket"]])
        }
    };
    let erp_before = stored_view("erp-0").await;

    // v2, the co-managed split, replayed against the active v1.
    let up = server
        .upload("acme", &team.operator.key, guest("co-managed-split"))
        .await;
    assert_eq!(up.expect(201)["version"], 2);
    let s = replay(&server, &team, 2, json!({})).await;
    assert_eq!(
        (
            &s["candidate"],
            &s["against"],
            &s["against_version"],
            &s["complete"]
        ),
        (&json!(2), &json!("active"), &json!(1), &json!(true))
    );
    assert!(s["basis"].as_str().unwrap().contains("current config"));
    assert_eq!(count(&s, "evaluated"), total);
    assert_eq!(count(&s, "unchanged") + count(&s, "changed"), total);
    assert_eq!(s["failed"], json!({"candidate": 0, "against": 0}));
    let samples = s["samples"].as_array().unwrap();
    assert_eq!(samples.len() as u64, count(&s, "changed"));
    // The RACI config moves every ERP ticket to internal IT's erp-team.
    let erp: Vec<&Value> = samples
        .iter()
        .filter(|x| x["ticket"].as_str().unwrap().starts_with("erp-"))
        .collect();
    assert_eq!(erp.len(), 6, "every ERP ticket changed: {s}");
    for sample in &erp {
        let after = &sample["after"]["decision"];
        assert_eq!(
            (&after["queue"], &after["party"]),
            (&json!("erp-team"), &json!("internal"))
        );
    }
    // Each sample's `changed` is exactly where its before and after differ, and `before` is
    // what v1 stored on the ticket.
    let mut per_field = std::collections::BTreeMap::<String, u64>::new();
    for sample in samples {
        let (before, after) = (effective(&sample["before"]), effective(&sample["after"]));
        let fields = differing(before, after);
        assert!(!fields.is_empty());
        assert_eq!(sample["changed"], json!(fields), "{sample}");
        for f in fields {
            *per_field.entry(f).or_default() += 1;
        }
        let id = sample["ticket"].as_str().unwrap();
        let stored = stored_view(id).await;
        assert_eq!(before, &stored[0], "before is the stored decision of {id}");
    }
    for (field, n) in &s["fields"].as_object().unwrap().clone() {
        assert_eq!(
            n.as_u64(),
            Some(per_field.get(field).copied().unwrap_or(0)),
            "{field}"
        );
    }
    let fuel = &s["fuel"]["candidate"];
    assert!(count(fuel, "p50") > 0 && count(fuel, "p50") <= count(fuel, "p99"));
    assert!(count(fuel, "p99") <= count(fuel, "max"));
    assert!(count(&s["fuel"]["against"], "p50") > 0);

    // Nothing stored about tickets changed.
    assert_eq!(stored_view("erp-0").await, erp_before);
    // The summary is kept, and linked from the version and from the audit log.
    let id = s["replay_id"].as_str().unwrap();
    let kept = server
        .get(&team.path(&format!("/replays/{id}")), &team.operator.key)
        .await;
    assert_eq!(kept.expect(200), &s);
    let rules = server.get(&team.path("/rules"), &team.viewer.key).await;
    let v2 = &rules.expect(200)["rules"][1];
    assert_eq!(v2["last_replay"]["replay_id"], id);
    assert_eq!(v2["last_replay"]["changed"], s["changed"]);
    assert_eq!(v2["last_replay"]["by"], team.operator.id.as_str());
    assert_eq!(v2["last_replay"]["against"], "active (1)");
    let audit = server.get(&team.path("/audit"), team.admin()).await;
    let entries = audit.expect(200)["entries"].as_array().unwrap().clone();
    let entry = entries
        .iter()
        .find(|e| e["action"] == "rule.replay")
        .expect("the replay is audited");
    assert_eq!(
        (
            &entry["target"],
            &entry["key_id"],
            &entry["detail"]["replay_id"]
        ),
        (&json!("rules/2"), &json!(team.operator.id), &json!(id))
    );
    assert_eq!(entry["detail"]["changed"], s["changed"]);

    // The active version against the stored decisions changes nothing, including the ticket
    // re-routed by its priority change (replayed on that event, not on its creation).
    let same = replay(&server, &team, 1, json!({"against": "stored"})).await;
    assert_eq!(
        (count(&same, "evaluated"), count(&same, "changed")),
        (total, 0)
    );
    assert_eq!(same["against"], "stored");
    let numbered = replay(&server, &team, 2, json!({"against": 1})).await;
    assert_eq!(numbered["changed"], s["changed"]);
    assert_eq!(numbered["against"], "version");

    // Newest first, up to `limit`; a period; named tickets.
    let newest = replay(&server, &team, 2, json!({"limit": 5, "against": 1})).await;
    assert_eq!(
        (count(&newest, "evaluated"), &newest["complete"]),
        (5, &json!(true))
    );
    let newest_ids: Vec<&str> = newest["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["ticket"].as_str().unwrap())
        .collect();
    let last_five: Vec<&str> = created[created.len() - 5..]
        .iter()
        .map(|(id, _)| id.as_str())
        .collect();
    assert!(
        newest_ids.iter().all(|id| last_five.contains(id)),
        "{newest_ids:?}"
    );
    let (since, until) = (created[2].1, created[8].1);
    let period = replay(
        &server,
        &team,
        2,
        json!({"since": since.to_string(), "until": until.to_string()}),
    )
    .await;
    assert_eq!(
        count(&period, "evaluated"),
        6,
        "[since, until) holds tickets 2 to 7"
    );
    let named = replay(
        &server,
        &team,
        2,
        json!({"ticket_ids": ["erp-1", "no-such", "erp-2"]}),
    )
    .await;
    assert_eq!(
        (count(&named, "evaluated"), count(&named, "not_found")),
        (2, 1)
    );
    assert_eq!(count(&named, "changed"), 2);
    server.stop().await;
}

#[tokio::test]
async fn bad_replays_are_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("bad").await;
    let up = server
        .upload("bad", &team.operator.key, guest("vip-and-security"))
        .await;
    assert_eq!(up.expect(201)["version"], 1);
    let path = team.path("/rules/1/replay");
    let op = &team.operator.key;

    // No history yet: nothing to evaluate, which is an answer, not an error.
    let empty = replay(&server, &team, 1, json!({"against": "stored"})).await;
    assert_eq!(
        (count(&empty, "evaluated"), &empty["complete"]),
        (0, &json!(true))
    );
    // No active version to compare with.
    server
        .post(&path, op, json!({}))
        .await
        .expect_error(409, "no_active_rule");
    // Unknown versions.
    server
        .post(
            &team.path("/rules/9/replay"),
            op,
            json!({"against": "stored"}),
        )
        .await
        .expect_error(404, "not_found");
    server
        .post(&path, op, json!({"against": 9}))
        .await
        .expect_error(404, "not_found");
    for (body, field) in [
        (json!({"limit": 0}), "limit"),
        (json!({"limit": 100_001}), "limit"),
        (json!({"limit": "many"}), "limit"),
        (json!({"since": "yesterday"}), "since"),
        (json!({"until": 5}), "until"),
        (json!({"against": "newest"}), "against"),
        (json!({"against": 0}), "against"),
        (json!({"against": [1]}), "against"),
        (
            json!({"since": "2026-03-02T10:00:00Z", "until": "2026-03-01T10:00:00Z"}),
            "until",
        ),
        (json!({"ticket_ids": []}), "ticket_ids"),
        (json!({"against": "1"}), "against"),
        (json!({"agianst": "stored"}), "agianst"),
    ] {
        let reply = server.post(&path, op, body.clone()).await;
        reply.expect_error(422, "invalid_body");
        let message = reply.body["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{body}: {message}");
    }
    // A viewer may not replay; replay ids that do not exist, or are not ids, are 404.
    server
        .post(&path, &team.viewer.key, json!({"against": "stored"}))
        .await
        .expect_error(403, "forbidden");
    server
        .get(&team.path("/replays/rpl_99"), op)
        .await
        .expect_error(404, "not_found");
    server
        .get(&team.path("/replays/nonsense"), op)
        .await
        .expect_error(404, "not_found");
    let id = empty["replay_id"].as_str().unwrap();
    let padded = id.replace("rpl_", "rpl_0");
    server
        .get(&team.path(&format!("/replays/{padded}")), op)
        .await
        .expect_error(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn a_failing_candidate_reports_failures_per_ticket_never_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("fails").await;
    server
        .deploy(
            "fails",
            &team.operator.key,
            &team.admin2.key,
            guest("vip-and-security"),
        )
        .await;
    for (i, category) in ["panic", "panic", "panic", "desk", "desk"]
        .iter()
        .enumerate()
    {
        let body = json!({"id": format!("F-{i}"), "category": category});
        let t = server
            .post(&team.path("/tickets"), &team.intake.key, body)
            .await;
        t.expect(201);
    }
    // A rule that panics on some tickets.
    let up = server
        .upload("fails", &team.operator.key, guest("hostile"))
        .await;
    assert_eq!(up.expect(201)["status"], "uploaded");
    let s = replay(&server, &team, 2, json!({})).await;
    assert_eq!(count(&s, "evaluated"), 5);
    assert_eq!(s["failed"], json!({"candidate": 3, "against": 0}));
    let kinds = s["errors"]["candidate"].as_object().unwrap();
    assert_eq!(kinds.values().map(|n| n.as_u64().unwrap()).sum::<u64>(), 3);
    for sample in s["samples"].as_array().unwrap() {
        if sample["ticket"].as_str().unwrap() <= "F-2" {
            let after = &sample["after"];
            assert!(
                after["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("gave up"),
                "{after}"
            );
            assert_eq!(
                after["fallback"]["queue"], "triage",
                "the built-in fallback routes it"
            );
        }
    }

    // A rule that cannot start within the tenant's limits `failed` at upload; its replay
    // still answers, with every ticket failed.
    let limits = json!({"limits": {"fuel": 1_000_000, "wall_clock_ms": 1000}});
    server
        .put(&team.path("/settings"), team.admin(), limits)
        .await
        .expect(200);
    let up = server
        .upload("fails", &team.operator.key, wat_rule(Some("spin")))
        .await;
    let record = up.expect(201).clone();
    assert_eq!(record["status"], "failed", "{record}");
    assert_eq!(record["error"]["code"], "cannot_start");
    let s = replay(&server, &team, 3, json!({})).await;
    assert_eq!(count(&s, "evaluated"), 5);
    assert_eq!(s["failed"]["candidate"], 5);
    assert_eq!(s["errors"]["candidate"], json!({"fuel_exhausted": 5}));
    assert_eq!(count(&s, "changed"), 5, "every ticket would fall back");
    server.stop().await;
}

#[tokio::test]
async fn the_export_replays_on_a_laptop_as_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let (team, created) = seed(&server, "laptop").await;
    let up = server
        .upload("laptop", &team.operator.key, guest("co-managed-split"))
        .await;
    assert_eq!(up.expect(201)["version"], 2);
    let on_server = replay(&server, &team, 2, json!({"limit": 100_000})).await;

    let export = server
        .get(&team.path("/tickets/export"), &team.operator.key)
        .await;
    assert_eq!(export.status, 200);
    assert_eq!(export.content_type.as_deref(), Some("application/x-ndjson"));
    let lines: Vec<Value> = export
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), seeded_total());
    let ids: Vec<&str> = lines.iter().map(|l| l["id"].as_str().unwrap()).collect();
    let oldest_first: Vec<&str> = created.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids, oldest_first);
    let rerouted = lines.iter().find(|l| l["id"] == "other-0").unwrap();
    assert_eq!(rerouted["routed_on"]["kind"]["type"], "updated");
    // A period, and a bad one.
    let since = created[15].1.to_string().replace('+', "%2B");
    let recent = server
        .get(
            &team.path(&format!("/tickets/export?since={since}")),
            &team.operator.key,
        )
        .await;
    assert_eq!(recent.text.lines().count(), seeded_total() - 15);
    let bad = server
        .get(
            &team.path("/tickets/export?since=monday"),
            &team.operator.key,
        )
        .await;
    bad.expect_error(400, "invalid_query");
    assert!(
        bad.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("since")
    );
    server
        .get(&team.path("/tickets/export"), &team.viewer.key)
        .await
        .expect_error(403, "forbidden");

    // The same replay, locally.
    let files = tempfile::tempdir().unwrap();
    let history = files.path().join("tickets.ndjson");
    std::fs::write(&history, &export.text).unwrap();
    let config = files.path().join("config.json");
    std::fs::write(&config, CONFIG).unwrap();
    let cache = files.path().join("cache");
    let local = |against: &str| {
        let candidate = guest_path("co-managed-split");
        let args = [
            "switchboard",
            "rules",
            "replay",
            candidate.to_str().unwrap(),
            "--against",
            against,
            history.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ];
        let mut out = Vec::new();
        run(Cli::try_parse_from(args).unwrap(), &mut out).unwrap();
        serde_json::from_slice::<Value>(&out).unwrap()
    };
    let old = guest_path("vip-and-security");
    let summary = local(old.to_str().unwrap());
    for field in ["evaluated", "unchanged", "changed", "failed", "fields"] {
        assert_eq!(summary[field], on_server[field], "{field}");
    }
    // The export runs oldest first, the server's replay newest first.
    let by_ticket = |v: &Value| {
        let mut samples = v["samples"].as_array().unwrap().clone();
        samples.sort_by_key(|s| s["ticket"].as_str().unwrap().to_owned());
        samples
    };
    assert!(
        by_ticket(&summary) == by_ticket(&on_server),
        "the same samples"
    );
    assert!(
        summary["candidate"]
            .as_str()
            .unwrap()
            .contains("co_managed_split")
    );
    let stored = local("stored");
    assert_eq!(stored["changed"], on_server["changed"]);
    server.stop().await;
}
