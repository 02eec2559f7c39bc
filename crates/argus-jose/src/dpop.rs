//! DPoP proofs (RFC 9449): the stateless checks of §4.3, `htu` normalisation and stateless server nonces.
//!
//! What this module does NOT do, because it needs state the caller owns:
//! - **`jti` replay** (§11.1): after [`verify_dpop_proof`] succeeds, the caller records `jkt + jti` in a replay cache
//!   until [`DpopProof::replayable_until`] and refuses a proof whose key was already seen.
//! - **server nonces** (§8, §9): the caller decides whether a nonce is required and checks [`DpopProof::nonce`] with
//!   a [`NonceIssuer`].
//! - **`cnf.jkt` binding**: the caller compares [`DpopProof::jkt`] with the access token's (or refresh token's)
//!   confirmation.

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::{Map, Value};

use crate::{ct_eq, jwk_thumbprint, sha256_b64url};

/// The `typ` header every DPoP proof carries (RFC 9449 §4.2).
pub const DPOP_TYP: &str = "dpop+jwt";

/// The JWS algorithms accepted for DPoP proofs, as advertised in `dpop_signing_alg_values_supported` and in the
/// `algs` parameter of a `WWW-Authenticate: DPoP` challenge. Asymmetric only: never `none` or `HS*` (§4.3 item 5).
pub const DPOP_ALGORITHMS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// Clock skew tolerated on `iat` on top of the caller's window, in seconds.
pub const DPOP_IAT_LEEWAY_SECS: i64 = 5;

/// Longest proof accepted, in bytes. A proof with an RSA-4096 key is under 2 KiB; anything far larger is an attempt
/// to make the server parse and hash garbage.
const MAX_PROOF_LEN: usize = 8 * 1024;

/// Longest `jti` accepted, in bytes: it becomes a replay-cache key.
const MAX_JTI_LEN: usize = 256;

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, RFC 8037 §2).
const PRIVATE_JWK_MEMBERS: &[&str] = &["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// A verified DPoP proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DpopProof {
    /// RFC 7638 SHA-256 thumbprint of the header `jwk`, base64url: what `cnf.jkt` must equal.
    pub jkt: String,
    pub jti: String,
    pub iat: i64,
    pub htm: String,
    pub htu: String,
    pub ath: Option<String>,
    pub nonce: Option<String>,
}

impl DpopProof {
    /// The last second at which this proof could still pass [`verify_dpop_proof`] with the same `max_age_secs`:
    /// how long a replay cache must remember its `jti`.
    pub fn replayable_until(&self, max_age_secs: i64) -> i64 {
        self.iat.saturating_add(max_age_secs).saturating_add(DPOP_IAT_LEEWAY_SECS)
    }
}

/// What a proof is checked against: the request it came with.
#[derive(Clone, Copy, Debug)]
pub struct DpopCheck<'a> {
    /// The request method, e.g. `GET`. Compared case-sensitively, as HTTP methods are.
    pub method: &'a str,
    /// The request URL as the server is reached: `scheme://authority/path` (a query or fragment is ignored).
    pub url: &'a str,
    /// The current time, in seconds since the Unix epoch.
    pub now_secs: i64,
    /// How far `iat` may be from now, in either direction (plus [`DPOP_IAT_LEEWAY_SECS`]), e.g. 60.
    pub max_age_secs: i64,
    /// The access token presented with the proof; when set, the proof's `ath` must be its SHA-256 (§4.3 item 11).
    pub access_token: Option<&'a str>,
}

/// Why a DPoP proof was refused. Every variant maps to `invalid_dpop_proof` (RFC 9449 §7.1); the detail is for logs
/// and events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("malformed proof")]
    Malformed,
    #[error("not a DPoP proof (typ)")]
    WrongType,
    #[error("signature algorithm not accepted")]
    UnsupportedAlgorithm,
    #[error("the header jwk is not a usable public key for the algorithm")]
    InvalidKey,
    #[error("the header jwk contains a private key")]
    PrivateKeyInHeader,
    #[error("signature does not verify")]
    BadSignature,
    #[error("htm does not match the request method")]
    MethodMismatch,
    #[error("htu does not match the request URL")]
    UrlMismatch,
    #[error("iat outside the accepted window")]
    IatOutOfWindow,
    #[error("ath missing while an access token is presented")]
    MissingAth,
    #[error("ath does not match the access token")]
    AthMismatch,
}

