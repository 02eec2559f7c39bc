//! Every way the gate can refuse a call, and the one place that maps each to its HTTP answer.
//!
//! Like Pingora's single error type: a refusal is classified once, and its status, RFC 9457 problem `type`,
//! title, `WWW-Authenticate` challenge (RFC 6750 §3) and event `reason` all follow from that kind. Nothing
//! internal (upstream address, key id, parser message) ever reaches the caller.

use argus_jose::DPOP_ALGORITHMS;
use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};

/// Prefix of every problem `type` the gate answers with.
pub const PROBLEM_TYPE_PREFIX: &str = "urn:argus:problem:";

/// Why the gate refused a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No configured route matches the path.
    NoRoute,
    /// The path is spelled in a way the gate and the upstream could read differently (`..`, `//`, `%2F`, ...).
    InvalidPath,
    /// The request carries several `Authorization` headers.
    InvalidRequest,
    /// No bearer token on a route that needs one.
    MissingToken,
    /// The token does not verify (format, type, algorithm, signature, issuer, audience, time).
    InvalidToken,
    /// The token verifies but has been revoked.
    RevokedToken,
    /// The token lacks scopes the matching rule requires; `scope` lists all the rule's scopes.
    InsufficientScope { scope: String },
    /// The request body is larger than `max_body_bytes`.
    BodyTooLarge,
    /// The request body did not arrive within `body_timeout_secs` of the request head.
    BodyTimeout,
    /// The upstream could not be reached or broke the exchange.
    UpstreamUnavailable,
    /// The upstream did not answer within `upstream_timeout_secs`.
    UpstreamTimeout,
    /// The issuer's keys could not be fetched, so the token could be neither accepted nor refused.
    JwksUnavailable,
    /// A DPoP-bound token came as `Bearer`, or a token that is not DPoP-bound came as `DPoP` (RFC 9449 §7.2).
    TokenSchemeMismatch,
    /// The DPoP proof is missing, malformed, replayed, or does not match the request, the token or its key.
    InvalidDpopProof,
    /// The DPoP proof lacks the current server nonce (RFC 9449 §9); the answer carries one in `DPoP-Nonce`.
    UseDpopNonce,
    /// The route's OpenAPI spec has no operation at this path.
    NoOperation,
    /// The path is the spec's, but not with this method; `allow` is the `Allow` header value.
    MethodNotAllowed { allow: String },
    /// An `x-argus-decoy` operation: answered exactly like [`Refusal::NoOperation`], but recorded as a decoy.
    Decoy,
    /// The operation's `x-argus-rule` denied the call; `reason` is the stable deny reason, for the event only.
    RuleDenied { reason: &'static str },
    /// The token's authentication does not meet the operation's `x-argus-step-up` (RFC 9470); `challenge` is the
    /// whole `WWW-Authenticate` value, in the scheme the token came with.
    StepUpRequired { challenge: String },
    /// A block of the control channel covers the call's address, app, user, session or token.
    Blocked,
    /// A rate limit is exhausted; the answer carries `Retry-After`.
    RateLimited { retry_after_secs: u64 },
    /// An input does not match the operation (parameters, content type, body): 400, 413 or 415. The fields are
    /// safe to echo (the policy core strips names of anything but identifier characters) and never carry the value.
    InvalidInput { status: u16, location: &'static str, name: String, reason: &'static str },
    /// The upstream's answer does not match the responses the spec declares (or could not be checked) on a route
    /// with `responses = "block"`: it is withheld, nothing of it reaches the caller.
    UndeclaredResponse,
}

/// The scheme a token was presented with; a refusal's challenge answers in the same scheme (RFC 9449 §7.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Authorization: Bearer` (RFC 6750), and the default when no token came at all.
    #[default]
    Bearer,
    /// `Authorization: DPoP` (RFC 9449 §7.1).
    Dpop,
}

/// The RFC 6750 / RFC 9449 challenge of a refusal.
enum Challenge {
    /// RFC 6750 §3.1: no error code when the request had no token at all; both schemes are offered.
    NoToken,
    /// An error in the scheme the token was presented with.
    Error { code: &'static str, description: &'static str },
    /// An error that only exists in the DPoP scheme, whatever the token came with.
    Dpop { code: &'static str, description: &'static str },
}

/// Everything the answer to a refusal is made of.
struct Spec {
    status: StatusCode,
    slug: &'static str,
    title: &'static str,
    detail: &'static str,
    challenge: Option<Challenge>,
}

