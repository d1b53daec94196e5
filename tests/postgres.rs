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

/// The storage seam answers the same on both engines: the same writes (keys with multi-byte
/// UTF-8 and NUL, more entries than one PostgreSQL page of a range), then every kind of range
/// visit — spans from, after, between and below keys, both orders, limits below and above a
/// page — gives the same entries on the redb file and on PostgreSQL, as do gets, deletes and
/// a write that reads its own buffered writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_storage_seam_answers_the_same_on_redb_and_postgres() {
    use switchboard_host::store::{self, Order, Reader as _, Span, Store, TICKETS};
    let cluster = Cluster::start();
    cluster.create_database("seam");
    let dir = tempfile::tempdir().unwrap();
    let embedded = Store::open(&dir.path().join("seam.redb")).unwrap();
    let shared = tokio::task::spawn_blocking({
        let url = cluster.url("seam");
        move || Store::connect(&url).unwrap()
    })
    .await
    .unwrap();
    assert!(shared.is_shared() && !embedded.is_shared());
    let mut keys: Vec<String> = (0..2500)
        .map(|i| format!("t/{:05}", i * 7 % 2500))
        .collect();
    keys.extend(
        [
            "t/é",
            "t/\u{0}",
            "t/z\u{0}z",
            "t/",
            "s/first",
            "u/last",
            "t/日本",
        ]
        .map(String::from),
    );
    for store in [&embedded, &shared] {
        let keys = keys.clone();
        store
            .write(move |txn| {
                for k in &keys {
                    txn.put_bytes(TICKETS, k, k.as_bytes())?;
                }
                txn.delete(TICKETS, "t/00003")?;
                // Read-your-writes inside the transaction, point and range.
                assert_eq!(txn.get_bytes(TICKETS, "t/00003")?, None);
                assert_eq!(
                    txn.get_bytes(TICKETS, "t/é")?.as_deref(),
                    Some("t/é".as_bytes())
                );
                let n = store::count(txn, TICKETS, Span::between("t/", "t0"))?;
                assert_eq!(n, 2500 - 1 + 5);
                Ok(())
            })
            .await
            .unwrap();
    }
    let spans = [
        Span::ALL,
        Span::from("t/01000"),
        Span::after("t/01000", None),
        Span::after("t/01000", Some("t/02100")),
        Span::between("t/", "t0"),
        Span::between("t/00010", "t/00010"),
        Span::below("t/00500"),
        Span::between("t/\u{0}", "t/0"),
        Span::between("u", "a"),
    ];
    let read = move |store: &Store| {
        let txn = store.read().unwrap();
        let mut out = Vec::new();
        for span in spans {
            for order in [Order::Ascending, Order::Descending] {
                for limit in [1, 999, 1000, 1001, usize::MAX] {
                    out.push(store::entries(&txn, TICKETS, span, order, limit).unwrap());
                }
            }
        }
        for k in ["t/00003", "t/\u{0}", "t/日本", "missing"] {
            out.push(
                txn.get_bytes(TICKETS, k)
                    .unwrap()
                    .map(|v| (k.to_owned(), v))
                    .into_iter()
                    .collect(),
            );
        }
        out
    };
    let (on_redb, on_postgres) = (read(&embedded), {
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || read(&shared))
            .await
            .unwrap()
    });
    assert_eq!(on_redb.len(), on_postgres.len());
    for (i, (a, b)) in on_redb.iter().zip(&on_postgres).enumerate() {
        assert_eq!(a, b, "visit {i} differs");
    }
    let all = &on_redb[4]; // Span::ALL, ascending, unlimited
    assert_eq!(all.len(), keys.len() - 1);
    assert!(
        all.windows(2)
            .all(|w| w[0].0.as_bytes() < w[1].0.as_bytes()),
        "byte order"
    );
    drop(shared);
}
