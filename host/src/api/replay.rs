//! Replay routes: thin over [`crate::replay`], which evaluates stored history with a candidate
//! version, keeps the summary, and streams the export.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiJson, ApiPath, ApiQuery, Authorized, ok};
use super::params::{ReplayPath, TenantPath, VersionPath};
use super::{ApiError, AppState, ErrorBody};
use crate::replay::{
    Against, DEFAULT_LIMIT, ExportLine, MAX_LIMIT, Period, ReplayRequest, ReplaySummary,
};

/// `POST …/rules/{version}/replay` body; every field is optional.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// What to compare with: `active` (default), `stored` (the decision stored on each
    /// ticket) or a version number.
    #[schema(schema_with = against_schema)]
    against: Option<Value>,
    /// Most tickets evaluated, newest first (1–100000; default 1000, or every named ticket).
    #[schema(minimum = 1, maximum = 100000)]
    limit: Option<u64>,
    /// Only tickets created at or after this instant (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    since: Option<Timestamp>,
    /// Only tickets created before this instant (RFC 3339).
    #[schema(value_type = Option<String>, format = DateTime)]
    until: Option<Timestamp>,
    /// Only these tickets (1–10000 ids).
    #[schema(min_items = 1, max_items = 10000)]
    ticket_ids: Option<Vec<String>>,
}

/// `against`: `"active"`, `"stored"`, a version number, or null (the default, `active`).
fn against_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["active", "stored"])))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(1))
                .maximum(Some(u32::MAX)),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "What to compare with: `active` (default), `stored` (the decision stored on each ticket) or a version number.",
        ))
        .build()
        .into()
}

/// `against` as the request gives it: `active`, `stored`, or a version number.
fn against(value: Option<Value>) -> Result<Against, ApiError> {
    let bad = || {
        ApiError::invalid(
            "invalid_body",
            "`against` must be \"active\", \"stored\" or a version number",
        )
    };
    let version = |n: u64| match u32::try_from(n) {
        Ok(v @ 1..) => Ok(Against::Version(v)),
        _ => Err(bad()),
    };
    match value {
        None | Some(Value::Null) => Ok(Against::Active),
        Some(Value::String(s)) => match s.as_str() {
            "active" => Ok(Against::Active),
            "stored" => Ok(Against::Stored),
            _ => Err(bad()),
        },
        Some(Value::Number(n)) => n.as_u64().ok_or_else(bad).and_then(version),
        Some(_) => Err(bad()),
    }
}

/// `POST …/rules/{version}/replay`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/rules/{version}/replay", tag = "rules",
    summary = "Replay a version over stored tickets against the active version, the stored decisions or another version: what would change.",
    extensions(("x-min-role" = json!("operator"))),
    params(VersionPath), request_body = ReplayBody,
    responses(
        (status = 200, description = "The summary, kept under `replay_id`.", body = ReplaySummary),
        (status = 409, description = "A version is still compiling or failed to compile (`compiling`, `compile_failed`), `active` was asked with none active (`no_active_rule`), or other replays hold every background turn (`replay_busy`).", body = ErrorBody),
    )
)]
pub(crate) async fn replay(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<VersionPath>,
    ApiJson(body): ApiJson<ReplayBody>,
) -> Result<Response, ApiError> {
    // Ranges are checked by the domain (`ReplayRequest::validate`), naming the field. Named
    // tickets are all replayed unless a `limit` says otherwise.
    let default = body
        .ticket_ids
        .as_ref()
        .map_or(DEFAULT_LIMIT, |ids| ids.len().clamp(1, MAX_LIMIT));
    let limit = body
        .limit
        .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX));
    let request = ReplayRequest {
        against: against(body.against)?,
        limit,
        period: Period {
            since: body.since,
            until: body.until,
        },
        ticket_ids: body.ticket_ids,
    };
    let who = access.who();
    let summary = service
        .replays
        .run(access.tenant, &who, path.version, request)
        .await?;
    Ok(ok(summary))
}

/// `GET …/replays/{replay_id}`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/replays/{replay_id}", tag = "rules",
    summary = "A kept replay summary.",
    extensions(("x-min-role" = json!("operator"))),
    params(ReplayPath),
    responses((status = 200, description = "The summary.", body = ReplaySummary))
)]
pub(crate) async fn get_replay(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<ReplayPath>,
) -> Result<Response, ApiError> {
    Ok(ok(service.replays.get(&access.tenant, &path.replay_id)?))
}

/// `GET …/tickets/export` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// Only tickets created at or after this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    since: Option<String>,
    /// Only tickets created before this instant (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    until: Option<String>,
}

fn instant(name: &str, value: Option<String>) -> Result<Option<Timestamp>, ApiError> {
    value
        .map(|v| {
            v.parse().map_err(|e| {
                ApiError::bad_request(
                    "invalid_query",
                    format!("`{name}` must be an RFC 3339 instant: {e}"),
                )
            })
        })
        .transpose()
}

/// `GET …/tickets/export?since=&until=`: NDJSON, one line per stored ticket.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/tickets/export", tag = "tickets",
    summary = "The stored routing inputs as NDJSON (`{id, created_at, routed_on, decision, rule}` per line, oldest first), for `switchboard rules replay`.",
    extensions(("x-min-role" = json!("operator"))),
    params(TenantPath, ExportQuery),
    responses(
        (status = 200, description = "One JSON object per line; tickets stored before routing inputs were kept are left out.", body = ExportLine, content_type = "application/x-ndjson"),
        (status = 409, description = "Too many exports are running (`export_busy`).", body = ErrorBody),
        (status = 422, description = "`until` is not later than `since` (`invalid_query`).", body = ErrorBody),
    )
)]
pub(crate) async fn export(
    State(service): State<AppState>,
    access: Authorized,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    let period = Period {
        since: instant("since", query.since)?,
        until: instant("until", query.until)?,
    };
    if let (Some(since), Some(until)) = (period.since, period.until)
        && until <= since
    {
        return Err(ApiError::invalid(
            "invalid_query",
            "`until` must be later than `since`",
        ));
    }
    let rx = service.replays.export(&access.tenant, period)?;
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item.map_err(std::io::Error::other), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}
