//! `POST /par`: pushed authorization requests (RFC 9126). The client authenticates as at the token endpoint and
//! pushes the parameters of its authorization request; they are validated now, stored, and named by a one-time
//! `request_uri` the browser then takes to `/authorize`.

use std::time::Duration;

use argus_model::id::random_secret;
use argus_oauth::{AuthorizeRejection, OAuthError, PushedRequest, hash_secret, validate_authorize};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::client_auth::authenticated_client;
use crate::dpop;
use crate::state::{Issuer, Shared};
use crate::token::{Fail, error_response, no_store, read_form_allowing};

/// Every `request_uri` this issuer hands out starts with this (RFC 9126 §2.2); a 256-bit secret follows.
pub(crate) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request waits for the browser, in seconds: long enough for a redirect, short enough that a
/// leaked `request_uri` is soon useless (RFC 9126 §2.2 suggests 5 to 600).
pub(crate) const PUSHED_REQUEST_TTL_SECS: u64 = 60;

#[derive(Serialize)]
struct ParResponse {
    request_uri: String,
    expires_in: u64,
}

/// The secret part of a `request_uri` of ours, if it is one.
pub(crate) fn request_uri_secret(request_uri: &str) -> Option<&str> {
    let secret = request_uri.strip_prefix(REQUEST_URI_PREFIX)?;
    let shaped = secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then_some(secret)
}

/// `POST /par`: 201 with the `request_uri`, or an RFC 6749 §5.2 error (RFC 9126 §2.3). Nothing is stored unless the
/// whole request is valid.
pub(crate) async fn par(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let mut response = match run(&s, &headers, &body).await {
        Ok(r) => (StatusCode::CREATED, no_store(), Json(r)).into_response(),
        Err(f) => error_response(f),
    };
    dpop::add_nonce(&s, &headers, &mut response);
    response
}

async fn run(s: &Issuer, headers: &HeaderMap, body: &[u8]) -> Result<ParResponse, Fail> {
    // `resource` may name several resources (RFC 8707 §2).
    let mut params = read_form_allowing(headers, body, &["resource"])?;
    let proof = dpop::checked_proof(s, headers, "/par")?;
    let client = authenticated_client(s, headers, &params, "/par").await?;
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request("request_uri cannot be pushed").into());
    }
    // The authorization request names its client; a client authenticated by Basic or an assertion may leave it
    // out of the body, and may not name another.
    match params.get("client_id") {
        None => params.push("client_id", &client.client_id),
        Some(id) if id != client.client_id => {
            return Err(OAuthError::invalid_request("client_id is not the authenticated client").into());
        }
        Some(_) => {}
    }
    // A proof at PAR binds the code to its key, as `dpop_jkt` would (RFC 9449 §10.1); both must then agree.
    dpop::record_proof(s, proof.as_ref()).await?;
    if let Some(proof) = &proof {
        match params.get("dpop_jkt") {
            None => params.push("dpop_jkt", &proof.jkt),
            Some(jkt) if jkt != proof.jkt => {
                return Err(OAuthError::invalid_dpop_proof("dpop_jkt is not the key of the DPoP proof").into());
            }
            Some(_) => {}
        }
    }
    let request = validate_authorize(&params, Some(&client), &s.resources).map_err(|r| match r {
        AuthorizeRejection::NoRedirect(why) => OAuthError::invalid_request(why),
        AuthorizeRejection::Redirect { error, .. } => error,
    })?;
    let secret = random_secret(32);
    let now = s.now();
    let (max_age, acr_values) = request.auth.to_stored();
    s.store
        .insert_pushed_request(&PushedRequest {
            request_uri_hash: hash_secret(&secret),
            client_id: client.client_id.clone(),
            redirect_uri: request.redirect_uri,
            scope: request.scope.to_string(),
            state: request.state,
            nonce: request.nonce,
            code_challenge: request.code_challenge,
            prompt: request.prompt.to_param(),
            dpop_jkt: request.dpop_jkt,
            max_age,
            acr_values,
            resources: request.resources,
            created_at: now,
            expires_at: now.plus(Duration::from_secs(PUSHED_REQUEST_TTL_SECS)),
        })
        .await?;
    Ok(ParResponse { request_uri: format!("{REQUEST_URI_PREFIX}{secret}"), expires_in: PUSHED_REQUEST_TTL_SECS })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_request_uris_have_a_secret() {
        let secret = "a".repeat(43);
        assert_eq!(request_uri_secret(&format!("{REQUEST_URI_PREFIX}{secret}")), Some(secret.as_str()));
        for bad in ["", "urn:ietf:params:oauth:request_uri:short", "https://evil.example/request", &secret] {
            assert_eq!(request_uri_secret(bad), None, "{bad}");
        }
        assert_eq!(request_uri_secret(&format!("{REQUEST_URI_PREFIX}{}", "a".repeat(42) + "!")), None);
    }
}
