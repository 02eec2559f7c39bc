//! The browser part of the code flow after `/authorize`: the login form (`POST /login`), the consent page
//! (`POST /consent`), and the helpers all three share: sessions, pending requests bound to the browser, and the
//! redirect back to the client.

use std::time::Duration;

use argus_model::id::{new_id, random_secret};
use argus_model::{AccountActivity, Activity, EventKind, Login, LoginFailure, LoginOutcome, Principal};
use argus_oauth::notice::NoticeBody;
use argus_oauth::{
    AuthLevel, Authentication, AuthorizationCode, AuthorizationRequest, ClientRegistration, ConsentGrant, NextStep,
    OAuthError, Params, PendingAuthorization, Scopes, SessionRecord, StorageError, ThrottleDecision, ThrottleKeys,
    UserRecord, authorization_response_url, describe_scope, hash_secret, next_step_after_login, throttle_decision,
    throttle_keys,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::cookies;
use crate::events::Caller;
use crate::pages::{self, ConsentPage, LOGIN_FAILED, LoginPage};
use crate::state::{Issuer, Shared};
use argus_model::truncate_utf8 as truncate;

/// Longest user name looked up or recorded; longer input is treated as an unknown user.
const MAX_USERNAME: usize = 256;

/// An authorization request on its way through login and consent, from `/authorize` or from the store.
pub(crate) type FlowRequest = AuthorizationRequest;

/// A live session and its (enabled) user.
pub(crate) struct LiveSession {
    pub session: SessionRecord,
    pub user: UserRecord,
}

impl LiveSession {
    /// The session's sign-in, as step-up requirements see it.
    pub fn auth(&self) -> Authentication<'_> {
        Authentication { auth_time: self.session.auth_time, acr: &self.session.acr }
    }
}

impl Issuer {
    /// The session named by the browser's session cookie, if it is live and its user still exists and is enabled.
    pub async fn current_session(&self, headers: &HeaderMap) -> Result<Option<LiveSession>, StorageError> {
        let Some(cookie) = cookies::read(headers, cookies::SESSION) else {
            return Ok(None);
        };
        let Some(session) = self.store.session_by_cookie(&hash_secret(&cookie), self.now()).await? else {
            return Ok(None);
        };
        let user = self.store.user_by_sub(&session.sub).await?.filter(|u| !u.disabled);
        Ok(user.map(|user| LiveSession { session, user }))
    }

    /// Whether `sub` already granted `client_id` every scope in `scope`.
    pub async fn consent_covers(&self, sub: &str, client_id: &str, scope: &Scopes) -> Result<bool, StorageError> {
        let grant = self.store.consent(sub, client_id).await?;
        Ok(grant.is_some_and(|g| scope.is_subset_of(&Scopes::parse(&g.scope).unwrap_or_default())))
    }

    /// Store a code for this flow and send the browser back to the client with it. The code carries the session's
    /// sign-in: its time, and the `acr` its tokens will state for this request.
    pub async fn issue_code(&self, flow: &FlowRequest, session: &SessionRecord) -> Result<Response, StorageError> {
        let code = random_secret(32);
        let now = self.now();
        self.store
            .insert_code(&AuthorizationCode {
                code_hash: hash_secret(&code),
                client_id: flow.client_id.clone(),
                redirect_uri: flow.redirect_uri.clone(),
                code_challenge: flow.code_challenge.clone(),
                scope: flow.scope.to_string(),
                nonce: flow.nonce.clone(),
                sub: session.sub.clone(),
                sid: session.sid.clone(),
                auth_time: session.auth_time,
                acr: flow.auth.acr_claim(&session.acr),
                expires_at: now.plus(Duration::from_secs(self.config.code_ttl_secs)),
                used_at: None,
                family_id: None,
                access: None,
                dpop_jkt: flow.dpop_jkt.clone(),
                resources: flow.resources.clone(),
            })
            .await?;
        Ok(self.redirect_to_client(&flow.redirect_uri, flow.state.as_deref(), &[("code", &code)]))
    }

