//! The private PostgreSQL clusters that the PostgreSQL backend's tests run on
//! (`tests/support/postgres.rs`): each is its own `initdb` in a temp dir, reachable on
//! loopback only, and gone when dropped. It also pins what the backend's timer and delivery
//! claims rely on: `FOR UPDATE SKIP LOCKED` hands two sessions disjoint rows.

use std::path::Path;

use switchboard_tests::postgres::Cluster;
use tokio_postgres::{Client, NoTls};

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    tokio::spawn(connection);
    client
}

async fn claim(client: &Client) -> Vec<i32> {
    client
        .query(
            "SELECT id FROM jobs ORDER BY id LIMIT 5 FOR UPDATE SKIP LOCKED",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_cluster_is_on_loopback_only_and_skip_locked_claims_are_disjoint() {
    let cluster = Cluster::start();
    cluster.create_database("switchboard");
    let url = cluster.url("switchboard");
    let a = connect(&url).await;
    let row = a
        .query_one(
            "SELECT current_setting('listen_addresses'), \
                    current_setting('server_version_num')::int, \
                    current_setting('data_directory'), current_database()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "127.0.0.1");
    assert!(row.get::<_, i32>(1) >= 150_000, "PostgreSQL 15 or later");
    let data: String = row.get(2);
    assert!(Path::new(&data).starts_with(cluster.dir()), "{data}");
    assert_eq!(row.get::<_, String>(3), "switchboard");

    a.batch_execute(
        "CREATE TABLE jobs (id int PRIMARY KEY); \
         INSERT INTO jobs SELECT generate_series(1, 10);",
    )
    .await
    .unwrap();
    let b = connect(&url).await;
    a.batch_execute("BEGIN").await.unwrap();
    b.batch_execute("BEGIN").await.unwrap();
    let first = claim(&a).await;
    let second = claim(&b).await;
    assert_eq!(first, [1, 2, 3, 4, 5]);
    assert_eq!(
        second,
        [6, 7, 8, 9, 10],
        "the rows A holds are skipped, not waited for"
    );
    a.batch_execute("ROLLBACK").await.unwrap();
    // Released rows are claimable again.
    assert_eq!(claim(&a).await, [1, 2, 3, 4, 5]);
    b.batch_execute("ROLLBACK").await.unwrap();
    drop((a, b));

    let dir = cluster.dir().to_owned();
    let port = cluster.port;
    drop(cluster);
    assert!(!dir.exists(), "the cluster's files are removed");
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the server is stopped"
    );
}
