//! What internal IT's admins (and, to create a tenant, the platform admin) change: tenants,
//! keys, settings, config and calendars. Each change is checked first, then made in one
//! transaction with its audit entry; turning four-eyes approval off is itself a four-eyes
//! action (a first admin asks, a second, different one confirms).

use std::collections::BTreeMap;

use jiff::Timestamp;
use switchboard_rules::{ALWAYS_OPEN, Calendar, CalendarSpec};

use super::{Tenants, audit, check_id, new_key};
use crate::limits::Limits;
use crate::refusal::{Refusal, Result};
use crate::store::records::{AuditEntry, KeyRecord, Role, Settings, TenantRecord};
use crate::store::{self, Order, Reader as _, Span};

/// Most config entries, and the longest key and value.
pub const MAX_CONFIG_ENTRIES: usize = 1000;
/// Longest config key, in bytes.
pub const MAX_CONFIG_KEY: usize = 256;
/// Longest config value, in bytes.
pub const MAX_CONFIG_VALUE: usize = 64 << 10;

/// A key as made: its id, the key itself (shown once) and its record.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The key's id.
    pub id: String,
    /// `sb_<id>.<secret>`.
    pub key: String,
}

/// What a settings change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingsOutcome {
    /// Applied.
    Applied,
    /// Turning four-eyes off waits for a second admin.
    Pending,
}

fn check_name(name: &str) -> Result<(), Refusal> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(Refusal::invalid(
            "invalid_name",
            "`name` must be 1-256 bytes and not blank",
        ));
    }
    Ok(())
}

impl Tenants {
    /// Creates tenant `id` named `name` with its first admin key (the platform admin's act).
    pub async fn create_tenant(&self, id: &str, name: &str) -> Result<NewKey> {
        check_id(id, "`id`")?;
        check_name(name)?;
        let (key_id, key, secret_sha256) = new_key();
        let now = Timestamp::now();
        let mut tenant = TenantRecord::new(id, name, now);
        let admin = KeyRecord {
            id: key_id.clone(),
            name: "admin".into(),
            secret_sha256,
            grants: BTreeMap::from([(id.to_owned(), Role::Admin)]),
            created_at: now,
            revision: 1,
        };
        let stored = admin.clone();
        let written = self
            .store
            .write(move |txn| {
                if store::get::<TenantRecord>(txn, store::TENANTS, &tenant.id)?.is_some() {
                    return Ok(None);
                }
                let id = tenant.id.clone();
                audit(
                    txn,
                    &mut tenant,
                    "platform-admin",
                    "tenant.create",
                    &id,
                    None,
                )?;
                let target = format!("keys/{}", stored.id);
                audit(
                    txn,
                    &mut tenant,
                    "platform-admin",
                    "key.create",
                    &target,
                    None,
                )?;
                store::put_in(txn, store::KEYS, &stored.id, &stored)?;
                store::put_in(txn, store::TENANTS, &tenant.id, &tenant)?;
                super::bump_views(txn)?;
                Ok(Some(tenant))
            })
            .await?;
        let Some(tenant) = written else {
            let message = format!("tenant {id:?} already exists");
            return Err(Refusal::conflict("tenant_exists", message).into());
        };
        self.put_key(admin);
        self.put_tenant(tenant)?;
        Ok(NewKey { id: key_id, key })
    }

    /// A new key named `name` with `role` on tenant `t`, made by `who`.
    pub async fn create_key(&self, t: &str, who: &str, name: &str, role: Role) -> Result<NewKey> {
        check_name(name)?;
        let (id, key, secret_sha256) = new_key();
        let record = KeyRecord {
            id: id.clone(),
            name: name.to_owned(),
            secret_sha256,
            grants: BTreeMap::from([(t.to_owned(), role)]),
            created_at: Timestamp::now(),
            revision: 1,
        };
        let (stored, who) = (record.clone(), who.to_owned());
        self.write_with_tenant(t, move |txn, tenant| {
            store::put_in(txn, store::KEYS, &stored.id, &stored)?;
            let target = format!("keys/{}", stored.id);
            audit(txn, tenant, &who, "key.create", &target, None).map(Ok)
        })
        .await?;
        self.put_key(record);
        Ok(NewKey { id, key })
    }

