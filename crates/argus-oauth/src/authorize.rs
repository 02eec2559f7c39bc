//! The authorization endpoint's rules (RFC 6749 §4.1.1, RFC 7636, RFC 9700 §2.1): which requests are refused
//! without a redirect, which errors go back to the client, and what the browser sees next.

use argus_model::Timestamp;

use crate::acr::{AuthRequirement, Authentication};
use crate::client::{ClientRegistration, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::resource::Resources;
use crate::scope::Scopes;

/// The longest `state` and `nonce` accepted. Clients use short random values; a longer one only bloats the store.
pub const MAX_STATE_LEN: usize = 512;

/// A validated authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect URI exactly as presented (it must be presented identically at the token endpoint).
    pub redirect_uri: String,
    pub scope: Scopes,
    pub state: Option<String>,
    pub nonce: Option<String>,
    /// The S256 PKCE challenge.
    pub code_challenge: String,
    pub prompt: Prompt,
    /// The thumbprint of the DPoP key the code is to be bound to (`dpop_jkt`, RFC 9449 §10).
    pub dpop_jkt: Option<String>,
    /// What the sign-in must be: `max_age` and `acr_values` (OIDC Core §3.1.2.1, RFC 9470 §4).
    pub auth: AuthRequirement,
    /// The resources the grant is to cover (RFC 8707), checked; empty when the request named none.
    pub resources: Vec<String>,
}

/// Why an authorization request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthorizeRejection {
    /// The client or the redirect URI cannot be trusted: the user sees an error page and the browser is never sent
    /// anywhere (RFC 6749 §4.1.2.1, an open redirector otherwise).
    NoRedirect(&'static str),
    /// The client and redirect URI are known good: the error goes back to the client.
    Redirect { redirect_uri: String, state: Option<String>, error: OAuthError },
}

/// The OIDC `prompt` parameter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Prompt {
    /// No user interaction allowed.
    pub none: bool,
    /// Ask for the password even with a live session.
    pub login: bool,
    /// Ask for consent even when it was given before.
    pub consent: bool,
}

impl From<&crate::store::PendingAuthorization> for AuthorizationRequest {
    /// The request as stored at `/authorize`, where it was validated.
    fn from(p: &crate::store::PendingAuthorization) -> Self {
        Self {
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            scope: Scopes::parse(&p.scope).unwrap_or_default(),
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone(),
            prompt: Prompt::parse(Some(&p.prompt)).unwrap_or_default(),
            dpop_jkt: p.dpop_jkt.clone(),
            auth: AuthRequirement::from_stored(p.max_age, p.acr_values.as_deref()),
            resources: p.resources.clone(),
        }
    }
}

impl From<&crate::store::PushedRequest> for AuthorizationRequest {
    /// The request as pushed to `/par`, where it was validated.
    fn from(p: &crate::store::PushedRequest) -> Self {
        Self {
            client_id: p.client_id.clone(),
            redirect_uri: p.redirect_uri.clone(),
            scope: Scopes::parse(&p.scope).unwrap_or_default(),
            state: p.state.clone(),
            nonce: p.nonce.clone(),
            code_challenge: p.code_challenge.clone(),
            prompt: Prompt::parse(Some(&p.prompt)).unwrap_or_default(),
            dpop_jkt: p.dpop_jkt.clone(),
            auth: AuthRequirement::from_stored(p.max_age, p.acr_values.as_deref()),
            resources: p.resources.clone(),
        }
    }
}

impl Prompt {
    /// Parse a space-separated `prompt` value. `none` with anything else is an error (OIDC Core §3.1.2.1); values
    /// this issuer does not act on (`select_account`) are ignored.
    pub fn parse(value: Option<&str>) -> Result<Self, OAuthError> {
        let mut p = Prompt::default();
        let mut count = 0;
        for v in value.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            count += 1;
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                _ => {}
            }
        }
        if p.none && count > 1 {
            return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
        }
        Ok(p)
    }

    /// The canonical string form, as stored with a pending request.
    pub fn to_param(self) -> String {
        let mut parts = Vec::new();
        if self.none {
            parts.push("none");
        }
        if self.login {
            parts.push("login");
        }
        if self.consent {
            parts.push("consent");
        }
        parts.join(" ")
    }
}

