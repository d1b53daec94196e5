//! The API's error body and its extractors. Every rejection — a body that is not JSON, not an
//! object, of the wrong shape, a path or query parameter that does not parse — answers with
//! the one error body `{"error": {"code", "message"}}`, and the message names the field in
//! the API's own words, never a framework's.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::refusal::{self, Refusal, RefusalKind};
use crate::store::StoreError;
use crate::tenants::{Principal, TenantView};

/// The error body every failure shares.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code (`invalid_body`, `not_found`, …).
    pub code: String,
    /// What was wrong, naming the field.
    pub message: String,
}

/// An API error: a status and the SPEC's body `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Answer with `Connection: close`: the error was found before the request body was
    /// read, so the connection cannot be reused (hyper closes it rather than read a body
    /// nobody wants); saying so lets keep-alive clients retire it instead of failing on it.
    close: bool,
}

impl ApiError {
    /// An error with any status.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            close: false,
        }
    }

    /// Marks the error as found before the body was read (see the `close` field).
    pub fn before_body(mut self) -> Self {
        self.close = true;
        self
    }

    /// 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 422: well-formed, but not acceptable.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 413.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 415.
    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    /// 500 that says nothing of the cause (which is logged).
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.close {
            response.headers_mut().insert(
                header::CONNECTION,
                axum::http::HeaderValue::from_static("close"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(&e)
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        let status = match r.kind {
            RefusalKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            RefusalKind::NotFound => StatusCode::NOT_FOUND,
            RefusalKind::Conflict => StatusCode::CONFLICT,
            RefusalKind::Forbidden => StatusCode::FORBIDDEN,
            RefusalKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        };
        ApiError::new(status, r.code, r.message)
    }
}

impl From<refusal::Error> for ApiError {
    fn from(e: refusal::Error) -> Self {
        match e {
            refusal::Error::Refused(r) => r.into(),
            refusal::Error::Store(e) => e.into(),
            refusal::Error::Internal(e) => ApiError::internal(&e),
        }
    }
}

/// A serde message without serde_json's position suffix (` at line 1 column 7`), which
/// means nothing once the body was parsed into a value first.
fn without_position(message: &str) -> &str {
    message
        .rfind(" at line ")
        .map_or(message, |at| &message[..at])
}

/// Deserializes `value` into `T`, naming the field of the first error (`impact`).
pub fn from_value<T: DeserializeOwned>(
    value: serde_json::Value,
    code: &'static str,
) -> Result<T, ApiError> {
    from_value_at(value, code, "")
}

/// [`from_value`] for a value found at `at` in the body (`tickets[0]`), which the field's
/// name is prefixed with (`tickets[0].impact`).
pub fn from_value_at<T: DeserializeOwned>(
    value: serde_json::Value,
    code: &'static str,
    at: &str,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = without_position(&e.inner().to_string()).to_owned();
        let path = match (at.is_empty(), path == ".") {
            (true, true) => return ApiError::invalid(code, message),
            (false, true) => at.to_owned(),
            (true, false) => path,
            (false, false) => format!("{at}.{path}"),
        };
        ApiError::invalid(code, format!("`{path}`: {message}"))
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body's bytes, a too-large body answered 413.
pub fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("payload_too_large", "the request body is too large")
        } else {
            ApiError::bad_request("bad_request", "the request body could not be read")
        }
    })
}