    /// Grants the existing key `key_id` `role` on tenant `t` (an MSP engineer serving many
    /// clients), as `who`.
    pub async fn grant_key(&self, t: &str, who: &str, key_id: &str, role: Role) -> Result<()> {
        let (who, key_id) = (who.to_owned(), key_id.to_owned());
        let key = self
            .write_with_tenant(t, move |txn, tenant| {
                let Some(mut key) = store::get::<KeyRecord>(txn, store::KEYS, &key_id)? else {
                    return Ok(Err(Refusal::not_found(format!("no key {key_id:?}"))));
                };
                key.grants.insert(tenant.id.clone(), role);
                key.revision += 1;
                store::put_in(txn, store::KEYS, &key.id, &key)?;
                let target = format!("keys/{}", key.id);
                audit(txn, tenant, &who, "key.grant", &target, None)?;
                Ok(Ok(key))
            })
            .await?;
        self.put_key(key);
        Ok(())
    }

    /// Revokes key `key_id`'s role on tenant `t`, as `who`.
    pub async fn revoke_key(&self, t: &str, who: &str, key_id: &str) -> Result<()> {
        let (who, key_id) = (who.to_owned(), key_id.to_owned());
        let key = self
            .write_with_tenant(t, move |txn, tenant| {
                let refused = || Refusal::not_found(format!("no key {key_id:?} on this tenant"));
                let Some(mut key) = store::get::<KeyRecord>(txn, store::KEYS, &key_id)? else {
                    return Ok(Err(refused()));
                };
                if key.grants.remove(&tenant.id).is_none() {
                    return Ok(Err(refused()));
                }
                key.revision += 1;
                store::put_in(txn, store::KEYS, &key.id, &key)?;
                let target = format!("keys/{}", key.id);
                audit(txn, tenant, &who, "key.revoke", &target, None)?;
                Ok(Ok(key))
            })
            .await?;
        self.put_key(key);
        Ok(())
    }

    /// The keys with a role on tenant `t`, with that role.
    pub fn keys_of(&self, t: &str) -> Result<Vec<(KeyRecord, Role)>> {
        let txn = self.store.read()?;
        let mut keys = Vec::new();
        let all = store::decoded::<KeyRecord>(
            &txn,
            store::KEYS,
            Span::ALL,
            Order::Ascending,
            usize::MAX,
        )?;
        for (_, key) in all {
            if let Some(role) = key.grants.get(t).copied() {
                keys.push((key, role));
            }
        }
        Ok(keys)
    }

    /// Replaces tenant `t`'s settings, as `who`. Turning four-eyes approval off needs two
    /// different admins: the first request answers [`SettingsOutcome::Pending`].
    pub async fn put_settings(
        &self,
        t: &str,
        who: &str,
        mut settings: Settings,
    ) -> Result<SettingsOutcome> {
        settings
            .limits
            .validate_within(&self.caps)
            .map_err(|e| Refusal::invalid("invalid_limits", format!("`limits`: {e}")))?;
        let toolchains = &mut settings.toolchain_limits;
        toolchains.javascript = toolchains
            .javascript
            .defaults_within(&Limits::JAVASCRIPT, &self.caps);
        toolchains.python = toolchains
            .python
            .defaults_within(&Limits::PYTHON, &self.caps);
        for (name, limits) in [
            ("javascript", &settings.toolchain_limits.javascript),
            ("python", &settings.toolchain_limits.python),
        ] {
            limits.validate_within(&self.caps).map_err(|e| {
                Refusal::invalid("invalid_limits", format!("`toolchain_limits.{name}`: {e}"))
            })?;
        }
        if !(1..=100).contains(&settings.at_risk_percent) {
            return Err(
                Refusal::invalid("invalid_settings", "`at_risk_percent` must be 1 to 100").into(),
            );
        }
        if let Some(fallback) = &settings.fallback {
            let view = self
                .get(t)
                .ok_or_else(|| Refusal::not_found("no such tenant"))?;
            fallback
                .validate(|id| view.calendars.contains(id))
                .map_err(|e| Refusal::invalid("invalid_fallback", format!("`fallback`: {e}")))?;
        }
        let who = who.to_owned();
        self.write_with_tenant(t, move |txn, tenant| {
            let switching_off = tenant.settings.four_eyes && !settings.four_eyes;
            if switching_off {
                match &tenant.four_eyes_off_requested_by {
                    Some(first) if *first != who => {}
                    _ => {
                        tenant.four_eyes_off_requested_by = Some(who.clone());
                        let action = "settings.four_eyes_off.request";
                        audit(txn, tenant, &who, action, "settings", None)?;
                        return Ok(Ok(SettingsOutcome::Pending));
                    }
                }
            }
            tenant.four_eyes_off_requested_by = None;
            tenant.settings = settings;
            audit(txn, tenant, &who, "settings.put", "settings", None)?;
            Ok(Ok(SettingsOutcome::Applied))
        })
        .await
    }

