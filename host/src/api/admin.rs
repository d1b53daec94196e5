//! Tenants, keys, settings, config, calendars and the audit log: what internal IT's admins
//! (and, to create a tenant, the platform admin) manage. Every change is audited in the same
//! transaction that makes it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::json;
use switchboard_rules::{ALWAYS_OPEN, Calendar, CalendarSpec};

use super::{ApiError, ApiJson, ApiPath, AppState, Caller, created, ok, require, role_name};
use crate::service::{Principal, audit, new_key};
use crate::store::records::{AuditEntry, KeyRecord, Role, Settings, TenantRecord};
use crate::store::{self, StoreError};

/// A URL-safe id: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
pub(crate) fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// `POST /v1/tenants` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    id: String,
    name: String,
}

/// `POST /v1/tenants` (platform admin): a tenant and its first admin key.
pub(crate) async fn create_tenant(
    State(service): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<Response, ApiError> {
    if !matches!(caller.0, Principal::PlatformAdmin) {
        return Err(ApiError::forbidden(
            "only the platform admin token may create tenants",
        ));
    }
    if !valid_id(&body.id) {
        return Err(ApiError::invalid(
            "invalid_id",
            "tenant id must be 1-64 characters of a-z, 0-9, '-', '_', '.', starting with a letter or digit",
        ));
    }
    if body.name.trim().is_empty() || body.name.len() > 256 {
        return Err(ApiError::invalid(
            "invalid_name",
            "name must be 1-256 bytes and not blank",
        ));
    }
    let (key_id, key, secret_sha256) = new_key();
    let now = Timestamp::now();
    let mut tenant = TenantRecord {
        id: body.id.clone(),
        name: body.name,
        created_at: now,
        settings: Settings::default(),
        config: BTreeMap::new(),
        calendars: BTreeMap::new(),
        active: None,
        history: Vec::new(),
        last_version: 0,
        last_audit: 0,
        revision: 1,
        four_eyes_off_requested_by: None,
    };
    let admin = KeyRecord {
        id: key_id.clone(),
        name: "admin".into(),
        secret_sha256,
        grants: BTreeMap::from([(body.id.clone(), Role::Admin)]),
        created_at: now,
        revision: 1,
    };
    let written = service
        .store
        .write({
            let admin = admin.clone();
            move |txn| {
                if store::get_in::<TenantRecord>(txn, store::TENANTS, &tenant.id)?.is_some() {
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
                audit(
                    txn,
                    &mut tenant,
                    "platform-admin",
                    "key.create",
                    &format!("keys/{}", admin.id),
                    None,
                )?;
                store::put_in(txn, store::KEYS, &admin.id, &admin)?;
                store::put_in(txn, store::TENANTS, &tenant.id, &tenant)?;
                Ok(Some(tenant))
            }
        })
        .await?;
    let Some(tenant) = written else {
        return Err(ApiError::conflict(
            "tenant_exists",
            format!("tenant {:?} already exists", body.id),
        ));
    };
    service.put_key(admin);
    service
        .put_tenant(tenant)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(created(
        json!({"id": body.id, "admin_key": key, "admin_key_id": key_id}),
    ))
}

/// `POST …/keys` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// Name of a new key (omit with `key_id`).
    name: Option<String>,
    /// An existing key to grant a role on this tenant (an MSP engineer serving many clients).
    key_id: Option<String>,
    role: Role,
}

#[derive(Debug, Serialize)]
struct KeyView {
    id: String,
    name: String,
    role: &'static str,
    created_at: Timestamp,
}

/// `POST …/keys` (admin): a new key with a role here, or a role here for an existing key.
pub(crate) async fn create_key(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    match (body.name, body.key_id) {
        (Some(name), None) => {
            if name.trim().is_empty() || name.len() > 256 {
                return Err(ApiError::invalid(
                    "invalid_name",
                    "name must be 1-256 bytes and not blank",
                ));
            }
            let (id, key, secret_sha256) = new_key();
            let record = KeyRecord {
                id: id.clone(),
                name: name.clone(),
                secret_sha256,
                grants: BTreeMap::from([(t.clone(), body.role)]),
                created_at: Timestamp::now(),
                revision: 1,
            };
            write_with_tenant(&service, &t, {
                let record = record.clone();
                move |txn, tenant| {
                    store::put_in(txn, store::KEYS, &record.id, &record)?;
                    audit(
                        txn,
                        tenant,
                        &who,
                        "key.create",
                        &format!("keys/{}", record.id),
                        None,
                    )?;
                    Ok(())
                }
            })
            .await?;
            service.put_key(record);
            Ok(created(
                json!({"id": id, "key": key, "name": name, "role": role_name(body.role)}),
            ))
        }
        (None, Some(key_id)) => {
            let role = body.role;
            let key = write_with_tenant(&service, &t, {
                let (t, key_id) = (t.clone(), key_id.clone());
                move |txn, tenant| {
                    let Some(mut key) = store::get_in::<KeyRecord>(txn, store::KEYS, &key_id)?
                    else {
                        return Ok(None);
                    };
                    key.grants.insert(t, role);
                    key.revision += 1;
                    store::put_in(txn, store::KEYS, &key.id, &key)?;
                    audit(
                        txn,
                        tenant,
                        &who,
                        "key.grant",
                        &format!("keys/{}", key.id),
                        None,
                    )?;
                    Ok(Some(key))
                }
            })
            .await?
            .ok_or_else(|| ApiError::not_found(format!("no key {key_id:?}")))?;
            service.put_key(key.clone());
            // The key's name stays with the tenant that made it.
            Ok(created(json!({"id": key.id, "role": role_name(role)})))
        }
        _ => Err(ApiError::invalid(
            "invalid_body",
            "give either `name` (a new key) or `key_id` (grant an existing key), with `role`",
        )),
    }
}

/// Runs `op` on the tenant's record in one transaction (re-reading it there, so concurrent
/// admin changes serialize), stores the record with a new revision, and refreshes the
/// in-memory view from what was committed.
pub(crate) async fn write_with_tenant<R: Send + 'static>(
    service: &AppState,
    t: &str,
    op: impl FnOnce(&redb::WriteTransaction, &mut TenantRecord) -> Result<R, StoreError>
    + Send
    + 'static,
) -> Result<R, ApiError> {
    let t = t.to_owned();
    let result = service
        .store
        .write(move |txn| {
            let Some(mut tenant) = store::get_in::<TenantRecord>(txn, store::TENANTS, &t)? else {
                return Ok(None);
            };
            let r = op(txn, &mut tenant)?;
            tenant.revision += 1;
            store::put_in(txn, store::TENANTS, &tenant.id, &tenant)?;
            Ok(Some((tenant, r)))
        })
        .await?;
    let (tenant, r) = result.ok_or_else(|| ApiError::not_found("no such tenant"))?;
    service
        .put_tenant(tenant)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(r)
}