    /// An error back to the client's (verified) redirect URI.
    pub fn redirect_error(&self, redirect_uri: &str, state: Option<&str>, error: OAuthError) -> Response {
        let pairs = [("error", error.code.as_str()), ("error_description", error.description)];
        self.redirect_to_client(redirect_uri, state, &pairs)
    }

    /// `303` to the redirect URI with `pairs`, `state` and `iss` (RFC 9207) added.
    fn redirect_to_client(&self, redirect_uri: &str, state: Option<&str>, pairs: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = pairs.to_vec();
        if let Some(state) = state {
            all.push(("state", state));
        }
        all.push(("iss", &self.issuer_url));
        let location = authorization_response_url(redirect_uri, &all).and_then(|u| HeaderValue::from_str(&u).ok());
        match location {
            Some(location) => (
                StatusCode::SEE_OTHER,
                [(header::LOCATION, location), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            )
                .into_response(),
            // Ruled out by validation at /authorize; never redirect to something we cannot write exactly.
            None => pages::error_page(StatusCode::BAD_REQUEST, "The app's redirect address is not valid."),
        }
    }

    /// Start the interactive part: store the request bound to this browser and show the login form or the
    /// consent page.
    pub async fn start_interaction(
        &self,
        headers: &HeaderMap,
        flow: &FlowRequest,
        client: &ClientRegistration,
        step: NextStep,
        live: Option<&LiveSession>,
    ) -> Result<Response, StorageError> {
        let existing = cookies::read(headers, cookies::BROWSER);
        let browser = existing.clone().unwrap_or_else(|| random_secret(32));
        let request = random_secret(32);
        let csrf = random_secret(32);
        let now = self.now();
        let (max_age, acr_values) = flow.auth.to_stored();
        self.store
            .insert_pending(&PendingAuthorization {
                handle_hash: hash_secret(&request),
                browser_hash: hash_secret(&browser),
                csrf_hash: hash_secret(&csrf),
                client_id: flow.client_id.clone(),
                redirect_uri: flow.redirect_uri.clone(),
                scope: flow.scope.to_string(),
                state: flow.state.clone(),
                nonce: flow.nonce.clone(),
                code_challenge: flow.code_challenge.clone(),
                prompt: flow.prompt.to_param(),
                dpop_jkt: flow.dpop_jkt.clone(),
                max_age,
                acr_values,
                resources: flow.resources.clone(),
                created_at: now,
                expires_at: now.plus(Duration::from_secs(self.config.authorization_request_ttl_secs)),
            })
            .await?;
        let mut response = match (step, live) {
            (NextStep::Consent, Some(live)) => consent_page(client, &live.user, &flow.scope, &request, &csrf),
            _ => login_page(client, &request, &csrf, None),
        };
        if existing.is_none() {
            // A browser-session cookie: it only has to outlive one sign-in.
            if let Some(v) = cookies::set(cookies::BROWSER, &browser, None, self.secure_cookies) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        Ok(response)
    }
}

fn login_page(client: &ClientRegistration, request: &str, csrf: &str, error: Option<&str>) -> Response {
    pages::html(StatusCode::OK, &LoginPage { client_name: &client.name, request, csrf, error })
}

fn consent_page(client: &ClientRegistration, user: &UserRecord, scope: &Scopes, request: &str, csrf: &str) -> Response {
    let scopes = scope.iter().map(describe_scope).collect();
    pages::html(
        StatusCode::OK,
        &ConsentPage { client_name: &client.name, username: &user.username, scopes, request, csrf },
    )
}

/// A pending request that this browser started, with the handle and CSRF token the form carried.
pub(crate) struct Bound {
    pub pending: PendingAuthorization,
    pub client: ClientRegistration,
    pub request: String,
    pub csrf: String,
}

pub(crate) const FORM_INVALID: &str = "This sign-in form is no longer valid.";

/// The answer to a sign-in from an address watch has blocked.
pub(crate) const SIGN_IN_BLOCKED: &str =
    "Sign-in from your network is blocked for a while after suspicious activity. Try again later.";

/// Find the pending request a form refers to and check that this browser started it (binding cookie) and that the
/// form came from our page (CSRF token). Any failure is an error page and changes nothing.
pub(crate) async fn bound_pending(s: &Issuer, headers: &HeaderMap, form: &Params) -> Result<Bound, Response> {
    let bad = || pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID);
    if form.first_repeated().is_some() {
        return Err(bad());
    }
    let (Some(request), Some(csrf)) = (form.get("request"), form.get("csrf")) else {
        return Err(bad());
    };
    let pending = match s.store.pending(&hash_secret(request), s.now()).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err(bad()),
        Err(e) => return Err(pages::internal_error_page(&e)),
    };
    let browser = cookies::read(headers, cookies::BROWSER).ok_or_else(bad)?;
    let browser_ok = argus_jose::ct_eq(hash_secret(&browser).as_bytes(), pending.browser_hash.as_bytes());
    let csrf_ok = argus_jose::ct_eq(hash_secret(csrf).as_bytes(), pending.csrf_hash.as_bytes());
    if !(browser_ok && csrf_ok) {
        return Err(bad());
    }
    let client = match s.store.client(&pending.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(bad()),
        Err(e) => return Err(pages::internal_error_page(&e)),
    };
    Ok(Bound { pending, client, request: request.to_owned(), csrf: csrf.to_owned() })
}

