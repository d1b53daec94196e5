//! Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of
//! "{webhook-id}.{webhook-timestamp}.{body}">`, one `v1,` entry per active secret (space
//! separated) so a rotated secret keeps verifying during its grace period. Secrets are
//! `whsec_<base64>`; the HMAC key is the decoded bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng as _;
use sha2::Sha256;

/// The secret prefix Standard Webhooks uses.
pub const PREFIX: &str = "whsec_";
/// Random bytes in a generated secret.
pub const SECRET_BYTES: usize = 32;

/// A webhook signing secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a secret string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// Not `whsec_<base64>`.
    #[error("a webhook secret is `whsec_` followed by base64")]
    Format,
    /// Too short to be safe.
    #[error("a webhook secret needs at least 24 bytes of key material")]
    TooShort,
}

impl Secret {
    /// A new random secret.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; SECRET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let b64 = text.strip_prefix(PREFIX).ok_or(SecretError::Format)?;
        let bytes = STANDARD.decode(b64).map_err(|_| SecretError::Format)?;
        if bytes.len() < 24 {
            return Err(SecretError::TooShort);
        }
        Ok(Secret(bytes))
    }

    /// The `whsec_<base64>` form (shown to the tenant once, stored by the service).
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn mac(&self, id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Whether `signature` (one `v1,<base64>` entry) signs this message with this secret,
    /// compared in constant time.
    pub fn verifies(&self, id: &str, timestamp: i64, body: &[u8], signature: &str) -> bool {
        let Some(b64) = signature.strip_prefix("v1,") else {
            return false;
        };
        let Ok(given) = STANDARD.decode(b64) else {
            return false;
        };
        self.mac(id, timestamp, body).verify_slice(&given).is_ok()
    }
}

/// The `webhook-signature` header value: one `v1,<base64>` per secret, space separated.
pub fn sign(id: &str, timestamp: i64, body: &[u8], secrets: &[Secret]) -> String {
    secrets
        .iter()
        .map(|s| {
            format!(
                "v1,{}",
                STANDARD.encode(s.mac(id, timestamp, body).finalize().into_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference implementations.
    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let header = sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, &[secret]);
        assert_eq!(header, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_active_secret_signs_and_verifies() {
        let (old, new) = (Secret::generate(), Secret::generate());
        let header = sign("msg_1", 1_700_000_000, b"{}", &[new.clone(), old.clone()]);
        let parts: Vec<&str> = header.split(' ').collect();
        assert_eq!(parts.len(), 2);
        assert!(new.verifies("msg_1", 1_700_000_000, b"{}", parts[0]));
        assert!(old.verifies("msg_1", 1_700_000_000, b"{}", parts[1]));
        assert!(!old.verifies("msg_1", 1_700_000_000, b"{}", parts[0]));
        assert!(
            !new.verifies("msg_1", 1_700_000_001, b"{}", parts[0]),
            "timestamp is signed"
        );
        assert!(
            !new.verifies("msg_2", 1_700_000_000, b"{}", parts[0]),
            "id is signed"
        );
        assert!(
            !new.verifies("msg_1", 1_700_000_000, b"{ }", parts[0]),
            "body is signed"
        );
    }

    #[test]
    fn secrets_round_trip_and_bad_ones_are_refused() {
        let s = Secret::generate();
        assert!(s.expose().starts_with("whsec_"));
        assert_eq!(Secret::parse(&s.expose()).unwrap(), s);
        assert_eq!(Secret::parse("sk_abc"), Err(SecretError::Format));
        assert_eq!(Secret::parse("whsec_!!!"), Err(SecretError::Format));
        assert_eq!(Secret::parse("whsec_c2hvcnQ="), Err(SecretError::TooShort));
        assert_eq!(format!("{s:?}"), "Secret(..)", "never printed");
    }
}
