//! Tenants as the hot path and every administrative change see them: in-memory views of
//! tenants, keys and compiled modules (the store is the truth; a view is replaced only by a
//! newer revision read back from a commit), authentication of bearer keys, the audit log, and
//! [`Tenants::write_with_tenant`], the one way an administrative change is made: in one
//! transaction with its audit entry, or, when the operation refuses, not at all.

pub mod changes;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use crate::store::{Order, Reader, Span, Write};
use base64::Engine as _;
use jiff::Timestamp;
use rand::Rng as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_rules::{Calendar, CalendarSet};

use crate::limits::{Limits, RuleLimits};
use crate::refusal::{self, Refusal};
use crate::runtime::{LoadError, RuleModule, Runtime};
use crate::store::records::{AuditEntry, KeyRecord, Role, RuleRecord, TenantRecord};
use crate::store::{self, Store, StoreError};

/// A tenant as the hot path needs it.
#[derive(Debug)]
pub struct TenantView {
    /// The stored record.
    pub record: TenantRecord,
    /// Compiled calendars (with `24x7`).
    pub calendars: Arc<CalendarSet>,
    /// Config handed to rules.
    pub config: Arc<BTreeMap<String, String>>,
    /// The active rule version and its module.
    pub active: Option<(u32, RuleModule)>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The platform admin token.
    PlatformAdmin,
    /// A tenant key.
    Key(Arc<KeyRecord>),
}

impl Principal {
    /// The caller's role on `tenant`, if any.
    pub fn role_on(&self, tenant: &str) -> Option<Role> {
        match self {
            Principal::PlatformAdmin => None,
            Principal::Key(k) => k.grants.get(tenant).copied(),
        }
    }

    /// The id recorded in audit entries.
    pub fn id(&self) -> &str {
        match self {
            Principal::PlatformAdmin => "platform-admin",
            Principal::Key(k) => &k.id,
        }
    }
}

/// Why a stored tenant could not be turned into its view.
#[derive(Debug, thiserror::Error)]
pub enum ViewError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The active rule's module no longer loads.
    #[error(transparent)]
    Runtime(#[from] LoadError),
    /// A stored calendar no longer compiles.
    #[error("tenant {tenant} calendar {id}: {error}")]
    Calendar {
        /// Tenant.
        tenant: String,
        /// Calendar id.
        id: String,
        /// Why.
        error: switchboard_rules::CalendarError,
    },
}

/// The views of every tenant, key and compiled module.
pub struct Tenants {
    store: Store,
    runtime: Arc<Runtime>,
    tenants: RwLock<HashMap<String, Arc<TenantView>>>,
    keys: RwLock<HashMap<String, Arc<KeyRecord>>>,
    modules: RwLock<HashMap<String, RuleModule>>,
    admin_token_sha256: [u8; 32],
    caps: Limits,
    /// The views' revision these views were loaded at (see [`Tenants::refresh`]).
    seen: RwLock<Option<String>>,
}

impl std::fmt::Debug for Tenants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tenants").finish_non_exhaustive()
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Generates a new API key: `(key id, full key, sha256 of the secret)`. The key is
/// `sb_<id>.<secret>` with a 256-bit random secret; only the secret's sha256 is stored.
pub fn new_key() -> (String, String, String) {
    let mut rng = rand::rng();
    let mut id = [0u8; 8];
    let mut secret = [0u8; 32];
    rng.fill_bytes(&mut id);
    rng.fill_bytes(&mut secret);
    let id = hex::encode(id);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let hash = hex::encode(sha256(secret.as_bytes()));
    (id.clone(), format!("sb_{id}.{secret}"), hash)
}

/// Checks a URL-safe id: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit; the
/// refusal names it with `what` (`calendar id`).
pub fn check_id(id: &str, what: &str) -> Result<(), Refusal> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
    if valid {
        return Ok(());
    }
    Err(Refusal::invalid(
        "invalid_id",
        format!(
            "{what} must be 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit"
        ),
    ))
}

