//! Where webhooks may go. By default only http(s) URLs whose addresses are public: loopback,
//! private, link-local (cloud metadata lives at 169.254.169.254), CGNAT, multicast and other
//! special ranges are refused unless the operator allows them with `--webhook-allow` (hosts
//! or CIDR ranges, e.g. `127.0.0.1/32` for tests). Addresses are checked after DNS resolution
//! at delivery time, so a public name that resolves to a private address is refused too.

use std::net::IpAddr;

use ipnet::IpNet;
use url::Url;

/// Why a webhook URL or address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// Not a URL.
    #[error("{0:?} is not a valid URL")]
    BadUrl(String),
    /// Not http or https.
    #[error("webhook URLs must be http or https, not {0:?}")]
    Scheme(String),
    /// Credentials in the URL (they would be logged with it).
    #[error("webhook URLs may not carry a user name or password")]
    Credentials,
    /// No host.
    #[error("the webhook URL has no host")]
    NoHost,
    /// An address outside the public internet that is not allowed.
    #[error(
        "{host} resolves to {ip}, which is not a public address; ask the operator to allow it with --webhook-allow"
    )]
    NotPublic {
        /// The URL's host.
        host: String,
        /// The refused address.
        ip: IpAddr,
    },
    /// A bad `--webhook-allow` entry.
    #[error("--webhook-allow entry {0:?} is neither a host name nor a CIDR range")]
    BadAllowEntry(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Host(String),
    Net(IpNet),
}

/// The outbound URL policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    allow: Vec<Allowed>,
}

impl UrlPolicy {
    /// Parses `--webhook-allow`: comma-separated host names or CIDR ranges (a bare IP is a
    /// single-address range). Empty means public addresses only.
    pub fn parse(spec: &str) -> Result<Self, PolicyError> {
        let mut allow = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if let Ok(net) = entry.parse::<IpNet>() {
                allow.push(Allowed::Net(net));
            } else if let Ok(ip) = entry.parse::<IpAddr>() {
                allow.push(Allowed::Net(IpNet::from(ip)));
            } else if entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && !entry.starts_with(['-', '.'])
            {
                allow.push(Allowed::Host(entry.to_ascii_lowercase()));
            } else {
                return Err(PolicyError::BadAllowEntry(entry.to_owned()));
            }
        }
        Ok(UrlPolicy { allow })
    }

    /// Checks a URL's form (at configuration time): http(s), a host, no credentials.
    pub fn check_url(&self, url: &str) -> Result<Url, PolicyError> {
        let parsed = Url::parse(url).map_err(|_| PolicyError::BadUrl(url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PolicyError::Scheme(parsed.scheme().to_owned()));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(PolicyError::Credentials);
        }
        let host = parsed.host_str().ok_or(PolicyError::NoHost)?.to_owned();
        // An IP literal can be judged now; names are judged on their resolved addresses.
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            self.check_addr(&host, ip)?;
        }
        Ok(parsed)
    }

    /// Checks a URL the way delivery will: its form, then the addresses its host resolves to
    /// now. Refused when every address is refused (delivery would refuse it at each attempt);
    /// a host that does not resolve now is let through (delivery resolves it again each
    /// time, and a name may be published after its endpoint is configured).
    pub async fn check_url_resolved(&self, url: &str) -> Result<Url, PolicyError> {
        let parsed = self.check_url(url)?;
        let host = parsed.host_str().ok_or(PolicyError::NoHost)?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(443);
        let bare = host.trim_matches(['[', ']']).to_owned();
        if bare.parse::<IpAddr>().is_ok() {
            return Ok(parsed);
        }
        let Ok(addrs) = tokio::net::lookup_host((bare.as_str(), port)).await else {
            return Ok(parsed);
        };
        let mut first_refusal = None;
        for addr in addrs {
            match self.check_addr(&host, addr.ip()) {
                Ok(()) => return Ok(parsed),
                Err(e) => {
                    first_refusal.get_or_insert(e);
                }
            }
        }
        match first_refusal {
            Some(e) => Err(e),
            None => Ok(parsed),
        }
    }

    /// Checks one resolved address of `host` (at delivery time).
    pub fn check_addr(&self, host: &str, ip: IpAddr) -> Result<(), PolicyError> {
        let host_lc = host.to_ascii_lowercase();
        let allowed = self.allow.iter().any(|a| match a {
            Allowed::Host(h) => *h == host_lc,
            Allowed::Net(net) => net.contains(&canonical(ip)),
        });
        if allowed || is_public(canonical(ip)) {
            Ok(())
        } else {
            Err(PolicyError::NotPublic {
                host: host.to_owned(),
                ip,
            })
        }
    }
}

