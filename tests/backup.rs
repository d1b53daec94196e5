//! `switchboard backup` and `switchboard restore` with real processes: a backup taken from a
//! running `switchboard serve` while tickets keep arriving holds a consistent prefix of them;
//! a restore refuses while a server holds the directory, keeps the store it replaces, and the
//! restored directory serves — keys, the active rule and the tickets of the backup, nothing
//! later.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use switchboard_tests::process::Node;
use switchboard_tests::server::{ADMIN_TOKEN, Api, Team};
use switchboard_tests::{guest, switchboard_binary};

fn switchboard(args: &[&str], dir: &Path) -> (bool, String) {
    let out = Command::new(switchboard_binary())
        .args(args)
        .current_dir(dir)
        .env_remove("SWITCHBOARD_ADMIN_TOKEN")
        .output()
        .expect("run switchboard");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

async fn post_tickets(api: &Api, team: &Team, prefix: &str, n: usize) {
    for i in 0..n {
        let ticket = json!({"id": format!("{prefix}-{i}"), "category": "network", "impact": 2, "urgency": 2});
        api.post(&team.path("/tickets"), &team.intake.key, ticket)
            .await
            .expect(201);
    }
}

/// The ids of every stored ticket (from the export, which every stored ticket is in).
async fn stored_ids(api: &Api, team: &Team) -> Vec<String> {
    let mut ids = api.exported_ids(team).await;
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_serving_restores_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let node = Node::start(&data).await;
    let api = node.api.clone();
    let team = api.create_team("acme").await;
    api.put(
        &team.path("/config"),
        team.admin(),
        json!({"raci.network": "msp 2 network-ops"}),
    )
    .await
    .expect(200);
    let version = api
        .deploy(
            team.id(),
            &team.operator.key,
            team.admin(),
            guest("co-managed-split"),
        )
        .await;
    post_tickets(&api, &team, "BEFORE", 40).await;

    // The backup is taken while tickets keep arriving.
    let writer = {
        let (api, team) = (api.clone(), team.clone());
        tokio::spawn(async move { post_tickets(&api, &team, "DURING", 60).await })
    };
    let file = dir.path().join("acme.redb");
    let url = api.base().to_owned();
    let (ok, said) = tokio::task::spawn_blocking({
        let (file, cwd) = (file.clone(), dir.path().to_owned());
        move || {
            switchboard(
                &[
                    "backup",
                    "--to",
                    file.to_str().unwrap(),
                    "--url",
                    &url,
                    "--admin-token",
                    ADMIN_TOKEN,
                ],
                &cwd,
            )
        }
    })
    .await
    .unwrap();
    assert!(ok, "{said}");
    assert!(
        said.contains("backed up") && said.contains("1 tenants"),
        "{said}"
    );
    writer.await.unwrap();
    post_tickets(&api, &team, "AFTER", 5).await;
    let live = stored_ids(&api, &team).await;
    assert_eq!(live.len(), 105);

    // A backup never overwrites, and needs the platform admin token.
    let (ok, said) = switchboard(
        &[
            "backup",
            "--to",
            file.to_str().unwrap(),
            "--url",
            api.base(),
            "--admin-token",
            ADMIN_TOKEN,
        ],
        dir.path(),
    );
    assert!(!ok && said.contains("exists"), "{said}");
    let other = dir.path().join("other.redb");
    let (ok, said) = switchboard(
        &[
            "backup",
            "--to",
            other.to_str().unwrap(),
            "--url",
            api.base(),
            "--admin-token",
            team.admin(),
        ],
        dir.path(),
    );
    assert!(!ok && said.contains("403"), "{said}");
    assert!(!other.exists(), "nothing is left of a refused backup");

    // No restore under a running server.
    let data_arg = data.to_str().unwrap();
    let (ok, said) = switchboard(
        &["restore", file.to_str().unwrap(), "--data-dir", data_arg],
        dir.path(),
    );
    assert!(!ok && said.contains("a server is running"), "{said}");

    // What is not a store is refused, and the directory is left alone.
    node.kill();
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, b"not a store").unwrap();
    let (ok, said) = switchboard(
        &["restore", junk.to_str().unwrap(), "--data-dir", data_arg],
        dir.path(),
    );
    assert!(!ok && said.contains("not a readable store"), "{said}");

    let (ok, said) = switchboard(
        &["restore", file.to_str().unwrap(), "--data-dir", data_arg],
        dir.path(),
    );
    assert!(ok, "{said}");
    assert!(said.contains("the store it replaced is"), "{said}");
    let kept: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("switchboard.redb.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "the replaced store is kept");

    // The restored directory serves what the backup held: every ticket made before it, a
    // prefix of those made during it, none after; keys and the active rule work.
    let node = Node::start(&data).await;
    let api = node.api.clone();
    let restored = stored_ids(&api, &team).await;
    let count = |prefix: &str| restored.iter().filter(|id| id.starts_with(prefix)).count();
    assert_eq!(count("BEFORE"), 40);
    assert_eq!(count("AFTER"), 0);
    let during = count("DURING");
    for i in 0..during {
        assert!(
            restored.contains(&format!("DURING-{i}")),
            "a prefix of DURING: {restored:?}"
        );
    }
    assert!(
        said.contains(&format!("{} tickets", 40 + during)),
        "the summary counts what was restored: {said}"
    );
    let one = api
        .get(&team.path("/tickets/BEFORE-7"), &team.viewer.key)
        .await;
    assert_eq!(one.expect(200)["decision"]["queue"], "network-ops");
    let new = api
        .post(
            &team.path("/tickets"),
            &team.intake.key,
            json!({"id": "NEW-1", "category": "network", "impact": 2, "urgency": 2}),
        )
        .await;
    let new = new.expect(201);
    assert_eq!(new["rule"]["version"], version);
    assert_eq!(new["rule"]["fallback"], false);
    node.kill();
}