impl From<ViewError> for refusal::Error {
    /// A committed record that no longer makes a view is the host's failure, not the caller's.
    fn from(e: ViewError) -> Self {
        refusal::Error::Internal(e.to_string())
    }
}

impl Tenants {
    /// Loads every key and tenant of `store`; `admin_token` is the platform admin's token.
    pub fn load(
        store: Store,
        runtime: Arc<Runtime>,
        admin_token: &str,
        caps: Limits,
    ) -> Result<Self, ViewError> {
        let tenants = Tenants {
            caps,
            store,
            runtime,
            tenants: RwLock::default(),
            keys: RwLock::default(),
            modules: RwLock::default(),
            admin_token_sha256: sha256(admin_token.as_bytes()),
            seen: RwLock::default(),
        };
        let (revision, keys, records) = tenants.load_all()?;
        for key in keys {
            tenants.put_key(key);
        }
        for record in records {
            tenants.put_tenant(record)?;
        }
        *tenants.seen.write().expect("seen lock") = revision;
        Ok(tenants)
    }

    /// The views' revision, and every key and tenant, from one snapshot.
    #[allow(clippy::type_complexity)]
    fn load_all(&self) -> Result<(Option<String>, Vec<KeyRecord>, Vec<TenantRecord>), StoreError> {
        let txn = self.store.read()?;
        let revision = store::get(&txn, store::META, VIEWS_REVISION)?;
        let (all, up) = (Span::ALL, Order::Ascending);
        let keys = store::decoded(&txn, store::KEYS, all, up, usize::MAX)?;
        let tenants = store::decoded(&txn, store::TENANTS, all, up, usize::MAX)?;
        let keys = keys.into_iter().map(|(_, v)| v).collect();
        let tenants = tenants.into_iter().map(|(_, v)| v).collect();
        Ok((revision, keys, tenants))
    }

    /// Catches the views up with changes other nodes committed: when the views' revision
    /// moved, reloads the keys and tenants and replaces every view that is older than its
    /// record (a key revoked elsewhere is refused here from then on). One read when nothing
    /// changed. Answers how many views were replaced; a tenant whose view no longer builds
    /// keeps its old one (and is logged), the others are still replaced. Blocking (it may
    /// compile a module).
    pub fn refresh(&self) -> Result<usize, ViewError> {
        let current: Option<String> = {
            let txn = self.store.read()?;
            store::get(&txn, store::META, VIEWS_REVISION)?
        };
        if current == *self.seen.read().expect("seen lock") {
            return Ok(0);
        }
        let (revision, keys, records) = self.load_all()?;
        let mut replaced = 0;
        for key in keys {
            let stale = {
                let cached = self.keys.read().expect("keys lock");
                cached
                    .get(&key.id)
                    .is_none_or(|k| k.revision < key.revision)
            };
            if stale {
                self.put_key(key);
                replaced += 1;
            }
        }
        for record in records {
            if self
                .get(&record.id)
                .is_none_or(|v| v.record.revision < record.revision)
            {
                let id = record.id.clone();
                match self.put_tenant(record) {
                    Ok(_) => replaced += 1,
                    Err(e) => {
                        tracing::error!(tenant = %id, error = %e, "a tenant changed elsewhere does not load here; its old view stays")
                    }
                }
            }
        }
        *self.seen.write().expect("seen lock") = revision;
        Ok(replaced)
    }