impl DpopError {
    /// A short stable name for events and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::WrongType => "wrong_type",
            Self::UnsupportedAlgorithm => "unsupported_algorithm",
            Self::InvalidKey => "invalid_key",
            Self::PrivateKeyInHeader => "private_key_in_header",
            Self::BadSignature => "bad_signature",
            Self::MethodMismatch => "method_mismatch",
            Self::UrlMismatch => "url_mismatch",
            Self::IatOutOfWindow => "iat_out_of_window",
            Self::MissingAth => "missing_ath",
            Self::AthMismatch => "ath_mismatch",
        }
    }
}

/// Verify a DPoP proof against the request it came with (RFC 9449 §4.3, all checks but `jti` replay and nonce).
pub fn verify_dpop_proof(proof: &str, check: &DpopCheck<'_>) -> Result<DpopProof, DpopError> {
    let parts = split_compact(proof)?;
    let header = decode_json_object(parts.header)?;
    check_typ(&header)?;
    let alg = accepted_algorithm(&header)?;
    let jwk = public_jwk(&header, alg)?;
    verify_signature(&parts, &jwk, alg)?;
    let claims = decode_json_object(parts.payload)?;
    let proof = read_claims(&claims, &jwk)?;
    check_request(&proof, check)?;
    Ok(proof)
}

/// The three segments of a compact JWS.
struct Compact<'a> {
    header: &'a str,
    payload: &'a str,
    signature: &'a str,
    signing_input: &'a str,
}

fn split_compact(proof: &str) -> Result<Compact<'_>, DpopError> {
    if proof.is_empty() || proof.len() > MAX_PROOF_LEN {
        return Err(DpopError::Malformed);
    }
    let mut it = proof.split('.');
    let (Some(header), Some(payload), Some(signature), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(DpopError::Malformed);
    };
    // An empty signature is left for the algorithm check to refuse (`alg: none` is a named error, not garbage).
    if header.is_empty() || payload.is_empty() {
        return Err(DpopError::Malformed);
    }
    let signing_input = &proof[..header.len() + 1 + payload.len()];
    Ok(Compact { header, payload, signature, signing_input })
}

fn decode_json_object(segment: &str) -> Result<Map<String, Value>, DpopError> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).map_err(|_| DpopError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(DpopError::Malformed),
    }
}

fn check_typ(header: &Map<String, Value>) -> Result<(), DpopError> {
    // §4.2: exactly `dpop+jwt`; the `application/` prefix form is not allowed for this media type check.
    if header.get("typ").and_then(Value::as_str) != Some(DPOP_TYP) {
        return Err(DpopError::WrongType);
    }
    // We understand no critical extension, so a proof that declares one cannot be processed (RFC 7515 §4.1.11).
    if header.contains_key("crit") {
        return Err(DpopError::Malformed);
    }
    Ok(())
}

fn accepted_algorithm(header: &Map<String, Value>) -> Result<Algorithm, DpopError> {
    let name = header.get("alg").and_then(Value::as_str).ok_or(DpopError::UnsupportedAlgorithm)?;
    match name {
        "ES256" => Ok(Algorithm::ES256),
        "ES384" => Ok(Algorithm::ES384),
        "EdDSA" => Ok(Algorithm::EdDSA),
        "RS256" => Ok(Algorithm::RS256),
        "PS256" => Ok(Algorithm::PS256),
        _ => Err(DpopError::UnsupportedAlgorithm),
    }
}

