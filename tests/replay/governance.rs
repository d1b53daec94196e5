//! The approval gate (`require_replay`) and history stored by an older build: indexed at
//! start, its tickets without routing inputs skipped.

use serde_json::json;
use switchboard_tests::guest;
use switchboard_tests::server::TestServer;

use super::{count, minutes_ago, replay};

#[tokio::test]
async fn with_require_replay_a_version_is_approved_and_activated_only_once_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let team = server.create_team("gate").await;
    let require = |on: bool| {
        let (server, path, admin) = (&server, team.path("/settings"), team.admin().to_owned());
        async move {
            let body = json!({"require_replay": on});
            server.put(&path, &admin, body).await.expect(200);
        }
    };
    require(true).await;
    let up = server
        .upload("gate", &team.operator.key, guest("vip-and-security"))
        .await;
    assert_eq!(up.expect(201)["version"], 1);
    let approve = team.path("/rules/1/approve");
    let refused = server.post_empty(&approve, team.admin()).await;
    refused.expect_error(409, "not_replayed");
    // A replay limited to named tickets does not count.
    let ids = json!({"against": "stored", "ticket_ids": ["T-1"]});
    let named = replay(&server, &team, 1, ids).await;
    assert_eq!(named["named"], true);
    server
        .post_empty(&approve, team.admin())
        .await
        .expect_error(409, "not_replayed");
    let s = replay(&server, &team, 1, json!({"against": "stored"})).await;
    let approved = server.post_empty(&approve, team.admin()).await;
    let approved = approved.expect(200);
    assert_eq!(approved["status"], "approved");
    assert_eq!(approved["last_replay"]["replay_id"], s["replay_id"]);
    assert_eq!(approved["last_replay"]["complete"], true);

    // A version approved while the setting was off is not activated once it is on.
    require(false).await;
    let up = server
        .upload("gate", &team.operator.key, guest("co-managed-split"))
        .await;
    assert_eq!(up.expect(201)["version"], 2);
    server
        .post_empty(&team.path("/rules/2/approve"), team.admin())
        .await
        .expect(200);
    require(true).await;
    let activate = team.path("/rules/2/activate");
    server
        .post_empty(&activate, team.admin())
        .await
        .expect_error(409, "not_replayed");
    replay(&server, &team, 2, json!({"against": "stored"})).await;
    server.post_empty(&activate, team.admin()).await.expect(200);
    server.stop().await;
}

#[tokio::test]
async fn tickets_stored_before_the_index_are_indexed_at_open_and_old_ones_skipped() {
    use switchboard_host::store::TICKETS_BY_CREATION;
    use switchboard_tests::older::as_an_older_build;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_embedded(dir.path()).await;
    let team = server.create_team("old").await;
    for i in 0..3 {
        let t = json!({"id": format!("OLD-{i}"), "created_at": minutes_ago(10 - i).to_string()});
        server
            .post(&team.path("/tickets"), &team.intake.key, t)
            .await
            .expect(201);
    }
    let up = server
        .upload("old", &team.operator.key, guest("vip-and-security"))
        .await;
    assert_eq!(up.expect(201)["version"], 1);
    server.stop().await;

    // As an older build left the file: no index, no index flag, and one ticket without its
    // routing input.
    as_an_older_build(dir.path(), TICKETS_BY_CREATION, |key, record| {
        if key == "old/OLD-0" {
            let removed = record.as_object_mut().unwrap().remove("routed_on");
            assert!(removed.is_some());
        }
    });

    let server = TestServer::start_embedded(dir.path()).await;
    let ids = server.exported_ids(&team).await;
    assert_eq!(
        ids,
        ["OLD-1", "OLD-2"],
        "indexed at open, oldest first, OLD-0 left out"
    );
    let s = replay(&server, &team, 1, json!({"against": "stored"})).await;
    assert_eq!((count(&s, "evaluated"), count(&s, "skipped")), (2, 1));
    server.stop().await;
}
