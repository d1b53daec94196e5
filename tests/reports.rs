//! Service-review reports over real HTTP on a real store: known answers for counts,
//! compliance, percentiles and the attribution of breaches to the party holding the ticket,
//! periods in a time zone, CSV, bad parameters refused naming the parameter, and tickets
//! stored before reports counted after a restart.

use jiff::{SignedDuration, Timestamp, ToSpan as _};
use serde_json::{Value, json};
use switchboard_tests::server::{Reply, Team, TestServer};

/// Midnight UTC three days ago: the histories below happen on that day.
fn base() -> Timestamp {
    let today = Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    today
        .checked_sub(3.days())
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
}

fn at(hours: f64) -> String {
    (base() + SignedDuration::from_secs_f64(hours * 3600.0)).to_string()
}

fn day(offset_days: i64) -> String {
    (base() + SignedDuration::from_hours(24 * offset_days)).to_string()[..10].to_owned()
}

async fn report(server: &TestServer, team: &Team, query: &str) -> Reply {
    server
        .get(
            &team.path(&format!("/reports/sla?{query}")),
            &team.viewer.key,
        )
        .await
}

/// No rule: the built-in fallback routes to the MSP's triage at the given priority, p2 here:
/// first response 60 minutes and resolution 480, on the 24x7 calendar (business seconds are
/// seconds).
async fn history(server: &TestServer, team: &Team) {
    let post = |path: String, body: Value| {
        let (server, key) = (server, team.intake.key.clone());
        async move { server.post(&path, &key, body).await }
    };
    let ticket =
        |id: &str, created: String| json!({"id": id, "priority": "p2", "created_at": created});
    // T1: the MSP responds in 30 minutes and resolves in 4 hours: both met.
    post(team.path("/tickets"), ticket("T1", at(1.0)))
        .await
        .expect(201);
    // T2: the MSP responds after 90 minutes (breached, with the MSP), hands it to internal IT
    // at 2 hours, which resolves it at 10 hours (breached at 8 hours, with internal IT).
    post(team.path("/tickets"), ticket("T2", at(2.0)))
        .await
        .expect(201);
    // T3: handed to internal IT at 30 minutes, which responds at 45 (met, by internal IT)
    // and never resolves it (breached at 8 hours, with internal IT, still open).
    post(team.path("/tickets"), ticket("T3", at(3.0)))
        .await
        .expect(201);
    // T4: created 10 minutes ago; both clocks run. T5: two days before the period.
    let recent = (Timestamp::now() - SignedDuration::from_mins(10)).to_string();
    post(team.path("/tickets"), ticket("T4", recent))
        .await
        .expect(201);
    post(team.path("/tickets"), ticket("T5", at(-48.0)))
        .await
        .expect(201);
    let events = [
        ("T1", json!({"type": "responded", "at": at(1.5)})),
        ("T1", json!({"type": "resolved", "at": at(5.0)})),
        ("T2", json!({"type": "responded", "at": at(3.5)})),
        (
            "T2",
            json!({"type": "assigned", "party": "internal", "queue": "it-ops", "at": at(4.0)}),
        ),
        ("T2", json!({"type": "resolved", "at": at(12.0)})),
        (
            "T3",
            json!({"type": "assigned", "party": "internal", "queue": "it-ops", "at": at(3.5)}),
        ),
        ("T3", json!({"type": "responded", "at": at(3.75)})),
    ];
    for (id, event) in events {
        post(team.path(&format!("/tickets/{id}/events")), event)
            .await
            .expect(200);
    }
}

fn row<'a>(reply: &'a Reply, key: &str, value: &str) -> &'a Value {
    reply.expect(200)["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == value)
        .unwrap_or_else(|| panic!("no row with {key} {value}: {}", reply.text))
}

