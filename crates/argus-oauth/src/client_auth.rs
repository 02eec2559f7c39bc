//! Client authentication at the token, PAR, introspection and revocation endpoints: which credentials a request
//! presents (RFC 6749 §2.3), and whether they prove the registered client (shared secret, or an RFC 7523 client
//! assertion signed by a key of the client's `jwks`).
//!
//! Pure: the caller looks the client up, and records a verified assertion's `jti` in its replay cache.

use std::time::Duration;

use argus_jose::{JwkSet, LEEWAY_SECS, ct_eq};
use argus_model::Timestamp;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::client::{ClientRegistration, TokenEndpointAuthMethod, hash_client_secret};
use crate::error::OAuthError;
use crate::params::Params;

/// The `client_assertion_type` of a JWT client assertion (RFC 7523 §2.2).
pub const JWT_BEARER_CLIENT_ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithms accepted on client assertions, as advertised in
/// `token_endpoint_auth_signing_alg_values_supported`. Asymmetric only: `client_secret_jwt` (HMAC with the client
/// secret) is not offered, so a stored secret hash can never be used as a signing key.
pub const CLIENT_ASSERTION_ALGORITHMS: [&str; 5] = ["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// Longest assertion or `jti` read, in bytes: a `jti` becomes a replay-cache key, an assertion is parsed and hashed.
const MAX_ASSERTION_LEN: usize = 16 * 1024;
const MAX_JTI_LEN: usize = 256;

/// The credentials a request presents. `Debug` never prints a secret or an assertion.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Only a `client_id`: a public client.
    None { client_id: String },
    /// HTTP Basic with the client id and secret.
    SecretBasic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body.
    SecretPost { client_id: String, secret: String },
    /// An RFC 7523 client assertion. `client_id` is the body's, or else the assertion's (unverified) `sub`.
    PrivateKeyJwt { client_id: String, assertion: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("method", &self.method())
            .field("client_id", &self.client_id())
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// The client the credentials claim to be.
    pub fn client_id(&self) -> &str {
        match self {
            Self::None { client_id }
            | Self::SecretBasic { client_id, .. }
            | Self::SecretPost { client_id, .. }
            | Self::PrivateKeyJwt { client_id, .. } => client_id,
        }
    }

    /// The authentication method they use.
    pub fn method(&self) -> TokenEndpointAuthMethod {
        match self {
            Self::None { .. } => TokenEndpointAuthMethod::None,
            Self::SecretBasic { .. } => TokenEndpointAuthMethod::ClientSecretBasic,
            Self::SecretPost { .. } => TokenEndpointAuthMethod::ClientSecretPost,
            Self::PrivateKeyJwt { .. } => TokenEndpointAuthMethod::PrivateKeyJwt,
        }
    }
}

/// Read the credentials of a request from its `Authorization` header value and form parameters.
///
/// Refused: more than one method at once (`invalid_request`, RFC 6749 §2.3), a malformed Basic header, a body
/// `client_id` that contradicts the Basic one or the assertion's, an unknown assertion type, and no `client_id` at
/// all (`invalid_client`).
pub fn read_credentials(authorization: Option<&str>, params: &Params) -> Result<Credentials, OAuthError> {
    let body_id = params.get("client_id");
    let body_secret = params.get("client_secret");
    let assertion = params.get("client_assertion");
    let assertion_type = params.get("client_assertion_type");
    let methods =
        usize::from(authorization.is_some()) + usize::from(body_secret.is_some()) + usize::from(assertion.is_some());
    if methods > 1 {
        return Err(OAuthError::invalid_request("use exactly one client authentication method"));
    }
    if let Some(header) = authorization {
        let (client_id, secret) = parse_basic(header)?;
        if body_id.is_some_and(|id| id != client_id) {
            return Err(OAuthError::invalid_client("client_id does not match the Authorization header"));
        }
        return Ok(Credentials::SecretBasic { client_id, secret });
    }
    if let Some(secret) = body_secret {
        let client_id = body_id.ok_or(OAuthError::invalid_client("client_id is required"))?;
        return Ok(Credentials::SecretPost { client_id: client_id.to_owned(), secret: secret.to_owned() });
    }
    if assertion.is_some() || assertion_type.is_some() {
        return read_assertion(body_id, assertion, assertion_type);
    }
    let client_id = body_id.ok_or(OAuthError::invalid_client("client authentication is required"))?;
    Ok(Credentials::None { client_id: client_id.to_owned() })
}

fn read_assertion(
    body_id: Option<&str>,
    assertion: Option<&str>,
    assertion_type: Option<&str>,
) -> Result<Credentials, OAuthError> {
    if assertion_type != Some(JWT_BEARER_CLIENT_ASSERTION_TYPE) {
        return Err(OAuthError::invalid_client("client_assertion_type must be the JWT bearer type"));
    }
    let assertion = assertion.ok_or(OAuthError::invalid_request("client_assertion is required"))?;
    if assertion.len() > MAX_ASSERTION_LEN {
        return Err(OAuthError::invalid_client("the client assertion is invalid"));
    }
    let sub = unverified_subject(assertion).ok_or(OAuthError::invalid_client("the client assertion is invalid"))?;
    if body_id.is_some_and(|id| id != sub) {
        return Err(OAuthError::invalid_client("client_id does not match the client assertion"));
    }
    Ok(Credentials::PrivateKeyJwt { client_id: sub, assertion: assertion.to_owned() })
}

/// The `sub` of a JWT, not verified: only to find the client whose keys then verify it.
fn unverified_subject(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Sub {
        sub: String,
    }
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice::<Sub>(&bytes).ok().map(|s| s.sub).filter(|s| !s.is_empty())
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
fn parse_basic(header: &str) -> Result<(String, String), OAuthError> {
    const BAD: OAuthError = OAuthError::invalid_client("malformed Basic credentials");
    let (scheme, encoded) = header.trim().split_once(' ').ok_or(BAD)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client("only Basic client authentication is accepted in Authorization"));
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| BAD)?;
    let text = String::from_utf8(decoded).map_err(|_| BAD)?;
    let (id, secret) = text.split_once(':').ok_or(BAD)?;
    let (id, secret) = (form_decode(id).ok_or(BAD)?, form_decode(secret).ok_or(BAD)?);
    if id.is_empty() || secret.is_empty() {
        return Err(BAD);
    }
    Ok((id, secret))
}