/// `POST /login`.
pub(crate) async fn login(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let bound = match bound_pending(&s, &headers, &form).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if caller.ip.as_deref().and_then(|ip| ip.parse().ok()).is_some_and(|ip| s.blocks.address_blocked(ip)) {
        // Watch blocked this address (brute force, stuffing): no password is checked, so no guess is counted or
        // answered. No event either: refusals caused by watch's own blocks must not feed its detectors.
        return pages::error_page(StatusCode::FORBIDDEN, SIGN_IN_BLOCKED);
    }
    let username = form.get("username").unwrap_or("");
    let password = form.get("password").unwrap_or("").to_owned();
    match password_step(&s, &caller, &headers, &bound, username, password).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

/// The password step of `POST /login`, once the form is known to be ours: throttle, check, count, answer.
async fn password_step(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    bound: &Bound,
    username: &str,
    password: String,
) -> Result<Response, StorageError> {
    let attempt = SignInAttempt { caller, client_id: &bound.client.client_id, username };
    // Refused before the user is even looked up: the same answer, as fast, for every user name.
    if let Some(retry_after) = throttled(s, caller, username).await? {
        emit_login(s, &attempt, None, LoginOutcome::Failure(LoginFailure::Throttled)).await?;
        return Ok(throttled_page(&bound.client, &bound.request, &bound.csrf, retry_after));
    }
    let (user, outcome) = check_credentials(s, username, password).await?;
    let outcome = reset_required(s, user.as_ref(), outcome).await?;
    match (user, outcome) {
        // The sign-in is complete (and its success recorded) only after the second factor of a user who has one.
        (Some(user), LoginOutcome::Success) => {
            crate::second_factor::after_password(s, headers, bound, user, &attempt).await
        }
        // One answer for every failure: the same page, the same status, the same form.
        (user, outcome) => {
            emit_login(s, &attempt, user.as_ref().map(|u| u.sub.as_str()), outcome).await?;
            Ok(login_page(&bound.client, &bound.request, &bound.csrf, Some(LOGIN_FAILED)))
        }
    }
}

/// `outcome`, or a failure if the right password was given for a user who reported a sign-in as not theirs since
/// (account/not_me.rs): whoever signed in then knows that password. The user sees the answer of a wrong password.
async fn reset_required(
    s: &Issuer,
    user: Option<&UserRecord>,
    outcome: LoginOutcome,
) -> Result<LoginOutcome, StorageError> {
    Ok(match user {
        Some(user) if outcome == LoginOutcome::Success && s.store.must_change_password(&user.sub).await? => {
            LoginOutcome::Failure(LoginFailure::PasswordResetRequired)
        }
        _ => outcome,
    })
}

/// Who is signing in where: what a sign-in's event and throttle counters are keyed on.
pub(crate) struct SignInAttempt<'a> {
    pub caller: &'a Caller,
    pub client_id: &'a str,
    /// The user name as typed (the user's own, once the password was accepted).
    pub username: &'a str,
}