/// The body as a JSON object (arrays, strings and numbers are refused: every body of the
/// API is an object).
pub async fn json_object(req: Request) -> Result<serde_json::Value, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::unsupported_media_type(
            "expected `Content-Type: application/json`",
        ));
    }
    let bytes = axum::body::to_bytes(req.into_body(), super::MAX_JSON_BODY)
        .await
        .map_err(|_| {
            ApiError::too_large(
                "payload_too_large",
                format!(
                    "the request body is larger than {} KiB",
                    super::MAX_JSON_BODY >> 10
                ),
            )
        })?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request("malformed_json", format!("the body is not valid JSON: {e}"))
    })?;
    if !value.is_object() {
        let kind = match value {
            serde_json::Value::Array(_) => "an array",
            serde_json::Value::String(_) => "a string",
            serde_json::Value::Number(_) => "a number",
            serde_json::Value::Bool(_) => "a boolean",
            _ => "null",
        };
        return Err(ApiError::invalid(
            "invalid_body",
            format!("the body must be a JSON object, not {kind}"),
        ));
    }
    Ok(value)
}

/// A JSON object body of type `T`; the error names the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let value = json_object(req).await?;
        from_value(value, "invalid_body").map(ApiJson)
    }
}

/// A friendly name for a Rust type a path or query value must parse as.
fn type_words(expected: &str) -> &str {
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number of 0 or more",
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number",
        "bool" => "`true` or `false`",
        _ => "a value of the right kind",
    }
}

/// Path parameters whose rejections answer with the API's error body, naming the parameter.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                let message = match e.into_kind() {
                    ErrorKind::ParseErrorAtKey {
                        key,
                        value,
                        expected_type,
                    } => format!(
                        "path parameter `{key}` is {value:?}; it must be {}",
                        type_words(expected_type)
                    ),
                    ErrorKind::ParseError {
                        value,
                        expected_type,
                    }
                    | ErrorKind::ParseErrorAtIndex {
                        value,
                        expected_type,
                        ..
                    } => format!(
                        "path parameter {value:?} must be {}",
                        type_words(expected_type)
                    ),
                    ErrorKind::InvalidUtf8InPathParam { key } => {
                        format!("path parameter `{key}` is not valid UTF-8")
                    }
                    _ => "a path parameter is not valid".to_owned(),
                };
                Err(ApiError::bad_request("invalid_path", message).before_body())
            }
            Err(e) => Err(ApiError::internal(&e)),
        }
    }
}

/// Query parameters whose rejections answer with the API's error body, naming the parameter.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        let parse = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(parse)
            .map(ApiQuery)
            .map_err(|e| {
                let message = match e.path().to_string() {
                    path if path == "." => format!("query string: {}", e.inner()),
                    path => format!("`{path}`: {}", e.inner()),
                };
                ApiError::bad_request("invalid_query", message).before_body()
            })
    }
}

/// The caller and the tenant of the route, authorized for the route's role before anything
/// else of the request was read (set by the API's authorization layer).
#[derive(Debug, Clone)]
pub struct Authorized {
    /// Who is calling.
    pub principal: Principal,
    /// The tenant of the route.
    pub tenant: Arc<TenantView>,
}

impl Authorized {
    /// The tenant's id.
    pub fn id(&self) -> &str {
        &self.tenant.record.id
    }

    /// The caller's id, as audit entries record it.
    pub fn who(&self) -> String {
        self.principal.id().to_owned()
    }
}

/// What the authorization layer left in the request for the handler.
fn granted<T: Clone + Send + Sync + 'static>(parts: &Parts) -> Result<T, ApiError> {
    parts
        .extensions
        .get::<T>()
        .cloned()
        .ok_or_else(|| ApiError::internal(&"route without an authorization entry"))
}

impl<S: Send + Sync> FromRequestParts<S> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        granted(parts)
    }
}

/// The platform admin, authorized by the API's authorization layer.
#[derive(Debug, Clone, Copy)]
pub struct PlatformAdmin;

impl<S: Send + Sync> FromRequestParts<S> for PlatformAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        granted(parts)
    }
}

/// `201 Created` with a JSON body.
pub fn created<T: Serialize>(body: T) -> Response {
    (StatusCode::CREATED, axum::Json(body)).into_response()
}

/// `200 OK` with a JSON body.
pub fn ok<T: Serialize>(body: T) -> Response {
    (StatusCode::OK, axum::Json(body)).into_response()
}
