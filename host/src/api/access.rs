//! Who may call what, read from the route table itself: each operation of the OpenAPI
//! document carries `x-min-role` (`none`, `platform_admin`, or the least tenant role), and
//! [`authorize`] checks it for every request — authentication, the tenant, the role — before
//! any path parameter, query or body of the request is read. A route without the extension
//! stops the server from starting, so no route can be added without saying who may call it.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi;

use super::AppState;
use super::extract::{ApiError, Authorized, PlatformAdmin};
use crate::store::records::Role;
use crate::tenants::{Principal, authorize as authorize_tenant};

/// The name of the operation extension that says who may call it.
pub const MIN_ROLE: &str = "x-min-role";

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, unauthenticated.
    Nobody,
    /// The platform admin token.
    PlatformAdmin,
    /// A key with at least this role on the route's tenant.
    Role(Role),
}

impl Need {
    /// Reads an `x-min-role` value.
    pub fn parse(value: &str) -> Option<Need> {
        match value {
            "none" => Some(Need::Nobody),
            "platform_admin" => Some(Need::PlatformAdmin),
            other => Role::from_name(other).map(Need::Role),
        }
    }
}

/// Every operation's [`Need`], by path template and method (looked up without allocating:
/// it runs on every request).
#[derive(Debug, Default)]
pub struct Table(HashMap<String, Vec<(Method, Need)>>);

/// The operations of a document: `(method, path, operation)`.
pub fn operations(
    document: &OpenApi,
) -> impl Iterator<Item = (Method, &str, &utoipa::openapi::path::Operation)> {
    document.paths.paths.iter().flat_map(|(path, item)| {
        [
            (Method::GET, &item.get),
            (Method::PUT, &item.put),
            (Method::POST, &item.post),
            (Method::DELETE, &item.delete),
            (Method::PATCH, &item.patch),
        ]
        .into_iter()
        .filter_map(move |(m, op)| op.as_ref().map(|op| (m, path.as_str(), op)))
    })
}

/// The `x-min-role` of an operation, if it has a valid one.
pub fn need_of(op: &utoipa::openapi::path::Operation) -> Option<Need> {
    let value = op.extensions.as_ref()?.get(MIN_ROLE)?.as_str()?;
    Need::parse(value)
}

impl Table {
    /// The table of `document`. Panics on an operation without a valid `x-min-role`: that is
    /// a bug in the route table, and starting anyway would leave the route unguarded.
    pub fn from_document(document: &OpenApi) -> Self {
        let mut table = HashMap::<String, Vec<(Method, Need)>>::new();
        for (method, path, op) in operations(document) {
            let need = need_of(op).unwrap_or_else(|| {
                panic!("route {method} {path} has no valid `{MIN_ROLE}` in its #[utoipa::path]")
            });
            table
                .entry(path.to_owned())
                .or_default()
                .push((method, need));
        }
        Table(table)
    }

    /// What `method path` needs.
    pub fn get(&self, method: &Method, path: &str) -> Option<Need> {
        self.0
            .get(path)?
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, need)| *need)
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message).before_body()
}

/// The middleware: authenticates and authorizes the request against the table, and hands
/// the handler an [`Authorized`] (or [`PlatformAdmin`]) in the request's extensions.
pub async fn authorize(
    State((service, table)): State<(AppState, Arc<Table>)>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(path) = request.extensions().get::<MatchedPath>().cloned() else {
        return next.run(request).await;
    };
    // The table holds every (method, path) the router serves (it is built from the same
    // route table, and a route without an entry stops the start): a miss is a method the
    // path does not take, which the router answers 405 without running a handler.
    let need = match table.get(request.method(), path.as_str()) {
        None | Some(Need::Nobody) => return next.run(request).await,
        Some(need) => need,
    };
    let principal = match principal(&service, &request) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    match need {
        Need::Nobody => unreachable!("answered above"),
        Need::PlatformAdmin => {
            if !matches!(principal, Principal::PlatformAdmin) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "only the platform admin token may do this",
                )
                .before_body()
                .into_response();
            }
            request.extensions_mut().insert(PlatformAdmin);
        }
        Need::Role(min) => {
            let (with_tenant, tenant) = tenant_param(request).await;
            request = with_tenant;
            tracing::Span::current().record("tenant", tenant.as_str());
            match authorize_tenant(&service.tenants, &principal, &tenant, min) {
                Ok(view) => {
                    request.extensions_mut().insert(Authorized {
                        principal,
                        tenant: view,
                    });
                }
                Err(refused) => return ApiError::from(refused).before_body().into_response(),
            }
        }
    }
    next.run(request).await
}

fn principal(service: &AppState, request: &Request) -> Result<Principal, ApiError> {
    let header = request
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("missing `Authorization: Bearer <key>` header"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <key>`"))?;
    service
        .tenants
        .authenticate(token.trim())
        .ok_or_else(|| unauthorized("unknown or revoked key"))
}

/// The route's `{tenant}` (empty when it has none: no tenant of that id exists).
async fn tenant_param(request: Request) -> (Request, String) {
    use axum::extract::FromRequestParts as _;
    let (mut parts, body) = request.into_parts();
    let tenant = RawPathParams::from_request_parts(&mut parts, &())
        .await
        .ok()
        .and_then(|params| {
            params
                .iter()
                .find(|(k, _)| *k == "tenant")
                .map(|(_, v)| v.to_owned())
        })
        .unwrap_or_default();
    (Request::from_parts(parts, body), tenant)
}
