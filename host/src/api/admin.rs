//! Tenants, keys, settings, config, calendars and the audit log: what internal IT's admins
//! (and, to create a tenant, the platform admin) manage. Every change goes through
//! [`Tenants::write_with_tenant`](crate::tenants::Tenants::write_with_tenant), audited in the
//! transaction that makes it.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use switchboard_rules::{ALWAYS_OPEN, Calendar, CalendarSpec};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, PlatformAdmin, created, ok};
use super::params::{IdPath, KeyPath, TenantPath};
use super::{ApiError, AppState, ErrorBody};
use crate::refusal::Refusal;
use crate::store::records::{AuditEntry, KeyRecord, Role, Settings, TenantRecord};
use crate::store::{self, StoreError};
use crate::tenants::{audit, invalid_id, new_key, valid_id};

/// `POST /v1/tenants` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewTenant {
    /// The tenant's id: 1–64 of `a-z 0-9 - _ .`, starting with a letter or digit.
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,63}$")]
    id: String,
    /// Display name, 1–256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    name: String,
}

/// A new tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TenantCreated {
    /// The tenant's id.
    id: String,
    /// Its first admin key (shown once).
    admin_key: String,
    /// That key's id.
    admin_key_id: String,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if name.trim().is_empty() || name.len() > 256 {
        return Err(ApiError::invalid(
            "invalid_name",
            "`name` must be 1-256 bytes and not blank",
        ));
    }
    Ok(())
}

/// `POST /v1/tenants`: a tenant and its first admin key.
#[utoipa::path(
    post, path = "/v1/tenants", tag = "tenants",
    summary = "Create a tenant `{id, name}`; answers `{id, admin_key}` (shown once).",
    extensions(("x-min-role" = json!("platform_admin"))),
    request_body = NewTenant,
    responses(
        (status = 201, description = "Created.", body = TenantCreated),
        (status = 409, description = "The id is taken.", body = ErrorBody),
    )
)]
pub(crate) async fn create_tenant(
    State(service): State<AppState>,
    _: PlatformAdmin,
    ApiJson(body): ApiJson<NewTenant>,
) -> Result<Response, ApiError> {
    if !valid_id(&body.id) {
        return Err(invalid_id("`id`").into());
    }
    check_name(&body.name)?;
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
                let target = format!("keys/{}", admin.id);
                audit(
                    txn,
                    &mut tenant,
                    "platform-admin",
                    "key.create",
                    &target,
                    None,
                )?;
                store::put_in(txn, store::KEYS, &admin.id, &admin)?;
                store::put_in(txn, store::TENANTS, &tenant.id, &tenant)?;
                Ok(Some(tenant))
            }
        })
        .await?;
    let Some(tenant) = written else {
        return Err(Refusal::conflict(
            "tenant_exists",
            format!("tenant {:?} already exists", body.id),
        )
        .into());
    };
    service.tenants.put_key(admin);
    service
        .tenants
        .put_tenant(tenant)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(created(TenantCreated {
        id: body.id,
        admin_key: key,
        admin_key_id: key_id,
    }))
}

/// `POST …/keys` body: `name` for a new key, or `key_id` to grant an existing one.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    /// Name of a new key (omit with `key_id`), 1–256 bytes.
    #[schema(min_length = 1, max_length = 256)]
    name: Option<String>,
    /// An existing key to grant a role on this tenant (an MSP engineer serving many clients).
    key_id: Option<String>,
    /// The role on this tenant.
    role: Role,
}

/// A key made or granted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyCreated {
    /// The key's id.
    id: String,
    /// The key itself (new keys only; shown once).
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// Its name (new keys only).
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// Its role on this tenant.
    role: Role,
}

/// A key as listed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyView {
    /// The key's id.
    id: String,
    /// Its name.
    name: String,
    /// Its role on this tenant.
    role: Role,
    /// When it was made.
    #[schema(value_type = String, format = DateTime)]
    created_at: Timestamp,
}

/// The keys of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct KeyList {
    /// Keys with a role on the tenant.
    keys: Vec<KeyView>,
}