/// Validate an authorization request. `client` is the registration found for the request's `client_id`, if any;
/// `resources` the issuer's protected resources, which `resource` values must name.
pub fn validate_authorize(
    params: &Params,
    client: Option<&ClientRegistration>,
    resources: &Resources,
) -> Result<AuthorizationRequest, AuthorizeRejection> {
    let redirect_uri = trusted_redirect_uri(params, client)?;
    let client = client.ok_or(AuthorizeRejection::NoRedirect("unknown client"))?;

    let state = match params.single("state") {
        Ok(s) if s.is_none_or(|s| s.len() <= MAX_STATE_LEN) => s.map(str::to_owned),
        // A repeated or oversized state is not echoed: which one would the client expect?
        _ => {
            return Err(redirect_error(&redirect_uri, None, OAuthError::invalid_request("invalid state")));
        }
    };
    let fail = |error| AuthorizeRejection::Redirect { redirect_uri: redirect_uri.clone(), state: state.clone(), error };

    let checked = check_parameters(params, client, resources).map_err(fail)?;
    Ok(AuthorizationRequest {
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.clone(),
        scope: checked.scope,
        state: state.clone(),
        nonce: checked.nonce,
        code_challenge: checked.code_challenge,
        prompt: checked.prompt,
        dpop_jkt: checked.dpop_jkt,
        auth: checked.auth,
        resources: checked.resources,
    })
}

/// Steps 1 and 2 of RFC 6749 §4.1.2.1: the client and the redirect URI, before anything may be redirected.
fn trusted_redirect_uri(params: &Params, client: Option<&ClientRegistration>) -> Result<String, AuthorizeRejection> {
    use AuthorizeRejection::NoRedirect;
    let client_id = params
        .single("client_id")
        .map_err(|_| NoRedirect("client_id is repeated"))?
        .ok_or(NoRedirect("client_id is missing"))?;
    // A disabled client is treated as unknown: its users are never sent back to it.
    let client = client.filter(|c| c.client_id == client_id && !c.disabled).ok_or(NoRedirect("unknown client"))?;
    let redirect_uri = params
        .single("redirect_uri")
        .map_err(|_| NoRedirect("redirect_uri is repeated"))?
        .ok_or(NoRedirect("redirect_uri is missing"))?;
    if !client.accepts_redirect_uri(redirect_uri) || url::Url::parse(redirect_uri).is_err() {
        return Err(NoRedirect("redirect_uri is not registered for this client"));
    }
    Ok(redirect_uri.to_owned())
}

struct Checked {
    scope: Scopes,
    nonce: Option<String>,
    code_challenge: String,
    prompt: Prompt,
    dpop_jkt: Option<String>,
    auth: AuthRequirement,
    resources: Vec<String>,
}

