//! WebAuthn passkeys as a second factor (`webauthn-rs`).
//!
//! Registration, for the signed-in user: `GET /account/passkeys` lists their passkeys (name, created, last used, a
//! remove button); `POST /account/passkeys/register/start` answers the `navigator.credentials.create` options as
//! JSON, and the page's script posts the browser's answer as a form to `POST /account/passkeys/register/finish`.
//! Every POST carries a CSRF token derived from the session cookie.
//!
//! Sign-in, after a correct password (see `second_factor`): `POST /login/passkey/start` answers the
//! `navigator.credentials.get` options for the user the pending request waits for, and the script posts the
//! assertion as a form to `POST /login/passkey/finish`, which completes the sign-in like a TOTP code does — bound to
//! the same pending request, CSRF token and browser cookie, failures counted with the TOTP ones.
//!
//! A ceremony's state (its challenge) stays in the store between start and finish: a few minutes, one use, found by
//! a hash of what it is bound to (the session cookie, or the pending request's handle), so it cannot be finished
//! from another session or for another sign-in. Passkeys are registered with user verification required, and the
//! signature counter is checked on every use (a counter that does not move forward fails: a cloned key).
//!
//! The relying party is the issuer's host (`[issuer] webauthn_rp_id` overrides it, and `webauthn_origins` adds the
//! origins of a proxy in front). WebAuthn does not work on an IP address: an issuer at `http://127.0.0.1` offers no
//! passkeys unless an RP id is configured.

use std::time::Duration;

use argus_model::id::new_id;
use argus_model::{AccountActivity, Activity, EventKind, LoginOutcome, Principal};
use argus_oauth::{
    AuthLevel, CEREMONY_TTL_SECS, CeremonyState, MAX_PASSKEYS_PER_USER, Params, PasskeyRecord, StorageError,
    hash_secret, passkey_name,
};
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use webauthn_rs::prelude::{
    Passkey, PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
    Webauthn, WebauthnBuilder, WebauthnError,
};

use crate::config::IssuerConfig;
use crate::cookies;
use crate::events::Caller;
use crate::flow::{self, Bound, FORM_INVALID, LiveSession, SignInAttempt};
use crate::pages;
use crate::state::{Issuer, Shared};

/// The relying party of `issuer_url` and `config`: `None` when passkeys cannot work (the issuer is at an IP address
/// and no RP id is configured); an error for a configured RP id or origin that cannot work.
pub(crate) fn relying_party(config: &IssuerConfig, issuer_url: &str) -> Result<Option<Webauthn>, String> {
    let origin = Url::parse(issuer_url).map_err(|e| format!("issuer URL: {e}"))?;
    let Some(rp_id) = config.webauthn_rp_id.clone().or_else(|| origin.domain().map(str::to_owned)) else {
        return Ok(None);
    };
    let mut builder = WebauthnBuilder::new(&rp_id, &origin)
        .map_err(|_| format!("issuer.webauthn_rp_id {rp_id:?} is not the issuer URL's host or a parent domain of it"))?
        .rp_name("Argus")
        .timeout(Duration::from_secs(CEREMONY_TTL_SECS - 60));
    let extra: Vec<Url> = config
        .webauthn_origins
        .iter()
        .map(|o| Url::parse(o).map_err(|e| format!("issuer.webauthn_origins: {o:?}: {e}")))
        .collect::<Result<_, _>>()?;
    for o in &extra {
        builder = builder.append_allowed_origin(o);
    }
    builder.build().map(Some).map_err(|e| format!("WebAuthn relying party {rp_id:?}: {e}"))
}

/// The relying party at request time; `relying_party` was checked at start, so an error here is not expected.
fn rp(s: &Issuer) -> Option<Webauthn> {
    relying_party(&s.config, &s.issuer_url).ok().flatten()
}

/// Whether `sub` has a passkey (a second factor for the sign-in and for `best_level`).
pub(crate) async fn has_passkey(s: &Issuer, sub: &str) -> Result<bool, StorageError> {
    s.store.has_passkey(sub).await
}

// ---- ceremony binding ----

