//! Ticket routes: thin over [`crate::tickets`], which routes, stores and moves the clocks.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use switchboard_rules::{Metric, Party, Priority, TicketInput};
use utoipa::{IntoParams, ToSchema};

use super::extract::{
    ApiJson, ApiPath, ApiQuery, Authorized, created, from_value, json_object, ok,
};
use super::params::{IdPath, TenantPath};
use super::{ApiError, AppState};
use crate::board::{BoardStanding, Cursor, Filter};
use crate::tickets::{BOARD_LIMIT, EventInput, TicketSummary, TicketView};

/// `POST …/tickets`: idempotent on the external id.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/tickets", tag = "tickets",
    summary = "Create a ticket (idempotent on `id`): routed, SLA clocks started, durably stored.",
    extensions(("x-min-role" = json!("intake"))),
    params(TenantPath), request_body = TicketInput,
    responses(
        (status = 201, description = "Created, routed and stored.", body = TicketSummary),
        (status = 200, description = "A ticket with this id exists: the stored one.", body = TicketSummary),
    )
)]
pub(crate) async fn create(
    State(service): State<AppState>,
    access: Authorized,
    ApiJson(input): ApiJson<TicketInput>,
) -> Result<Response, ApiError> {
    let (fresh, summary) = service.tickets.create(&access.tenant, input).await?;
    Ok(if fresh { created(summary) } else { ok(summary) })
}

/// `GET …/tickets/{id}`.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/tickets/{id}", tag = "tickets",
    summary = "Ticket, decision, SLA clocks, escalations fired and pending, events.",
    extensions(("x-min-role" = json!("viewer"))),
    params(IdPath),
    responses((status = 200, description = "The ticket.", body = TicketView))
)]
pub(crate) async fn read(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("ticket", path.id.as_str());
    Ok(ok(service.tickets.read(&access.tenant, &path.id)?))
}

/// `POST …/tickets/{id}/events`.
#[utoipa::path(
    post, path = "/v1/tenants/{tenant}/tickets/{id}/events", tag = "tickets",
    summary = "`{type: responded|status|priority|resolved|reopened|updated, …, at?}`.",
    extensions(("x-min-role" = json!("intake"))),
    params(IdPath), request_body = EventInput,
    responses(
        (status = 200, description = "The ticket after the event.", body = TicketView),
        (status = 409, description = "Out of order for the clocks, or the ticket kept changing.", body = super::ErrorBody),
    )
)]
pub(crate) async fn event(
    State(service): State<AppState>,
    access: Authorized,
    ApiPath(path): ApiPath<IdPath>,
    request: axum::extract::Request,
) -> Result<Response, ApiError> {
    tracing::Span::current().record("ticket", path.id.as_str());
    let input: EventInput = from_value(json_object(request).await?, "invalid_event")?;
    let by = access.who();
    Ok(ok(service
        .tickets
        .apply(&access.tenant, &path.id, input, &by)
        .await?))
}

/// `GET …/tickets` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct BoardQuery {
    /// Only tickets standing so: `running` (within the at-risk threshold), `at_risk`,
    /// `breached` (an open clock past due) or `paused` (default: all open tickets).
    #[param(inline)]
    sla: Option<BoardStanding>,
    /// Only tickets held by this party.
    #[param(inline)]
    party: Option<Party>,
    /// Only tickets in this queue.
    queue: Option<String>,
    /// Only tickets of this priority.
    #[param(inline)]
    priority: Option<Priority>,
    /// Only tickets with an open clock of this metric, standing by that clock.
    #[param(inline)]
    metric: Option<Metric>,
    /// Most tickets listed (1–1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
    /// Where to go on: the `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The board's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Board {
    /// Open tickets, by due (breached first).
    tickets: Vec<TicketSummary>,
    /// Pass as `cursor` for the next page; `null` when this is the last.
    next_cursor: Option<String>,
}

/// `GET …/tickets`: the SLA board.
#[utoipa::path(
    get, path = "/v1/tenants/{tenant}/tickets", tag = "tickets",
    summary = "The SLA board: open tickets by due, breached first; `?sla=running|at_risk|breached|paused&party=&queue=&priority=&metric=&limit=&cursor=`.",
    extensions(("x-min-role" = json!("viewer"))),
    params(TenantPath, BoardQuery),
    responses(
        (status = 200, description = "A page of tickets.", body = Board),
        (status = 422, description = "`cursor` is not one the board gave out (`invalid_query`).", body = super::ErrorBody),
    )
)]
pub(crate) async fn board(
    State(service): State<AppState>,
    access: Authorized,
    ApiQuery(query): ApiQuery<BoardQuery>,
) -> Result<Response, ApiError> {
    let (default, most) = BOARD_LIMIT;
    let limit = match query.limit {
        None => default,
        Some(n @ 1..) if n <= most => n,
        Some(n) => {
            return Err(ApiError::bad_request(
                "invalid_query",
                format!("`limit` must be 1 to {most}, got {n}"),
            ));
        }
    };
    let cursor = query.cursor.as_deref().map(Cursor::parse).transpose()?;
    let filter = Filter {
        party: query.party,
        queue: query.queue,
        priority: query.priority,
        metric: query.metric,
        sla: query.sla,
    };
    let (tickets, next) = service
        .tickets
        .board(access.tenant, filter, limit, cursor)
        .await?;
    Ok(ok(Board {
        tickets,
        next_cursor: next.map(|c| c.encode()),
    }))
}
