//! Hosts: the one a route serves (`api.example.com`, `*.example.com`) and the one a request names.

/// A route's host, lower-case, checked once at start-up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum HostPattern {
    /// This host only.
    Exact(String),
    /// Hosts ending in this suffix, kept with its leading dot (`.example.com`), with at least one label before it:
    /// the bare domain is not matched.
    Wildcard(String),
}

impl HostPattern {
    /// A configured `host`, or `None` if it is neither a DNS name nor `*.` and a DNS name.
    pub(crate) fn parse(value: &str) -> Option<Self> {
        let lower = value.to_ascii_lowercase();
        match lower.strip_prefix("*.") {
            Some(suffix) if is_dns_name(suffix) => Some(Self::Wildcard(format!(".{suffix}"))),
            Some(_) => None,
            None if is_dns_name(&lower) => Some(Self::Exact(lower)),
            None => None,
        }
    }

    /// Whether `host` (a DNS name from [`request_host`], any case) is served by this pattern.
    pub(crate) fn matches(&self, host: &str) -> bool {
        match self {
            Self::Exact(name) => name.eq_ignore_ascii_case(host),
            Self::Wildcard(suffix) => {
                // `host` is ASCII (a checked DNS name), so any byte offset is a char boundary.
                host.len() > suffix.len() && host[host.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
            }
        }
    }

    /// How specific the pattern is: an exact name beats every wildcard, a longer wildcard suffix a shorter one.
    pub(crate) fn specificity(&self) -> (bool, usize) {
        match self {
            Self::Exact(name) => (true, name.len()),
            Self::Wildcard(suffix) => (false, suffix.len()),
        }
    }

    /// The pattern as a route's `host` reads, lower-case.
    pub(crate) fn to_config(&self) -> String {
        match self {
            Self::Exact(name) => name.clone(),
            Self::Wildcard(suffix) => format!("*{suffix}"),
        }
    }
}

/// The host a request names, from a `Host` header or an `:authority`: without port and without the trailing dot
/// of a fully qualified name, if it is a DNS name (or an IPv4 address, which reads as one). `None` for anything
/// else — user info, a bad port, an IPv6 literal, stray characters: no host route can match those, so only the
/// routes without `host` may serve the request.
pub(crate) fn request_host(authority: &str) -> Option<&str> {
    if authority.contains('@') || authority.starts_with('[') {
        return None;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        Some(_) => return None,
        None => authority,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    is_dns_name(host).then_some(host)
}

/// RFC 1123 host name syntax: dot-separated labels of 1..=63 letters, digits and inner hyphens, 253 bytes at most.
fn is_dns_name(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}