/// The header `jwk`: present, public, and of the key type and curve `alg` needs.
fn public_jwk(header: &Map<String, Value>, alg: Algorithm) -> Result<Jwk, DpopError> {
    let raw = header.get("jwk").ok_or(DpopError::InvalidKey)?;
    let members = raw.as_object().ok_or(DpopError::InvalidKey)?;
    if PRIVATE_JWK_MEMBERS.iter().any(|m| members.contains_key(*m)) {
        return Err(DpopError::PrivateKeyInHeader);
    }
    let jwk: Jwk = serde_json::from_value(raw.clone()).map_err(|_| DpopError::InvalidKey)?;
    let fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => {
            p.curve == EllipticCurve::P256 && coordinate_len(&p.x) == Some(32) && coordinate_len(&p.y) == Some(32)
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES384) => {
            p.curve == EllipticCurve::P384 && coordinate_len(&p.x) == Some(48) && coordinate_len(&p.y) == Some(48)
        }
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519 && coordinate_len(&p.x) == Some(32)
        }
        // 2048 to 8192 bits, what aws-lc-rs verifies; smaller keys are forgeable.
        (AlgorithmParameters::RSA(p), Algorithm::RS256 | Algorithm::PS256) => {
            coordinate_len(&p.n).is_some_and(|n| (256..=1024).contains(&n))
        }
        _ => false,
    };
    // A key that names its own `alg` must name the one used: never let the proof pick another use of the key.
    let alg_named_ok = jwk.common.key_algorithm.is_none_or(|a| a.to_string() == format!("{alg:?}"));
    if !fits || !alg_named_ok {
        return Err(DpopError::InvalidKey);
    }
    Ok(jwk)
}

/// The length in bytes of a base64url key member (a coordinate or a modulus); `None` if it is not base64url.
fn coordinate_len(b64: &str) -> Option<usize> {
    URL_SAFE_NO_PAD.decode(b64).ok().map(|bytes| bytes.len())
}

fn verify_signature(parts: &Compact<'_>, jwk: &Jwk, alg: Algorithm) -> Result<(), DpopError> {
    let key = DecodingKey::from_jwk(jwk).map_err(|_| DpopError::InvalidKey)?;
    match jsonwebtoken::crypto::verify(parts.signature, parts.signing_input.as_bytes(), &key, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(DpopError::BadSignature),
        // The key bytes do not make a key of this kind, or the signature is not base64url.
        Err(e) => match e.kind() {
            jsonwebtoken::errors::ErrorKind::Base64(_) => Err(DpopError::Malformed),
            _ => Err(DpopError::InvalidKey),
        },
    }
}

fn read_claims(claims: &Map<String, Value>, jwk: &Jwk) -> Result<DpopProof, DpopError> {
    let string = |name: &str| -> Result<Option<String>, DpopError> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(DpopError::Malformed),
        }
    };
    let required = |name: &str| string(name)?.filter(|s| !s.is_empty()).ok_or(DpopError::Malformed);
    let jti = required("jti")?;
    if jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Malformed);
    }
    let iat = claims.get("iat").and_then(numeric_date).ok_or(DpopError::Malformed)?;
    Ok(DpopProof {
        jkt: jwk_thumbprint(jwk).ok_or(DpopError::InvalidKey)?,
        jti,
        iat,
        htm: required("htm")?,
        htu: required("htu")?,
        ath: string("ath")?,
        nonce: string("nonce")?,
    })
}

/// A NumericDate (RFC 7519 §2) as whole seconds; fractions are allowed by the RFC and dropped.
fn numeric_date(v: &Value) -> Option<i64> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.is_finite() && f.abs() < 1e15).map(|f| f.floor() as i64))
}