/// `GET …/keys` (admin): keys with a role on this tenant.
pub(crate) async fn list_keys(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let txn = service.store.read()?;
    let table = txn.open_table(store::KEYS).map_err(StoreError::from)?;
    let mut keys = Vec::new();
    use redb::ReadableTable;
    for entry in table.iter().map_err(StoreError::from)? {
        let (k, v) = entry.map_err(StoreError::from)?;
        let key: KeyRecord = store::decode(k.value(), v.value())?;
        if let Some(role) = key.grants.get(&t) {
            keys.push(KeyView {
                id: key.id.clone(),
                name: key.name.clone(),
                role: role_name(*role),
                created_at: key.created_at,
            });
        }
    }
    Ok(ok(json!({"keys": keys})))
}

/// `DELETE …/keys/{id}` (admin): revokes the key's role on this tenant.
pub(crate) async fn revoke_key(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, key_id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let who = caller.0.id().to_owned();
    let key = write_with_tenant(&service, &t, {
        let (t, key_id) = (t.clone(), key_id.clone());
        move |txn, tenant| {
            let Some(mut key) = store::get_in::<KeyRecord>(txn, store::KEYS, &key_id)? else {
                return Ok(None);
            };
            if key.grants.remove(&t).is_none() {
                return Ok(None);
            }
            key.revision += 1;
            store::put_in(txn, store::KEYS, &key.id, &key)?;
            audit(
                txn,
                tenant,
                &who,
                "key.revoke",
                &format!("keys/{}", key.id),
                None,
            )?;
            Ok(Some(key))
        }
    })
    .await?;
    let key =
        key.ok_or_else(|| ApiError::not_found(format!("no key {key_id:?} on this tenant")))?;
    service.put_key(key);
    Ok(ok(json!({"id": key_id, "revoked": true})))
}

/// `PUT …/settings` (admin): replaces the settings (omitted fields take their defaults).
pub(crate) async fn put_settings(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    ApiJson(settings): ApiJson<Settings>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Admin)?;
    settings
        .limits
        .validate()
        .map_err(|e| ApiError::invalid("invalid_limits", e.to_string()))?;
    if !(1..=100).contains(&settings.at_risk_percent) {
        return Err(ApiError::invalid(
            "invalid_settings",
            "at_risk_percent must be 1 to 100",
        ));
    }
    if let Some(fallback) = &settings.fallback {
        fallback
            .validate(|id| view.calendars.contains(id))
            .map_err(|e| ApiError::invalid("invalid_fallback", format!("fallback: {e}")))?;
    }
    let who = caller.0.id().to_owned();
    // Turning four-eyes off is itself a four-eyes action: the first admin's request waits for
    // a second, different admin to send the same change.
    let applied = write_with_tenant(&service, &t, {
        let settings = settings.clone();
        move |txn, tenant| {
            let switching_off = tenant.settings.four_eyes && !settings.four_eyes;
            if switching_off {
                match &tenant.four_eyes_off_requested_by {
                    Some(first) if *first != who => {}
                    _ => {
                        tenant.four_eyes_off_requested_by = Some(who.clone());
                        audit(
                            txn,
                            tenant,
                            &who,
                            "settings.four_eyes_off.request",
                            "settings",
                            None,
                        )?;
                        return Ok(false);
                    }
                }
            }
            tenant.four_eyes_off_requested_by = None;
            tenant.settings = settings;
            audit(txn, tenant, &who, "settings.put", "settings", None)?;
            Ok(true)
        }
    })
    .await?;
    if !applied {
        return Ok((
            axum::http::StatusCode::ACCEPTED,
            axum::Json(json!({
                "pending": "turning four-eyes approval off needs a second admin: another admin key must send the same settings",
            })),
        )
            .into_response());
    }
    Ok(ok(settings))
}

