//! The seam between the domain and a storage engine. Every record is JSON bytes under a
//! string key in a named table, and the domain needs little of a transaction: read a key,
//! visit a key range in order, write a key and delete one, plus, for nodes sharing a
//! database, claim queue rows and try a key's lock. Keeping the seam that small is what lets the embedded redb file and a PostgreSQL cluster hold the same data with
//! the same code above them: ordering (keys compare as bytes in both), read-your-writes
//! inside a write, and a consistent snapshot for a read are the engine's job, not the
//! domain's.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{StoreError, decode, encode};

/// A named table of `key → bytes`, ordered by key (byte order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Table(&'static str);

impl Table {
    /// A table called `name` (also its name in PostgreSQL).
    pub const fn new(name: &'static str) -> Table {
        Table(name)
    }

    /// Its name.
    pub const fn name(self) -> &'static str {
        self.0
    }

    /// The redb definition of the same table.
    pub const fn redb(self) -> redb::TableDefinition<'static, &'static str, &'static [u8]> {
        redb::TableDefinition::new(self.0)
    }
}

/// A key range: from `from` (included unless `past_from`; `""` is the start) up to `to`
/// (excluded; `None` is the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span<'a> {
    /// The first key that may be in the range.
    pub from: &'a str,
    /// Whether `from` itself is left out (the range starts after it: paging).
    pub past_from: bool,
    /// The first key past the range, if any.
    pub to: Option<&'a str>,
}

impl<'a> Span<'a> {
    /// Every key.
    pub const ALL: Span<'static> = Span {
        from: "",
        past_from: false,
        to: None,
    };

    /// Keys in `[from, to)`.
    pub fn between(from: &'a str, to: &'a str) -> Span<'a> {
        Span {
            to: Some(to),
            ..Span::from(from)
        }
    }

    /// Keys below `to`.
    pub fn below(to: &'a str) -> Span<'a> {
        Span::between("", to)
    }

    /// Keys from `from` on.
    pub fn from(from: &'a str) -> Span<'a> {
        Span {
            from,
            past_from: false,
            to: None,
        }
    }

    /// Keys after `key` (not included) and below `to`.
    pub fn after(key: &'a str, to: Option<&'a str>) -> Span<'a> {
        Span {
            from: key,
            past_from: true,
            to,
        }
    }

    /// Whether no key can be in it.
    pub(crate) fn is_empty(&self) -> bool {
        self.to.is_some_and(|to| to <= self.from)
    }
}

/// Which way a range is visited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Smallest key first.
    Ascending,
    /// Largest key first.
    Descending,
}

/// What a visitor answers: go on to the next entry, or stop.
pub type Visitor<'v> = dyn FnMut(&str, &[u8]) -> Result<bool, StoreError> + 'v;

/// What both a read snapshot and a write transaction can do.
pub trait Reader {
    /// The bytes under `key` in `table`. In a write transaction on a shared database the key
    /// is also locked until the commit (its value cannot change under the writer).
    fn get_bytes(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Passes the entries of `span` in `order`, at most `limit` of them, to `visit` until it
    /// answers `false`.
    fn visit(
        &self,
        table: Table,
        span: Span<'_>,
        order: Order,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError>;
}

/// A consistent snapshot for reading.
pub struct Read {
    pub(crate) inner: ReadInner,
}

pub(crate) enum ReadInner {
    Embedded(redb::ReadTransaction),
    Postgres(super::pg::PgRead),
}

impl std::fmt::Debug for Read {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Read").finish_non_exhaustive()
    }
}

impl Reader for Read {
    fn get_bytes(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.inner {
            ReadInner::Embedded(txn) => super::embedded::get(txn, table, key),
            ReadInner::Postgres(txn) => txn.get(table, key),
        }
    }

    fn visit(
        &self,
        table: Table,
        span: Span<'_>,
        order: Order,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        match &self.inner {
            ReadInner::Embedded(txn) => {
                super::embedded::visit_read(txn, table, span, order, limit, visit)
            }
            ReadInner::Postgres(txn) => txn.visit(table, span, order, limit, visit),
        }
    }
}

/// A write transaction: one group commit's, shared by the writes of its batch (see
/// [`Store::write`](super::Store::write)).
pub struct Write<'t> {
    pub(crate) inner: WriteInner<'t>,
}

pub(crate) enum WriteInner<'t> {
    Embedded(&'t redb::WriteTransaction),
    Postgres(&'t super::pg::PgWrite),
}

impl std::fmt::Debug for Write<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write").finish_non_exhaustive()
    }
}

impl Reader for Write<'_> {
    fn get_bytes(&self, table: Table, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match &self.inner {
            WriteInner::Embedded(txn) => super::embedded::get_in(txn, table, key),
            WriteInner::Postgres(txn) => txn.get(table, key),
        }
    }

    fn visit(
        &self,
        table: Table,
        span: Span<'_>,
        order: Order,
        limit: usize,
        visit: &mut Visitor<'_>,
    ) -> Result<(), StoreError> {
        match &self.inner {
            WriteInner::Embedded(txn) => {
                super::embedded::visit_write(txn, table, span, order, limit, visit)
            }
            WriteInner::Postgres(txn) => txn.visit(table, span, order, limit, false, visit),
        }
    }
}