#[tokio::test]
async fn a_report_counts_compliance_percentiles_and_attributes_breaches_to_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("review").await;
    history(&server, &team).await;

    let period = format!("from={}&to={}", day(0), day(3));
    let by_party = report(&server, &team, &period).await;
    let body = by_party.expect(200);
    assert_eq!(body["group_by"], json!(["party"]), "party by default");
    assert_eq!(
        (body["from"].as_str(), body["tz"].as_str()),
        (Some(&*day(0)), Some("UTC"))
    );
    assert_eq!(body["start"], json!(at(0.0)));
    let msp = row(&by_party, "party", "msp");
    let expected_msp = json!({
        "party": "msp", "tickets": 2, "resolved": 1, "met": 2, "breached": 1, "running": 2,
        "compliance_percent": 66.67,
        "first_response_p50_secs": 1800, "first_response_p90_secs": 5400,
        "resolution_p50_secs": 14400, "resolution_p90_secs": 14400,
        "escalations": 0, "handoffs": 0,
    });
    assert_eq!(msp, &expected_msp);
    let internal = row(&by_party, "party", "internal");
    let expected_internal = json!({
        "party": "internal", "tickets": 2, "resolved": 1, "met": 1, "breached": 2, "running": 0,
        "compliance_percent": 33.33,
        "first_response_p50_secs": 2700, "first_response_p90_secs": 2700,
        "resolution_p50_secs": 36000, "resolution_p90_secs": 36000,
        "escalations": 0, "handoffs": 2,
    });
    assert_eq!(internal, &expected_internal);
    assert_eq!(body["rows"].as_array().unwrap().len(), 2, "no vendor row");

    // Totals, and by party and metric.
    let totals = report(&server, &team, &format!("{period}&group_by=")).await;
    let rows = totals.expect(200)["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    let t = &rows[0];
    let figures = [
        &t["tickets"],
        &t["met"],
        &t["breached"],
        &t["running"],
        &t["handoffs"],
    ];
    assert_eq!(
        figures,
        [&json!(4), &json!(3), &json!(3), &json!(2), &json!(2)]
    );
    assert_eq!(t["compliance_percent"], json!(50.0));
    assert!(t.get("party").is_none(), "no group keys in a totals row");

    let by_metric = report(&server, &team, &format!("{period}&group_by=party,metric")).await;
    let rows = by_metric.expect(200)["rows"].as_array().unwrap().clone();
    let find = |party: &str, metric: &str| {
        rows.iter()
            .find(|r| r["party"] == party && r["metric"] == metric)
            .unwrap_or_else(|| panic!("no {party}/{metric} row"))
            .clone()
    };
    let resolution = find("internal", "resolution");
    assert_eq!(
        (&resolution["met"], &resolution["breached"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(resolution["first_response_p50_secs"], Value::Null);
    assert_eq!(resolution["resolution_p50_secs"], json!(36000));
    let first = find("msp", "first_response");
    assert_eq!(
        (&first["met"], &first["breached"], &first["running"]),
        (&json!(1), &json!(1), &json!(1))
    );
    // Grouped by metric, a ticket counts with each of its clocks.
    assert_eq!(first["tickets"], json!(2));

    // The same period read in New York (UTC-5): the history's day there ends at 05:00 UTC
    // of the next day, so the day before `base` in New York holds T1 to T3.
    let ny = report(
        &server,
        &team,
        &format!(
            "from={}&to={}&tz=America/New_York&group_by=",
            day(-1),
            day(-1)
        ),
    )
    .await;
    let body = ny.expect(200);
    assert_eq!(body["rows"][0]["tickets"], json!(3), "{}", ny.text);
    assert_eq!(body["start"], json!(at(-19.0)));
    let utc_day = report(
        &server,
        &team,
        &format!("from={}&to={}&group_by=", day(-2), day(-2)),
    )
    .await;
    assert_eq!(
        utc_day.expect(200)["rows"][0]["tickets"],
        json!(1),
        "T5 alone"
    );

    // CSV: the same rows, a header line, null as an empty cell.
    let url = format!(
        "{}{}",
        server.api().base(),
        team.path(&format!("/reports/sla?{period}&group_by=party,metric"))
    );
    let res = reqwest::Client::new()
        .get(url)
        .bearer_auth(&team.viewer.key)
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert_eq!(content_type, "text/csv; charset=utf-8");
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(disposition.contains(".csv"), "{disposition}");
    let text = res.text().await.unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "party,metric,tickets,resolved,met,breached,running,compliance_percent,\
first_response_p50_secs,first_response_p90_secs,resolution_p50_secs,resolution_p90_secs,escalations,handoffs"
    );
    assert_eq!(lines.len(), rows.len() + 1);
    // (README shows this line.)
    assert_eq!(lines[1], "msp,first_response,2,1,1,1,1,50,1800,5400,,,0,0");
    assert!(
        lines.contains(&"internal,resolution,2,1,0,2,0,0,,,36000,36000,0,2"),
        "{text}"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_report_parameters_are_refused_naming_the_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("badrep").await;
    let cases = [
        ("group_by=party,owner", "group_by"),
        ("group_by=party,party", "group_by"),
        ("from=2026-13-01", "from"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
        ("from=2026-03-02&to=2026-03-01", "to"),
        ("from=2025-01-01&to=2026-02-05", "400"),
        ("tz=Mars/Olympus", "tz"),
    ];
    for (query, named) in cases {
        let reply = report(&server, &team, query).await;
        reply.expect_error(422, "invalid_query");
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains(named),
            "{query}: {}",
            reply.text
        );
    }
    // Exactly 400 days is a report; an unknown parameter is not.
    let reply = report(&server, &team, "from=2025-01-01&to=2026-02-04").await;
    assert_eq!(reply.expect(200)["rows"], json!([]));
    report(&server, &team, "period=month")
        .await
        .expect_error(400, "invalid_query");
    // The tenant's reports are its own: another tenant's key gets 404.
    let other = server.create_team("badrep-other").await;
    let path = team.path("/reports/sla");
    server
        .get(&path, &other.viewer.key)
        .await
        .expect_error(404, "not_found");
    server.stop().await;
}

#[tokio::test]
async fn tickets_stored_before_reports_are_counted_after_a_restart() {
    use switchboard_host::store::aggregates::{REPORT_COUNTS, REPORT_DURATIONS};
    use switchboard_tests::older::as_an_older_build;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_embedded(dir.path()).await;
    let team = server.create_team("olderrep").await;
    history(&server, &team).await;
    let query = format!("from={}&to={}&group_by=party,queue,metric", day(-3), day(3));
    let before = report(&server, &team, &query).await.expect(200).clone();
    server.stop().await;
    for table in [REPORT_COUNTS, REPORT_DURATIONS] {
        as_an_older_build(dir.path(), table, |_, record| {
            record.as_object_mut().unwrap().remove("report");
        });
    }
    let server = TestServer::start_embedded(dir.path()).await;
    let after = report(&server, &team, &query).await;
    assert_eq!(after.expect(200)["rows"], before["rows"]);
    assert!(!before["rows"].as_array().unwrap().is_empty());
    // And kept from then on: resolving T3 moves its figures.
    server
        .post(
            &team.path("/tickets/T3/events"),
            &team.intake.key,
            json!({"type": "resolved"}),
        )
        .await
        .expect(200);
    let totals = report(
        &server,
        &team,
        &format!("from={}&to={}&group_by=", day(-3), day(3)),
    )
    .await;
    assert_eq!(totals.expect(200)["rows"][0]["resolved"], json!(3));
    server.stop().await;
}
