//! `POST /token`: the authorization_code, refresh_token and client_credentials grants (RFC 6749 §4.1.3, §4.4, §6;
//! RFC 7636; RFC 9700 §4.14), with client authentication (RFC 6749 §2.3, RFC 7523), DPoP-bound tokens
//! (RFC 9449 §5) and resource indicators (RFC 8707: the `aud` of each token). The grants themselves are in the
//! submodules.

mod client_credentials;
mod code;
mod refresh;

use argus_jose::{ACCESS_TOKEN_TYP, DpopProof};
use argus_model::id::new_id;
use argus_model::{EventKind, Principal, Timestamp, TokenIssued};
use argus_oauth::{
    ClientRegistration, ErrorCode, GrantType, IssuedAccess, OAuthError, Params, Scopes, StorageError, TokenSubject,
    access_claims,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::client_auth::authenticated_client;
use crate::dpop;
use crate::events::Caller;
use crate::state::{Issuer, Shared};

/// Why a token request failed: a standard error for the client, or an internal failure (logged, never detailed).
pub(crate) enum Fail {
    OAuth(OAuthError),
    Internal(String),
}

impl From<OAuthError> for Fail {
    fn from(e: OAuthError) -> Self {
        Self::OAuth(e)
    }
}

impl From<StorageError> for Fail {
    fn from(e: StorageError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<argus_jose::KeyError> for Fail {
    fn from(e: argus_jose::KeyError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Serialize)]
struct ErrorBody {
    error: &'static str,
    error_description: &'static str,
}

/// An RFC 6749 §5.2 error answer: 401 with `WWW-Authenticate` for `invalid_client`, 400 otherwise, 500 for
/// internal failures.
pub(crate) fn error_response(fail: Fail) -> Response {
    let error = match fail {
        Fail::OAuth(e) => e,
        Fail::Internal(detail) => {
            tracing::error!(error = %detail, "token endpoint failure");
            OAuthError::new(ErrorCode::ServerError, "the server could not complete the request")
        }
    };
    let status = match error.code {
        ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut response = (
        status,
        no_store(),
        axum::Json(ErrorBody { error: error.code.as_str(), error_description: error.description }),
    )
        .into_response();
    if error.code == ErrorCode::InvalidClient {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"argus\""));
    }
    response
}

/// Token answers must not be cached (RFC 6749 §5.1).
pub(crate) fn no_store() -> [(header::HeaderName, HeaderValue); 2] {
    [
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::PRAGMA, HeaderValue::from_static("no-cache")),
    ]
}

/// The successful answer (RFC 6749 §5.1, OIDC Core §3.1.3.3, RFC 9449 §5).
#[derive(Serialize)]
pub(crate) struct TokenResponse {
    access_token: String,
    /// `DPoP` for a token bound to the proof's key, `Bearer` otherwise.
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    scope: String,
}

/// `POST /token`.
pub(crate) async fn token(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = match run(&s, &caller, &headers, &body).await {
        Ok(r) => (StatusCode::OK, no_store(), axum::Json(r)).into_response(),
        Err(f) => error_response(f),
    };
    dpop::add_nonce(&s, &headers, &mut response);
    response
}

/// One token request, its client authenticated and its DPoP proof verified.
pub(crate) struct GrantRequest<'a> {
    pub s: &'a Issuer,
    pub caller: &'a Caller,
    pub client: &'a ClientRegistration,
    pub params: &'a Params,
    pub proof: Option<&'a DpopProof>,
}

