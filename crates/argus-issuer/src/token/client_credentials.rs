//! The client_credentials grant (RFC 6749 §4.4): a confidential client acting for itself. The token's `sub` is the
//! client; there is no user, so no refresh token and no id_token. Its `aud` is the resource the request names (any
//! of the issuer's, RFC 8707), else the API audience.

use argus_oauth::{GrantType, OAuthError, TokenSubject, client_credentials_scope};

use super::{Fail, GrantRequest, TokenResponse};

pub(super) async fn client_credentials_grant(g: &GrantRequest<'_>) -> Result<TokenResponse, Fail> {
    let client = g.client;
    // Registration refuses public clients with this grant; a public client must never get here all the same.
    if client.public {
        return Err(OAuthError::unauthorized_client("client_credentials is only for confidential clients").into());
    }
    let scope = client_credentials_scope(&client.allowed(), g.params.get("scope"))?;
    let audience = g.s.resources.client_audience(&g.resources())?;
    let now = g.s.now();
    let who = TokenSubject {
        sub: &client.client_id,
        client_id: &client.client_id,
        scope: &scope,
        sid: None,
        auth_time: None,
        acr: None,
        family: None,
        device: None,
    };
    let (access_token, access) = g.mint_access(who, &audience, now)?;
    g.emit_issued(g.principal(), GrantType::ClientCredentials, &scope, None, &access);
    Ok(g.response(access_token, None, None, &scope))
}