    /// Who a bearer token belongs to.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        if let Some(rest) = token.strip_prefix("sb_") {
            let (id, secret) = rest.split_once('.')?;
            let key = self.keys.read().expect("keys lock").get(id)?.clone();
            let stored = hex::decode(&key.secret_sha256).ok()?;
            let given = sha256(secret.as_bytes());
            return bool::from(stored.ct_eq(&given)).then_some(Principal::Key(key));
        }
        let given = sha256(token.as_bytes());
        bool::from(self.admin_token_sha256.ct_eq(&given)).then_some(Principal::PlatformAdmin)
    }

    /// The tenant view, if the tenant exists.
    pub fn get(&self, id: &str) -> Option<Arc<TenantView>> {
        self.tenants.read().expect("tenants lock").get(id).cloned()
    }

    /// Every tenant view.
    pub fn all(&self) -> Vec<Arc<TenantView>> {
        self.tenants
            .read()
            .expect("tenants lock")
            .values()
            .cloned()
            .collect()
    }

    /// Replaces the cached key if `key` is newer.
    pub fn put_key(&self, key: KeyRecord) {
        let mut keys = self.keys.write().expect("keys lock");
        if keys.get(&key.id).is_none_or(|k| k.revision <= key.revision) {
            keys.insert(key.id.clone(), Arc::new(key));
        }
    }

    /// Compiles a stored tenant record into its view and caches it if it is newer.
    pub fn put_tenant(&self, mut record: TenantRecord) -> Result<Arc<TenantView>, ViewError> {
        let mut calendars = CalendarSet::default();
        for (id, spec) in &record.calendars {
            let calendar = Calendar::new(spec).map_err(|error| ViewError::Calendar {
                tenant: record.id.clone(),
                id: id.clone(),
                error,
            })?;
            calendars.insert(id.clone(), calendar);
        }
        let active = match record.active {
            Some(v) => Some((
                v,
                self.module_for(&record.id, v, &record.settings.rule_limits())?,
            )),
            None => None,
        };
        // The view holds what the tenant gets: its limits lowered to the platform's caps
        // (settings stored before a cap was lowered keep their stored values).
        let settings = &mut record.settings;
        settings.limits = settings.limits.capped(&self.caps);
        let toolchains = &mut settings.toolchain_limits;
        toolchains.javascript = toolchains.javascript.capped(&self.caps);
        toolchains.python = toolchains.python.capped(&self.caps);
        let view = Arc::new(TenantView {
            calendars: Arc::new(calendars),
            config: Arc::new(record.config.clone()),
            active,
            record,
        });
        let mut tenants = self.tenants.write().expect("tenants lock");
        match tenants.get(&view.record.id) {
            Some(old) if old.record.revision > view.record.revision => Ok(old.clone()),
            _ => {
                tenants.insert(view.record.id.clone(), view.clone());
                Ok(view)
            }
        }
    }

    /// The compiled module of a tenant's rule version (loaded from the store on first use).
    pub fn module_for(
        &self,
        tenant: &str,
        version: u32,
        limits: &RuleLimits,
    ) -> Result<RuleModule, ViewError> {
        let txn = self.store.read()?;
        let rule: RuleRecord =
            store::get(&txn, store::RULES, &store::seq_key(tenant, version.into()))?.ok_or_else(
                || StoreError::Corrupt {
                    key: store::seq_key(tenant, version.into()),
                    error: "rule version missing".into(),
                },
            )?;
        if let Some(m) = self.modules.read().expect("modules lock").get(&rule.sha256) {
            return Ok(m.clone());
        }
        let bytes = txn
            .get_bytes(store::MODULES, &rule.sha256)?
            .ok_or_else(|| StoreError::Corrupt {
                key: rule.sha256.clone(),
                error: "module bytes missing".into(),
            })?;
        // Stored modules were validated at upload; load them with room for a limit lowered
        // since then.
        let roomy = limits.map(|l| Limits {
            module_bytes: crate::limits::MAX_MODULE_BYTES,
            ..*l
        });
        let module = self.runtime.load(&bytes, roomy)?;
        self.remember_module(module.clone());
        Ok(module)
    }

    /// Caches a compiled module by sha256.
    pub fn remember_module(&self, module: RuleModule) {
        self.modules
            .write()
            .expect("modules lock")
            .insert(module.sha256().to_owned(), module);
    }

    /// Runs `op` on the tenant's record in one transaction (re-reading it there, so
    /// concurrent admin changes serialize), stores the record with a new revision, and
    /// refreshes the in-memory view from what was committed.
    ///
    /// When `op` refuses, it must not have written anything: the tenant record is then left
    /// as it was (no revision bump, no audit entry), and the refusal is returned.
    pub async fn write_with_tenant<R: Send + 'static>(
        &self,
        t: &str,
        op: impl FnOnce(&Write<'_>, &mut TenantRecord) -> Result<Result<R, Refusal>, StoreError>
        + Send
        + 'static,
    ) -> refusal::Result<R> {
        let id = t.to_owned();
        let written = self
            .store
            .write(move |txn| {
                let Some(mut tenant) = store::get::<TenantRecord>(txn, store::TENANTS, &id)? else {
                    return Ok(None);
                };
                let r = match op(txn, &mut tenant)? {
                    Ok(r) => r,
                    Err(refused) => return Ok(Some(Err(refused))),
                };
                tenant.revision += 1;
                store::put_in(txn, store::TENANTS, &tenant.id, &tenant)?;
                bump_views(txn)?;
                Ok(Some(Ok((tenant, r))))
            })
            .await?;
        let (tenant, r) =
            written.ok_or_else(|| Refusal::not_found(format!("no tenant {t:?}")))??;
        self.put_tenant(tenant)?;
        Ok(r)
    }
}