impl GrantRequest<'_> {
    /// The thumbprint of the proof's key: what the tokens issued are bound to.
    pub fn jkt(&self) -> Option<&str> {
        self.proof.map(|p| p.jkt.as_str())
    }

    /// The principal of this request's events, before the grant tells whose tokens they are.
    pub fn principal(&self) -> Principal {
        Principal {
            client_id: Some(self.client.client_id.clone()),
            jkt: self.jkt().map(str::to_owned),
            ..self.caller.principal()
        }
    }

    /// The `resource` values of the request (RFC 8707), in order.
    pub fn resources(&self) -> Vec<&str> {
        self.params.all("resource")
    }

    /// Sign an RFC 9068 access token for `who` and `audience`, bound to the proof's key if there is one.
    pub fn mint_access(
        &self,
        who: TokenSubject<'_>,
        audience: &str,
        now: Timestamp,
    ) -> Result<(String, IssuedAccess), Fail> {
        self.mint_access_with_amr(who, None, audience, now)
    }

    /// [`Self::mint_access`], with the `amr` of the sign-in when it is not the level's own (a passkey's).
    pub fn mint_access_with_amr(
        &self,
        who: TokenSubject<'_>,
        amr: Option<Vec<String>>,
        audience: &str,
        now: Timestamp,
    ) -> Result<(String, IssuedAccess), Fail> {
        let jti = new_id();
        let s = self.s;
        let mut claims = access_claims(&s.issuer_url, audience, who, &jti, self.jkt(), now, s.access_ttl(self.client));
        if amr.is_some() {
            claims.amr = amr;
        }
        let token = s.keys.active.sign(ACCESS_TOKEN_TYP, &claims)?;
        Ok((token, IssuedAccess { jti, expires_at: Timestamp::from_secs(claims.exp) }))
    }

    /// The answer for an access token (and what came with it).
    pub fn response(
        &self,
        access_token: String,
        refresh_token: Option<String>,
        id_token: Option<String>,
        scope: &Scopes,
    ) -> TokenResponse {
        TokenResponse {
            access_token,
            token_type: if self.proof.is_some() { "DPoP" } else { "Bearer" },
            expires_in: self.s.access_ttl(self.client).as_secs(),
            refresh_token,
            id_token,
            scope: scope.to_string(),
        }
    }

    /// Tell watch what was issued.
    pub fn emit_issued(
        &self,
        principal: Principal,
        grant: GrantType,
        scope: &Scopes,
        family: Option<&str>,
        access: &IssuedAccess,
    ) {
        let principal = Principal { jti: Some(access.jti.clone()), ..principal };
        self.s.emit(
            principal,
            EventKind::TokenIssued(TokenIssued {
                grant_type: grant.as_str().to_owned(),
                scope: scope.to_string(),
                family: family.map(str::to_owned),
                expires_at: access.expires_at,
            }),
        );
    }
}

async fn run(s: &Issuer, caller: &Caller, headers: &HeaderMap, body: &[u8]) -> Result<TokenResponse, Fail> {
    // A repeated `resource` is answered `invalid_target` by the grant (one resource per token), not refused here.
    let params = read_form_allowing(headers, body, &["resource"])?;
    let proof = dpop::checked_proof(s, headers, "/token")?;
    let client = authenticated_client(s, headers, &params, "/token").await?;
    let grant = match params.get("grant_type") {
        None => return Err(OAuthError::invalid_request("grant_type is required").into()),
        // No implicit, no password grant, nothing else (RFC 9700 §2.1.2, §2.4).
        Some(g) => {
            GrantType::parse(g).ok_or(OAuthError::new(ErrorCode::UnsupportedGrantType, "unsupported grant_type"))?
        }
    };
    if !client.allows_grant(grant) {
        return Err(OAuthError::unauthorized_client("this client may not use this grant type").into());
    }
    if client.dpop_bound_access_tokens && proof.is_none() {
        return Err(OAuthError::invalid_dpop_proof("this client must send a DPoP proof").into());
    }
    dpop::record_proof(s, proof.as_ref()).await?;
    let request = GrantRequest { s, caller, client: &client, params: &params, proof: proof.as_ref() };
    match grant {
        GrantType::AuthorizationCode => code::code_grant(&request).await,
        GrantType::RefreshToken => refresh::refresh_grant(&request).await,
        GrantType::ClientCredentials => client_credentials::client_credentials_grant(&request).await,
    }
}

/// The parameters of a form POST: the right content type and no repeated parameter (RFC 6749 §3.2).
pub(crate) fn read_form(headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    read_form_allowing(headers, body, &[])
}

/// [`read_form`], except that the parameters in `repeatable` may carry several values (RFC 8707 `resource`).
pub(crate) fn read_form_allowing(headers: &HeaderMap, body: &[u8], repeatable: &[&str]) -> Result<Params, OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let params = Params::parse(body);
    if params.first_repeated_except(repeatable).is_some() {
        return Err(OAuthError::invalid_request("a parameter is repeated"));
    }
    Ok(params)
}

/// Refuse a grant whose user no longer exists or is disabled.
pub(crate) async fn check_user_enabled(s: &Issuer, sub: &str) -> Result<(), Fail> {
    if !s.user_enabled(sub).await? {
        return Err(OAuthError::invalid_grant("the grant's user is no longer active").into());
    }
    Ok(())
}
