//! The OpenAPI 3.1 document. Operations come from the route table ([`super::routes`]); this
//! module adds what every operation shares, derived from the operation's own shape so that it
//! cannot be forgotten on one: the bearer scheme and security requirement of every guarded
//! route, and the error answers each kind of route can give (401 without a key, 403 and 404
//! from the tenant check, 400/413/415/422 for a body, 400 for a typed path or query
//! parameter, 500 and 503 everywhere), each with the one error body.

use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, Response, Schema};
use utoipa::{PartialSchema, ToSchema};

use super::access::{Need, need_of};
use super::extract::ErrorBody;

fn error(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name(ErrorBody::name())))
                .build(),
        )
        .build()
        .into()
}

fn add(op: &mut Operation, status: &str, description: &str) {
    op.responses
        .responses
        .entry(status.to_owned())
        .or_insert_with(|| error(description));
}

fn typed_parameter(op: &Operation) -> bool {
    op.parameters.iter().flatten().any(|p| {
        let typed = match &p.schema {
            Some(RefOr::T(Schema::Object(o))) => !matches!(
                o.schema_type,
                utoipa::openapi::schema::SchemaType::Type(utoipa::openapi::Type::String)
            ),
            _ => false,
        };
        typed || p.parameter_in == ParameterIn::Query
    })
}

/// Completes the route table's document: info, the bearer scheme, the error body and every
/// operation's shared answers.
pub fn finish(mut document: OpenApi) -> OpenApi {
    document.info = InfoBuilder::new()
        .title("Switchboard")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "SLA and routing engine for co-managed IT. Errors are `{\"error\": {\"code\", \"message\"}}`.",
        ))
        .build();
    let components = document.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(ErrorBody::name().into_owned(), ErrorBody::schema());
    let mut nested = Vec::new();
    ErrorBody::schemas(&mut nested);
    components.schemas.extend(nested);
    components.security_schemes.insert(
        "bearer".to_owned(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    unique_operation_ids(&mut document);
    for op in operations_mut(&mut document) {
        complete(op);
    }
    document
}

/// Operation ids default to the handler's name, which repeats across modules (`list`,
/// `put`): a repeated one is qualified with the operation's tag (`schedules_list`).
fn unique_operation_ids(document: &mut OpenApi) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for (_, _, op) in super::access::operations(document) {
        if let Some(id) = &op.operation_id {
            *seen.entry(id.clone()).or_default() += 1;
        }
    }
    for op in operations_mut(document) {
        let tag = op.tags.iter().flatten().next().cloned();
        if let (Some(id), Some(tag)) = (&mut op.operation_id, tag)
            && seen.get(id.as_str()).copied().unwrap_or(0) > 1
        {
            *id = format!("{tag}_{id}");
        }
    }
}

/// Every operation of the document, to change.
fn operations_mut(document: &mut OpenApi) -> impl Iterator<Item = &mut Operation> {
    document.paths.paths.values_mut().flat_map(|item| {
        [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
    })
}

fn complete(op: &mut Operation) {
    let need = need_of(op);
    if !matches!(need, Some(Need::Nobody) | None) {
        op.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        add(op, "401", "No key, or an unknown or revoked one.");
    }
    match need {
        Some(Need::PlatformAdmin) => add(op, "403", "Not the platform admin token."),
        Some(Need::Role(_)) => {
            add(op, "403", "The key's role on the tenant is too small.");
            add(
                op,
                "404",
                "No such tenant (or the key has no role on it), or no such resource.",
            );
        }
        _ => {}
    }
    if op.request_body.is_some() {
        add(op, "400", "The body is not valid JSON.");
        add(op, "413", "The body is too large.");
        add(op, "415", "Wrong `Content-Type`.");
        add(
            op,
            "422",
            "The body is valid JSON but not acceptable; the message names the field.",
        );
    }
    if typed_parameter(op) {
        add(op, "400", "A path or query parameter does not parse.");
    }
    if need != Some(Need::Nobody) {
        add(op, "500", "Internal error (details in the server log).");
        add(op, "503", "The request took too long.");
    }
}