/// IPv4-mapped IPv6 addresses judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether an address is on the public internet (not loopback, private, link-local, shared,
/// multicast, documentation, benchmarking or reserved).
fn is_public(ip: IpAddr) -> bool {
    const V4_SPECIAL: &[&str] = &[
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ];
    const V6_SPECIAL: &[&str] = &[
        "::/128",
        "::1/128",
        "64:ff9b::/96",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "ff00::/8",
    ];
    let special = match ip {
        IpAddr::V4(_) => V4_SPECIAL,
        IpAddr::V6(_) => V6_SPECIAL,
    };
    !special
        .iter()
        .map(|n| n.parse::<IpNet>().expect("valid constant range"))
        .any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_pass_and_internal_ones_are_refused() {
        let p = UrlPolicy::default();
        for ok in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(
                p.check_addr("example.com", ok.parse().unwrap()).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "127.0.0.1",
            "10.1.2.3",
            "172.20.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "224.0.0.1",
        ] {
            let err = p
                .check_addr("evil.example", bad.parse().unwrap())
                .unwrap_err();
            assert!(matches!(err, PolicyError::NotPublic { .. }), "{bad}");
        }
    }

    #[test]
    fn the_allow_list_opens_hosts_and_ranges() {
        let p = UrlPolicy::parse("127.0.0.1/32, hooks.internal.example,10.0.0.0/8").unwrap();
        assert!(
            p.check_addr("localhost", "127.0.0.1".parse().unwrap())
                .is_ok()
        );
        assert!(
            p.check_addr("localhost", "127.0.0.2".parse().unwrap())
                .is_err()
        );
        assert!(
            p.check_addr("Hooks.Internal.Example", "192.168.9.9".parse().unwrap())
                .is_ok()
        );
        assert!(p.check_addr("x", "10.9.9.9".parse().unwrap()).is_ok());
        assert_eq!(
            UrlPolicy::parse("127.0.0.1/33"),
            Err(PolicyError::BadAllowEntry("127.0.0.1/33".into()))
        );
        assert_eq!(UrlPolicy::parse(" ").unwrap(), UrlPolicy::default());
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_credentials() {
        let p = UrlPolicy::default();
        assert!(p.check_url("https://hooks.example.com/switchboard").is_ok());
        assert_eq!(
            p.check_url("ftp://x.example/"),
            Err(PolicyError::Scheme("ftp".into()))
        );
        assert_eq!(
            p.check_url("https://u:p@x.example/"),
            Err(PolicyError::Credentials)
        );
        assert!(matches!(
            p.check_url("not a url"),
            Err(PolicyError::BadUrl(_))
        ));
        assert!(matches!(
            p.check_url("http://169.254.169.254/latest/meta-data"),
            Err(PolicyError::NotPublic { .. })
        ));
        assert!(matches!(
            p.check_url("http://[::1]:8080/"),
            Err(PolicyError::NotPublic { .. })
        ));
        let local = UrlPolicy::parse("127.0.0.1/32").unwrap();
        assert!(local.check_url("http://127.0.0.1:9000/hook").is_ok());
    }
}
