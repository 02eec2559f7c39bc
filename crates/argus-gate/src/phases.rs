//! The decision phases of a call, in order: route -> token -> revocation -> DPoP -> scopes. Each is a small
//! function that returns what the next phase needs or the [`Refusal`] that ends the call. DPoP is in `dpop`,
//! proxying and the event in `proxy` and `emit`.

use std::borrow::Cow;

use argus_jose::{AccessClaims, CredentialsError, JwkSet, PresentedScheme, TokenError, peek_kid, verify_access_token};
use argus_policy::{Route, RouteTable, canonical_path, missing_scopes};
use http::{HeaderMap, HeaderValue, Method, header};

use crate::jwks::JwksCache;
use crate::refusal::{Refusal, TokenScheme};
use crate::revocation::Revocations;
use crate::token_cache::VerifiedTokens;

/// Phase 1, route: the route serving `host` (as the caller sent it, see `proxy::caller_host`; `None` without
/// one) and `raw_path`, and the canonical path the later phases match rules on. How the host picks its routes is
/// [`RouteTable::match_route`]'s; a call no route serves, a missing host on a gate of host routes included, is 404.
pub(crate) fn route_phase<'t, 'p>(
    table: &'t RouteTable,
    host: Option<&str>,
    raw_path: &'p str,
) -> Result<(&'t Route, Cow<'p, str>), Refusal> {
    let path = canonical_path(raw_path).map_err(|_| Refusal::InvalidPath)?;
    let route = table.match_route(host, &path).ok_or(Refusal::NoRoute)?;
    Ok((route, path))
}

/// Phase 2a: the access token of the `Authorization` header and its scheme, `Bearer` (RFC 6750 §2.1) or `DPoP`
/// (RFC 9449 §7.1); schemes are case-insensitive.
///
/// No header, or credentials of another scheme, is a missing token (§3.1: no error code). Two headers are an
/// invalid request: the gate and the upstream might each read a different one.
pub(crate) fn presented_token(headers: &HeaderMap) -> Result<(TokenScheme, &str), Refusal> {
    let values = headers.get_all(header::AUTHORIZATION).iter().map(HeaderValue::as_bytes);
    match argus_jose::presented_token(values) {
        Ok((PresentedScheme::Bearer, token)) => Ok((TokenScheme::Bearer, token)),
        Ok((PresentedScheme::Dpop, token)) => Ok((TokenScheme::Dpop, token)),
        Err(CredentialsError::Missing) => Err(Refusal::MissingToken),
        Err(CredentialsError::Repeated) => Err(Refusal::InvalidRequest),
        Err(CredentialsError::Malformed) => Err(Refusal::InvalidToken),
    }
}

/// Phase 2b: verify the token against the issuer's keys.
///
/// A token that verified before and is still in the verified-token cache skips the signature check (see
/// `token_cache`: the cached answer is the one a verification would give now). Otherwise the cached keys are
/// tried first, so a token that is malformed, of the wrong `typ` or algorithm never causes a fetch. Only a
/// well-formed token naming an unknown `kid` asks the cache for fresh keys (key rotation); if they cannot be
/// fetched, the answer is "unavailable" (503), since the token may well be good.
pub(crate) async fn token_phase(
    jwks: &JwksCache,
    verified: &VerifiedTokens,
    token: &str,
    issuer: &str,
    audience: &str,
    now_secs: i64,
) -> Result<AccessClaims, Refusal> {
    let cached = jwks.current();
    let cache_key = verified.key(token);
    let key_known = |kid: &str| cached.as_ref().is_some_and(|set| set.find(kid).is_some());
    if let Some(claims) = verified.get(cache_key.as_ref(), now_secs, key_known) {
        return Ok(AccessClaims::clone(&claims));
    }
    let no_keys = JwkSet { keys: Vec::new() };
    let verify = |keys: &JwkSet| verify_access_token(token, keys, issuer, audience, now_secs);
    let verified_now = match verify(cached.as_deref().unwrap_or(&no_keys)) {
        Err(TokenError::UnknownKey) => match peek_kid(token) {
            Some(kid) => {
                let fresh = jwks.refresh_for(&kid).await.map_err(|_| Refusal::JwksUnavailable)?;
                verify(&fresh)
            }
            None => Err(TokenError::UnknownKey),
        },
        other => other,
    };
    match verified_now {
        Ok(claims) => {
            verified.insert(cache_key, &claims, peek_kid(token));
            Ok(claims)
        }
        Err(error) => {
            // The precise reason is for operators; the caller only learns "invalid_token".
            tracing::debug!(reason = error.code(), "access token refused");
            Err(Refusal::InvalidToken)
        }
    }
}

