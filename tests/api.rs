//! The service end to end over real HTTP on loopback, with a real redb file and real wasm
//! rules: the rule lifecycle from a new tenant to a rollback, the fallback decision,
//! idempotent ticket creation; a restart on the same data directory (`restart`); calendars
//! and the operational endpoints (`ops`); the audit log's filters and `me` (`audit`).

#[path = "api/audit.rs"]
mod audit;
#[path = "api/ops.rs"]
mod ops;
#[path = "api/restart.rs"]
mod restart;

use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchboard_tests::guest;
use switchboard_tests::server::{Reply, TestServer, board_ids, clock};

/// Now, truncated to the second (so instants compare exactly after a JSON round trip).
fn now_s() -> Timestamp {
    Timestamp::from_second(Timestamp::now().as_second()).expect("now")
}

fn plus_secs(t: Timestamp, secs: i64) -> Timestamp {
    t.checked_add(SignedDuration::from_secs(secs))
        .expect("in range")
}

fn plus(t: Timestamp, minutes: i64) -> Timestamp {
    plus_secs(t, minutes * 60)
}

#[track_caller]
fn instant(v: &Value) -> Timestamp {
    v.as_str()
        .unwrap_or_else(|| panic!("an RFC 3339 instant, got {v}"))
        .parse()
        .expect("RFC 3339")
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `(action, key_id, target, sha256)` of every audit entry.
fn audit_rows(reply: &Reply) -> Vec<(String, String, String, Option<String>)> {
    let entries = reply.expect(200)["entries"].as_array().expect("entries");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "sequence numbers count from 1: {e}");
        instant(&e["at"]);
    }
    entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().expect("action").to_owned(),
                e["key_id"].as_str().expect("key_id").to_owned(),
                e["target"].as_str().expect("target").to_owned(),
                e["sha256"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn row(
    action: &str,
    who: &str,
    target: &str,
    sha: Option<&str>,
) -> (String, String, String, Option<String>) {
    (
        action.to_owned(),
        who.to_owned(),
        target.to_owned(),
        sha.map(str::to_owned),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_from_a_new_tenant_to_a_rollback() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("acme").await;
    let (admin, admin2) = (team.admin(), team.admin2.key.as_str());
    let (operator, intake, viewer) = (
        team.operator.key.as_str(),
        team.intake.key.as_str(),
        team.viewer.key.as_str(),
    );
    let admin_id = team.tenant.admin.id.as_str();

    let keys = server.get(&team.path("/keys"), admin).await;
    let mut roles: Vec<&str> = keys.expect(200)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["role"].as_str().unwrap())
        .collect();
    roles.sort_unstable();
    assert_eq!(roles, ["admin", "admin", "intake", "operator", "viewer"]);
    assert!(
        !keys.text.contains(&team.viewer.key),
        "keys are shown once, never listed"
    );

    // The operator uploads v1; it waits for internal IT's approval.
    let vip = guest("vip-and-security");
    let sha1 = sha256_hex(&vip);
    let up = server.upload("acme", operator, vip).await;
    let up = up.expect(201);
    assert_eq!(
        (&up["version"], up["sha256"].as_str(), &up["status"]),
        (&json!(1), Some(sha1.as_str()), &json!("uploaded"))
    );
    server
        .post_empty(&team.path("/rules/1/approve"), operator)
        .await
        .expect_error(403, "forbidden");
    server
        .post_empty(&team.path("/rules/1/activate"), admin)
        .await
        .expect_error(409, "not_approved");
    let rules = server.get(&team.path("/rules"), viewer).await;
    assert_eq!(rules.expect(200)["active"], Value::Null);
    assert_eq!(rules.body["rules"][0]["status"], "uploaded");

    let approved = server
        .post_empty(&team.path("/rules/1/approve"), admin)
        .await;
    let approved = approved.expect(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["approved_by"], admin_id);
    assert_eq!(approved["uploaded_by"], team.operator.id.as_str());
    let active = server
        .post_empty(&team.path("/rules/1/activate"), admin)
        .await;
    assert_eq!(active.expect(200)["status"], "active");

    // A dry run routes without storing anything.
    let dry = server
        .post(
            &team.path("/rules/1/test"),
            operator,
            json!({"tickets": [{"id": "DRY-1", "category": "security"}, {"id": "DRY-2"}]}),
        )
        .await;
    let results = dry.expect(200)["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["decision"]["queue"], "soc");
    assert_eq!(results[1]["decision"]["queue"], "service-desk");
    assert!(results[0]["fuel"].as_u64().unwrap() > 0);
    server
        .get(&team.path("/tickets/DRY-1"), viewer)
        .await
        .expect_error(404, "not_found");

    // A security ticket: SOC, p1, 15 minutes to first response around the clock.
    let c = plus(now_s(), -10);
    let s1 = server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "S-1", "subject": "phishing", "category": "security",
                   "impact": 2, "urgency": 2, "requester": {"email": "cfo@acme.test", "vip": true},
                   "created_at": c.to_string()}),
        )
        .await;
    let s1 = s1.expect(201);
    assert_eq!(s1["id"], "S-1");
    let d = &s1["decision"];
    assert_eq!(
        (&d["queue"], &d["party"], &d["tier"], &d["priority"]),
        (&json!("soc"), &json!("msp"), &json!(2), &json!("p1"))
    );
    let fr = clock(s1, "first_response");
    assert_eq!(
        (&fr["minutes"], &fr["calendar"]),
        (&json!(15), &json!("24x7"))
    );
    assert_eq!(instant(&fr["due"]), plus(c, 15));
    assert_eq!(fr["state"], "running");
    assert_eq!(instant(&clock(s1, "resolution")["due"]), plus(c, 240));
    assert_eq!(s1["rule"]["version"], 1);
    assert_eq!(s1["rule"]["fallback"], false);
    assert!(s1["rule"]["fuel"].as_u64().unwrap() > 0, "{}", s1["rule"]);
    assert!(s1["rule"].get("error").is_none());

    // Events move the clocks.
    let events = team.path("/tickets/S-1/events");
    let ev = |body: Value| {
        let server = &server;
        let events = events.clone();
        async move { server.post(&events, intake, body).await }
    };
    let r = ev(json!({"type": "responded", "at": plus(c, 2).to_string()})).await;
    let fr = clock(r.expect(200), "first_response");
    assert_eq!(
        (&fr["state"], instant(&fr["due"])),
        (&json!("met"), plus(c, 15))
    );
    let r =
        ev(json!({"type": "status", "status": "pending_customer", "at": plus(c, 3).to_string()}))
            .await;
    let res = clock(r.expect(200), "resolution");
    assert_eq!(
        (&res["state"], &res["due"]),
        (&json!("paused"), &Value::Null)
    );
    assert_eq!(r.body["ticket"]["status"], "pending_customer");
    let r = ev(json!({"type": "status", "status": "open", "at": plus(c, 8).to_string()})).await;
    let res = clock(r.expect(200), "resolution");
    assert_eq!(res["state"], "running");
    assert_eq!(
        instant(&res["due"]),
        plus(c, 245),
        "five paused minutes move the due"
    );
    let r = ev(json!({"type": "resolved", "at": plus(c, 9).to_string()})).await;
    assert_eq!(clock(r.expect(200), "resolution")["state"], "met");
    assert_eq!(r.body["ticket"]["status"], "resolved");
    let reopened_at = plus_secs(c, 9 * 60 + 30);
    let r = ev(json!({"type": "reopened", "at": reopened_at.to_string()})).await;
    let res = clock(r.expect(200), "resolution");
    assert_eq!((&res["state"], &res["run"]), (&json!("running"), &json!(2)));
    assert_eq!(instant(&res["due"]), plus(reopened_at, 240));
    let read = server.get(&team.path("/tickets/S-1"), viewer).await;
    let kinds: Vec<&str> = read.expect(200)["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["by"], team.intake.id.as_str());
            e["type"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        kinds,
        ["responded", "status", "status", "resolved", "reopened"]
    );
    assert_eq!(read.body["ticket"]["queue"], "soc");

    // The SLA board: breached and at-risk tickets, each on its own list.
    let printing = |id: &str, ago: i64| json!({"id": id, "category": "printing", "created_at": plus(now_s(), -ago).to_string()});
    let b1 = server
        .post(&team.path("/tickets"), intake, printing("B-1", 180))
        .await;
    assert_eq!(clock(b1.expect(201), "first_response")["state"], "breached");
    let r1 = server
        .post(&team.path("/tickets"), intake, printing("R-1", 100))
        .await;
    let fr = clock(r1.expect(201), "first_response");
    assert_eq!(
        (&fr["state"], &fr["minutes"]),
        (&json!("running"), &json!(120))
    );
    let breached = board_ids(
        &server
            .get(&team.path("/tickets?sla=breached"), viewer)
            .await,
    );
    assert_eq!(breached, ["B-1"]);
    let at_risk = board_ids(&server.get(&team.path("/tickets?sla=at_risk"), viewer).await);
    assert_eq!(at_risk, ["R-1"]);
    let mut all = board_ids(&server.get(&team.path("/tickets"), viewer).await);
    all.sort();
    assert_eq!(all, ["B-1", "R-1", "S-1"]);

    // v2 by an admin: four-eyes keeps that admin from approving it; the other admin does.
    server
        .put(
            &team.path("/config"),
            admin,
            json!({"raci.erp": "internal 2 erp-team"}),
        )
        .await
        .expect(200);
    let split = guest("co-managed-split");
    let sha2 = sha256_hex(&split);
    let up = server.upload("acme", admin, split).await;
    assert_eq!(up.expect(201)["version"], 2);
    let own = server
        .post_empty(&team.path("/rules/2/approve"), admin)
        .await;
    own.expect_error(403, "forbidden");
    assert!(
        own.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("four-eyes")
    );
    let ok2 = server
        .post_empty(&team.path("/rules/2/approve"), admin2)
        .await;
    assert_eq!(ok2.expect(200)["approved_by"], team.admin2.id.as_str());
    server
        .post_empty(&team.path("/rules/2/activate"), admin)
        .await
        .expect(200);

    // v2 routes by the RACI config, and a priority change recomputes the targets.
    let c2 = plus(now_s(), -30);
    let e1 = server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "E-1", "category": "erp", "created_at": c2.to_string()}),
        )
        .await;
    let e1 = e1.expect(201);
    assert_eq!(
        (
            &e1["decision"]["queue"],
            &e1["decision"]["party"],
            &e1["decision"]["priority"]
        ),
        (&json!("erp-team"), &json!("internal"), &json!("p4"))
    );
    assert_eq!(clock(e1, "first_response")["minutes"], 480);
    assert_eq!(e1["rule"]["version"], 2);
    let p = server
        .post(
            &team.path("/tickets/E-1/events"),
            intake,
            json!({"type": "priority", "priority": "p1", "at": plus(c2, 10).to_string()}),
        )
        .await;
    let p = p.expect(200);
    assert_eq!(p["decision"]["priority"], "p1");
    assert_eq!(p["ticket"]["priority"], "p1");
    let fr = clock(p, "first_response");
    assert_eq!(
        (&fr["minutes"], &fr["calendar"]),
        (&json!(15), &json!("24x7"))
    );
    assert_eq!(
        instant(&fr["due"]),
        plus(c2, 15),
        "retroactive from creation"
    );
    assert_eq!(fr["state"], "breached");
    assert_eq!(clock(p, "resolution")["minutes"], 240);

    // Rollback re-activates v1.
    let back = server
        .post_empty(&team.path("/rules/rollback"), admin)
        .await;
    let back = back.expect(200);
    assert_eq!(
        (&back["version"], &back["status"]),
        (&json!(1), &json!("active"))
    );
    let s2 = server
        .post(
            &team.path("/tickets"),
            intake,
            json!({"id": "S-2", "category": "security"}),
        )
        .await;
    assert_eq!(s2.expect(201)["decision"]["queue"], "soc");
    assert_eq!(s2.body["rule"]["version"], 1);

    let rules = server.get(&team.path("/rules"), viewer).await;
    let rules = rules.expect(200);
    assert_eq!(rules["active"], 1);
    let versions = rules["rules"].as_array().unwrap();
    assert_eq!(versions.len(), 2);
    for (v, status, sha, uploader, approver) in [
        (&versions[0], "active", &sha1, &team.operator.id, admin_id),
        (
            &versions[1],
            "retired",
            &sha2,
            &team.tenant.admin.id,
            team.admin2.id.as_str(),
        ),
    ] {
        assert_eq!(v["status"], status, "{v}");
        assert_eq!(v["sha256"], sha.as_str(), "{v}");
        assert_eq!(v["uploaded_by"], uploader.as_str(), "{v}");
        assert_eq!(v["approved_by"], approver, "{v}");
    }

    // The audit log: who did what, with the module's sha256 on rule actions. Refused
    // attempts leave no entry.
    let rows = audit_rows(&server.get(&team.path("/audit"), admin).await);
    assert_eq!(
        rows[0],
        row("tenant.create", "platform-admin", "acme", None)
    );
    let key_creates = rows.iter().filter(|r| r.0 == "key.create").count();
    assert_eq!(key_creates, 5, "{rows:?}");
    let rule_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.0.starts_with("rule."))
        .cloned()
        .collect();
    let (op, a1, a2) = (team.operator.id.as_str(), admin_id, team.admin2.id.as_str());
    assert_eq!(
        rule_rows,
        [
            row("rule.upload", op, "rules/1", Some(&sha1)),
            row("rule.approve", a1, "rules/1", Some(&sha1)),
            row("rule.activate", a1, "rules/1", Some(&sha1)),
            row("rule.upload", a1, "rules/2", Some(&sha2)),
            row("rule.approve", a2, "rules/2", Some(&sha2)),
            row("rule.activate", a1, "rules/2", Some(&sha2)),
            row("rule.rollback", a1, "rules/1", Some(&sha1)),
        ]
    );
    assert!(rows.contains(&row("config.put", a1, "config", None)));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_or_missing_rules_fall_back_and_keep_the_ticket() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("fb").await;
    let (admin, intake) = (team.admin(), team.intake.key.as_str());
    let tickets = team.path("/tickets");

    // No active rule: the built-in fallback (matrix priority, targets by priority).
    let t = server
        .post(
            &tickets,
            intake,
            json!({"id": "N-1", "impact": 1, "urgency": 2}),
        )
        .await;
    let t = t.expect(201);
    assert_eq!(
        t["rule"],
        json!({"version": null, "fuel": 0, "fallback": true})
    );
    assert_eq!(
        (
            &t["decision"]["queue"],
            &t["decision"]["party"],
            &t["decision"]["priority"]
        ),
        (&json!("triage"), &json!("msp"), &json!("p2"))
    );
    assert_eq!(clock(t, "first_response")["minutes"], 60);

    // The hostile rule: an endless loop runs out of fuel, the ticket is still stored. The
    // wall-clock limit is raised so that fuel, not a busy machine's clock, stops the loop.
    let limits = json!({"wall_clock_ms": 5000});
    server
        .put(&team.path("/settings"), admin, json!({"limits": limits}))
        .await
        .expect(200);
    server
        .deploy("fb", &team.operator.key, admin, guest("hostile"))
        .await;
    let l1 = server
        .post(&tickets, intake, json!({"id": "L-1", "category": "loop"}))
        .await;
    let l1 = l1.expect(201);
    assert_eq!(l1["rule"]["version"], 1);
    assert_eq!(l1["rule"]["fallback"], true);
    assert_eq!(
        l1["rule"]["error"]["kind"], "fuel_exhausted",
        "{}",
        l1["rule"]
    );
    assert!(!l1["rule"]["error"]["message"].as_str().unwrap().is_empty());
    assert!(l1["rule"]["fuel"].as_u64().unwrap() > 0);
    assert_eq!(l1["decision"]["queue"], "triage");
    assert_eq!(l1["decision"]["reason"], "fallback: built-in triage");
    let stored = server.get(&team.path("/tickets/L-1"), intake).await;
    assert_eq!(stored.expect(200)["rule"], l1["rule"]);
    assert_eq!(stored.body["decision"], l1["decision"]);

    // The same rule still routes well-behaved tickets; an invalid decision falls back.
    let fine = server
        .post(&tickets, intake, json!({"id": "F-1", "category": "fine"}))
        .await;
    assert_eq!(fine.expect(201)["decision"]["queue"], "desk");
    assert_eq!(fine.body["rule"]["fallback"], false);
    let bad = server
        .post(
            &tickets,
            intake,
            json!({"id": "U-1", "category": "unknown-calendar"}),
        )
        .await;
    assert_eq!(bad.expect(201)["rule"]["error"]["kind"], "invalid_decision");
    assert_eq!(bad.body["decision"]["queue"], "triage");

    // A tenant fallback replaces the built-in one.
    let fallback = json!({
        "queue": "internal-triage", "party": "internal", "tier": 2, "priority": "p2",
        "sla": [{"metric": "first_response", "minutes": 45, "calendar": "24x7"}],
        "escalations": [], "tags": [], "reason": "tenant fallback",
    });
    let put = server
        .put(
            &team.path("/settings"),
            admin,
            json!({"fallback": fallback, "limits": limits}),
        )
        .await;
    assert_eq!(put.expect(200)["fallback"], fallback);
    let settings = server.get(&team.path("/settings"), intake).await;
    assert_eq!(settings.expect(200)["fallback"], fallback);
    assert_eq!(
        settings.body["four_eyes"], true,
        "omitted settings take defaults"
    );
    let l2 = server
        .post(&tickets, intake, json!({"id": "L-2", "category": "loop"}))
        .await;
    let l2 = l2.expect(201);
    assert_eq!(l2["decision"], fallback);
    assert_eq!(l2["rule"]["error"]["kind"], "fuel_exhausted");
    let fr = clock(l2, "first_response");
    assert_eq!(
        (&fr["minutes"], &fr["calendar"]),
        (&json!(45), &json!("24x7"))
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reposting_a_ticket_is_idempotent_even_concurrently() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("idem").await;
    server
        .deploy(
            "idem",
            &team.operator.key,
            team.admin(),
            guest("vip-and-security"),
        )
        .await;
    let (tickets, intake) = (team.path("/tickets"), team.intake.key.clone());

    let first = server
        .post(
            &tickets,
            &intake,
            json!({"id": "I-1", "category": "security"}),
        )
        .await;
    first.expect(201);
    // The same id with other fields: the stored ticket and its decision are the answer.
    let again = server
        .post(
            &tickets,
            &intake,
            json!({"id": "I-1", "category": "printing"}),
        )
        .await;
    again.expect(200);
    for field in ["id", "decision", "rule"] {
        assert_eq!(again.body[field], first.body[field], "{field}");
    }
    for metric in ["first_response", "resolution"] {
        assert_eq!(
            clock(&again.body, metric)["due"],
            clock(&first.body, metric)["due"]
        );
    }
    let stored = server.get(&team.path("/tickets/I-1"), &intake).await;
    assert_eq!(stored.expect(200)["ticket"]["category"], "security");

    // Twenty posts of one new id at once: exactly one creates it.
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (api, tickets, intake) = (server.api(), tickets.clone(), intake.clone());
        tasks.push(tokio::spawn(async move {
            api.post(
                &tickets,
                &intake,
                json!({"id": "C-1", "category": "security"}),
            )
            .await
        }));
    }
    let mut replies = Vec::new();
    for task in tasks {
        replies.push(task.await.unwrap());
    }
    let created = replies.iter().filter(|r| r.status == 201).count();
    let repeated = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!((created, repeated), (1, 19), "{replies:?}");
    assert_eq!(replies[0].body["decision"]["queue"], "soc");
    for r in &replies {
        assert_eq!(r.body["decision"], replies[0].body["decision"]);
        assert_eq!(
            clock(&r.body, "first_response")["due"],
            clock(&replies[0].body, "first_response")["due"]
        );
    }
    let all = server.get(&tickets, &intake).await;
    let ids: Vec<_> = all.expect(200)["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["id"] == "C-1")
        .collect();
    assert_eq!(ids.len(), 1);
    server.stop().await;
}

fn berlin_9_to_17() -> Value {
    let day = json!([["09:00", "17:00"]]);
    json!({
        "timezone": "Europe/Berlin",
        "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day},
        "holidays": ["2026-04-03"],
    })
}
