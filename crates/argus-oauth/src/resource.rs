//! Resource indicators (RFC 8707): which protected resources a grant covers, and which one an access token is for.
//!
//! The issuer knows its resources: the API audience (what every token is for when no `resource` is named), the
//! issuer itself (its admin API), and those configured. A `resource` must be an absolute URI without a fragment
//! (§2), written exactly as one of them; anything else is `invalid_target`.
//!
//! An authorization request (at `/authorize` or pushed) may name several: the grant then covers those. Each access
//! token is for one resource — a single `aud`, so no resource can replay a token at another — so a token request
//! names at most one, which must be among the grant's. Without one, a token is for the grant's only resource (the
//! API audience for a grant that named none); a grant of several makes the token request choose.

use crate::error::OAuthError;

/// The protected resources of this issuer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resources {
    /// The audience of a token whose request names no resource.
    default: String,
    /// Every resource a request may name: the default first, then the issuer, then the configured ones.
    known: Vec<String>,
}

/// Whether `value` may be a `resource`: an absolute URI (a scheme, then something) without a fragment, and without
/// whitespace (so a list of them can be stored space-separated).
pub fn is_resource_uri(value: &str) -> bool {
    !value.contains('#') && !value.chars().any(char::is_whitespace) && url::Url::parse(value).is_ok()
}

impl Resources {
    /// The resources of an issuer at `issuer_url` whose tokens are for `default` unless a request names one of
    /// `configured`. A configured value that is not an absolute URI without fragment is refused, by value.
    pub fn new(default: &str, issuer_url: &str, configured: &[String]) -> Result<Self, String> {
        if let Some(bad) = configured.iter().find(|r| !is_resource_uri(r)) {
            return Err(format!("resource {bad:?} must be an absolute URI without a fragment or spaces"));
        }
        let mut known = vec![default.to_owned()];
        for r in std::iter::once(issuer_url).chain(configured.iter().map(String::as_str)) {
            if !known.iter().any(|k| k == r) {
                known.push(r.to_owned());
            }
        }
        Ok(Self { default: default.to_owned(), known })
    }

    /// The audience of tokens whose request names no resource.
    pub fn default_audience(&self) -> &str {
        &self.default
    }

    /// Every resource a request may name.
    pub fn known(&self) -> &[String] {
        &self.known
    }

    /// One named resource, checked (RFC 8707 §2).
    fn check<'a>(&self, value: &'a str) -> Result<&'a str, OAuthError> {
        if !is_resource_uri(value) {
            return Err(OAuthError::invalid_target("resource must be an absolute URI without a fragment"));
        }
        if !self.known.iter().any(|k| k == value) {
            return Err(OAuthError::invalid_target("resource is not a resource of this issuer"));
        }
        Ok(value)
    }

    /// The resources an authorization request names (`resource`, possibly repeated), each checked, repeats dropped,
    /// in order: what the grant will cover. Empty when it names none.
    pub fn requested(&self, values: &[&str]) -> Result<Vec<String>, OAuthError> {
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for v in values {
            let v = self.check(v)?;
            if !out.iter().any(|o| o == v) {
                out.push(v.to_owned());
            }
        }
        Ok(out)
    }

    /// The audience of an access token issued under a grant covering `granted` (empty: the grant named no
    /// resource, so it covers the default audience only), for a token request naming `requested`. A refresh may
    /// so narrow a grant of several resources to one, never widen it.
    pub fn token_audience(&self, granted: &[String], requested: &[&str]) -> Result<String, OAuthError> {
        let chosen = match (one(requested)?, granted) {
            (Some(r), []) if r == self.default => r,
            (Some(r), _) if granted.iter().any(|g| g == r) => r,
            (Some(r), _) => {
                self.check(r)?;
                return Err(OAuthError::invalid_target("resource is not one the grant covers"));
            }
            (None, []) => return Ok(self.default.clone()),
            (None, [only]) => only.as_str(),
            (None, _) => {
                return Err(OAuthError::invalid_target("the grant covers several resources: name one with resource"));
            }
        };
        // Known when granted, but the configuration may have changed since.
        if chosen != self.default {
            self.check(chosen)?;
        }
        Ok(chosen.to_owned())
    }

    /// The audience of a client-credentials token: the named resource, any of this issuer's, else the default.
    pub fn client_audience(&self, requested: &[&str]) -> Result<String, OAuthError> {
        match one(requested)? {
            None => Ok(self.default.clone()),
            Some(r) if r == self.default => Ok(r.to_owned()),
            Some(r) => self.check(r).map(str::to_owned),
        }
    }
}

