//! The API suite a second time, on PostgreSQL: the same test files as the `api`, `api_access`,
//! `api_input`, `api_strict`, `board`, `reports`, `replay`, `schedules`, `webhooks` and
//! `escalations` targets, compiled into this binary, where every server keeps its state in a
//! database of its own on one private cluster that this process starts (see
//! `support/postgres.rs`: `suite_on_postgres`, `database_for`). A test that is about the redb
//! file itself starts its server with `TestServer::start_embedded` and runs on redb here too.

#[path = "api.rs"]
mod api;
#[path = "api_access.rs"]
mod api_access;
#[path = "api_input.rs"]
mod api_input;
#[path = "api_strict.rs"]
mod api_strict;
#[path = "board.rs"]
mod board;
#[path = "escalations.rs"]
mod escalations;
#[path = "replay.rs"]
mod replay;
#[path = "reports.rs"]
mod reports;
#[path = "schedules.rs"]
mod schedules;
#[path = "webhooks.rs"]
mod webhooks;

/// The suite above really runs on PostgreSQL: a server this binary starts has a store that
/// other nodes may share, in a database of the private cluster.
#[tokio::test]
async fn this_suite_runs_on_postgres() {
    assert!(switchboard_tests::postgres::suite_on_postgres());
    let dir = tempfile::tempdir().unwrap();
    let server = switchboard_tests::server::TestServer::start(dir.path()).await;
    assert!(server.service().store.is_shared());
    assert!(
        !dir.path().join("switchboard.redb").exists(),
        "no redb file is made"
    );
    server.stop().await;
}