/// `POST …/keys`: a new key with a role here, or a role here for an existing key.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/keys", tag = "keys",
    summary = "Create a key `{name, role}` (or grant an existing `{key_id, role}`); answers `{id, key, role}`.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath), request_body = NewKey,
    responses((status = 201, description = "Made or granted.", body = KeyCreated))
)]
pub(crate) async fn create_key(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(body): ApiJson<NewKey>,
) -> Result<Response, ApiError> {
    let (who, t) = (access.who(), access.id().to_owned());
    match (body.name, body.key_id) {
        (Some(name), None) => {
            check_name(&name)?;
            let (id, key, secret_sha256) = new_key();
            let record = KeyRecord {
                id: id.clone(),
                name: name.clone(),
                secret_sha256,
                grants: BTreeMap::from([(t.clone(), body.role)]),
                created_at: Timestamp::now(),
                revision: 1,
            };
            let stored = record.clone();
            service
                .tenants
                .write_with_tenant(&t, move |txn, tenant| {
                    store::put_in(txn, store::KEYS, &stored.id, &stored)?;
                    let target = format!("keys/{}", stored.id);
                    audit(txn, tenant, &who, "key.create", &target, None)?;
                    Ok(Ok(()))
                })
                .await?;
            service.tenants.put_key(record);
            Ok(created(KeyCreated {
                id,
                key: Some(key),
                name: Some(name),
                role: body.role,
            }))
        }
        (None, Some(key_id)) => {
            let role = body.role;
            let granted = key_id.clone();
            let key = service
                .tenants
                .write_with_tenant(&t, move |txn, tenant| {
                    let Some(mut key) = store::get_in::<KeyRecord>(txn, store::KEYS, &granted)?
                    else {
                        return Ok(Err(Refusal::not_found(format!("no key {granted:?}"))));
                    };
                    key.grants.insert(tenant.id.clone(), role);
                    key.revision += 1;
                    store::put_in(txn, store::KEYS, &key.id, &key)?;
                    let target = format!("keys/{}", key.id);
                    audit(txn, tenant, &who, "key.grant", &target, None)?;
                    Ok(Ok(key))
                })
                .await?;
            service.tenants.put_key(key.clone());
            // The key's name stays with the tenant that made it.
            Ok(created(KeyCreated {
                id: key.id,
                key: None,
                name: None,
                role,
            }))
        }
        _ => Err(ApiError::invalid(
            "invalid_body",
            "give either `name` (a new key) or `key_id` (grant an existing key), with `role`",
        )),
    }
}

/// `GET …/keys`: keys with a role on this tenant.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/keys", tag = "keys",
    summary = "Keys with a role on the tenant.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath),
    responses((status = 200, description = "The keys.", body = KeyList))
)]
pub(crate) async fn list_keys(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    use redb::ReadableTable;
    let txn = service.store.read()?;
    let table = txn.open_table(store::KEYS).map_err(StoreError::from)?;
    let mut keys = Vec::new();
    for entry in table.iter().map_err(StoreError::from)? {
        let (k, v) = entry.map_err(StoreError::from)?;
        let key: KeyRecord = store::decode(k.value(), v.value())?;
        if let Some(role) = key.grants.get(access.id()) {
            keys.push(KeyView {
                id: key.id.clone(),
                name: key.name.clone(),
                role: *role,
                created_at: key.created_at,
            });
        }
    }
    Ok(ok(KeyList { keys }))
}

/// A key's role revoked.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Revoked {
    /// The key's id.
    id: String,
    /// Always true.
    revoked: bool,
}

/// `DELETE …/keys/{key_id}`: revokes the key's role on this tenant.
#[utoipa::path(
    delete, path = "/v1/tenants/{tenant}/keys/{key_id}", tag = "keys",
    summary = "Revoke a key's role on the tenant.",
    extensions(("x-min-role" = json!("admin"))),
    params(KeyPath),
    responses((status = 200, description = "Revoked.", body = Revoked))
)]
pub(crate) async fn revoke_key(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<KeyPath>,
) -> Result<Response, ApiError> {
    let who = access.who();
    let key_id = path.key_id.clone();
    let key = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            let refused = || Refusal::not_found(format!("no key {key_id:?} on this tenant"));
            let Some(mut key) = store::get_in::<KeyRecord>(txn, store::KEYS, &key_id)? else {
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
    service.tenants.put_key(key);
    Ok(ok(Revoked {
        id: path.key_id,
        revoked: true,
    }))
}

/// A change that waits for a second admin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Pending {
    /// What is awaited.
    pending: String,
}

