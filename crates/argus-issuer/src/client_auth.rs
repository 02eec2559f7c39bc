//! Client authentication as the token, PAR, introspection and revocation endpoints share it: read the credentials,
//! find the client, check them (`argus_oauth`), and refuse a replayed client assertion.

use std::sync::Arc;
use std::time::Duration;

use argus_oauth::{AssertionCheck, ClientRegistration, OAuthError, Params, authenticate_client, read_credentials};
use axum::http::{HeaderMap, header};

use crate::state::Issuer;
use crate::token::Fail;

/// The client a request authenticates as, at the endpoint `path` (e.g. `/token`). Every refusal is `invalid_client`
/// (401), except more than one method at once (`invalid_request`).
pub(crate) async fn authenticated_client(
    s: &Issuer,
    headers: &HeaderMap,
    params: &Params,
    path: &str,
) -> Result<Arc<ClientRegistration>, Fail> {
    let authorization = authorization_header(headers)?;
    let credentials = read_credentials(authorization, params)?;
    // An unknown client gets the same answer as a wrong secret: client ids are not secret, but there is no reason
    // to confirm which exist.
    let client = s.client(credentials.client_id()).await?.ok_or(FAILED)?;
    let token_endpoint = s.endpoint("/token");
    let this_endpoint = s.endpoint(path);
    let audiences = [s.issuer_url.as_str(), token_endpoint.as_str(), this_endpoint.as_str()];
    let now = s.now();
    let check = AssertionCheck {
        audiences: &audiences,
        now,
        max_lifetime: Duration::from_secs(s.config.client_assertion_max_lifetime_secs),
    };
    if let Some(assertion) = authenticate_client(&client, &credentials, &check)? {
        // RFC 7523 §3 item 7: an assertion is good for one request. Keyed by client, so clients cannot collide.
        let key = format!("client-assertion:{}:{}", client.client_id, assertion.jti);
        if !s.replay.first_use(&key, assertion.expires_at, now).await {
            return Err(OAuthError::invalid_client("the client assertion was used before").into());
        }
    }
    Ok(client)
}

const FAILED: OAuthError = OAuthError::invalid_client("client authentication failed");

/// The one `Authorization` header, if any. Two of them, or one that is not text, cannot be credentials.
fn authorization_header(headers: &HeaderMap) -> Result<Option<&str>, OAuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request("use exactly one client authentication method"));
    }
    first.to_str().map(Some).map_err(|_| FAILED)
}