impl Write<'_> {
    /// Writes `bytes` under `key`.
    pub fn put_bytes(&self, table: Table, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
        match &self.inner {
            WriteInner::Embedded(txn) => super::embedded::put(txn, table, key, bytes),
            WriteInner::Postgres(txn) => {
                txn.put(table, key, Some(bytes.to_vec()));
                Ok(())
            }
        }
    }

    /// Deletes `key` (nothing happens if it is not there).
    pub fn delete(&self, table: Table, key: &str) -> Result<(), StoreError> {
        match &self.inner {
            WriteInner::Embedded(txn) => super::embedded::delete(txn, table, key),
            WriteInner::Postgres(txn) => {
                txn.put(table, key, None);
                Ok(())
            }
        }
    }

    /// Deletes every key of `table`.
    pub fn clear(&self, table: Table) -> Result<(), StoreError> {
        match &self.inner {
            WriteInner::Embedded(txn) => super::embedded::clear(txn, table),
            WriteInner::Postgres(txn) => txn.clear(table),
        }
    }

    /// Takes up to `limit` entries of `span` for this transaction, smallest key first: like
    /// [`Reader::visit`], except that on a shared database entries another node's transaction
    /// has taken are skipped, and the ones taken stay locked until this transaction ends (so
    /// two nodes working through the same queue take disjoint entries).
    pub fn claim(
        &self,
        table: Table,
        span: Span<'_>,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut push = |k: &str, v: &[u8]| {
            out.push((k.to_owned(), v.to_vec()));
            Ok(true)
        };
        match &self.inner {
            WriteInner::Embedded(txn) => {
                super::embedded::visit_write(txn, table, span, Order::Ascending, limit, &mut push)?
            }
            WriteInner::Postgres(txn) => {
                txn.visit(table, span, Order::Ascending, limit, true, &mut push)?
            }
        }
        Ok(out)
    }

    /// Has the commit of this transaction hint to the other nodes on a shared database that
    /// shared state moved (see [`Store::hints`](super::Store::hints)); nothing on the
    /// embedded store.
    pub fn notify(&self) {
        if let WriteInner::Postgres(txn) = &self.inner {
            txn.notify();
        }
    }

    /// Takes the lock [`Reader::get_bytes`] would wait for on `key`, unless another node's
    /// transaction holds it: whether this transaction holds it now (always, on the embedded
    /// store). Work that takes rows out of a queue uses it before it touches what those rows
    /// point at, so that it never waits for a lock while holding queue rows another
    /// transaction may be waiting for (a deadlock).
    pub fn try_lock(&self, table: Table, key: &str) -> Result<bool, StoreError> {
        match &self.inner {
            WriteInner::Embedded(_) => Ok(true),
            WriteInner::Postgres(txn) => txn.try_lock(table, key),
        }
    }

    /// Whether this transaction is on a database that other nodes share (then work that must
    /// happen once takes its rows with [`Write::claim`]).
    pub fn is_shared(&self) -> bool {
        matches!(self.inner, WriteInner::Postgres(_))
    }
}

/// Reads one record.
pub fn get<T: DeserializeOwned>(
    txn: &(impl Reader + ?Sized),
    table: Table,
    key: &str,
) -> Result<Option<T>, StoreError> {
    match txn.get_bytes(table, key)? {
        Some(v) => decode(key, &v).map(Some),
        None => Ok(None),
    }
}

/// The raw entries of `span`, in `order`, at most `limit`.
pub fn entries(
    txn: &(impl Reader + ?Sized),
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let mut out = Vec::new();
    txn.visit(table, span, order, limit, &mut |k, v| {
        out.push((k.to_owned(), v.to_vec()));
        Ok(true)
    })?;
    Ok(out)
}

/// The keys of `span`, in `order`, at most `limit`.
pub fn keys(
    txn: &(impl Reader + ?Sized),
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    txn.visit(table, span, order, limit, &mut |k, _| {
        out.push(k.to_owned());
        Ok(true)
    })?;
    Ok(out)
}

/// The decoded records of `span`, with their keys, in `order`, at most `limit`.
pub fn decoded<T: DeserializeOwned>(
    txn: &(impl Reader + ?Sized),
    table: Table,
    span: Span<'_>,
    order: Order,
    limit: usize,
) -> Result<Vec<(String, T)>, StoreError> {
    let mut out = Vec::new();
    txn.visit(table, span, order, limit, &mut |k, v| {
        out.push((k.to_owned(), decode(k, v)?));
        Ok(true)
    })?;
    Ok(out)
}

/// Reads every record of one tenant from `table`, in key order.
pub fn scan<T: DeserializeOwned>(
    txn: &(impl Reader + ?Sized),
    table: Table,
    tenant: &str,
) -> Result<Vec<T>, StoreError> {
    let (from, to) = super::tenant_range(tenant);
    let mut out = Vec::new();
    txn.visit(
        table,
        Span::between(&from, &to),
        Order::Ascending,
        usize::MAX,
        &mut |k, v| {
            out.push(decode(k, v)?);
            Ok(true)
        },
    )?;
    Ok(out)
}

/// How many keys `span` holds.
pub fn count(
    txn: &(impl Reader + ?Sized),
    table: Table,
    span: Span<'_>,
) -> Result<usize, StoreError> {
    let mut n = 0;
    txn.visit(table, span, Order::Ascending, usize::MAX, &mut |_, _| {
        n += 1;
        Ok(true)
    })?;
    Ok(n)
}

/// The first key of `table`, if any.
pub fn first_key(txn: &(impl Reader + ?Sized), table: Table) -> Result<Option<String>, StoreError> {
    Ok(keys(txn, table, Span::ALL, Order::Ascending, 1)?.pop())
}

/// Writes one record inside a write transaction.
pub fn put_in<T: Serialize>(
    txn: &Write<'_>,
    table: Table,
    key: &str,
    value: &T,
) -> Result<(), StoreError> {
    txn.put_bytes(table, key, &encode(value))
}