/// Phase 3, revocation: refuse a token the control channel has revoked.
pub(crate) async fn revocation_phase(revocations: &Revocations, claims: &AccessClaims) -> Result<(), Refusal> {
    if revocations.covers(&claims.revocation_keys()).await { Err(Refusal::RevokedToken) } else { Ok(()) }
}

/// Phase 4, scopes: the first rule of the route matching the call names the scopes the token must all carry.
/// The challenge lists every scope of that rule (RFC 6750 §3: the scope needed to access the resource).
pub(crate) fn scope_phase(route: &Route, method: &Method, path: &str, claims: &AccessClaims) -> Result<(), Refusal> {
    let required = route.required_scopes(method.as_str(), path);
    if missing_scopes(required, &claims.scope).is_empty() {
        Ok(())
    } else {
        Err(Refusal::InsufficientScope { scope: required.join(" ") })
    }
}

#[cfg(test)]
mod tests {
    use argus_policy::{AuthMode, RouteConfig, RuleConfig};
    use argus_testkit::{TEST_AUDIENCE, TEST_EPOCH, TEST_ISSUER, access_claims};
    use http::HeaderValue;

    use super::*;

    fn table() -> RouteTable {
        RouteTable::new(&[RouteConfig {
            name: "api".into(),
            prefix: "/api".into(),
            upstream: "http://127.0.0.1:9".into(),
            auth: AuthMode::Argus,
            require: vec![RuleConfig {
                methods: vec!["GET".into()],
                path: "/api/accounts".into(),
                scopes: vec!["accounts:read".into(), "openid".into()],
            }],
            ..RouteConfig::default()
        }])
        .unwrap()
    }

    #[test]
    fn route_phase_refuses_unknown_and_ambiguous_paths() {
        let table = table();
        let (route, path) = route_phase(&table, Some("any.test"), "/api/acc%6Funts").unwrap();
        assert_eq!((route.name(), path.as_ref()), ("api", "/api/accounts"));
        assert_eq!(route_phase(&table, None, "/apix").unwrap_err(), Refusal::NoRoute);
        assert_eq!(route_phase(&table, None, "/api/../admin").unwrap_err(), Refusal::InvalidPath);
        assert_eq!(route_phase(&table, None, "/api//accounts").unwrap_err(), Refusal::InvalidPath);
    }

    #[test]
    fn route_phase_refuses_a_call_without_host_when_every_route_names_one() {
        let table = RouteTable::new(&[RouteConfig {
            name: "shop".into(),
            host: Some("shop.test".into()),
            prefix: "/".into(),
            upstream: "http://127.0.0.1:9".into(),
            ..RouteConfig::default()
        }])
        .unwrap();
        assert_eq!(route_phase(&table, Some("SHOP.test:7480"), "/x").unwrap().0.name(), "shop");
        for host in [None, Some("other.test"), Some("[::1]:7480")] {
            assert_eq!(route_phase(&table, host, "/x").unwrap_err(), Refusal::NoRoute, "{host:?}");
        }
    }