fn check_request(proof: &DpopProof, check: &DpopCheck<'_>) -> Result<(), DpopError> {
    if proof.htm != check.method {
        return Err(DpopError::MethodMismatch);
    }
    let expected = normalize_htu(check.url).ok_or(DpopError::UrlMismatch)?;
    if normalize_htu(&proof.htu).as_deref() != Some(expected.as_str()) {
        return Err(DpopError::UrlMismatch);
    }
    let window = check.max_age_secs.max(0).saturating_add(DPOP_IAT_LEEWAY_SECS);
    if proof.iat.saturating_sub(check.now_secs).saturating_abs() > window {
        return Err(DpopError::IatOutOfWindow);
    }
    if let Some(token) = check.access_token {
        let ath = proof.ath.as_deref().ok_or(DpopError::MissingAth)?;
        if !ct_eq(ath.as_bytes(), sha256_b64url(token.as_bytes()).as_bytes()) {
            return Err(DpopError::AthMismatch);
        }
    }
    Ok(())
}

/// Normalise an HTTP(S) URL for `htu` comparison (RFC 9449 §4.3 item 9, RFC 3986 §6.2.2–6.2.3): scheme and host
/// lowercased, default port dropped, dot segments removed, empty path made `/`, percent-encodings of unreserved
/// characters decoded and the others uppercased; query and fragment dropped. `None` for anything that is not an
/// absolute `http` or `https` URL.
pub fn normalize_htu(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return None;
    }
    // Credentials in an htu make no sense and must not make two URLs differ or match.
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return None;
    }
    parsed.set_query(None);
    parsed.set_fragment(None);
    let path = normalize_percent_encoding(parsed.path());
    let authority = match parsed.port() {
        Some(port) => format!("{}:{port}", parsed.host_str()?),
        None => parsed.host_str()?.to_owned(),
    };
    Some(format!("{}://{authority}{path}", parsed.scheme()))
}

/// Decode `%XX` of unreserved characters and uppercase the hex digits of the rest (RFC 3986 §6.2.2.1, §6.2.2.2).
fn normalize_percent_encoding(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match decoded {
            Some(b) if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') => {
                out.push(char::from(b));
                i += 3;
            }
            Some(b) => {
                out.push_str(&format!("%{b:02X}"));
                i += 3;
            }
            None => {
                // `url` has already percent-encoded everything outside ASCII, so this is a single ASCII byte or
                // the start of a UTF-8 sequence copied whole below.
                let ch_len = path[i..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&path[i..i + ch_len]);
                i += ch_len;
            }
        }
    }
    out
}

/// Stateless server nonces (RFC 9449 §8, §9): `HMAC-SHA256(secret, window number)`, base64url. A nonce is valid in
/// the window it was issued in and the next one, so a client that fetched it just before the window rolled is not
/// refused. Gates sharing the secret accept each other's nonces with no shared state.
pub struct NonceIssuer {
    key: hmac::Key,
    window_secs: i64,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("NonceIssuer").field("window_secs", &self.window_secs).finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// Domain separation, so the same secret could serve another purpose without its tags being nonces here.
    const CONTEXT: &'static [u8] = b"argus dpop nonce v1\0";

