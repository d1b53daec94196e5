//! Path parameters, typed once: the handlers extract them and the OpenAPI document describes
//! them from the same structs, so a parameter's name and type cannot differ between the two.

use serde::Deserialize;
use utoipa::IntoParams;

/// `/v1/tenants/{tenant}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TenantPath {
    /// The tenant's id.
    pub tenant: String,
}

/// `/v1/tenants/{tenant}/…/{id}`: a calendar, ticket, webhook endpoint or schedule.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct IdPath {
    /// The tenant's id.
    pub tenant: String,
    /// The resource's id.
    pub id: String,
}

/// `/v1/tenants/{tenant}/keys/{key_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The tenant's id.
    pub tenant: String,
    /// The key's id (`id` when it was made: the part between `sb_` and the dot).
    pub key_id: String,
}

/// `/v1/tenants/{tenant}/rules/{version}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VersionPath {
    /// The tenant's id.
    pub tenant: String,
    /// The rule version.
    #[param(minimum = 1)]
    pub version: u32,
}

/// `/v1/tenants/{tenant}/webhooks/{id}/deliveries/{msg}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DeliveryPath {
    /// The tenant's id.
    pub tenant: String,
    /// The endpoint's id.
    pub id: String,
    /// The delivery's message id (`webhook-id`).
    pub msg: String,
}

/// `/v1/tenants/{tenant}/replays/{replay_id}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ReplayPath {
    /// The tenant's id.
    pub tenant: String,
    /// The replay's id (`rpl_…`).
    pub replay_id: String,
}
