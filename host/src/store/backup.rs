//! Backups of the embedded store. A backup is a new redb file holding every table as one read
//! transaction saw it. redb's reads are snapshots, so the copy is consistent — no ticket half
//! written, no timer without its ticket — while writes go on and the server keeps serving.
//! Restoring puts such a file in place of a data directory's, which needs the server stopped:
//! the running server holds the file's lock.

use std::collections::BTreeMap;
use std::path::Path;

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
};
use serde::Serialize;

use super::{KEYS, Store, StoreError, TABLES, TENANTS, TICKETS};

/// Entries copied per write transaction of the new file (its commits are made durable by
/// the last one, so chunking bounds memory, not fsyncs).
const CHUNK: usize = 4096;

/// What a store file holds: entries per table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contents {
    /// Entries by table name.
    pub tables: BTreeMap<String, u64>,
}

impl Contents {
    /// The entries of `table` (0 when it has none or is missing).
    pub fn count(&self, table: &str) -> u64 {
        self.tables.get(table).copied().unwrap_or(0)
    }

    /// `N tenants, N keys, N tickets, N records in all`.
    pub fn summary(&self) -> String {
        format!(
            "{} tenants, {} keys, {} tickets, {} records in all",
            self.count(TENANTS.name()),
            self.count(KEYS.name()),
            self.count(TICKETS.name()),
            self.tables.values().sum::<u64>()
        )
    }
}

impl Store {
    /// Writes a consistent copy of every table to a new file at `path`, which must not exist
    /// yet. Blocking: run it off the async threads.
    pub fn backup_to(&self, path: &Path) -> Result<Contents, StoreError> {
        let db = self.embedded().ok_or_else(|| {
            StoreError::Postgres("a PostgreSQL database is backed up with pg_dump or PITR".into())
        })?;
        let snapshot = db.begin_read()?;
        copy(&snapshot, path)
    }
}

fn copy(snapshot: &ReadTransaction, path: &Path) -> Result<Contents, StoreError> {
    // Made empty first, so that an existing file is refused and never overwritten.
    std::fs::File::create_new(path)
        .map_err(|e| StoreError::Redb(redb::StorageError::from(e).into()))?;
    let target = Database::create(path)?;
    let mut contents = Contents::default();
    for table in TABLES {
        let source = snapshot.open_table(table.redb())?;
        let mut entries = source.iter()?;
        let mut copied = 0u64;
        loop {
            let mut txn = target.begin_write()?;
            txn.set_durability(Durability::None)
                .map_err(|e| StoreError::Redb(e.into()))?;
            let mut wrote = 0;
            {
                let mut out = txn.open_table(table.redb())?;
                for entry in entries.by_ref().take(CHUNK) {
                    let (key, value) = entry?;
                    out.insert(key.value(), value.value())?;
                    wrote += 1;
                }
            }
            txn.commit()?;
            copied += wrote as u64;
            if wrote < CHUNK {
                break;
            }
        }
        contents.tables.insert(table.name().to_owned(), copied);
    }
    // One durable commit makes every earlier one durable.
    let txn = target.begin_write()?;
    txn.commit()?;
    Ok(contents)
}

/// Why a file cannot be restored.
#[derive(Debug, thiserror::Error)]
pub enum NotRestorable {
    /// Another process (a running server) holds the file.
    #[error("{0} is in use by a running process (stop the server first)")]
    InUse(String),
    /// It is not a redb file, or it fails redb's integrity check.
    #[error("{path} is not a readable store: {why}")]
    Unreadable {
        /// The file.
        path: String,
        /// What redb said.
        why: String,
    },
    /// A redb file without Switchboard's tables.
    #[error("{0} is a redb file but not a Switchboard store (it has no `tenants` or `keys` table)")]
    Foreign(String),
}

/// Opens the store file at `path` on its own: refused when another process holds it.
pub fn open_alone(path: &Path) -> Result<Database, NotRestorable> {
    let name = path.display().to_string();
    match Database::open(path) {
        Ok(db) => Ok(db),
        Err(redb::DatabaseError::DatabaseAlreadyOpen) => Err(NotRestorable::InUse(name)),
        Err(e) => Err(NotRestorable::Unreadable {
            path: name,
            why: e.to_string(),
        }),
    }
}

/// Opens the store file at `path` on its own (no server may hold it), checks its integrity
/// and that it is a Switchboard store, and counts what it holds.
pub fn inspect(path: &Path) -> Result<Contents, NotRestorable> {
    let name = path.display().to_string();
    let unreadable = |why: String| NotRestorable::Unreadable {
        path: name.clone(),
        why,
    };
    let mut db = open_alone(path)?;
    match db.check_integrity() {
        Ok(true) => {}
        Ok(false) => return Err(unreadable("redb repaired it on open".into())),
        Err(e) => return Err(unreadable(e.to_string())),
    }
    let txn = db.begin_read().map_err(|e| unreadable(e.to_string()))?;
    let mut contents = Contents::default();
    for table in TABLES {
        match txn.open_table(table.redb()) {
            Ok(t) => {
                let n = t.len().map_err(|e| unreadable(e.to_string()))?;
                contents.tables.insert(table.name().to_owned(), n);
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(e) => return Err(unreadable(e.to_string())),
        }
    }
    if !contents.tables.contains_key(TENANTS.name()) || !contents.tables.contains_key(KEYS.name()) {
        return Err(NotRestorable::Foreign(name));
    }
    Ok(contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_holds_the_snapshot_and_later_writes_do_not_reach_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.redb")).unwrap();
        let put = |n: u32| {
            store
                .write_blocking(move |txn| {
                    for i in 0..n {
                        super::super::put_in(txn, TICKETS, &format!("t/{i:05}"), &i)?;
                    }
                    Ok(())
                })
                .unwrap()
        };
        // More than one chunk, so the chunked copy is exercised.
        put(CHUNK as u32 + 10);
        let snapshot = store.embedded().unwrap().begin_read().unwrap();
        put(CHUNK as u32 + 20);
        let copy_path = dir.path().join("copy.redb");
        let contents = copy(&snapshot, &copy_path).unwrap();
        assert_eq!(contents.count("tickets"), CHUNK as u64 + 10);
        assert_eq!(inspect(&copy_path).unwrap(), contents);
        // Now: the live store has the later writes.
        let now = store.backup_to(&dir.path().join("now.redb")).unwrap();
        assert_eq!(now.count("tickets"), CHUNK as u64 + 20);
        // A file that exists is never overwritten.
        assert!(store.backup_to(&copy_path).is_err());
    }

    #[test]
    fn what_is_not_a_store_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.redb");
        std::fs::write(&junk, b"not a database at all").unwrap();
        assert!(matches!(
            inspect(&junk),
            Err(NotRestorable::Unreadable { .. })
        ));
        let foreign = dir.path().join("foreign.redb");
        Database::create(&foreign).unwrap();
        assert!(matches!(inspect(&foreign), Err(NotRestorable::Foreign(_))));
        let live = dir.path().join("live.redb");
        let _store = Store::open(&live).unwrap();
        assert!(matches!(inspect(&live), Err(NotRestorable::InUse(_))));
    }
}