    /// Replaces tenant `t`'s config map (what rules read with `config(key)`), as `who`.
    pub async fn put_config(
        &self,
        t: &str,
        who: &str,
        config: BTreeMap<String, String>,
    ) -> Result<()> {
        if config.len() > MAX_CONFIG_ENTRIES {
            let message = format!("at most {MAX_CONFIG_ENTRIES} entries");
            return Err(Refusal::invalid("invalid_config", message).into());
        }
        if let Some((k, _)) = config
            .iter()
            .find(|(k, v)| k.is_empty() || k.len() > MAX_CONFIG_KEY || v.len() > MAX_CONFIG_VALUE)
        {
            let message = format!(
                "entry {k:?}: keys must be 1-{MAX_CONFIG_KEY} bytes, values at most {MAX_CONFIG_VALUE}"
            );
            return Err(Refusal::invalid("invalid_config", message).into());
        }
        let who = who.to_owned();
        self.write_with_tenant(t, move |txn, tenant| {
            tenant.config = config;
            audit(txn, tenant, &who, "config.put", "config", None).map(Ok)
        })
        .await
    }

    /// Creates or replaces calendar `id` of tenant `t`, as `who`. The caller re-plans the
    /// tenant's timers (deadlines on the calendar may have moved).
    pub async fn put_calendar(
        &self,
        t: &str,
        who: &str,
        id: &str,
        spec: CalendarSpec,
    ) -> Result<()> {
        if id == ALWAYS_OPEN {
            let message = "`24x7` is built in and cannot be replaced";
            return Err(Refusal::conflict("builtin_calendar", message).into());
        }
        check_id(id, "calendar id")?;
        Calendar::new(&spec).map_err(|e| Refusal::invalid("invalid_calendar", e.to_string()))?;
        let (who, id) = (who.to_owned(), id.to_owned());
        self.write_with_tenant(t, move |txn, tenant| {
            tenant.calendars.insert(id.clone(), spec);
            let target = format!("calendars/{id}");
            audit(txn, tenant, &who, "calendar.put", &target, None).map(Ok)
        })
        .await
    }

    /// One page of tenant `t`'s audit log: at most `limit` entries matching `filter`, in the
    /// filter's order, strictly past sequence number `after` in that order; with the
    /// sequence number to go on from when more may follow.
    pub fn audit_page(
        &self,
        t: &str,
        filter: &AuditFilter,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<AuditEntry>, Option<u64>)> {
        let txn = self.store.read()?;
        let (first, end) = store::tenant_range(t);
        let (from, to) = match (filter.newest_first, after) {
            (false, Some(seq)) => (store::seq_key(t, seq.saturating_add(1)), end),
            (true, Some(seq)) => (first, store::seq_key(t, seq)),
            (_, None) => (first, end),
        };
        let order = if filter.newest_first {
            Order::Descending
        } else {
            Order::Ascending
        };
        let (mut page, mut next) = (Vec::new(), None);
        let span = Span::between(&from, &to);
        txn.visit(store::AUDIT, span, order, usize::MAX, &mut |k, v| {
            let entry: AuditEntry = store::decode(k, v)?;
            if page.len() == limit {
                next = page.last().map(|e: &AuditEntry| e.seq);
                return Ok(false);
            }
            if filter.matches(&entry) {
                page.push(entry);
            }
            Ok(true)
        })?;
        Ok((page, next))
    }
}

/// Which audit entries a page holds.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only actions starting with this (`rule.` or `rule.approve`).
    pub action: Option<String>,
    /// Only this caller's entries (a key id, or `platform-admin`).
    pub key_id: Option<String>,
    /// Only entries whose target starts with this (`rules/3`, `webhooks/`).
    pub target: Option<String>,
    /// Only entries at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries before this instant.
    pub until: Option<Timestamp>,
    /// Newest first (the default is oldest first).
    pub newest_first: bool,
}

impl AuditFilter {
    /// Whether `entry` is one the filter keeps.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        let starts =
            |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| have.starts_with(w));
        starts(&self.action, &entry.action)
            && starts(&self.target, &entry.target)
            && self.key_id.as_deref().is_none_or(|k| k == entry.key_id)
            && self.since.is_none_or(|s| entry.at >= s)
            && self.until.is_none_or(|u| entry.at < u)
    }
}
