//! The OpenAPI document of the HTTP API, built from one route table ([`ROUTES`]) with the
//! request schemas derived from the handlers' own types; a test checks that every documented
//! route is served and every route of SPEC's table is documented.

use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, Ref,
    Required,
};

/// One route: method, path, who may call it, what it does, and its body type.
pub struct Route {
    /// HTTP method.
    pub method: &'static str,
    /// Path template.
    pub path: &'static str,
    /// Who may call it.
    pub who: &'static str,
    /// What it does.
    pub summary: &'static str,
    /// Request body media type and schema name, if any.
    pub body: Option<(&'static str, Option<&'static str>)>,
}

macro_rules! routes {
    ($(($m:literal, $p:literal, $who:literal, $s:literal, $b:expr)),* $(,)?) => {
        /// Every route of the API.
        pub const ROUTES: &[Route] = &[$(Route { method: $m, path: $p, who: $who, summary: $s, body: $b }),*];
    };
}

const fn json(schema: &'static str) -> Option<(&'static str, Option<&'static str>)> {
    Some(("application/json", Some(schema)))
}
const OBJECT: Option<(&str, Option<&str>)> = Some(("application/json", None));

routes![
    (
        "POST",
        "/v1/tenants",
        "platform admin",
        "Create a tenant `{id, name}`; answers `{id, admin_key}` (shown once).",
        json("NewTenant")
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/keys",
        "admin",
        "Create a key `{name, role}` (or grant an existing `{key_id, role}`); answers `{id, key, role}`.",
        json("NewKey")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/keys",
        "admin",
        "Keys with a role on the tenant.",
        None
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/keys/{key}",
        "admin",
        "Revoke a key's role on the tenant.",
        None
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/settings",
        "admin",
        "Fallback decision, paused statuses, limits, four-eyes approval, at-risk threshold.",
        json("Settings")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/settings",
        "any role",
        "The tenant's settings.",
        None
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/config",
        "admin",
        "Replace the string map handed to rules via `config(key)`.",
        OBJECT
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/config",
        "admin",
        "The config map.",
        None
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/calendars",
        "any role",
        "Calendar ids (with the built-in `24x7`).",
        None
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/calendars/{id}",
        "admin",
        "Create or replace a calendar `{timezone, hours, holidays}`.",
        json("CalendarSpec")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/calendars/{id}",
        "any role",
        "A calendar.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/calendars/{id}/deadline",
        "any role",
        "`{start, minutes}` → `{due}` in business time.",
        json("DeadlineRequest")
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/rules",
        "operator, admin",
        "Upload a rule component (`application/wasm`); answers `{version, sha256, status}`.",
        Some(("application/wasm", None))
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/rules",
        "any role",
        "Rule versions with status, uploader, approver, sha256.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/rules/{version}/test",
        "operator, admin",
        "Dry run on `{tickets: [...]}`: decision or error, fuel, log per ticket; nothing stored.",
        json("TestRequest")
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/rules/{version}/approve",
        "admin (not the uploader under four-eyes)",
        "Approve a version.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/rules/{version}/activate",
        "admin",
        "Activate a version (approved, under four-eyes); the previous one stays for rollback.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/rules/rollback",
        "admin",
        "Re-activate the previously active version.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/tickets",
        "intake, operator, admin",
        "Create a ticket (idempotent on `id`): routed, SLA clocks started, durably stored.",
        json("TicketInput")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/tickets",
        "any role",
        "The SLA board: `?sla=at_risk|breached`, `&limit=`.",
        None
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/tickets/{id}",
        "any role",
        "Ticket, decision, SLA clocks, escalations fired and pending, events.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/tickets/{id}/events",
        "intake, operator, admin",
        "`{type: responded|status|priority|resolved|reopened|updated, …, at?}`.",
        json("EventInput")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/audit",
        "admin",
        "Every administrative action: who, what, when, module sha256.",
        None
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/webhooks/{id}",
        "admin",
        "Create or update an endpoint `{url, events, rotate_secret?}`; answers `{secret}` (`whsec_…`) when it is new.",
        json("WebhookInput")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/webhooks",
        "any role",
        "Endpoints with their URLs and event types (never their secrets).",
        None
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/webhooks/{id}",
        "admin",
        "Remove an endpoint; its pending deliveries are dead-lettered.",
        None
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/webhooks/{id}/deliveries",
        "any role",
        "Deliveries of the endpoint: attempts, status, next retry.",
        None
    ),
    (
        "POST",
        "/v1/tenants/{tenant}/webhooks/{id}/deliveries/{msg}/retry",
        "operator, admin",
        "One more attempt of a delivery now (dead-lettered ones included).",
        None
    ),
    (
        "PUT",
        "/v1/tenants/{tenant}/schedules/{id}",
        "admin",
        "Create or replace a cron schedule `{cron, timezone, event: sla.digest|heartbeat, enabled?}`; fires `schedule.fired`.",
        json("ScheduleInput")
    ),
    (
        "GET",
        "/v1/tenants/{tenant}/schedules",
        "any role",
        "Schedules with their next fire (UTC and local).",
        None
    ),
    (
        "DELETE",
        "/v1/tenants/{tenant}/schedules/{id}",
        "admin",
        "Remove a schedule.",
        None
    ),
    ("GET", "/healthz", "none", "Liveness.", None),
    (
        "GET",
        "/readyz",
        "none",
        "Readiness (the store answers).",
        None
    ),
    ("GET", "/metrics", "none", "Prometheus metrics.", None),
    ("GET", "/openapi.json", "none", "This document.", None),
];

