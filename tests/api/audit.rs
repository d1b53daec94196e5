//! The audit log read a page at a time with filters, and `GET …/me`, which the console
//! shows and hides its controls by.

use serde_json::Value;
use switchboard_tests::guest;
use switchboard_tests::server::TestServer;

fn actions(page: &Value) -> Vec<(u64, String)> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["action"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_and_pages_and_me_names_the_caller() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("aud").await;
    let admin = team.admin();
    for _ in 0..2 {
        server
            .deploy(
                team.id(),
                &team.operator.key,
                &team.admin2.key,
                guest("vip-and-security"),
            )
            .await;
    }
    let all = server.get(&team.path("/audit"), admin).await;
    let all = all.expect(200).clone();
    let every = actions(&all);
    assert_eq!(all["next_cursor"], Value::Null);
    assert!(
        every.windows(2).all(|w| w[0].0 < w[1].0),
        "oldest first: {every:?}"
    );

    // By action prefix, newest first, two at a time: the four rule approvals and
    // activations, paged without a gap or a repeat.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let url = format!("/audit?action=rule.a&order=newest&limit=2{cursor}");
        let page = server.get(&team.path(&url), admin).await;
        let page = page.expect(200);
        seen.extend(actions(page));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    let want: Vec<(u64, String)> = every
        .iter()
        .rev()
        .filter(|(_, a)| a.starts_with("rule.a"))
        .cloned()
        .collect();
    assert_eq!(seen, want);
    assert_eq!(seen.len(), 4, "{seen:?}");

    // By caller and target.
    let by = server
        .get(
            &team.path(&format!("/audit?key_id={}&target=rules/2", team.admin2.id)),
            admin,
        )
        .await;
    let by = actions(by.expect(200));
    let names: Vec<&str> = by.iter().map(|(_, a)| a.as_str()).collect();
    assert_eq!(names, ["rule.approve", "rule.activate"]);

    // By period: nothing before the tenant existed, everything since.
    let none = server
        .get(&team.path("/audit?until=2020-01-01T00:00:00Z"), admin)
        .await;
    assert!(actions(none.expect(200)).is_empty());
    let since = server
        .get(&team.path("/audit?since=2020-01-01T00:00:00Z"), admin)
        .await;
    assert_eq!(actions(since.expect(200)), every);

    // Bad filters name the parameter.
    for (query, code, status) in [
        ("limit=0", "invalid_query", 422),
        ("limit=1001", "invalid_query", 422),
        ("cursor=abc", "invalid_query", 422),
        (
            "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
            "invalid_query",
            422,
        ),
        ("since=yesterday", "invalid_query", 400),
        ("order=sideways", "invalid_query", 400),
        ("colour=red", "invalid_query", 400),
    ] {
        let reply = server
            .get(&team.path(&format!("/audit?{query}")), admin)
            .await;
        reply.expect_error(status, code);
        let name = query.split('=').next().unwrap();
        assert!(reply.text.contains(name), "{query}: {}", reply.text);
    }

    // `me`: the caller's key, role and the tenant's four-eyes setting.
    let me = server.get(&team.path("/me"), &team.operator.key).await;
    let me = me.expect(200);
    assert_eq!(me["tenant"], "aud");
    assert_eq!(me["tenant_name"], "Tenant aud");
    assert_eq!(me["key_id"], team.operator.id.as_str());
    assert_eq!(me["key_name"], "msp engineer");
    assert_eq!(me["role"], "operator");
    assert_eq!(me["four_eyes"], true);
    let viewer = server.get(&team.path("/me"), &team.viewer.key).await;
    assert_eq!(viewer.expect(200)["role"], "viewer");
    server.stop().await;
}