/// Undo `application/x-www-form-urlencoded` encoding: `+` is a space, `%XX` a byte. `None` for a broken escape or
/// bytes that are not UTF-8.
fn form_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What a client assertion is checked against.
#[derive(Clone, Copy, Debug)]
pub struct AssertionCheck<'a> {
    /// The `aud` values accepted: the issuer identifier, the token endpoint URL and the URL of the endpoint called
    /// (RFC 7523 §3 item 3).
    pub audiences: &'a [&'a str],
    pub now: Timestamp,
    /// The longest an assertion may still be valid for (`exp` - now).
    pub max_lifetime: Duration,
}

/// A verified client assertion. The caller must refuse a second use of `jti` until `expires_at` (RFC 7523 §3
/// item 7), e.g. with a replay cache keyed by client and `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub expires_at: Timestamp,
}

/// Check presented credentials against the registered client.
///
/// The method must be the one registered — a confidential client can never fall back to `none`, and a public client
/// cannot start using a secret. Secrets are compared as hashes, in constant time. Every refusal is
/// `invalid_client`, with one fixed description per cause and nothing from the request.
pub fn authenticate_client(
    client: &ClientRegistration,
    credentials: &Credentials,
    check: &AssertionCheck<'_>,
) -> Result<Option<VerifiedAssertion>, OAuthError> {
    if client.disabled {
        return Err(OAuthError::invalid_client("this client is disabled"));
    }
    if credentials.method() != client.token_endpoint_auth_method {
        return Err(OAuthError::invalid_client("this client must use its registered authentication method"));
    }
    match credentials {
        Credentials::None { .. } => Ok(None),
        Credentials::SecretBasic { secret, .. } | Credentials::SecretPost { secret, .. } => {
            let stored = client.client_secret_hash.as_deref().unwrap_or("");
            let presented = hash_client_secret(secret);
            if ct_eq(presented.as_bytes(), stored.as_bytes()) {
                Ok(None)
            } else {
                Err(OAuthError::invalid_client("client authentication failed"))
            }
        }
        Credentials::PrivateKeyJwt { assertion, .. } => {
            let jwks = client.jwks.as_ref().ok_or(OAuthError::invalid_client("client authentication failed"))?;
            verify_client_assertion(assertion, &client.client_id, jwks, check).map(Some)
        }
    }
}

