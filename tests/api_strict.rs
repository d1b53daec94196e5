//! Strict input: the defects a schema fuzzer (schemathesis, against the served OpenAPI
//! document) found before the route table and the body extractor were redone, each pinned
//! down as the API now answers it.

use reqwest::Method;
use serde_json::json;
use switchboard_tests::server::{Body, TestServer};

/// The defects a schema fuzzer found, each answered as the API promises: an array is not an
/// object, the role is decided before the body is read, a field-level message names the
/// field in the API's words, and a webhook URL delivery would refuse is refused at `PUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_input_names_the_field_and_authorizes_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("strict").await;
    let admin = team.admin();

    // Arrays where objects belong: refused, and nothing created.
    let reply = server
        .call(
            Method::PUT,
            &team.path("/settings"),
            Some(admin),
            Body::Json(json!([null])),
        )
        .await;
    reply.expect_error(422, "invalid_body");
    assert!(
        reply.text.contains("must be a JSON object, not an array"),
        "{}",
        reply.text
    );
    let reply = server
        .call(
            Method::POST,
            &team.path("/tickets"),
            Some(&team.operator.key),
            Body::Json(json!(["ARR-2", "subject"])),
        )
        .await;
    reply.expect_error(422, "invalid_body");
    server
        .get(&team.path("/tickets/ARR-2"), admin)
        .await
        .expect_error(404, "not_found");

    // An operator with a bad settings body is told 403, not what is wrong with the body.
    let reply = server
        .call(
            Method::PUT,
            &team.path("/settings"),
            Some(&team.operator.key),
            Body::Json(json!({"at_risk_percent": "lots"})),
        )
        .await;
    reply.expect_error(403, "forbidden");

    // A calendar range with three times: a 422 naming the field, in the API's words.
    let reply = server
        .put(
            &team.path("/calendars/odd"),
            admin,
            json!({"timezone": "UTC", "hours": {"mon": [["09:00", "12:00", "17:00"]]}}),
        )
        .await;
    reply.expect_error(422, "invalid_body");
    assert!(reply.text.contains("hours.mon[0]"), "{}", reply.text);
    for framework in ["Failed to deserialize", "at line", "Cannot parse"] {
        assert!(!reply.text.contains(framework), "{}", reply.text);
    }

    // A path parameter that does not parse names itself.
    let reply = server
        .post_empty(&team.path("/rules/one/approve"), admin)
        .await;
    reply.expect_error(400, "invalid_path");
    assert!(reply.text.contains("`version`"), "{}", reply.text);
    assert!(!reply.text.contains("Cannot parse"), "{}", reply.text);

    // A URL delivery would refuse (localhost resolves to loopback) is refused at PUT, with
    // delivery's own message; nothing is stored.
    let reply = server
        .put(
            &team.path("/webhooks/local"),
            admin,
            json!({"url": "http://localhost:9/hook", "events": ["sla.breached"]}),
        )
        .await;
    reply.expect_error(422, "invalid_url");
    assert!(
        reply.text.contains("not a public address"),
        "{}",
        reply.text
    );
    let hooks = server.get(&team.path("/webhooks"), admin).await;
    assert_eq!(hooks.expect(200)["webhooks"], json!([]));

    // The digest's name is no event type: the refusal says what to subscribe to.
    let reply = server
        .put(
            &team.path("/webhooks/digest"),
            admin,
            json!({"url": "https://example.com/hook", "events": ["sla.digest"]}),
        )
        .await;
    reply.expect_error(422, "invalid_events");
    assert!(
        reply.text.contains("subscribe to \\\"schedule.fired\\\""),
        "{}",
        reply.text
    );
    server.stop().await;
}
