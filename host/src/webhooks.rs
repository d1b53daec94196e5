//! Outbound webhooks: events land in a durable outbox in the same transaction as the change
//! that caused them, and a dispatcher delivers them at least once, signed per Standard
//! Webhooks (so any receiver verifies with an off-the-shelf library), only to URLs the
//! outbound policy allows (so a tenant cannot aim deliveries at the platform's own network).

pub mod delivery;
pub mod events;
mod lease;
pub mod outbox;
pub mod policy;
pub mod signing;

pub use delivery::{DeliveryConfig, Dispatcher};
pub use events::EventType;
pub(crate) use lease::release_all_in;
pub use outbox::{Queued, emit};
pub use policy::{PolicyError, UrlPolicy};
pub use signing::{Secret, SecretError, sign};