fn method(m: &str) -> HttpMethod {
    match m {
        "GET" => HttpMethod::Get,
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        _ => HttpMethod::Delete,
    }
}

/// The OpenAPI 3.1 document.
pub fn document() -> OpenApi {
    let mut paths = PathsBuilder::new();
    for route in ROUTES {
        let mut op = OperationBuilder::new()
            .summary(Some(route.summary))
            .description(Some(format!("Who: {}.", route.who)))
            .response("200", ResponseBuilder::new().description("OK"))
            .response(
                "4XX",
                ResponseBuilder::new().description("`{\"error\": {\"code\", \"message\"}}`"),
            );
        if route.who != "none" {
            op = op.security(SecurityRequirement::new("bearer", Vec::<String>::new()));
        }
        for param in route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            op = op.parameter(
                ParameterBuilder::new()
                    .name(param)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True),
            );
        }
        if let Some((media, schema)) = route.body {
            let mut content = ContentBuilder::new();
            if let Some(name) = schema {
                content = content.schema(Some(Ref::from_schema_name(name)));
            }
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .content(media, content.build())
                    .required(Some(Required::True))
                    .build(),
            ));
        }
        paths = paths.path(route.path, PathItem::new(method(route.method), op));
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("Switchboard")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some("SLA and routing engine for co-managed IT.")),
        )
        .paths(paths)
        .components(Some(
            ComponentsBuilder::new()
                .schema_from::<switchboard_rules::TicketInput>()
                .schema_from::<switchboard_rules::Requester>()
                .schema_from::<switchboard_rules::Priority>()
                .schema_from::<switchboard_rules::Party>()
                .schema_from::<switchboard_rules::Metric>()
                .schema_from::<switchboard_rules::Decision>()
                .schema_from::<switchboard_rules::SlaTarget>()
                .schema_from::<switchboard_rules::Escalation>()
                .schema_from::<switchboard_rules::EscalationTrigger>()
                .schema_from::<switchboard_rules::CalendarSpec>()
                .schema_from::<crate::store::records::Settings>()
                .schema_from::<crate::store::records::Role>()
                .schema_from::<crate::limits::Limits>()
                .schema_from::<crate::api::NewTenant>()
                .schema_from::<crate::api::NewKey>()
                .schema_from::<crate::api::DeadlineRequest>()
                .schema_from::<crate::api::TestRequest>()
                .schema_from::<crate::api::EventInput>()
                .schema_from::<crate::api::TicketChanges>()
                .schema_from::<crate::api::WebhookInput>()
                .schema_from::<crate::api::ScheduleInput>()
                .security_scheme(
                    "bearer",
                    SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
                )
                .build(),
        ))
        .build()
}