    /// Nonces from `secret` rolling every `window_secs` (at least one second).
    pub fn new(secret: &[u8], window_secs: u64) -> Self {
        let window_secs = i64::try_from(window_secs).unwrap_or(i64::MAX).max(1);
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, secret), window_secs }
    }

    /// The nonce to hand out at `now_secs`.
    pub fn current(&self, now_secs: i64) -> String {
        self.nonce_for_window(self.window(now_secs))
    }

    /// Whether `nonce` was issued in the current or the previous window.
    pub fn is_valid(&self, nonce: &str, now_secs: i64) -> bool {
        let window = self.window(now_secs);
        // Both compared, in constant time, so timing does not tell which window matched.
        let current = ct_eq(nonce.as_bytes(), self.nonce_for_window(window).as_bytes());
        let previous = ct_eq(nonce.as_bytes(), self.nonce_for_window(window.saturating_sub(1)).as_bytes());
        current | previous
    }

    fn window(&self, now_secs: i64) -> i64 {
        now_secs.div_euclid(self.window_secs)
    }

    fn nonce_for_window(&self, window: i64) -> String {
        let mut ctx = hmac::Context::with_key(&self.key);
        ctx.update(Self::CONTEXT);
        ctx.update(&window.to_be_bytes());
        URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_normalisation() {
        let n = |u: &str| normalize_htu(u);
        assert_eq!(n("https://Server.Example.COM/token").as_deref(), Some("https://server.example.com/token"));
        assert_eq!(n("HTTPS://server.example.com:443/token"), n("https://server.example.com/token"));
        assert_eq!(n("http://server.example.com:80/token"), n("http://server.example.com/token"));
        assert_eq!(n("http://127.0.0.1:7480/a").as_deref(), Some("http://127.0.0.1:7480/a"));
        assert_ne!(n("https://server.example.com:8443/token"), n("https://server.example.com/token"));
        assert_eq!(n("https://s.example/r?x=1#frag").as_deref(), Some("https://s.example/r"));
        assert_eq!(n("https://s.example").as_deref(), Some("https://s.example/"));
        assert_eq!(n("https://s.example/a/").as_deref(), Some("https://s.example/a/"));
        assert_ne!(n("https://s.example/a/"), n("https://s.example/a"), "a trailing slash is part of the path");
        assert_eq!(n("https://s.example/a/./b/../c").as_deref(), Some("https://s.example/a/c"));
        assert_eq!(n("https://s.example/%7euser/%2f%41").as_deref(), Some("https://s.example/~user/%2FA"));
        assert_eq!(n("https://s.example/caf%C3%A9"), n("https://s.example/café"));
        assert_ne!(n("https://s.example/Path"), n("https://s.example/path"), "the path stays case-sensitive");
        assert_ne!(n("http://s.example/"), n("https://s.example/"));
        assert_eq!(n("https://[::1]:443/x").as_deref(), Some("https://[::1]/x"));
    }

    #[test]
    fn htu_refuses_what_is_not_an_http_url() {
        for bad in ["", "/relative", "ftp://s.example/", "urn:x:y", "https://user:pw@s.example/", "not a url"] {
            assert_eq!(normalize_htu(bad), None, "{bad}");
        }
    }

    #[test]
    fn percent_encoding_keeps_bad_escapes_verbatim() {
        assert_eq!(normalize_percent_encoding("/a%zz/%4"), "/a%zz/%4");
        assert_eq!(normalize_percent_encoding("/%e2%82%ac"), "/%E2%82%AC");
    }

    #[test]
    fn nonces_roll_and_live_two_windows() {
        let issuer = NonceIssuer::new(b"secret", 60);
        let n0 = issuer.current(1_000_020);
        assert_eq!(issuer.current(1_000_039), n0, "same window, same nonce");
        assert!(issuer.is_valid(&n0, 1_000_020));
        let next = 1_000_020 + 60;
        assert_ne!(issuer.current(next), n0);
        assert!(issuer.is_valid(&n0, next), "the previous window's nonce is still good");
        assert!(!issuer.is_valid(&n0, next + 60), "two windows on it is not");
        assert!(!issuer.is_valid("", next));
        assert!(!NonceIssuer::new(b"other", 60).is_valid(&n0, 1_000_020), "another secret, another nonce");
        assert!(n0.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "NQCHAR-safe");
        assert!(!format!("{issuer:?}").contains("secret"));
        assert_eq!(NonceIssuer::new(b"s", 0).window_secs, 1);
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            DpopError::Malformed,
            DpopError::WrongType,
            DpopError::UnsupportedAlgorithm,
            DpopError::InvalidKey,
            DpopError::PrivateKeyInHeader,
            DpopError::BadSignature,
            DpopError::MethodMismatch,
            DpopError::UrlMismatch,
            DpopError::IatOutOfWindow,
            DpopError::MissingAth,
            DpopError::AthMismatch,
        ];
        let codes: std::collections::HashSet<_> = all.iter().map(DpopError::code).collect();
        assert_eq!(codes.len(), all.len());
    }
}