/// The throttle counters of a sign-in with `username` from the caller's address.
fn attempt_keys(caller: &Caller, username: &str) -> ThrottleKeys {
    throttle_keys(username, caller.ip.as_deref().and_then(|ip| ip.parse().ok()))
}

/// How long sign-ins of `username` from this caller are refused, if they are ([`argus_oauth::throttle_decision`]).
/// Every step that checks a secret (password, second factor) asks first, and checks nothing while refused.
pub(crate) async fn throttled(s: &Issuer, caller: &Caller, username: &str) -> Result<Option<Duration>, StorageError> {
    let keys = attempt_keys(caller, username);
    let now = s.now();
    let states = [s.store.throttle_state(&keys.account, now).await?, s.store.throttle_state(&keys.ip, now).await?];
    Ok(match throttle_decision(now, &states) {
        ThrottleDecision::Allow => None,
        ThrottleDecision::Refuse { retry_after } => Some(retry_after),
    })
}

/// Record how a sign-in step ended: the `Login` event for watch, and the throttle counters. A failure (a wrong
/// password, an unknown user, a wrong second factor) counts against the pair and the address; a complete sign-in
/// forgets the pair's failures (never the address's); a throttled attempt counts nothing, as nothing was checked.
/// Called once per step: by the password step for its failures, and by each second factor (or the password
/// step, for a user without one) when the sign-in is complete.
pub(crate) async fn emit_login(
    s: &Issuer,
    attempt: &SignInAttempt<'_>,
    sub: Option<&str>,
    outcome: LoginOutcome,
) -> Result<(), StorageError> {
    let principal = Principal {
        sub: sub.map(str::to_owned),
        client_id: Some(attempt.client_id.to_owned()),
        ..attempt.caller.principal()
    };
    let login = Login { username: truncate(attempt.username, MAX_USERNAME).to_owned(), outcome };
    s.emit(principal, EventKind::Login(login));
    let keys = attempt_keys(attempt.caller, attempt.username);
    match outcome {
        LoginOutcome::Success => s.store.clear_failures(&keys.account).await,
        LoginOutcome::Failure(LoginFailure::Throttled) => Ok(()),
        LoginOutcome::Failure(_) => {
            let (now, limits) = (s.now(), &s.config.login_throttle);
            let account = s.store.record_failure(&keys.account, now, &limits.account_rule()).await?;
            let ip = s.store.record_failure(&keys.ip, now, &limits.ip_rule()).await?;
            if account.locked_until.is_some() || ip.locked_until.is_some() {
                // The address, never the user name: what people type there is sometimes a password.
                tracing::info!(
                    ip = ?attempt.caller.ip,
                    pair_failures = account.failures,
                    ip_failures = ip.failures,
                    "sign-in failures: further attempts are refused for a while"
                );
            }
            Ok(())
        }
    }
}

/// The answer to a throttled sign-in: 429 with `Retry-After`, and the login form again with a message that says
/// nothing about the user name (an unknown one is throttled alike).
fn throttled_page(client: &ClientRegistration, request: &str, csrf: &str, retry_after: Duration) -> Response {
    let page = LoginPage { client_name: &client.name, request, csrf, error: Some(pages::SIGN_IN_THROTTLED) };
    retry_later(pages::html(StatusCode::OK, &page), retry_after)
}

/// `response` (a form again, with the throttled message) as the answer to a throttled step: 429 and `Retry-After`.
pub(crate) fn retry_later(mut response: Response, retry_after: Duration) -> Response {
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs()));
    response
}