/// `PUT …/settings`: replaces the settings (omitted fields take their defaults).
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/settings", tag = "settings",
    summary = "Fallback decision, paused statuses, limits, four-eyes approval, at-risk threshold.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath), request_body = Settings,
    responses(
        (status = 200, description = "Applied.", body = Settings),
        (status = 202, description = "Turning four-eyes off waits for a second admin.", body = Pending),
    )
)]
pub(crate) async fn put_settings(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(settings): ApiJson<Settings>,
) -> Result<Response, ApiError> {
    settings
        .limits
        .validate()
        .map_err(|e| ApiError::invalid("invalid_limits", e.to_string()))?;
    if !(1..=100).contains(&settings.at_risk_percent) {
        return Err(ApiError::invalid(
            "invalid_settings",
            "`at_risk_percent` must be 1 to 100",
        ));
    }
    if let Some(fallback) = &settings.fallback {
        fallback
            .validate(|id| access.tenant.calendars.contains(id))
            .map_err(|e| ApiError::invalid("invalid_fallback", format!("`fallback`: {e}")))?;
    }
    let who = access.who();
    // Turning four-eyes off is itself a four-eyes action: the first admin's request waits for
    // a second, different admin to send the same change.
    let stored = settings.clone();
    let applied = service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            let switching_off = tenant.settings.four_eyes && !stored.four_eyes;
            if switching_off {
                match &tenant.four_eyes_off_requested_by {
                    Some(first) if *first != who => {}
                    _ => {
                        tenant.four_eyes_off_requested_by = Some(who.clone());
                        let action = "settings.four_eyes_off.request";
                        audit(txn, tenant, &who, action, "settings", None)?;
                        return Ok(Ok(false));
                    }
                }
            }
            tenant.four_eyes_off_requested_by = None;
            tenant.settings = stored;
            audit(txn, tenant, &who, "settings.put", "settings", None)?;
            Ok(Ok(true))
        })
        .await?;
    if !applied {
        let pending = Pending {
            pending: "turning four-eyes approval off needs a second admin: another admin key must send the same settings".into(),
        };
        return Ok((StatusCode::ACCEPTED, axum::Json(pending)).into_response());
    }
    Ok(ok(settings))
}

/// `GET …/settings`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/settings", tag = "settings",
    summary = "The tenant's settings.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The settings.", body = Settings))
)]
pub(crate) async fn get_settings(access: Authorized) -> Response {
    ok(&access.tenant.record.settings)
}

/// Most config entries, and the longest key and value.
const MAX_CONFIG_ENTRIES: usize = 1000;
const MAX_CONFIG_KEY: usize = 256;
const MAX_CONFIG_VALUE: usize = 64 << 10;

/// `PUT …/config`: replaces the string map handed to rules.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/config", tag = "config",
    summary = "Replace the string map handed to rules via `config(key)`.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath), request_body = BTreeMap<String, String>,
    responses((status = 200, description = "The new map.", body = BTreeMap<String, String>))
)]
pub(crate) async fn put_config(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(config): ApiJson<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
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
    let who = access.who();
    let stored = config.clone();
    service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            tenant.config = stored;
            audit(txn, tenant, &who, "config.put", "config", None).map(Ok)
        })
        .await?;
    Ok(ok(config))
}

/// `GET …/config`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/config", tag = "config",
    summary = "The config map.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath),
    responses((status = 200, description = "The map.", body = BTreeMap<String, String>))
)]
pub(crate) async fn get_config(access: Authorized) -> Response {
    ok(&access.tenant.record.config)
}

/// A calendar as stored.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarPut {
    /// Its id.
    id: String,
    /// Its definition.
    calendar: CalendarSpec,
    /// How many tickets' timers moved.
    replanned: usize,
}

/// `PUT …/calendars/{id}`: creates or replaces a calendar after validating it.
#[utoipa::path(
    put, path = "/v1/tenants/{tenant}/calendars/{id}", tag = "calendars",
    summary = "Create or replace a calendar `{timezone, hours, holidays}`; pending timers on it are re-planned.",
    extensions(("x-min-role" = json!("admin"))),
    params(IdPath), request_body = CalendarSpec,
    responses(
        (status = 200, description = "Stored.", body = CalendarPut),
        (status = 409, description = "`24x7` is built in.", body = ErrorBody),
    )
)]
pub(crate) async fn put_calendar(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(spec): ApiJson<CalendarSpec>,
) -> Result<Response, ApiError> {
    let id = path.id;
    if id == ALWAYS_OPEN {
        return Err(Refusal::conflict(
            "builtin_calendar",
            "`24x7` is built in and cannot be replaced",
        )
        .into());
    }
    if !valid_id(&id) {
        return Err(invalid_id("calendar id").into());
    }
    Calendar::new(&spec).map_err(|e| ApiError::invalid("invalid_calendar", e.to_string()))?;
    let who = access.who();
    let (stored, target) = (spec.clone(), id.clone());
    service
        .tenants
        .write_with_tenant(access.id(), move |txn, tenant| {
            tenant.calendars.insert(target.clone(), stored);
            let target = format!("calendars/{target}");
            audit(txn, tenant, &who, "calendar.put", &target, None).map(Ok)
        })
        .await?;
    // Deadlines on this calendar may have moved, and with them every pending escalation.
    let replanned = crate::timers::replan_tenant(
        &service.store,
        &service.tenants,
        &service.timers,
        access.id(),
    )
    .await?;
    Ok(ok(CalendarPut {
        id,
        calendar: spec,
        replanned,
    }))
}

