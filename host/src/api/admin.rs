//! Tenant, key and audit routes: thin over [`crate::tenants`], which checks and makes each
//! change in one transaction with its audit entry.

use axum::extract::State;
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{ApiJson, ApiPath, Authorized, PlatformAdmin, created, ok};
use super::params::{KeyPath, TenantPath};
use super::{ApiError, AppState, ErrorBody};
use crate::store::records::{AuditEntry, Role};

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
    let admin = service.tenants.create_tenant(&body.id, &body.name).await?;
    Ok(created(TenantCreated {
        id: body.id,
        admin_key: admin.key,
        admin_key_id: admin.id,
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
    let (t, who, role) = (access.id(), access.who(), body.role);
    match (body.name, body.key_id) {
        (Some(name), None) => {
            let made = service.tenants.create_key(t, &who, &name, role).await?;
            Ok(created(KeyCreated {
                id: made.id,
                key: Some(made.key),
                name: Some(name),
                role,
            }))
        }
        (None, Some(key_id)) => {
            service.tenants.grant_key(t, &who, &key_id, role).await?;
            // The key's name stays with the tenant that made it.
            Ok(created(KeyCreated {
                id: key_id,
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
    let keys = service
        .tenants
        .keys_of(access.id())?
        .into_iter()
        .map(|(key, role)| KeyView {
            id: key.id,
            name: key.name,
            role,
            created_at: key.created_at,
        })
        .collect();
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
    service
        .tenants
        .revoke_key(access.id(), &who, &path.key_id)
        .await?;
    Ok(ok(Revoked {
        id: path.key_id,
        revoked: true,
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
    let entries = service.tenants.audit_log(access.id())?;
    Ok(ok(AuditLog { entries }))
}