impl Refusal {
    fn spec(&self) -> Spec {
        use Challenge::{Dpop, Error, NoToken};
        if let Some(spec) = self.policy_spec() {
            return spec;
        }
        let (status, slug, title, detail, challenge) = match self {
            Self::NoRoute => (StatusCode::NOT_FOUND, "no-route", "No route", "No API is served at this path.", None),
            Self::InvalidPath => (
                StatusCode::BAD_REQUEST,
                "invalid-path",
                "Invalid path",
                "The path contains dot segments, empty segments, encoded separators or bad escapes.",
                None,
            ),
            Self::InvalidRequest => (
                StatusCode::BAD_REQUEST,
                "invalid-request",
                "Invalid request",
                "The request carries more than one Authorization header.",
                Some(Error { code: "invalid_request", description: "Send exactly one Authorization header" }),
            ),
            Self::MissingToken => (
                StatusCode::UNAUTHORIZED,
                "missing-token",
                "Access token required",
                "This API requires an access token in the Authorization header (Bearer scheme).",
                Some(NoToken),
            ),
            Self::InvalidToken => (
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "Invalid access token",
                "The access token is invalid or expired.",
                Some(Error { code: "invalid_token", description: "The access token is invalid or expired" }),
            ),
            Self::RevokedToken => (
                StatusCode::UNAUTHORIZED,
                "revoked-token",
                "Revoked access token",
                "The access token has been revoked.",
                Some(Error { code: "invalid_token", description: "The access token has been revoked" }),
            ),
            Self::InsufficientScope { .. } => (
                StatusCode::FORBIDDEN,
                "insufficient-scope",
                "Insufficient scope",
                "The access token lacks a scope this call requires.",
                Some(Error { code: "insufficient_scope", description: "The access token lacks a required scope" }),
            ),
            Self::BodyTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body-too-large",
                "Request body too large",
                "The request body exceeds the size this API accepts.",
                None,
            ),
            Self::BodyTimeout => (
                StatusCode::REQUEST_TIMEOUT,
                "body-timeout",
                "Request body timeout",
                "The request body did not arrive in time.",
                None,
            ),
            Self::UpstreamUnavailable => (
                StatusCode::BAD_GATEWAY,
                "upstream-unavailable",
                "Upstream unavailable",
                "The API behind the gate could not be reached.",
                None,
            ),
            Self::UpstreamTimeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "upstream-timeout",
                "Upstream timeout",
                "The API behind the gate did not answer in time.",
                None,
            ),
            Self::JwksUnavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "jwks-unavailable",
                "Token keys unavailable",
                "The keys to verify the access token cannot be fetched right now. Try again later.",
                None,
            ),
            Self::TokenSchemeMismatch => (
                StatusCode::UNAUTHORIZED,
                "token-scheme-mismatch",
                "Wrong token scheme",
                "A DPoP-bound access token must be sent with the DPoP scheme and a proof; other tokens with Bearer.",
                Some(Dpop { code: "invalid_token", description: "The token was presented with the wrong scheme" }),
            ),
            Self::InvalidDpopProof => (
                StatusCode::UNAUTHORIZED,
                "invalid-dpop-proof",
                "Invalid DPoP proof",
                "The DPoP proof is missing, invalid, reused, or does not match this request or the access token.",
                Some(Dpop { code: "invalid_dpop_proof", description: "The DPoP proof is invalid" }),
            ),
            Self::UseDpopNonce => (
                StatusCode::UNAUTHORIZED,
                "use-dpop-nonce",
                "DPoP nonce required",
                "Make a new DPoP proof with the nonce of the DPoP-Nonce header.",
                Some(Dpop { code: "use_dpop_nonce", description: "Resource server requires nonce in DPoP proof" }),
            ),
            // Answered by `policy_spec` above.
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error", "Internal error.", None),
        };
        Spec { status, slug, title, detail, challenge }
    }

    /// The refusals of the OpenAPI and policy phases.
    fn policy_spec(&self) -> Option<Spec> {
        let (status, slug, title, detail) = match self {
            // A decoy must be indistinguishable from an absent operation.
            Self::NoOperation | Self::Decoy => {
                (StatusCode::NOT_FOUND, "no-operation", "No such operation", "This API has no operation at this path.")
            }
            Self::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "This path does not support this method; the Allow header lists those it does.",
            ),
            Self::RuleDenied { .. } => (
                StatusCode::FORBIDDEN,
                "rule-denied",
                "Access denied",
                "The access rule of this operation denies the call.",
            ),
            Self::StepUpRequired { .. } => (
                StatusCode::UNAUTHORIZED,
                "step-up-required",
                "Stronger authentication required",
                "This operation needs a token from a stronger or more recent authentication (see WWW-Authenticate).",
            ),
            Self::Blocked => (StatusCode::FORBIDDEN, "blocked", "Blocked", "Calls from this client are blocked."),
            Self::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate-limited",
                "Too many requests",
                "A rate limit is exhausted; retry after the number of seconds in Retry-After.",
            ),
            Self::InvalidInput { status, .. } => (
                StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
                "invalid-request",
                "Invalid request",
                "The request does not match the API's description; see invalid_params.",
            ),
            Self::UndeclaredResponse => (
                StatusCode::BAD_GATEWAY,
                "undeclared-response-data",
                "Response withheld",
                "The API's answer does not match its description, so the gate withheld it.",
            ),
            _ => return None,
        };
        Some(Spec { status, slug, title, detail, challenge: None })
    }

    /// What the call's event records as `reason`: the problem slug, except where the caller must not learn the
    /// real reason (a decoy) or the event deserves more detail than the caller gets (which rule outcome).
    pub fn event_reason(&self) -> &'static str {
        match self {
            Self::Decoy => "decoy",
            Self::RuleDenied { reason } => reason,
            other => other.slug(),
        }
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.spec().status
    }

    /// The stable short name: the last part of the problem `type` and the event's `reason`.
    pub fn slug(&self) -> &'static str {
        self.spec().slug
    }

    /// The RFC 9457 problem `type`, `urn:argus:problem:<slug>`.
    pub fn problem_type(&self) -> String {
        format!("{PROBLEM_TYPE_PREFIX}{}", self.slug())
    }

    /// The `WWW-Authenticate` challenges (one header field each) for refusals about the token, in the scheme the
    /// token was presented with. DPoP challenges name the accepted proof algorithms (RFC 9449 §7.1).
    pub fn www_authenticate(&self, scheme: TokenScheme) -> Vec<String> {
        if let Self::StepUpRequired { challenge } = self {
            return vec![challenge.clone()];
        }
        let Some(challenge) = self.spec().challenge else { return Vec::new() };
        let (scheme, code, description) = match challenge {
            Challenge::NoToken => return vec![r#"Bearer realm="argus""#.to_owned(), dpop_challenge("")],
            Challenge::Error { code, description } => (scheme, code, description),
            Challenge::Dpop { code, description } => (TokenScheme::Dpop, code, description),
        };
        let mut params = format!(r#", error="{code}", error_description="{description}""#);
        if let Self::InsufficientScope { scope } = self {
            // Scopes were checked against RFC 6749's scope-token syntax at start-up: no quote or backslash.
            params.push_str(&format!(r#", scope="{scope}""#));
        }
        vec![match scheme {
            TokenScheme::Bearer => format!(r#"Bearer realm="argus"{params}"#),
            TokenScheme::Dpop => dpop_challenge(&params),
        }]
    }

    /// The RFC 9457 `application/problem+json` answer, challenging in the scheme the token came with.
    pub fn to_response(&self, request_id: &str, scheme: TokenScheme) -> Response {
        let spec = self.spec();
        let mut body = serde_json::json!({
            "type": self.problem_type(),
            "title": spec.title,
            "status": spec.status.as_u16(),
            "detail": spec.detail,
            "request_id": request_id,
        });
        if let Self::InvalidInput { location, name, reason, .. } = self {
            // RFC 9457 §3 example extension: where and why, never the value itself.
            body["invalid_params"] = serde_json::json!([{ "in": location, "name": name, "reason": reason }]);
        }
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = spec.status;
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self {
            Self::MethodNotAllowed { allow } => {
                if let Ok(value) = HeaderValue::from_str(allow) {
                    headers.insert(header::ALLOW, value);
                }
            }
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        for challenge in self.www_authenticate(scheme) {
            if let Ok(value) = HeaderValue::from_str(&challenge) {
                headers.append(header::WWW_AUTHENTICATE, value);
            }
        }
        response
    }
}

/// A `DPoP` challenge with `params` (each starting with `, `) and the accepted algorithms.
fn dpop_challenge(params: &str) -> String {
    format!(r#"DPoP realm="argus"{params}, algs="{}""#, DPOP_ALGORITHMS.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Refusal; 14] = [
        Refusal::NoRoute,
        Refusal::InvalidPath,
        Refusal::InvalidRequest,
        Refusal::MissingToken,
        Refusal::InvalidToken,
        Refusal::RevokedToken,
        Refusal::InsufficientScope { scope: String::new() },
        Refusal::BodyTooLarge,
        Refusal::UpstreamUnavailable,
        Refusal::UpstreamTimeout,
        Refusal::JwksUnavailable,
        Refusal::TokenSchemeMismatch,
        Refusal::InvalidDpopProof,
        Refusal::UseDpopNonce,
    ];

    #[test]
    fn slugs_are_distinct_and_statuses_are_right() {
        let slugs: std::collections::HashSet<_> = ALL.iter().map(Refusal::slug).collect();
        assert_eq!(slugs.len(), ALL.len());
        let status = |r: &Refusal| r.status().as_u16();
        let statuses: Vec<u16> = ALL.iter().map(status).collect();
        assert_eq!(statuses, [404, 400, 400, 401, 401, 401, 403, 413, 502, 504, 503, 401, 401, 401]);
        assert_eq!(Refusal::RevokedToken.problem_type(), "urn:argus:problem:revoked-token");
    }

    fn one(refusal: &Refusal, scheme: TokenScheme) -> String {
        let mut challenges = refusal.www_authenticate(scheme);
        assert_eq!(challenges.len(), 1, "{challenges:?}");
        challenges.remove(0)
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        let bearer = TokenScheme::Bearer;
        let invalid = one(&Refusal::InvalidToken, bearer);
        assert!(invalid.starts_with(r#"Bearer realm="argus", error="invalid_token", error_description=""#));
        assert!(one(&Refusal::RevokedToken, bearer).contains(r#"error="invalid_token""#));
        let scope = one(&Refusal::InsufficientScope { scope: "a:read b".into() }, bearer);
        assert!(scope.contains(r#"error="insufficient_scope""#) && scope.ends_with(r#"scope="a:read b""#));
        assert!(one(&Refusal::InvalidRequest, bearer).contains(r#"error="invalid_request""#));
        for r in [Refusal::NoRoute, Refusal::BodyTooLarge, Refusal::UpstreamTimeout, Refusal::JwksUnavailable] {
            assert!(r.www_authenticate(bearer).is_empty(), "{r:?}");
        }
    }

    #[test]
    fn challenges_follow_rfc_9449() {
        let algs = r#"algs="ES256 ES384 EdDSA RS256 PS256""#;
        // No token at all: both schemes are offered, without an error code.
        assert_eq!(
            Refusal::MissingToken.www_authenticate(TokenScheme::Dpop),
            [r#"Bearer realm="argus""#.to_owned(), format!(r#"DPoP realm="argus", {algs}"#)]
        );
        // A token presented with DPoP is answered in DPoP.
        let invalid = one(&Refusal::InvalidToken, TokenScheme::Dpop);
        assert!(invalid.starts_with(r#"DPoP realm="argus", error="invalid_token""#) && invalid.ends_with(algs));
        let scope = one(&Refusal::InsufficientScope { scope: "a".into() }, TokenScheme::Dpop);
        assert!(scope.starts_with("DPoP ") && scope.contains(r#"scope="a""#), "{scope}");
        // DPoP errors are DPoP challenges even when the token came as Bearer.
        for (refusal, code) in [
            (Refusal::InvalidDpopProof, "invalid_dpop_proof"),
            (Refusal::UseDpopNonce, "use_dpop_nonce"),
            (Refusal::TokenSchemeMismatch, "invalid_token"),
        ] {
            let challenge = one(&refusal, TokenScheme::Bearer);
            assert!(challenge.starts_with(&format!(r#"DPoP realm="argus", error="{code}""#)), "{challenge}");
            assert!(challenge.ends_with(algs), "{challenge}");
        }
    }

    #[tokio::test]
    async fn problem_json_body() {
        let response = Refusal::InsufficientScope { scope: "x".into() }.to_response("req-1", TokenScheme::Bearer);
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/problem+json");
        let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["type"], "urn:argus:problem:insufficient-scope");
        assert_eq!(json["status"], 403);
        assert_eq!(json["request_id"], "req-1");
        assert!(json["title"].is_string() && json["detail"].is_string());
    }
}