    fn with_authorization(values: &[&[u8]]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(header::AUTHORIZATION, HeaderValue::from_bytes(v).unwrap());
        }
        headers
    }

    fn bearer_token(headers: &HeaderMap) -> Result<&str, Refusal> {
        presented_token(headers).map(|(scheme, token)| {
            assert_eq!(scheme, TokenScheme::Bearer);
            token
        })
    }

    #[test]
    fn bearer_token_parsing() {
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer abc.def.ghi"])), Ok("abc.def.ghi"));
        assert_eq!(bearer_token(&with_authorization(&[b"bEaReR   abc"])), Ok("abc"));
        assert_eq!(bearer_token(&HeaderMap::new()), Err(Refusal::MissingToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Basic YTpi"])), Err(Refusal::MissingToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer"])), Err(Refusal::InvalidToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer "])), Err(Refusal::InvalidToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer a b"])), Err(Refusal::InvalidToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer \xff"])), Err(Refusal::InvalidToken));
        assert_eq!(bearer_token(&with_authorization(&[b"Bearer a", b"Bearer b"])), Err(Refusal::InvalidRequest));
    }

    #[test]
    fn dpop_token_parsing() {
        let dpop = |v: &[u8]| presented_token(&with_authorization(&[v])).map(|(s, t)| (s, t.to_owned()));
        assert_eq!(dpop(b"DPoP abc"), Ok((TokenScheme::Dpop, "abc".to_owned())));
        assert_eq!(dpop(b"dpop  abc"), Ok((TokenScheme::Dpop, "abc".to_owned())));
        assert_eq!(dpop(b"DPoP"), Err(Refusal::InvalidToken));
        assert_eq!(dpop(b"DPoPabc"), Err(Refusal::MissingToken));
    }

    #[tokio::test]
    async fn the_token_phase_consults_the_cache_first_and_fills_it_with_verified_tokens_only() {
        use std::sync::Arc;
        use std::time::Duration;

        use argus_model::Clock;
        use argus_testkit::{FakeClock, JwksServer, mint_access_token, test_key};

        use crate::jwks::http_uri;

        let key = test_key();
        let server = JwksServer::start(vec![key.public_jwk().clone()]).await;
        let clock = Arc::new(FakeClock::default());
        let discovery = http_uri(&format!("{}/.well-known/openid-configuration", server.issuer())).unwrap();
        let jwks = JwksCache::new(server.issuer(), discovery, clock.clone(), Duration::from_secs(10));
        let verified = VerifiedTokens::new(16);
        let (iss, now) = (server.issuer(), clock.now().as_secs());
        let claims = access_claims(iss, TEST_AUDIENCE, clock.now());
        let token = mint_access_token(&key, &claims);

        assert_eq!(token_phase(&jwks, &verified, &token, iss, TEST_AUDIENCE, now).await, Ok(claims.clone()));
        assert_eq!(token_phase(&jwks, &verified, &token, iss, TEST_AUDIENCE, now).await, Ok(claims.clone()));
        let forged = format!("{token}x");
        assert_eq!(token_phase(&jwks, &verified, &forged, iss, TEST_AUDIENCE, now).await, Err(Refusal::InvalidToken));
        assert_eq!(
            token_phase(&jwks, &verified, &forged, iss, TEST_AUDIENCE, now).await,
            Err(Refusal::InvalidToken),
            "a refused token is never cached"
        );

        // A cache entry is taken as it is (no signature check), but only while its key is in the key set.
        let planted = VerifiedTokens::new(16);
        planted.insert(planted.key("not.a.jwt"), &claims, Some(key.kid().to_owned()));
        assert_eq!(token_phase(&jwks, &planted, "not.a.jwt", iss, TEST_AUDIENCE, now).await, Ok(claims.clone()));
        planted.insert(planted.key("not.a.jwt"), &claims, Some("retired-key".to_owned()));
        assert_eq!(
            token_phase(&jwks, &planted, "not.a.jwt", iss, TEST_AUDIENCE, now).await,
            Err(Refusal::InvalidToken)
        );
    }

    #[test]
    fn scope_phase_names_all_scopes_of_the_rule() {
        let table = table();
        let route = &table.routes()[0];
        let mut claims = access_claims(TEST_ISSUER, TEST_AUDIENCE, TEST_EPOCH);
        claims.scope = "accounts:read".into();
        assert_eq!(
            scope_phase(route, &Method::GET, "/api/accounts/1", &claims),
            Err(Refusal::InsufficientScope { scope: "accounts:read openid".into() })
        );
        assert_eq!(scope_phase(route, &Method::POST, "/api/accounts/1", &claims), Ok(()), "no rule: token suffices");
        claims.scope = "openid accounts:read".into();
        assert_eq!(scope_phase(route, &Method::GET, "/api/accounts", &claims), Ok(()));
    }
}