/// The claims of a client assertion this issuer reads.
#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    aud: OneOrMany,
    exp: i64,
    jti: String,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn any_of(&self, accepted: &[&str]) -> bool {
        match self {
            Self::One(a) => accepted.contains(&a.as_str()),
            Self::Many(v) => v.iter().any(|a| accepted.contains(&a.as_str())),
        }
    }
}

/// Verify an RFC 7523 client assertion: signature by a key of `jwks` (by `kid`, or any key of the right type when
/// the header names none), `iss` = `sub` = the client, `aud` one of the accepted values, `exp` in the future but not
/// further than `max_lifetime`, `iat`/`nbf` not in the future, and a `jti`.
pub fn verify_client_assertion(
    assertion: &str,
    client_id: &str,
    jwks: &JwkSet,
    check: &AssertionCheck<'_>,
) -> Result<VerifiedAssertion, OAuthError> {
    const INVALID: OAuthError = OAuthError::invalid_client("the client assertion is invalid");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| INVALID)?;
    if !CLIENT_ASSERTION_ALGORITHMS.iter().any(|a| *a == algorithm_name(header.alg)) {
        return Err(OAuthError::invalid_client("the client assertion's algorithm is not accepted"));
    }
    let claims = signed_claims(assertion, header.alg, header.kid.as_deref(), jwks)
        .ok_or(OAuthError::invalid_client("the client assertion's signature does not verify"))?;
    check_assertion_claims(&claims, client_id, check)
}

fn signed_claims(assertion: &str, alg: Algorithm, kid: Option<&str>, jwks: &JwkSet) -> Option<AssertionClaims> {
    let mut validation = Validation::new(alg);
    // Time and audience are checked afterwards, against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = std::collections::HashSet::new();
    let candidates: Vec<&Jwk> = match kid {
        Some(kid) => jwks.find(kid).into_iter().collect(),
        None => jwks.keys.iter().collect(),
    };
    candidates.into_iter().filter(|k| key_fits(k, alg)).find_map(|jwk| {
        let key = DecodingKey::from_jwk(jwk).ok()?;
        jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation).ok().map(|d| d.claims)
    })
}

/// A key may verify `alg` only if it is of the algorithm's family and, when the key names its algorithm, that one:
/// the token never chooses how a key is used.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let named_ok = jwk.common.key_algorithm.is_none_or(|a| a.to_string() == algorithm_name(alg));
    let family_ok = DecodingKey::from_jwk(jwk).is_ok_and(|k| k.family() == alg.family());
    named_ok && family_ok
}

fn algorithm_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

fn check_assertion_claims(
    c: &AssertionClaims,
    client_id: &str,
    check: &AssertionCheck<'_>,
) -> Result<VerifiedAssertion, OAuthError> {
    let now = check.now.as_secs();
    if c.iss != client_id || c.sub != client_id {
        return Err(OAuthError::invalid_client("the client assertion's iss and sub must be the client_id"));
    }
    if !c.aud.any_of(check.audiences) {
        return Err(OAuthError::invalid_client("the client assertion's aud is not this issuer"));
    }
    if c.exp + LEEWAY_SECS <= now {
        return Err(OAuthError::invalid_client("the client assertion has expired"));
    }
    let max = i64::try_from(check.max_lifetime.as_secs()).unwrap_or(i64::MAX);
    if c.exp.saturating_sub(now) > max.saturating_add(LEEWAY_SECS) {
        return Err(OAuthError::invalid_client("the client assertion is valid for too long"));
    }
    let in_future = |t: Option<i64>| t.is_some_and(|t| t - LEEWAY_SECS > now);
    if in_future(c.iat) || in_future(c.nbf) {
        return Err(OAuthError::invalid_client("the client assertion is not valid yet"));
    }
    if c.jti.is_empty() || c.jti.len() > MAX_JTI_LEN {
        return Err(OAuthError::invalid_client("the client assertion needs a jti"));
    }
    Ok(VerifiedAssertion { jti: c.jti.clone(), expires_at: Timestamp::from_secs(c.exp) })
}

#[cfg(test)]
mod tests;