/// The one resource a token request names, if any. Each token is for one resource.
fn one<'a>(requested: &[&'a str]) -> Result<Option<&'a str>, OAuthError> {
    match requested {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, rest @ ..] if rest.iter().all(|r| r == first) => Ok(Some(first)),
        _ => Err(OAuthError::invalid_target("an access token is for one resource: name one")),
    }
}

/// A list of resources as stored: space-separated (resources hold no whitespace), `None` when empty.
pub fn resources_to_stored(resources: &[String]) -> Option<String> {
    (!resources.is_empty()).then(|| resources.join(" "))
}

/// The inverse of [`resources_to_stored`].
pub fn resources_from_stored(stored: Option<&str>) -> Vec<String> {
    stored.map(|s| s.split_ascii_whitespace().map(str::to_owned).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "http://127.0.0.1:7480";
    const ISSUER: &str = "http://127.0.0.1:7400";
    const REPORTS: &str = "https://reports.example/api";

    fn resources() -> Resources {
        Resources::new(API, ISSUER, &[REPORTS.to_owned(), API.to_owned()]).unwrap()
    }

    fn code(r: Result<impl std::fmt::Debug, OAuthError>) -> &'static str {
        r.map_or_else(|e| e.code.as_str(), |v| panic!("expected an error, got {v:?}"))
    }

    #[test]
    fn resource_uris() {
        for good in [API, REPORTS, "https://a.example/x?tenant=1", "urn:example:api"] {
            assert!(is_resource_uri(good), "{good}");
        }
        for bad in ["", "api", "/relative", "https://a.example/#f", "https://a.example/#", "https://a.example/a b"] {
            assert!(!is_resource_uri(bad), "{bad}");
        }
        assert!(Resources::new(API, ISSUER, &["https://x.example/#frag".into()]).unwrap_err().contains("#frag"));
        assert_eq!(resources().known(), [API, ISSUER, REPORTS]);
        assert_eq!(resources().default_audience(), API);
    }

    #[test]
    fn an_authorization_request_may_name_several_known_resources() {
        let r = resources();
        assert_eq!(r.requested(&[]).unwrap(), Vec::<String>::new());
        assert_eq!(r.requested(&[REPORTS, API, REPORTS]).unwrap(), [REPORTS, API]);
        assert_eq!(code(r.requested(&[REPORTS, "https://evil.example/"])), "invalid_target");
        assert_eq!(code(r.requested(&["https://reports.example/api#x"])), "invalid_target");
        assert_eq!(code(r.requested(&["reports"])), "invalid_target");
    }

    #[test]
    fn a_token_is_for_one_resource_of_the_grant() {
        let r = resources();
        // No resource anywhere: the default audience, as before resource indicators.
        assert_eq!(r.token_audience(&[], &[]).unwrap(), API);
        assert_eq!(r.token_audience(&[], &[API]).unwrap(), API);
        assert_eq!(code(r.token_audience(&[], &[REPORTS])), "invalid_target", "a grant of none covers the default");
        let one = [REPORTS.to_owned()];
        assert_eq!(r.token_audience(&one, &[]).unwrap(), REPORTS);
        assert_eq!(r.token_audience(&one, &[REPORTS]).unwrap(), REPORTS);
        assert_eq!(code(r.token_audience(&one, &[API])), "invalid_target", "never wider than the grant");
        let two = [REPORTS.to_owned(), ISSUER.to_owned()];
        assert_eq!(r.token_audience(&two, &[ISSUER]).unwrap(), ISSUER);
        assert_eq!(code(r.token_audience(&two, &[])), "invalid_target", "which one?");
        assert_eq!(code(r.token_audience(&two, &[REPORTS, ISSUER])), "invalid_target", "one per token");
        assert_eq!(r.token_audience(&two, &[REPORTS, REPORTS]).unwrap(), REPORTS);
        assert_eq!(code(r.token_audience(&two, &["https://evil.example/"])), "invalid_target");
        // A granted resource the configuration no longer has.
        let gone = ["https://gone.example/".to_owned()];
        assert_eq!(code(r.token_audience(&gone, &[])), "invalid_target");
    }

    #[test]
    fn client_credentials_may_name_any_resource() {
        let r = resources();
        assert_eq!(r.client_audience(&[]).unwrap(), API);
        assert_eq!(r.client_audience(&[ISSUER]).unwrap(), ISSUER);
        assert_eq!(code(r.client_audience(&[ISSUER, REPORTS])), "invalid_target");
        assert_eq!(code(r.client_audience(&["https://evil.example/"])), "invalid_target");
    }

    #[test]
    fn stored_form() {
        let list = vec![REPORTS.to_owned(), API.to_owned()];
        assert_eq!(resources_from_stored(resources_to_stored(&list).as_deref()), list);
        assert_eq!(resources_to_stored(&[]), None);
        assert!(resources_from_stored(None).is_empty());
    }
}