/// Verify a user name and password. argon2 runs on the blocking pool so it does not stall other requests, and an
/// unknown user costs one verification too, so timing does not reveal which user names exist.
async fn check_credentials(
    s: &Issuer,
    username: &str,
    password: String,
) -> Result<(Option<UserRecord>, LoginOutcome), StorageError> {
    let user = if username.is_empty() || username.len() > MAX_USERNAME {
        None
    } else {
        s.store.user_by_username(username).await?
    };
    let stored_hash = user.as_ref().map(|u| u.password_hash.clone());
    let verified = tokio::task::spawn_blocking(move || match stored_hash {
        Some(h) => argus_oauth::verify_password(&password, &h),
        None => argus_oauth::verify_password_against_dummy(&password),
    })
    .await
    .map_err(|e| StorageError(format!("password verification task failed: {e}")))?;
    let outcome = argus_oauth::login_outcome(user.is_some(), verified, user.as_ref().is_some_and(|u| u.disabled));
    Ok((user, outcome))
}

/// After a complete sign-in (the password, and the second factor of a user who has one) at `level`: a session that
/// records it and the caller's address and user agent (the session and device keep them), then consent or straight
/// a code.
pub(crate) async fn signed_in_by(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    bound: &Bound,
    user: UserRecord,
    level: AuthLevel,
) -> Result<Response, StorageError> {
    consent_to_account_page(s, bound, &user).await?;
    let cookie = random_secret(32);
    let session = record_sign_in(s, headers, &user, &cookie, level).await?;
    // The browser's device, so revoking the device reaches this session and what it issues.
    let device = crate::admin::devices::bind_device(s, headers, &session.sid).await?;
    // Where the sign-in came from, and whether the device is new to the user (then an event and a notice).
    crate::admin::devices::record_sign_in_device(s, caller, &user.sub, &session.sid, &device.device_id).await;
    let device_cookie = device.cookie;
    let flow = FlowRequest::from(&bound.pending);
    let covers = s.consent_covers(&user.sub, &flow.client_id, &flow.scope).await?;
    let mut response = match next_step_after_login(flow.prompt, covers) {
        NextStep::IssueCode => {
            if s.store.take_pending(&bound.pending.handle_hash, s.now()).await? {
                s.issue_code(&flow, &session).await?
            } else {
                pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID)
            }
        }
        _ => consent_page(&bound.client, &user, &flow.scope, &bound.request, &bound.csrf),
    };
    if let Some(v) = cookies::set(cookies::SESSION, &cookie, Some(s.config.session_ttl_secs), s.secure_cookies) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    if let Some(v) = device_cookie {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

/// A sign-in to the account page (the issuer's own client) is consent to it: recorded, so the sign-in goes straight
/// back to the page instead of asking.
async fn consent_to_account_page(s: &Issuer, bound: &Bound, user: &UserRecord) -> Result<(), StorageError> {
    use crate::account::shared::{ACCOUNT_CLIENT_ID, ACCOUNT_CLIENT_SCOPE};
    if bound.pending.client_id == ACCOUNT_CLIENT_ID && s.store.consent(&user.sub, ACCOUNT_CLIENT_ID).await?.is_none() {
        let grant = ConsentGrant {
            sub: user.sub.clone(),
            client_id: ACCOUNT_CLIENT_ID.to_owned(),
            scope: ACCOUNT_CLIENT_SCOPE.to_owned(),
            granted_at: s.now(),
        };
        s.store.record_consent(&grant).await?;
    }
    Ok(())
}

/// Record a sign-in of `user` at `level` behind the new session cookie `cookie`. The same user signing in again in
/// the browser of a live session (step-up: `max_age`, `acr_values`, `prompt=login`) renews that session in place —
/// new cookie, `auth_time` and `acr`, the same `sid` — so that revoking the session reaches every token it issued,
/// before the new sign-in and after. Anyone else, or a browser without a live session, gets a new session.
async fn record_sign_in(
    s: &Issuer,
    headers: &HeaderMap,
    user: &UserRecord,
    cookie: &str,
    level: AuthLevel,
) -> Result<SessionRecord, StorageError> {
    let now = s.now();
    let live = s.current_session(headers).await?.filter(|l| l.user.sub == user.sub);
    let session = SessionRecord {
        sid: live.as_ref().map_or_else(new_id, |l| l.session.sid.clone()),
        cookie_hash: hash_secret(cookie),
        sub: user.sub.clone(),
        auth_time: now,
        acr: level.acr().to_owned(),
        expires_at: now.plus(Duration::from_secs(s.config.session_ttl_secs)),
    };
    // The session may have ended since it was read (revoked, expired): then this sign-in starts a new one.
    if live.is_some() && s.store.renew_session(&session, now).await? {
        return Ok(session);
    }
    let session = SessionRecord { sid: new_id(), ..session };
    s.store.insert_session(&session).await?;
    Ok(session)
}

/// `POST /consent`.
pub(crate) async fn consent(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let bound = match bound_pending(&s, &headers, &form).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let live = match s.current_session(&headers).await {
        Ok(Some(l)) => l,
        // The session ended between the two pages: sign in again, same request.
        Ok(None) => return login_page(&bound.client, &bound.request, &bound.csrf, None),
        Err(e) => return pages::internal_error_page(&e),
    };
    let allow = match form.get("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID),
    };
    // The request's max_age may have run out while the consent page was open: sign in again, same request. Levels
    // the user cannot reach are voluntary (see `AuthRequirement::within_reach`), or this would ask forever.
    let best = match crate::second_factor::best_level(&s, &live.user.sub).await {
        Ok(best) => best,
        Err(e) => return pages::internal_error_page(&e),
    };
    if allow && !FlowRequest::from(&bound.pending).auth.within_reach(best).is_met_by(live.auth(), s.now()) {
        return login_page(&bound.client, &bound.request, &bound.csrf, None);
    }
    match decide(&s, &caller, &bound, &live, allow).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn decide(
    s: &Issuer,
    caller: &Caller,
    bound: &Bound,
    live: &LiveSession,
    allow: bool,
) -> Result<Response, StorageError> {
    let now = s.now();
    // Taking the request first makes a double submit produce one code, not two.
    if !s.store.take_pending(&bound.pending.handle_hash, now).await? {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
    }
    let flow = FlowRequest::from(&bound.pending);
    if !allow {
        let denied = OAuthError::new(argus_oauth::ErrorCode::AccessDenied, "the user denied access");
        return Ok(s.redirect_error(&flow.redirect_uri, flow.state.as_deref(), denied));
    }
    let earlier = s.store.consent(&live.user.sub, &flow.client_id).await?;
    let first_grant = earlier.is_none();
    let scope = match earlier {
        Some(g) => Scopes::parse(&g.scope).unwrap_or_default().union(&flow.scope),
        None => flow.scope.clone(),
    };
    s.store
        .record_consent(&ConsentGrant {
            sub: live.user.sub.clone(),
            client_id: flow.client_id.clone(),
            scope: scope.to_string(),
            granted_at: now,
        })
        .await?;
    if first_grant {
        first_grant_activity(s, caller, live, &bound.client, &scope).await;
    }
    s.issue_code(&flow, &live.session).await
}

/// The user granted an app access for the first time: an `Account`/`first_grant` event (and a notice).
async fn first_grant_activity(
    s: &Issuer,
    caller: &Caller,
    live: &LiveSession,
    client: &ClientRegistration,
    scope: &Scopes,
) {
    let principal = Principal {
        sub: Some(live.user.sub.clone()),
        client_id: Some(client.client_id.clone()),
        sid: Some(live.session.sid.clone()),
        ..caller.principal()
    };
    let activity = AccountActivity {
        activity: Activity::FirstGrant,
        device_id: s.store.session_device(&live.session.sid).await.ok().flatten(),
        client_id: Some(client.client_id.clone()),
        detail: Some(scope.to_string()),
    };
    let body = NoticeBody {
        // In the words of the consent page, not scope names.
        summary: format!(
            "You gave {} access to your account: {}",
            client.name,
            scope.iter().map(argus_oauth::describe_scope).collect::<Vec<_>>().join("; ")
        ),
        ip: caller.ip.clone(),
        client_id: Some(client.client_id.clone()),
        ..NoticeBody::default()
    };
    s.account_activity(principal, activity, body).await;
}