/// The [`store::META`] key of the views' revision: a fresh token written by every transaction
/// that changes a tenant or a key, so that other nodes on a shared database see that their
/// views are out of date with one read ([`Tenants::refresh`]).
const VIEWS_REVISION: &str = "views/revision";

/// Marks the views changed inside `txn`: a new token, written without reading the old one,
/// so that changes of different tenants on different nodes never wait for each other here.
pub(crate) fn bump_views(txn: &Write<'_>) -> Result<(), StoreError> {
    let token = format!(
        "{}-{:016x}",
        Timestamp::now().as_millisecond(),
        rand::rng().next_u64()
    );
    txn.notify();
    store::put_in(txn, store::META, VIEWS_REVISION, &token)
}

/// Appends an audit entry for `tenant` inside `txn`, advancing its sequence.
pub fn audit(
    txn: &Write<'_>,
    tenant: &mut TenantRecord,
    who: &str,
    action: &str,
    target: &str,
    sha256: Option<String>,
) -> Result<(), StoreError> {
    audit_with(txn, tenant, who, action, target, sha256, None)
}

/// [`audit`], with the action's figures in `detail`.
pub fn audit_with(
    txn: &Write<'_>,
    tenant: &mut TenantRecord,
    who: &str,
    action: &str,
    target: &str,
    sha256: Option<String>,
    detail: Option<serde_json::Value>,
) -> Result<(), StoreError> {
    tenant.last_audit += 1;
    let entry = AuditEntry {
        seq: tenant.last_audit,
        at: Timestamp::now(),
        key_id: who.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        sha256,
        detail,
    };
    store::put_in(
        txn,
        store::AUDIT,
        &store::seq_key(&tenant.id, entry.seq),
        &entry,
    )
}

/// The tenant `tenant` as `principal` may see it: no role (or no tenant) is 404, so a key
/// learns nothing about tenants it does not serve; too small a role is 403.
pub fn authorize(
    tenants: &Tenants,
    principal: &Principal,
    tenant: &str,
    min: Role,
) -> Result<Arc<TenantView>, Refusal> {
    let not_found = || Refusal::not_found(format!("no tenant {tenant:?}"));
    let role = principal.role_on(tenant).ok_or_else(not_found)?;
    let view = tenants.get(tenant).ok_or_else(not_found)?;
    if role < min {
        return Err(Refusal::forbidden(format!(
            "this needs the {} role on the tenant; the key has {}",
            min.name(),
            role.name()
        )));
    }
    Ok(view)
}