/// `GET …/settings` (any role).
pub(crate) async fn get_settings(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    Ok(ok(&view.record.settings))
}

/// Most config entries, and the longest key and value.
const MAX_CONFIG_ENTRIES: usize = 1000;
const MAX_CONFIG_KEY: usize = 256;
const MAX_CONFIG_VALUE: usize = 64 << 10;

/// `PUT …/config` (admin): replaces the string map handed to rules.
pub(crate) async fn put_config(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
    ApiJson(config): ApiJson<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    if config.len() > MAX_CONFIG_ENTRIES {
        return Err(ApiError::invalid(
            "invalid_config",
            format!("at most {MAX_CONFIG_ENTRIES} entries"),
        ));
    }
    if let Some((k, _)) = config
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > MAX_CONFIG_KEY || v.len() > MAX_CONFIG_VALUE)
    {
        return Err(ApiError::invalid(
            "invalid_config",
            format!(
                "entry {k:?}: keys must be 1-{MAX_CONFIG_KEY} bytes, values at most {MAX_CONFIG_VALUE}"
            ),
        ));
    }
    let who = caller.0.id().to_owned();
    write_with_tenant(&service, &t, {
        let config = config.clone();
        move |txn, tenant| {
            tenant.config = config;
            audit(txn, tenant, &who, "config.put", "config", None)
        }
    })
    .await?;
    Ok(ok(config))
}

/// `GET …/config` (admin).
pub(crate) async fn get_config(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Admin)?;
    Ok(ok(&view.record.config))
}

/// `PUT …/calendars/{id}` (admin): creates or replaces a calendar after validating it.
pub(crate) async fn put_calendar(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    if id == ALWAYS_OPEN {
        return Err(ApiError::conflict(
            "builtin_calendar",
            "`24x7` is built in and cannot be replaced",
        ));
    }
    if !valid_id(&id) {
        return Err(ApiError::invalid(
            "invalid_id",
            "calendar id must be 1-64 characters of a-z, 0-9, '-', '_', '.'",
        ));
    }
    Calendar::new(&spec).map_err(|e| ApiError::invalid("invalid_calendar", e.to_string()))?;
    let who = caller.0.id().to_owned();
    write_with_tenant(&service, &t, {
        let (spec, id) = (spec.clone(), id.clone());
        move |txn, tenant| {
            tenant.calendars.insert(id.clone(), spec);
            audit(
                txn,
                tenant,
                &who,
                "calendar.put",
                &format!("calendars/{id}"),
                None,
            )
        }
    })
    .await?;
    // Deadlines on this calendar may have moved, and with them every pending escalation.
    let replanned = crate::timers::replan_tenant(&service, &t).await?;
    Ok(ok(
        json!({"id": id, "calendar": spec, "replanned": replanned}),
    ))
}

/// `GET …/calendars/{id}` (any role).
pub(crate) async fn get_calendar(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    if id == ALWAYS_OPEN {
        return Ok(ok(json!({"id": id, "builtin": true})));
    }
    let spec = view
        .record
        .calendars
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no calendar {id:?}")))?;
    Ok(ok(json!({"id": id, "calendar": spec})))
}

/// `GET …/calendars` (any role): the calendar ids.
pub(crate) async fn list_calendars(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    let ids: Vec<&str> = view.calendars.ids().collect();
    Ok(ok(json!({"calendars": ids})))
}

/// `POST …/calendars/{id}/deadline` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadlineRequest {
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    minutes: u32,
}

/// `POST …/calendars/{id}/deadline` (any role): `{start, minutes}` → `{due}`.
pub(crate) async fn deadline(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath((t, id)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<DeadlineRequest>,
) -> Result<Response, ApiError> {
    let view = require(&service, &caller, &t, Role::Viewer)?;
    let calendar = view
        .calendars
        .get(&id)
        .map_err(|_| ApiError::not_found(format!("no calendar {id:?}")))?;
    let due = calendar
        .add_business_minutes(body.start, body.minutes)
        .map_err(|e| ApiError::invalid("invalid_deadline", e.to_string()))?;
    Ok(ok(
        json!({"calendar": id, "start": body.start, "minutes": body.minutes, "due": due}),
    ))
}

/// `GET …/audit` (admin): every administrative action, oldest first.
pub(crate) async fn audit_log(
    State(service): State<AppState>,
    caller: Caller,
    ApiPath(t): ApiPath<String>,
) -> Result<Response, ApiError> {
    require(&service, &caller, &t, Role::Admin)?;
    let txn = service.store.read()?;
    let entries: Vec<AuditEntry> = store::scan(&txn, store::AUDIT, &t)?;
    Ok(ok(json!({"entries": entries})))
}