fn registration_key(session_cookie: &str) -> String {
    hash_secret(&format!("argus passkey registration\n{session_cookie}"))
}

fn sign_in_key(handle_hash: &str) -> String {
    hash_secret(&format!("argus passkey sign-in\n{handle_hash}"))
}

fn csrf_for(session_cookie: &str) -> String {
    hash_secret(&format!("argus passkey csrf\n{session_cookie}"))
}

/// The WebAuthn user handle of `sub`: stable, and says nothing about the account (a hash of the `sub`).
fn user_handle(sub: &str) -> Uuid {
    let digest = hash_secret(&format!("argus passkey user handle\n{sub}"));
    let mut bytes = [0u8; 16];
    bytes.iter_mut().zip(digest.bytes()).for_each(|(b, d)| *b = d);
    Uuid::from_bytes(bytes)
}

fn credential_id(passkey: &Passkey) -> String {
    // The credential id serialises as base64url text: the one form it is stored and compared in.
    serde_json::to_value(passkey.cred_id()).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

// ---- responses ----

const SIGN_IN_FIRST: &str = "Sign in first, then manage your passkeys.";
const UNAVAILABLE: &str = "Passkeys are not available on this server (it is not served at a domain name).";
const PASSKEY_FAILED: &str = "That passkey was not accepted.";

/// A page that runs `/passkey.js`: the issuer's page headers, with the script and its same-origin requests allowed.
pub(crate) fn html_with_script(status: StatusCode, page: &impl Template) -> Response {
    let mut response = pages::html(status, page);
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; \
             frame-ancestors 'none'",
        ),
    );
    response
}

/// A JSON answer for the page's script (never cached).
fn json(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn json_error(status: StatusCode, message: &str) -> Response {
    json(status, &serde_json::json!({ "error": message }))
}

/// `GET /passkey.js`: the script of the passkey pages.
pub(crate) async fn script() -> Response {
    let mut response = (StatusCode::OK, include_str!("../static/passkey.js")).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

// ---- the account page ----

/// One passkey as the page lists it.
pub(crate) struct PasskeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
}

/// The passkeys page. Contract (the browser test reads it): each passkey in `<li class="passkey">` with its name in
/// `<span class="passkey-name">`, a remove form `<form method="post" action="/account/passkeys/remove">` with hidden
/// `csrf` and `id`; the add button `#passkey-add` with a text input `#passkey-name`; messages in `#passkey-status`.
#[derive(Template)]
#[template(path = "passkeys.html")]
pub(crate) struct PasskeysPage<'a> {
    pub username: &'a str,
    pub passkeys: Vec<PasskeyRow>,
    pub csrf: &'a str,
    pub available: bool,
    pub error: Option<&'a str>,
}

/// The live session of this browser and its cookie (the CSRF token and the registration binding derive from it).
async fn signed_in(s: &Issuer, headers: &HeaderMap) -> Result<Option<(LiveSession, String)>, StorageError> {
    let Some(cookie) = cookies::read(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(s.current_session(headers).await?.map(|live| (live, cookie)))
}

fn csrf_ok(form: &Params, cookie: &str) -> bool {
    form.first_repeated().is_none()
        && form.get("csrf").is_some_and(|c| argus_jose::ct_eq(c.as_bytes(), csrf_for(cookie).as_bytes()))
}

fn date(t: argus_model::Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.as_secs())
        .ok()
        .and_then(|d| d.format(&time::format_description::well_known::Rfc3339).ok())
        .map(|d| d.replace('T', " ").trim_end_matches('Z').to_owned() + " UTC")
        .unwrap_or_default()
}

async fn account_page(
    s: &Issuer,
    live: &LiveSession,
    cookie: &str,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, StorageError> {
    let passkeys = s
        .store
        .passkeys(&live.user.sub)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: date(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".to_owned(), date),
        })
        .collect();
    let csrf = csrf_for(cookie);
    let page = PasskeysPage { username: &live.user.username, passkeys, csrf: &csrf, available: rp(s).is_some(), error };
    Ok(html_with_script(status, &page))
}

