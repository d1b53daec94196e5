//! How the domain says no. A domain operation either refuses (the caller asked for something
//! the rules of the product do not allow: a [`Refusal`], which the API answers with a 4xx and
//! whose message names the field or the rule) or fails in storage (a 500 whose details go to
//! the log). Keeping the two apart lets the domain layer decide every answer without knowing
//! HTTP, and lets the API map each kind to one status in one place.

use crate::store::StoreError;

/// What kind of "no" a refusal is; the API maps each to one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// Well-formed but not acceptable (422).
    Invalid,
    /// The thing named does not exist, or the caller may not know it does (404).
    NotFound,
    /// The request conflicts with the current state (409).
    Conflict,
    /// The caller's role is too small, or a rule such as four-eyes forbids it (403).
    Forbidden,
    /// Larger than the tenant's limit (413).
    TooLarge,
}

/// A refusal: its kind, a stable machine-readable code and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The kind.
    pub kind: RefusalKind,
    /// Stable code (`invalid_ticket`, `not_approved`, …).
    pub code: &'static str,
    /// What was wrong, naming the field or the rule.
    pub message: String,
}

impl Refusal {
    /// A refusal of any kind.
    pub fn new(kind: RefusalKind, code: &'static str, message: impl Into<String>) -> Self {
        Refusal {
            kind,
            code,
            message: message.into(),
        }
    }

    /// Not acceptable as given (422).
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Invalid, code, message)
    }

    /// Not found (404, code `not_found`).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(RefusalKind::NotFound, "not_found", message)
    }

    /// In conflict with the current state (409).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Conflict, code, message)
    }

    /// Forbidden (403, code `forbidden`).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(RefusalKind::Forbidden, "forbidden", message)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// Why a domain operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Refused: nothing was written.
    #[error("{0}")]
    Refused(Refusal),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Something else of the host failed (a task, the artifact cache): answered as internal.
    #[error("{0}")]
    Internal(String),
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        Error::Refused(r)
    }
}

/// A domain operation's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
