//! The service's shared state: the store, the rule runtime, and in-memory views of tenants,
//! keys and compiled modules that the hot path reads without touching the disk. The store is
//! the truth; a view is replaced only by a newer revision read back from a commit.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::Engine as _;
use jiff::Timestamp;
use rand::Rng as _;
use redb::{ReadableTable, WriteTransaction};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchboard_rules::{Calendar, CalendarSet};

use crate::metrics::Metrics;
use crate::runtime::{LoadError, RuleModule, Runtime, RuntimeConfig};
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

/// The shared service state.
pub struct Service {
    /// The durable store.
    pub store: Store,
    /// Webhook delivery.
    pub deliveries: Arc<crate::webhooks::Dispatcher>,
    /// SLA timers.
    pub timers: Arc<crate::timers::Scheduler>,
    /// Cron schedules.
    pub schedules: Arc<crate::schedules::Runner>,
    /// The rule runtime.
    pub runtime: Arc<Runtime>,
    /// Metrics.
    pub metrics: Metrics,
    tenants: RwLock<HashMap<String, Arc<TenantView>>>,
    keys: RwLock<HashMap<String, Arc<KeyRecord>>>,
    modules: RwLock<HashMap<String, RuleModule>>,
    admin_token_sha256: [u8; 32],
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service").finish_non_exhaustive()
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed.
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
    /// The data directory cannot be created.
    #[error("data directory: {0}")]
    Io(#[from] std::io::Error),
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Generates a new API key: `(key id, full key)`. The key is `sb_<id>.<secret>` with a
/// 256-bit random secret; only the secret's sha256 is stored.
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

impl Service {
    /// Opens the data directory (`switchboard.redb` and the `artifacts/` cache) and loads
    /// the views. `admin_token` is the platform admin's bearer token.
    pub fn open(data_dir: &Path, admin_token: &str) -> Result<Self, StartError> {
        Self::open_with(
            data_dir,
            admin_token,
            crate::webhooks::DeliveryConfig::default(),
        )
    }

    /// [`Service::open`] with webhook delivery settings (URL policy, retry schedule).
    pub fn open_with(
        data_dir: &Path,
        admin_token: &str,
        delivery: crate::webhooks::DeliveryConfig,
    ) -> Result<Self, StartError> {
        std::fs::create_dir_all(data_dir)?;
        let store = Store::open(&data_dir.join("switchboard.redb"))?;
        let runtime = Arc::new(Runtime::new(RuntimeConfig {
            cache_dir: Some(data_dir.join("artifacts")),
            ..RuntimeConfig::default()
        })?);
        let deliveries = Arc::new(crate::webhooks::Dispatcher::new(delivery));
        deliveries.recover(&store)?;
        let service = Service {
            store,
            deliveries,
            timers: Arc::default(),
            schedules: Arc::default(),
            runtime,
            metrics: Metrics::default(),
            tenants: RwLock::default(),
            keys: RwLock::default(),
            modules: RwLock::default(),
            admin_token_sha256: sha256(admin_token.as_bytes()),
        };
        let (keys, tenants) = service.load_all()?;
        for key in keys {
            service.put_key(key);
        }
        for tenant in tenants {
            service.put_tenant(tenant)?;
        }
        Ok(service)
    }

    fn load_all(&self) -> Result<(Vec<KeyRecord>, Vec<TenantRecord>), StoreError> {
        let txn = self.store.read()?;
        let mut keys = Vec::new();
        for entry in txn.open_table(store::KEYS)?.iter()? {
            let (k, v) = entry?;
            keys.push(store::decode(k.value(), v.value())?);
        }
        let mut tenants = Vec::new();
        for entry in txn.open_table(store::TENANTS)?.iter()? {
            let (k, v) = entry?;
            tenants.push(store::decode(k.value(), v.value())?);
        }
        Ok((keys, tenants))
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
    pub fn tenant(&self, id: &str) -> Option<Arc<TenantView>> {
        self.tenants.read().expect("tenants lock").get(id).cloned()
    }

    /// Replaces the cached key if `key` is newer.
    pub fn put_key(&self, key: KeyRecord) {
        let mut keys = self.keys.write().expect("keys lock");
        if keys.get(&key.id).is_none_or(|k| k.revision <= key.revision) {
            keys.insert(key.id.clone(), Arc::new(key));
        }
    }

    /// Compiles a stored tenant record into its view and caches it if it is newer.
    pub fn put_tenant(&self, record: TenantRecord) -> Result<Arc<TenantView>, StartError> {
        let mut calendars = CalendarSet::default();
        for (id, spec) in &record.calendars {
            let calendar = Calendar::new(spec).map_err(|error| StartError::Calendar {
                tenant: record.id.clone(),
                id: id.clone(),
                error,
            })?;
            calendars.insert(id.clone(), calendar);
        }
        let active = match record.active {
            Some(v) => Some((v, self.module_for(&record.id, v, &record.settings.limits)?)),
            None => None,
        };
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
        limits: &crate::limits::Limits,
    ) -> Result<RuleModule, StartError> {
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
        let table = txn.open_table(store::MODULES).map_err(StoreError::from)?;
        let bytes = table
            .get(rule.sha256.as_str())
            .map_err(StoreError::from)?
            .ok_or_else(|| StoreError::Corrupt {
                key: rule.sha256.clone(),
                error: "module bytes missing".into(),
            })?;
        // Stored modules were validated at upload; load them with room for a limit lowered
        // since then.
        let roomy = crate::limits::Limits {
            module_bytes: crate::limits::MAX_MODULE_BYTES,
            ..*limits
        };
        let module = self.runtime.load(bytes.value(), &roomy)?;
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

    /// Every tenant view.
    pub fn tenants(&self) -> Vec<Arc<TenantView>> {
        self.tenants
            .read()
            .expect("tenants lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Appends an audit entry for `tenant` inside `txn`, advancing its sequence.
pub fn audit(
    txn: &WriteTransaction,
    tenant: &mut TenantRecord,
    who: &str,
    action: &str,
    target: &str,
    sha256: Option<String>,
) -> Result<(), StoreError> {
    tenant.last_audit += 1;
    let entry = AuditEntry {
        seq: tenant.last_audit,
        at: Timestamp::now(),
        key_id: who.to_owned(),
        action: action.to_owned(),
        target: target.to_owned(),
        sha256,
    };
    store::put_in(
        txn,
        store::AUDIT,
        &store::seq_key(&tenant.id, entry.seq),
        &entry,
    )
}
