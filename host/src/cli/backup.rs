//! `switchboard backup` and `switchboard restore`. A backup is taken online, by the running
//! server from one read snapshot (`GET /v1/backup`), because the server holds the store's
//! lock; it is saved under a temporary name and checked before it takes its final one, so a
//! file named as a backup is always a whole, readable store. A restore is offline: it checks
//! the backup, refuses while a server holds the data directory, keeps the store it replaces,
//! and moves the copy into place with a rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::service::STORE_FILE;
use crate::store::backup::{NotRestorable, inspect, open_alone};

fn partial(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    path.with_file_name(name)
}

/// Saves the store of the server at `url` to `to`.
pub(super) fn backup(url: &str, token: &str, to: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    if to.exists() {
        bail!("{} exists; choose another name or remove it", to.display());
    }
    let temp = partial(to);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let started = std::time::Instant::now();
    let saved = runtime
        .block_on(download(url, token, &temp))
        .and_then(|bytes| {
            let contents = inspect(&temp)
                .map_err(|e| anyhow::anyhow!("the server's answer is not a whole store: {e}"))?;
            Ok((bytes, contents))
        });
    // Nothing named as a backup, and nothing half-written, is left of a failed one.
    let (bytes, contents) = saved.inspect_err(|_| {
        let _ = std::fs::remove_file(&temp);
    })?;
    std::fs::rename(&temp, to).with_context(|| format!("name the backup {}", to.display()))?;
    writeln!(
        out,
        "backed up {url} to {} ({bytes} bytes in {} ms): {}",
        to.display(),
        started.elapsed().as_millis(),
        contents.summary()
    )?;
    Ok(())
}

async fn download(url: &str, token: &str, temp: &Path) -> anyhow::Result<u64> {
    let endpoint = format!("{}/v1/backup", url.trim_end_matches('/'));
    let mut response = reqwest::Client::new()
        .get(&endpoint)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("reach {endpoint}"))?;
    if !response.status().is_success() {
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body["error"]["message"].as_str().unwrap_or("no error body");
        bail!("{endpoint} answered {status}: {message}");
    }
    let mut file =
        std::fs::File::create_new(temp).with_context(|| format!("create {}", temp.display()))?;
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await.context("read the backup")? {
        file.write_all(&chunk)?;
        bytes += chunk.len() as u64;
    }
    file.sync_all()?;
    Ok(bytes)
}

/// Puts the backup `file` in place of `data_dir`'s store.
pub(super) fn restore(file: &Path, data_dir: &Path, out: &mut dyn Write) -> anyhow::Result<()> {
    let contents = inspect(file).map_err(|e| anyhow::anyhow!("cannot restore: {e}"))?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let store = data_dir.join(STORE_FILE);
    let mut kept = None;
    if store.exists() {
        // Only whether a server holds it: the store being replaced is not checked.
        if let Err(NotRestorable::InUse(_)) = open_alone(&store) {
            bail!(
                "a server is running on {}: stop it, then restore",
                data_dir.display()
            );
        }
        let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
        let aside = data_dir.join(format!("{STORE_FILE}.before-restore-{stamp}"));
        std::fs::rename(&store, &aside)
            .with_context(|| format!("move {} aside", store.display()))?;
        kept = Some(aside);
    }
    let temp = partial(&store);
    std::fs::copy(file, &temp).with_context(|| format!("copy {}", file.display()))?;
    std::fs::File::open(&temp)?.sync_all()?;
    std::fs::rename(&temp, &store)?;
    std::fs::File::open(data_dir)?.sync_all()?;
    write!(
        out,
        "restored {} into {}: {}",
        file.display(),
        data_dir.display(),
        contents.summary()
    )?;
    match kept {
        Some(aside) => writeln!(out, "; the store it replaced is {}", aside.display())?,
        None => writeln!(out)?,
    }
    Ok(())
}
