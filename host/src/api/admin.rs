//! Tenant, key and audit routes: thin over [`crate::tenants`], which checks and makes each
//! change in one transaction with its audit entry.

use axum::extract::State;
use axum::response::Response;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, PlatformAdmin, created, ok};
use super::params::{KeyPath, TenantPath};
use super::{ApiError, AppState, ErrorBody};
use crate::store::records::{AuditEntry, Role};
use crate::tenants::Principal;
use crate::tenants::changes::AuditFilter;

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
    /// Entries, oldest first (newest first with `order=newest`).
    entries: Vec<AuditEntry>,
    /// Pass as `cursor` for the next page; `null` when this is the last.
    next_cursor: Option<String>,
}

/// Which way the audit log is read.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum AuditOrder {
    /// Oldest first.
    #[default]
    Oldest,
    /// Newest first.
    Newest,
}

/// `GET …/audit` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only actions starting with this: `rule.` or `rule.approve`.
    action: Option<String>,
    /// Only this caller's entries: a key id, or `platform-admin`.
    key_id: Option<String>,
    /// Only entries whose target starts with this: `rules/3`, `webhooks/`.
    target: Option<String>,
    /// Only entries at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// Only entries before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
    /// `oldest` (default) or `newest` first.
    #[param(inline)]
    order: Option<AuditOrder>,
    /// Most entries listed (1–1000, default 1000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Where to go on: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Most audit entries on one page.
const AUDIT_PAGE: usize = 1000;

/// `GET …/audit`: every administrative action, oldest first, filtered and paged.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/audit", tag = "audit",
    summary = "Every administrative action: who, what, when, module sha256; `?action=&key_id=&target=&since=&until=&order=&limit=&cursor=`.",
    extensions(("x-min-role" = json!("admin"))),
    params(TenantPath, AuditQuery),
    responses(
        (status = 200, description = "A page of the log.", body = AuditLog),
        (status = 422, description = "`limit`, `cursor` or `until` is out of range (`invalid_query`).", body = ErrorBody),
    )
)]
pub(crate) async fn audit_log(
    State(service): State<AppState>,
    access: Authorized,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let invalid = |m: String| ApiError::invalid("invalid_query", m);
    let limit = match query.limit {
        None => AUDIT_PAGE,
        Some(n @ 1..=AUDIT_PAGE) => n,
        Some(n) => {
            return Err(invalid(format!(
                "`limit` must be 1 to {AUDIT_PAGE}, got {n}"
            )));
        }
    };
    let after = query
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>()
                .map_err(|_| invalid(format!("`cursor` {c:?} is not one the audit log gave out")))
        })
        .transpose()?;
    if let (Some(since), Some(until)) = (query.since, query.until)
        && until <= since
    {
        return Err(invalid("`until` must be after `since`".into()));
    }
    let filter = AuditFilter {
        action: query.action,
        key_id: query.key_id,
        target: query.target,
        since: query.since,
        until: query.until,
        newest_first: matches!(query.order.unwrap_or_default(), AuditOrder::Newest),
    };
    let (entries, next) = service
        .tenants
        .audit_page(access.id(), &filter, after, limit)?;
    Ok(ok(AuditLog {
        entries,
        next_cursor: next.map(|seq| seq.to_string()),
    }))
}

/// Who the caller is on this tenant: what the console shows and hides by.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Me {
    /// The tenant's id.
    tenant: String,
    /// The tenant's display name.
    tenant_name: String,
    /// The calling key's id.
    key_id: String,
    /// The calling key's name.
    key_name: String,
    /// The key's role on this tenant.
    #[schema(value_type = String, example = "operator")]
    role: &'static str,
    /// Whether four-eyes approval is on: then an admin may not approve a version it uploaded.
    four_eyes: bool,
}

/// `GET …/me`: the calling key and its role on the tenant.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/me", tag = "keys",
    summary = "The calling key, its role on the tenant, and whether four-eyes approval is on.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath),
    responses((status = 200, description = "The caller.", body = Me))
)]
pub(crate) async fn me(access: Authorized) -> Result<Response, ApiError> {
    let Principal::Key(key) = &access.principal else {
        return Err(ApiError::internal(
            &"a tenant route authorized without a key",
        ));
    };
    let role = access
        .principal
        .role_on(access.id())
        .ok_or_else(|| ApiError::internal(&"a tenant route authorized without a grant"))?;
    let record = &access.tenant.record;
    Ok(ok(Me {
        tenant: record.id.clone(),
        tenant_name: record.name.clone(),
        key_id: key.id.clone(),
        key_name: key.name.clone(),
        role: role.name(),
        four_eyes: record.settings.four_eyes,
    }))
}