/// Everything after the redirect URI is trusted; each failure goes back to the client.
fn check_parameters(
    params: &Params,
    client: &ClientRegistration,
    resources: &Resources,
) -> Result<Checked, OAuthError> {
    // `resource` may name several resources (RFC 8707 §2); nothing else may repeat.
    if params.first_repeated_except(&["resource"]).is_some() {
        return Err(OAuthError::invalid_request("a parameter is repeated"));
    }
    if params.get("request").is_some() {
        return Err(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if params.get("request_uri").is_some() {
        // Only a request_uri from our own PAR endpoint is accepted, and /authorize resolves it before this point.
        return Err(OAuthError::new(ErrorCode::RequestUriNotSupported, "only pushed request_uri values are supported"));
    }
    match params.get("response_type") {
        None => return Err(OAuthError::invalid_request("response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(OAuthError::new(ErrorCode::UnsupportedResponseType, "only response_type=code is supported"));
        }
    }
    if params.get("response_mode").is_some_and(|m| m != "query") {
        return Err(OAuthError::invalid_request("only response_mode=query is supported"));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(OAuthError::unauthorized_client("this client may not use the authorization code flow"));
    }
    let code_challenge = check_pkce(params)?;
    let scope = check_scope(params.get("scope"), client)?;
    let nonce = params.get("nonce").map(str::to_owned);
    if nonce.as_ref().is_some_and(|n| n.len() > MAX_STATE_LEN) {
        return Err(OAuthError::invalid_request("nonce is too long"));
    }
    let prompt = Prompt::parse(params.get("prompt"))?;
    let dpop_jkt = params.get("dpop_jkt").map(str::to_owned);
    if dpop_jkt.as_deref().is_some_and(|j| !is_sha256_b64url(j)) {
        return Err(OAuthError::invalid_request("dpop_jkt must be a SHA-256 JWK thumbprint"));
    }
    let auth = AuthRequirement::parse(params.get("max_age"), params.get("acr_values"))?;
    let resources = resources.requested(&params.all("resource"))?;
    Ok(Checked { scope, nonce, code_challenge, prompt, dpop_jkt, auth, resources })
}

/// The base64url form of a SHA-256 digest (a PKCE S256 challenge, an RFC 7638 thumbprint): exactly 43 characters.
fn is_sha256_b64url(s: &str) -> bool {
    s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// PKCE is mandatory and S256 only; a missing method means `plain`, which is refused (RFC 9700 §2.1.1).
fn check_pkce(params: &Params) -> Result<String, OAuthError> {
    let challenge =
        params.get("code_challenge").ok_or(OAuthError::invalid_request("code_challenge is required (PKCE)"))?;
    if params.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::invalid_request("code_challenge_method must be S256"));
    }
    if !is_sha256_b64url(challenge) {
        return Err(OAuthError::invalid_request("code_challenge is malformed"));
    }
    Ok(challenge.to_owned())
}

fn check_scope(raw: Option<&str>, client: &ClientRegistration) -> Result<Scopes, OAuthError> {
    let scope = raw
        .and_then(Scopes::parse)
        .filter(|s| !s.is_empty())
        .ok_or(OAuthError::invalid_scope("scope is missing or malformed"))?;
    if !scope.is_subset_of(&client.allowed()) {
        return Err(OAuthError::invalid_scope("a requested scope is not allowed for this client"));
    }
    Ok(scope)
}

fn redirect_error(redirect_uri: &str, state: Option<String>, error: OAuthError) -> AuthorizeRejection {
    AuthorizeRejection::Redirect { redirect_uri: redirect_uri.to_owned(), state, error }
}

/// The redirect URI with `pairs` added to its query (keeping any query it already has). `None` if the URI does
/// not parse, which a validated request rules out.
pub fn authorization_response_url(redirect_uri: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let mut url = url::Url::parse(redirect_uri).ok()?;
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Some(url.into())
}

/// What the browser sees next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NextStep {
    /// The login form.
    Login,
    /// The consent page.
    Consent,
    /// A code, straight back to the client.
    IssueCode,
    /// An error back to the client (`login_required`, `consent_required`).
    Fail(OAuthError),
}

/// At `/authorize`: given the sign-in of the browser's live session (if it has one), what the request asks of the
/// sign-in, and whether the user already granted the requested scopes to the client. A session whose sign-in is
/// too old or too weak for the request counts as none: the user signs in again (the login form, or
/// `login_required` under `prompt=none`).
pub fn next_step_at_authorize(
    prompt: Prompt,
    session: Option<Authentication<'_>>,
    auth: &AuthRequirement,
    consent_covers: bool,
    now: Timestamp,
) -> NextStep {
    let has_session = session.is_some_and(|s| auth.is_met_by(s, now));
    if prompt.none {
        return match (has_session, consent_covers) {
            (false, _) => NextStep::Fail(OAuthError::new(ErrorCode::LoginRequired, "the user must sign in")),
            (true, false) => NextStep::Fail(OAuthError::new(ErrorCode::ConsentRequired, "the user must consent")),
            (true, true) => NextStep::IssueCode,
        };
    }
    if prompt.login || !has_session {
        return NextStep::Login;
    }
    next_step_after_login(prompt, consent_covers)
}

/// After a successful login.
pub fn next_step_after_login(prompt: Prompt, consent_covers: bool) -> NextStep {
    if prompt.consent || !consent_covers { NextStep::Consent } else { NextStep::IssueCode }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client() -> ClientRegistration {
        ClientRegistration {
            client_id: "demo-app".into(),
            name: "Demo".into(),
            redirect_uris: vec!["http://127.0.0.1/callback".into()],
            allowed_scopes: vec!["openid".into(), "profile".into(), "accounts:read".into()],
            ..ClientRegistration::default()
        }
    }

    fn base() -> String {
        format!(
            "response_type=code&client_id=demo-app&redirect_uri=http%3A%2F%2F127.0.0.1%3A4000%2Fcallback\
             &scope=openid%20accounts%3Aread&state=st&nonce=n1&code_challenge={CHALLENGE}&code_challenge_method=S256"
        )
    }

    const API: &str = "http://127.0.0.1:7480";
    const REPORTS: &str = "https://reports.example/api";

    fn resources() -> Resources {
        Resources::new(API, "http://127.0.0.1:7400", &[REPORTS.to_owned()]).unwrap()
    }

    fn run(q: &str) -> Result<AuthorizationRequest, AuthorizeRejection> {
        validate_authorize(&Params::parse(q.as_bytes()), Some(&client()), &resources())
    }

    fn redirected_code(q: &str) -> (ErrorCode, Option<String>) {
        match run(q) {
            Err(AuthorizeRejection::Redirect { error, state, redirect_uri }) => {
                assert_eq!(redirect_uri, "http://127.0.0.1:4000/callback");
                (error.code, state)
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn valid_request() {
        let r = run(&base()).unwrap();
        assert_eq!(r.client_id, "demo-app");
        assert_eq!(r.redirect_uri, "http://127.0.0.1:4000/callback");
        assert_eq!(r.scope.to_string(), "openid accounts:read");
        assert_eq!(r.state.as_deref(), Some("st"));
        assert_eq!(r.nonce.as_deref(), Some("n1"));
        assert_eq!(r.code_challenge, CHALLENGE);
        assert_eq!(r.prompt, Prompt::default());
        assert_eq!(r.dpop_jkt, None);
        let bound = run(&format!("{}&dpop_jkt={CHALLENGE}", base())).unwrap();
        assert_eq!(bound.dpop_jkt.as_deref(), Some(CHALLENGE));
    }

    #[test]
    fn untrusted_client_or_redirect_never_redirects() {
        let bad_client = base().replace("client_id=demo-app", "client_id=other");
        assert!(matches!(run(&bad_client), Err(AuthorizeRejection::NoRedirect(_))));
        let no_client = base().replace("client_id=demo-app&", "");
        assert!(matches!(run(&no_client), Err(AuthorizeRejection::NoRedirect(_))));
        let two_clients = format!("{}&client_id=demo-app", base());
        assert!(matches!(run(&two_clients), Err(AuthorizeRejection::NoRedirect(_))));
        let bad_redirect = base().replace("callback", "callbacK");
        assert!(matches!(run(&bad_redirect), Err(AuthorizeRejection::NoRedirect(_))));
        let no_redirect = base().replace("redirect_uri=", "redirect_urx=");
        assert!(matches!(run(&no_redirect), Err(AuthorizeRejection::NoRedirect(_))));
        assert!(matches!(
            validate_authorize(&Params::parse(base().as_bytes()), None, &resources()),
            Err(AuthorizeRejection::NoRedirect(_))
        ));
        let disabled = ClientRegistration { disabled: true, ..client() };
        assert!(matches!(
            validate_authorize(&Params::parse(base().as_bytes()), Some(&disabled), &resources()),
            Err(AuthorizeRejection::NoRedirect(_))
        ));
    }

    #[test]
    fn errors_after_the_redirect_uri_go_back_with_state() {
        let st = Some("st".to_owned());
        assert_eq!(
            redirected_code(&base().replace("response_type=code", "response_type=token")),
            (ErrorCode::UnsupportedResponseType, st.clone())
        );
        assert_eq!(
            redirected_code(&base().replace("response_type=code&", "")),
            (ErrorCode::InvalidRequest, st.clone())
        );
        assert_eq!(
            redirected_code(&base().replace("&code_challenge_method=S256", "")),
            (ErrorCode::InvalidRequest, st.clone())
        );
        assert_eq!(
            redirected_code(&base().replace("method=S256", "method=plain")),
            (ErrorCode::InvalidRequest, st.clone())
        );
        assert_eq!(redirected_code(&base().replace(CHALLENGE, "short")), (ErrorCode::InvalidRequest, st.clone()));
        let no_challenge = base().replace(&format!("&code_challenge={CHALLENGE}"), "");
        assert_eq!(redirected_code(&no_challenge), (ErrorCode::InvalidRequest, st.clone()));
        assert_eq!(redirected_code(&format!("{}&nonce=n2", base())), (ErrorCode::InvalidRequest, st.clone()));
        assert_eq!(
            redirected_code(&base().replace("accounts%3Aread", "transfers%3Awrite")),
            (ErrorCode::InvalidScope, st.clone())
        );
        assert_eq!(redirected_code(&base().replace("scope=", "scopx=")), (ErrorCode::InvalidScope, st.clone()));
        assert_eq!(
            redirected_code(&format!("{}&prompt=none%20login", base())),
            (ErrorCode::InvalidRequest, st.clone())
        );
        assert_eq!(redirected_code(&format!("{}&request=eyJ", base())), (ErrorCode::RequestNotSupported, st.clone()));
        assert_eq!(redirected_code(&format!("{}&dpop_jkt=short", base())), (ErrorCode::InvalidRequest, st.clone()));
        let service =
            ClientRegistration { grant_types: vec![crate::GrantType::ClientCredentials], public: false, ..client() };
        match validate_authorize(&Params::parse(base().as_bytes()), Some(&service), &resources()) {
            Err(AuthorizeRejection::Redirect { error, .. }) => assert_eq!(error.code, ErrorCode::UnauthorizedClient),
            other => panic!("expected unauthorized_client, got {other:?}"),
        }
        // A repeated state is not echoed.
        assert_eq!(redirected_code(&format!("{}&state=other", base())), (ErrorCode::InvalidRequest, None));
    }

    #[test]
    fn response_url_keeps_existing_query() {
        let u = authorization_response_url("https://a.example/cb?x=1", &[("code", "c d"), ("state", "s")]).unwrap();
        assert_eq!(u, "https://a.example/cb?x=1&code=c+d&state=s");
    }

    /// The next step at `/authorize` with no session, or a fresh password session, and no requirement.
    fn step(prompt: Prompt, has_session: bool, consent_covers: bool) -> NextStep {
        let session = has_session.then_some(Authentication { auth_time: NOW, acr: crate::ACR_PASSWORD });
        next_step_at_authorize(prompt, session, &AuthRequirement::default(), consent_covers, NOW)
    }

    const NOW: Timestamp = Timestamp::from_secs(1_700_000_000);

    #[test]
    fn next_steps() {
        let p = Prompt::default();
        assert_eq!(step(p, false, true), NextStep::Login);
        assert_eq!(step(p, true, false), NextStep::Consent);
        assert_eq!(step(p, true, true), NextStep::IssueCode);
        let login = Prompt { login: true, ..p };
        assert_eq!(step(login, true, true), NextStep::Login);
        let consent = Prompt { consent: true, ..p };
        assert_eq!(step(consent, true, true), NextStep::Consent);
        assert_eq!(next_step_after_login(consent, true), NextStep::Consent);
        assert_eq!(next_step_after_login(p, true), NextStep::IssueCode);
        let none = Prompt { none: true, ..p };
        assert!(matches!(step(none, false, true), NextStep::Fail(e) if e.code == ErrorCode::LoginRequired));
        assert!(matches!(step(none, true, false), NextStep::Fail(e) if e.code == ErrorCode::ConsentRequired));
        assert_eq!(step(none, true, true), NextStep::IssueCode);
        assert_eq!(Prompt::parse(Some("login consent select_account")).unwrap().to_param(), "login consent");
    }

    #[test]
    fn a_session_too_old_or_too_weak_for_the_request_means_signing_in_again() {
        let p = Prompt::default();
        let ten_minutes_ago = Authentication { auth_time: NOW.minus(std::time::Duration::from_secs(600)), acr: "x" };
        let at =
            |prompt, auth: &AuthRequirement| next_step_at_authorize(prompt, Some(ten_minutes_ago), auth, true, NOW);
        let max_age = |s: &str| AuthRequirement::parse(Some(s), None).unwrap();
        assert_eq!(at(p, &max_age("600")), NextStep::IssueCode);
        assert_eq!(at(p, &max_age("599")), NextStep::Login);
        assert_eq!(at(p, &max_age("0")), NextStep::Login);
        let none = Prompt { none: true, ..p };
        assert!(matches!(at(none, &max_age("599")), NextStep::Fail(e) if e.code == ErrorCode::LoginRequired));
        assert_eq!(at(none, &max_age("600")), NextStep::IssueCode);
        // The session's level ("x") is not one this issuer knows: a request for the password level needs a sign-in.
        let pwd = AuthRequirement::parse(None, Some(crate::ACR_PASSWORD)).unwrap();
        assert_eq!(at(p, &pwd), NextStep::Login);
        assert!(matches!(at(none, &pwd), NextStep::Fail(e) if e.code == ErrorCode::LoginRequired));
        let strong = Authentication { acr: crate::ACR_PASSWORD, ..ten_minutes_ago };
        assert_eq!(next_step_at_authorize(p, Some(strong), &pwd, true, NOW), NextStep::IssueCode);
    }

    #[test]
    fn resources_may_repeat_and_must_be_known() {
        assert!(run(&base()).unwrap().resources.is_empty());
        let enc = |r: &str| url::form_urlencoded::byte_serialize(r.as_bytes()).collect::<String>();
        let two = format!("{}&resource={}&resource={}", base(), enc(REPORTS), enc(API));
        assert_eq!(run(&two).unwrap().resources, [REPORTS, API]);
        let st = Some("st".to_owned());
        for bad in ["https://evil.example/", "https://reports.example/api#x", "reports"] {
            let q = format!("{}&resource={}", base(), enc(bad));
            assert_eq!(redirected_code(&q), (ErrorCode::InvalidTarget, st.clone()), "{bad}");
        }
        // Only `resource` may repeat.
        assert_eq!(
            redirected_code(&format!("{two}&scope=openid")),
            (ErrorCode::InvalidRequest, st.clone()),
            "another parameter repeated"
        );
    }

    #[test]
    fn max_age_and_acr_values_are_read_and_checked() {
        let r = run(&format!("{}&max_age=300&acr_values=urn%3Aargus%3Aacr%3Apwd%20urn%3Ax", base())).unwrap();
        assert_eq!(r.auth.max_age, Some(300));
        assert_eq!(r.auth.acr_values, ["urn:argus:acr:pwd", "urn:x"]);
        assert_eq!(run(&base()).unwrap().auth, AuthRequirement::default());
        let st = Some("st".to_owned());
        assert_eq!(redirected_code(&format!("{}&max_age=-5", base())), (ErrorCode::InvalidRequest, st.clone()));
        assert_eq!(redirected_code(&format!("{}&acr_values=a%22b", base())), (ErrorCode::InvalidRequest, st));
    }
}
