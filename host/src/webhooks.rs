//! Outbound webhooks, the building blocks first: Standard Webhooks signing (so any receiver
//! verifies with an off-the-shelf library) and the outbound URL policy (so a tenant cannot
//! aim deliveries at the platform's own network). The durable outbox, delivery worker and
//! escalation timers build on these.

pub mod policy;
pub mod signing;

pub use policy::{PolicyError, UrlPolicy};
pub use signing::{Secret, SecretError, sign};
