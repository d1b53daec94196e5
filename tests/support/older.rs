//! A data directory as an older build left it: an index it did not keep emptied (with the
//! flags saying it was built), and its ticket records edited, so tests can check that a new
//! build rebuilds what is missing at start.

use std::path::Path;

use redb::{ReadableDatabase as _, ReadableTable as _, ReadableTableMetadata as _};
use serde_json::Value;
use switchboard_host::store::{META, TICKETS, Table};

/// Empties `index` and the build flags in the store of `data_dir` (not running), and passes
/// every ticket record (its key and JSON) through `edit`.
pub fn as_an_older_build(data_dir: &Path, index: Table, mut edit: impl FnMut(&str, &mut Value)) {
    let db = redb::Database::create(data_dir.join("switchboard.redb")).expect("open the store");
    let txn = db.begin_write().expect("write");
    txn.open_table(index.redb())
        .expect("index")
        .retain(|_, _| false)
        .expect("empty the index");
    txn.open_table(META.redb())
        .expect("meta")
        .retain(|_, _| false)
        .expect("clear the flags");
    {
        let mut tickets = txn.open_table(TICKETS.redb()).expect("tickets");
        let rows: Vec<(String, Value)> = tickets
            .iter()
            .expect("iterate")
            .map(|e| {
                let (k, v) = e.expect("row");
                let record = serde_json::from_slice(v.value()).expect("a ticket record");
                (k.value().to_owned(), record)
            })
            .collect();
        for (key, mut record) in rows {
            edit(&key, &mut record);
            let bytes = serde_json::to_vec(&record).expect("encode");
            tickets
                .insert(key.as_str(), bytes.as_slice())
                .expect("write back");
        }
    }
    txn.commit().expect("commit");
    let read = db.begin_read().expect("read");
    assert_eq!(
        read.open_table(index.redb())
            .expect("index")
            .len()
            .expect("len"),
        0
    );
}
