//! What a rule may import. The allow-list is the sandbox's outer wall: everything a component
//! imports must be the contract's own host interface or a WASI 0.2 interface that the
//! locked-down context answers harmlessly. Sockets and HTTP are on the list because the
//! toolchains' default builds import them: they are linked to implementations that deny every
//! use (see `sandbox`). Anything unknown is refused at upload, before a byte of the rule runs.

use switchboard_rules::contract::{PACKAGE, SUPPORTED_VERSIONS};

use super::error::LoadError;

/// The WASI interfaces (any 0.2.x) a rule may import.
const ALLOWED_WASI: &[&str] = &[
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:clocks/wall-clock",
    "wasi:clocks/monotonic-clock",
    "wasi:random/random",
    "wasi:random/insecure",
    "wasi:random/insecure-seed",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
    "wasi:sockets/network",
    "wasi:sockets/instance-network",
    "wasi:sockets/tcp",
    "wasi:sockets/tcp-create-socket",
    "wasi:sockets/udp",
    "wasi:sockets/udp-create-socket",
    "wasi:sockets/ip-name-lookup",
    "wasi:http/types",
    "wasi:http/outgoing-handler",
];

const ALLOWED_SUMMARY: &str = "switchboard:rules/{types,host}, and WASI 0.2 cli, io, clocks, random, filesystem (which has no directories), sockets (which deny every address) and http types and outgoing-handler (which refuse every request)";

/// Splits `ns:pkg/iface@version` into (`ns:pkg/iface`, `version`).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

/// Checks every import and returns the contract version the component was built against.
pub(crate) fn check_imports<'a>(
    imports: impl IntoIterator<Item = &'a str>,
) -> Result<String, LoadError> {
    let mut contract: Option<String> = None;
    for name in imports {
        let (iface, version) = split_version(name);
        let forbidden = || LoadError::ForbiddenImport {
            name: name.to_owned(),
            allowed: ALLOWED_SUMMARY,
        };
        if let Some(rest) = iface
            .strip_prefix(PACKAGE)
            .and_then(|r| r.strip_prefix('/'))
        {
            if rest != "types" && rest != "host" {
                return Err(forbidden());
            }
            let version = version.ok_or_else(forbidden)?;
            if !SUPPORTED_VERSIONS.contains(&version) {
                return Err(LoadError::UnsupportedContract {
                    found: version.to_owned(),
                    supported: SUPPORTED_VERSIONS.join(", "),
                });
            }
            match &contract {
                Some(v) if v != version => {
                    return Err(LoadError::NotARule(format!(
                        "it imports two contract versions, {v} and {version}"
                    )));
                }
                _ => contract = Some(version.to_owned()),
            }
            continue;
        }
        let wasi_ok =
            ALLOWED_WASI.contains(&iface) && version.is_some_and(|v| v.starts_with("0.2."));
        if !wasi_ok {
            return Err(forbidden());
        }
    }
    contract.ok_or_else(|| {
        LoadError::NotARule(format!(
            "it imports no `{PACKAGE}` interface, so it was not built against a rule contract"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_and_wasi_imports_pass() {
        let v = check_imports([
            "switchboard:rules/types@0.1.0",
            "switchboard:rules/host@0.1.0",
            "wasi:cli/stderr@0.2.3",
            "wasi:io/streams@0.2.3",
        ])
        .unwrap();
        assert_eq!(v, "0.1.0");
    }

    #[test]
    fn the_toolchains_capability_imports_pass() {
        for name in [
            "wasi:sockets/tcp@0.2.9",
            "wasi:sockets/ip-name-lookup@0.2.9",
            "wasi:http/outgoing-handler@0.2.10",
            "wasi:http/types@0.2.10",
        ] {
            assert!(
                check_imports(["switchboard:rules/types@0.1.0", name]).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn unknown_interfaces_are_refused() {
        for bad in [
            "wasi:http/incoming-handler@0.2.3",
            "wasi:keyvalue/store@0.2.0",
            "evil:net/exfiltrate",
            "switchboard:rules/admin@0.1.0",
            "wasi:cli/stdout@0.3.0",
        ] {
            let err = check_imports(["switchboard:rules/types@0.1.0", bad]).unwrap_err();
            assert!(
                matches!(&err, LoadError::ForbiddenImport { name, .. } if name == bad),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn unknown_contract_versions_are_named() {
        let err = check_imports(["switchboard:rules/types@9.0.0"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "contract version 9.0.0 is not supported (supported: 0.1.0)"
        );
        assert!(matches!(
            check_imports(["wasi:cli/stdout@0.2.0"]),
            Err(LoadError::NotARule(_))
        ));
    }
}