/// A calendar as read.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarGet {
    /// Its id.
    id: String,
    /// Its definition (absent for the built-in `24x7`).
    #[serde(skip_serializing_if = "Option::is_none")]
    calendar: Option<CalendarSpec>,
    /// Whether it is built in.
    builtin: bool,
}

/// `GET …/calendars/{id}`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/calendars/{id}", tag = "calendars",
    summary = "A calendar.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath),
    responses((status = 200, description = "The calendar.", body = CalendarGet))
)]
pub(crate) async fn get_calendar(
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    if path.id == ALWAYS_OPEN {
        return Ok(ok(CalendarGet {
            id: path.id,
            calendar: None,
            builtin: true,
        }));
    }
    let spec = access
        .tenant
        .record
        .calendars
        .get(&path.id)
        .ok_or_else(|| ApiError::not_found(format!("no calendar {:?}", path.id)))?;
    Ok(ok(CalendarGet {
        calendar: Some(spec.clone()),
        id: path.id,
        builtin: false,
    }))
}

/// The calendar ids.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CalendarList {
    /// Ids, with the built-in `24x7`.
    calendars: Vec<String>,
}

/// `GET …/calendars`: the calendar ids.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/calendars", tag = "calendars",
    summary = "Calendar ids (with the built-in `24x7`).",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The ids.", body = CalendarList))
)]
pub(crate) async fn list_calendars(access: Authorized) -> Response {
    let calendars = access.tenant.calendars.ids().map(str::to_owned).collect();
    ok(CalendarList { calendars })
}

/// `POST …/calendars/{id}/deadline` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeadlineRequest {
    /// From when.
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    /// Business minutes to add.
    minutes: u32,
}

/// A deadline.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Deadline {
    /// The calendar.
    calendar: String,
    /// From when.
    #[schema(value_type = String, format = DateTime)]
    start: Timestamp,
    /// Business minutes added.
    minutes: u32,
    /// When they are up.
    #[schema(value_type = String, format = DateTime)]
    due: Timestamp,
}

/// `POST …/calendars/{id}/deadline`: `{start, minutes}` → `{due}`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/calendars/{id}/deadline", tag = "calendars",
    summary = "`{start, minutes}` → `{due}` in business time.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath), request_body = DeadlineRequest,
    responses((status = 200, description = "The deadline.", body = Deadline))
)]
pub(crate) async fn deadline(
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    ApiJson(body): ApiJson<DeadlineRequest>,
) -> Result<Response, ApiError> {
    let calendar = access
        .tenant
        .calendars
        .get(&path.id)
        .map_err(|_| ApiError::not_found(format!("no calendar {:?}", path.id)))?;
    let due = calendar
        .add_business_minutes(body.start, body.minutes)
        .map_err(|e| ApiError::invalid("invalid_deadline", e.to_string()))?;
    Ok(ok(Deadline {
        calendar: path.id,
        start: body.start,
        minutes: body.minutes,
        due,
    }))
}

/// The audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditLog {
    /// Entries, oldest first.
    entries: Vec<AuditEntry>,
}

/// `GET …/audit`: every administrative action, oldest first.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/audit", tag = "audit",
    summary = "Every administrative action: who, what, when, module sha256.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath),
    responses((status = 200, description = "The log.", body = AuditLog))
)]
pub(crate) async fn audit_log(
    State(service): State<AppState>,
    access: Authorized,
) -> Result<Response, ApiError> {
    let txn = service.store.read()?;
    let entries: Vec<AuditEntry> = store::scan(&txn, store::AUDIT, access.id())?;
    Ok(ok(AuditLog { entries }))
}
