//! The versions of the WIT contract this build knows. Kept beside the model so the host, the
//! SDK and the CLI agree on one list; the WIT text itself lives in `rules/wit/v<version>/`.

/// The newest contract version, the one the SDK builds against.
pub const CURRENT_VERSION: &str = "0.1.0";

/// Every contract version the host accepts, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.1.0"];

/// The WIT package name (without version).
pub const PACKAGE: &str = "switchboard:rules";

/// The name of the custom section the SDK embeds in a rule with the contract version it was
/// built against (read by `switchboard rules check` before instantiating).
pub const VERSION_SECTION: &str = "switchboard:contract-version";

/// The WIT source of contract 0.1.0, frozen.
pub const WIT_V0_1_0: &str = include_str!("../wit/v0.1.0/rules.wit");