/// `GET /account/passkeys`.
pub(crate) async fn passkeys_page(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let run = async {
        let Some((live, cookie)) = signed_in(&s, &headers).await? else {
            return Ok(pages::error_page(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
        };
        account_page(&s, &live, &cookie, StatusCode::OK, None).await
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `POST /account/passkeys/register/start` (form: `csrf`): the creation options as JSON.
pub(crate) async fn register_start(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let run = async {
        let Some((live, cookie)) = signed_in(&s, &headers).await? else {
            return Ok(json_error(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
        };
        if !csrf_ok(&form, &cookie) {
            return Ok(json_error(StatusCode::BAD_REQUEST, FORM_INVALID));
        }
        let Some(webauthn) = rp(&s) else {
            return Ok(json_error(StatusCode::NOT_FOUND, UNAVAILABLE));
        };
        let existing = s.store.passkeys(&live.user.sub).await?;
        if existing.len() >= MAX_PASSKEYS_PER_USER {
            return Ok(json_error(
                StatusCode::CONFLICT,
                "You have as many passkeys as you can have. Remove one first.",
            ));
        }
        let exclude = existing
            .iter()
            .filter_map(|p| serde_json::from_str::<Passkey>(&p.passkey_json).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let user = &live.user;
        let Ok((options, state)) =
            webauthn.start_passkey_registration(user_handle(&user.sub), &user.username, &user.username, Some(exclude))
        else {
            return Ok(json_error(StatusCode::BAD_REQUEST, FORM_INVALID));
        };
        put_state(&s, registration_key(&cookie), &user.sub, &state, None).await?;
        Ok(json(StatusCode::OK, &options))
    };
    run.await.unwrap_or_else(|e: StorageError| internal_json(&e))
}

fn internal_json(e: &StorageError) -> Response {
    tracing::error!(error = %e, "issuer storage failure");
    json_error(StatusCode::INTERNAL_SERVER_ERROR, "The service is not available right now.")
}

async fn put_state(
    s: &Issuer,
    key_hash: String,
    sub: &str,
    state: &impl serde::Serialize,
    not_after: Option<argus_model::Timestamp>,
) -> Result<(), StorageError> {
    let now = s.now();
    let mut expires_at = now.plus(Duration::from_secs(CEREMONY_TTL_SECS));
    if let Some(limit) = not_after {
        expires_at = expires_at.min(limit);
    }
    let state_json = serde_json::to_string(state).map_err(|e| StorageError(format!("ceremony state: {e}")))?;
    s.store.put_ceremony(&CeremonyState { key_hash, sub: sub.to_owned(), state_json, expires_at }, now).await
}

/// `POST /account/passkeys/register/finish` (form: `csrf`, `name`, `credential`: the browser's answer as JSON).
pub(crate) async fn register_finish(
    State(s): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let run = async {
        let Some((live, cookie)) = signed_in(&s, &headers).await? else {
            return Ok(pages::error_page(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
        };
        if !csrf_ok(&form, &cookie) {
            return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
        }
        let refused = |msg| account_page(&s, &live, &cookie, StatusCode::BAD_REQUEST, Some(msg));
        let Some(name) = passkey_name(form.get("name").unwrap_or(""), "Passkey") else {
            return refused("A passkey name has at most 64 characters, and no control characters.").await;
        };
        // Taken before anything is checked: a state serves one answer, right or wrong.
        let state = s.store.take_ceremony(&registration_key(&cookie), s.now()).await?;
        let state = state.filter(|st| st.sub == live.user.sub);
        let state = state.and_then(|st| serde_json::from_str::<PasskeyRegistration>(&st.state_json).ok());
        let credential =
            form.get("credential").and_then(|c| serde_json::from_str::<RegisterPublicKeyCredential>(c).ok());
        let (Some(webauthn), Some(state), Some(credential)) = (rp(&s), state, credential) else {
            return refused(PASSKEY_FAILED).await;
        };
        let passkey = match webauthn.finish_passkey_registration(&credential, &state) {
            Ok(p) => p,
            Err(e) => {
                tracing::info!(sub = %live.user.sub, error = %e, "passkey registration refused");
                return refused(PASSKEY_FAILED).await;
            }
        };
        let passkey_json = serde_json::to_string(&passkey).map_err(|e| StorageError(format!("passkey: {e}")))?;
        let record = PasskeyRecord {
            id: new_id(),
            sub: live.user.sub.clone(),
            credential_id: credential_id(&passkey),
            passkey_json,
            name,
            created_at: s.now(),
            last_used_at: None,
        };
        if !s.store.add_passkey(&record).await? {
            return refused("This passkey is registered already.").await;
        }
        // "This wasn't me" for this device removes the passkey again (account/not_me.rs).
        if let Some(device) = s.store.session_device(&live.session.sid).await? {
            s.store.set_passkey_device(&record.sub, &record.id, &device).await?;
        }
        tracing::info!(sub = %live.user.sub, passkey = %record.id, "passkey registered");
        emit_factor(&s, &caller, &live, Activity::FactorAdded);
        Ok(Redirect::to("/account/passkeys").into_response())
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

/// `POST /account/passkeys/remove` (form: `csrf`, `id`).
pub(crate) async fn remove(State(s): State<Shared>, caller: Caller, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let run = async {
        let Some((live, cookie)) = signed_in(&s, &headers).await? else {
            return Ok(pages::error_page(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
        };
        if !csrf_ok(&form, &cookie) {
            return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
        }
        if !s.store.remove_passkey(&live.user.sub, form.get("id").unwrap_or("")).await? {
            return account_page(&s, &live, &cookie, StatusCode::NOT_FOUND, Some("There is no such passkey.")).await;
        }
        tracing::info!(sub = %live.user.sub, "passkey removed");
        emit_factor(&s, &caller, &live, Activity::FactorRemoved);
        Ok(Redirect::to("/account/passkeys").into_response())
    };
    run.await.unwrap_or_else(|e: StorageError| pages::internal_error_page(&e))
}

fn emit_factor(s: &Issuer, caller: &Caller, live: &LiveSession, activity: Activity) {
    let principal =
        Principal { sub: Some(live.user.sub.clone()), sid: Some(live.session.sid.clone()), ..caller.principal() };
    let detail = Some("passkey".to_owned());
    s.emit(principal, EventKind::Account(AccountActivity { activity, device_id: None, client_id: None, detail }));
}

// ---- sign-in ----

/// The user the bound request waits for a second factor of, with their passkeys; `None` if it waits for none.
async fn waiting_user(
    s: &Issuer,
    bound: &Bound,
) -> Result<Option<(argus_oauth::UserRecord, Vec<PasskeyRecord>)>, StorageError> {
    let Some(sub) = s.store.second_factor_wait(&bound.pending.handle_hash, s.now()).await? else {
        return Ok(None);
    };
    let Some(user) = s.store.user_by_sub(&sub).await?.filter(|u| !u.disabled) else {
        return Ok(None);
    };
    let passkeys = s.store.passkeys(&sub).await?;
    Ok((!passkeys.is_empty()).then_some((user, passkeys)))
}

/// `POST /login/passkey/start` (form: `request`, `csrf`): the request options for the waiting user's passkeys.
pub(crate) async fn sign_in_start(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::parse(&body);
    let bound = match flow::bound_pending(&s, &headers, &form).await {
        Ok(b) => b,
        Err(_) => return json_error(StatusCode::BAD_REQUEST, FORM_INVALID),
    };
    let run = async {
        let Some(webauthn) = rp(&s) else {
            return Ok(json_error(StatusCode::NOT_FOUND, UNAVAILABLE));
        };
        let Some((user, records)) = waiting_user(&s, &bound).await? else {
            return Ok(json_error(StatusCode::BAD_REQUEST, FORM_INVALID));
        };
        let passkeys: Vec<Passkey> =
            records.iter().filter_map(|p| serde_json::from_str(&p.passkey_json).ok()).collect();
        let Ok((options, state)) = webauthn.start_passkey_authentication(&passkeys) else {
            return Ok(json_error(StatusCode::BAD_REQUEST, FORM_INVALID));
        };
        let key = sign_in_key(&bound.pending.handle_hash);
        put_state(&s, key, &user.sub, &state, Some(bound.pending.expires_at)).await?;
        Ok(json(StatusCode::OK, &options))
    };
    run.await.unwrap_or_else(|e: StorageError| internal_json(&e))
}

/// `POST /login/passkey/finish` (form: `request`, `csrf`, `credential`: the assertion as JSON).
pub(crate) async fn sign_in_finish(
    State(s): State<Shared>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Params::parse(&body);
    let bound = match flow::bound_pending(&s, &headers, &form).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match finish(&s, &caller, &headers, &bound, form.get("credential").unwrap_or("")).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn finish(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    bound: &Bound,
    credential: &str,
) -> Result<Response, StorageError> {
    let handle = &bound.pending.handle_hash;
    let Some((user, records)) = waiting_user(s, bound).await? else {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
    };
    let attempt = SignInAttempt { caller, client_id: &bound.client.client_id, username: &user.username };
    if let Some(page) = crate::second_factor::throttled(s, &attempt, bound, &user.sub).await? {
        return Ok(page);
    }
    // The state is taken whatever happens next: one assertion per challenge.
    let state = s.store.take_ceremony(&sign_in_key(handle), s.now()).await?.filter(|st| st.sub == user.sub);
    if let Some(v) = verify(s, state, &records, credential) {
        // Conditional on the stored passkey being the one checked against: a second assertion with the same
        // counter, racing this one, fails.
        let now = s.now();
        if s.store.record_passkey_use(&user.sub, &v.credential_id, &v.checked_json, &v.updated_json, now).await? {
            s.store.end_second_factor_wait(handle).await?;
            flow::emit_login(s, &attempt, Some(&user.sub), LoginOutcome::Success).await?;
            return complete(s, caller, headers, bound, user).await;
        }
    }
    crate::second_factor::refused(s, &attempt, bound, &user.sub, PASSKEY_FAILED).await
}

/// A passkey an assertion was verified with.
struct VerifiedUse {
    credential_id: String,
    /// The stored passkey JSON it was checked against.
    checked_json: String,
    /// The passkey after this use (new counter, backup state).
    updated_json: String,
}

/// Check the assertion against the ceremony state and the user's passkeys.
fn verify(
    s: &Issuer,
    state: Option<CeremonyState>,
    records: &[PasskeyRecord],
    credential: &str,
) -> Option<VerifiedUse> {
    let webauthn = rp(s)?;
    let state: PasskeyAuthentication = serde_json::from_str(&state?.state_json).ok()?;
    let credential: PublicKeyCredential = serde_json::from_str(credential).ok()?;
    // webauthn-rs checks the challenge, origin, RP id hash, user verification, that the credential is one of those
    // the challenge allowed, the signature, and that a non-zero counter moved forward.
    let result = match webauthn.finish_passkey_authentication(&credential, &state) {
        Ok(r) => r,
        // A counter that did not move forward: two authenticators hold this key. Worth a look by the operator.
        Err(e @ WebauthnError::CredentialPossibleCompromise) => {
            tracing::warn!(error = %e, "passkey assertion refused: its signature counter went backwards (a cloned key?)");
            return None;
        }
        Err(e) => {
            tracing::info!(error = %e, "passkey assertion refused");
            return None;
        }
    };
    records.iter().find_map(|record| {
        let mut passkey: Passkey = serde_json::from_str(&record.passkey_json).ok()?;
        if passkey.cred_id() != result.cred_id() {
            return None;
        }
        passkey.update_credential(&result);
        let updated = serde_json::to_string(&passkey).ok()?;
        Some(VerifiedUse {
            credential_id: record.credential_id.clone(),
            checked_json: record.passkey_json.clone(),
            updated_json: updated,
        })
    })
}

/// The sign-in is complete at the mfa level; remember that a passkey completed it, for the `amr` of its tokens.
async fn complete(
    s: &Issuer,
    caller: &Caller,
    headers: &HeaderMap,
    bound: &Bound,
    user: argus_oauth::UserRecord,
) -> Result<Response, StorageError> {
    let response = flow::signed_in_by(s, caller, headers, bound, user, AuthLevel::Mfa).await?;
    // The session is named by the cookie the response sets; its record carries the sid and auth_time that codes
    // and refresh families copy.
    let cookie = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{}=", cookies::SESSION)).and_then(|rest| rest.split(';').next()))
        .map(str::to_owned);
    if let Some(cookie) = cookie
        && let Some(session) = s.store.session_by_cookie(&hash_secret(&cookie), s.now()).await?
    {
        let keep = Duration::from_secs(s.config.refresh_token_absolute_ttl_secs.max(s.config.session_ttl_secs));
        s.store.record_passkey_sign_in(&session.sid, session.auth_time, session.auth_time.plus(keep)).await?;
    }
    Ok(response)
}

/// The `amr` of tokens from the sign-in of session `sid` at `auth_time` that stated `acr`: the passkey methods when
/// a passkey completed it, else `None` (the level's own methods apply).
pub(crate) async fn amr_of_sign_in(
    s: &Issuer,
    sid: Option<&str>,
    auth_time: Option<argus_model::Timestamp>,
    acr: Option<&str>,
) -> Result<Option<Vec<String>>, StorageError> {
    let (Some(sid), Some(auth_time), Some(argus_oauth::ACR_MFA)) = (sid, auth_time, acr) else {
        return Ok(None);
    };
    if !s.store.was_passkey_sign_in(sid, auth_time).await? {
        return Ok(None);
    }
    Ok(Some(argus_oauth::PASSKEY_AMR.iter().map(|m| (*m).to_owned()).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rp_id: Option<&str>, origins: &[&str]) -> IssuerConfig {
        IssuerConfig {
            webauthn_rp_id: rp_id.map(str::to_owned),
            webauthn_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            ..IssuerConfig::default()
        }
    }

    #[test]
    fn the_relying_party_is_the_issuer_host_unless_configured() {
        assert!(relying_party(&config(None, &[]), "http://localhost:7400").unwrap().is_some());
        assert!(relying_party(&config(None, &[]), "https://login.example.com").unwrap().is_some());
        // WebAuthn does not work on an IP address: no passkeys, and no error either.
        assert!(relying_party(&config(None, &[]), "http://127.0.0.1:7400").unwrap().is_none());
        assert!(relying_party(&config(Some("example.com"), &[]), "https://login.example.com").unwrap().is_some());
        assert!(relying_party(&config(Some("other.com"), &[]), "https://login.example.com").is_err());
        assert!(
            relying_party(&config(Some("example.com"), &["https://proxy.example.com"]), "https://id.example.com")
                .unwrap()
                .is_some()
        );
        assert!(relying_party(&config(None, &["not a url"]), "https://id.example.com").is_err());
    }

    #[test]
    fn bindings_are_separate_and_user_handles_stable() {
        assert_ne!(registration_key("c"), sign_in_key("c"));
        assert_ne!(csrf_for("c"), registration_key("c"));
        assert_eq!(user_handle("u1"), user_handle("u1"));
        assert_ne!(user_handle("u1"), user_handle("u2"));
    }

    #[test]
    fn the_page_keeps_its_contract() {
        let page = PasskeysPage {
            username: "<alice>",
            passkeys: vec![PasskeyRow {
                id: "p1".into(),
                name: "<Laptop>".into(),
                created: "2026-01-01 00:00:00 UTC".into(),
                last_used: "never".into(),
            }],
            csrf: "c1",
            available: true,
            error: None,
        };
        let body = page.render().unwrap();
        assert!(body.contains(r#"<form method="post" action="/account/passkeys/remove">"#), "{body}");
        assert!(body.contains(r#"<input type="hidden" name="id" value="p1">"#));
        assert!(body.contains(r#"<input type="hidden" name="csrf" value="c1">"#));
        assert!(body.contains(r#"<span class="passkey-name">&#60;Laptop&#62;</span>"#));
        assert!(body.contains(r#"id="passkey-add""#) && body.contains(r#"<script src="/passkey.js"></script>"#));
        assert!(!body.contains("<alice>"));
    }
}
