//! TOTP enrolment for the signed-in user: `GET /account/totp` makes a new secret and shows it (base32, an
//! `otpauth://` URI and its QR code); `POST /account/totp` with a code from the app confirms it and shows the
//! recovery codes, once. Until confirmed the credential is no second factor; once confirmed this page does not
//! replace it.
//!
//! The form's CSRF token is derived from the session cookie (a hash of it under its own label), so it needs no
//! storage and is worthless without the cookie.

pub(crate) mod api;
pub(crate) mod not_me;
pub(crate) mod page;
pub(crate) mod password;
pub(crate) mod shared;

/// The account routes beyond TOTP enrolment: the page and its forms, its sign-in, "this wasn't me", the password
/// change, and the JSON API.
pub(crate) fn routes() -> axum::Router<Shared> {
    use axum::routing::{delete, get, post};
    axum::Router::new()
        .route("/account", get(page::account))
        .route("/account/login", get(page::login))
        .route("/account/callback", get(page::callback))
        .route("/account/logout", post(page::logout))
        .route("/account/devices/revoke", post(page::revoke_device))
        .route("/account/apps/revoke", post(page::revoke_app))
        .route("/account/password", get(password::form).post(password::change))
        .route(not_me::NOT_ME_PATH, get(not_me::confirm).post(not_me::act))
        .route("/account/api/devices", get(api::devices))
        .route("/account/api/devices/{id}", delete(api::revoke_device))
        .route("/account/api/apps", get(api::apps))
        .route("/account/api/apps/{client_id}", delete(api::revoke_app))
        .route("/account/api/notices", get(api::notices))
        .route("/account/api/notices/{id}/read", post(api::read_notice))
}

use argus_model::id::random_bytes;
use argus_oauth::{
    Params, RECOVERY_CODE_BYTES, RECOVERY_CODE_COUNT, StorageError, TOTP_SECRET_LEN, TotpCheck, TotpCredential,
    check_totp, format_recovery_code, hash_secret, normalize_recovery_code, otpauth_uri, totp_secret_base32,
};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::cookies;
use crate::flow::{FORM_INVALID, LiveSession};
use crate::pages::{self, CODE_FAILED, RecoveryCodesPage, TotpEnrolPage};
use crate::state::{Issuer, Shared};

/// The name authenticator apps show for the account.
const APP_ISSUER: &str = "Argus";

const SIGN_IN_FIRST: &str = "Sign in first, then set up your authenticator app.";

/// `GET /account/totp`.
pub(crate) async fn totp_enrolment(State(s): State<Shared>, headers: HeaderMap) -> Response {
    match enrolment(&s, &headers).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn enrolment(s: &Issuer, headers: &HeaderMap) -> Result<Response, StorageError> {
    let Some((live, cookie)) = signed_in(s, headers).await? else {
        return Ok(pages::error_page(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
    };
    let cred = TotpCredential {
        sub: live.user.sub.clone(),
        secret: random_bytes(TOTP_SECRET_LEN),
        created_at: s.now(),
        confirmed_at: None,
        last_step: None,
    };
    if !s.store.put_unconfirmed_totp(&cred).await? {
        return Ok(already_set_up());
    }
    Ok(enrol_page(&live, &cred.secret, &cookie, None))
}

/// `POST /account/totp`.
pub(crate) async fn confirm_totp(
    State(s): State<Shared>,
    caller: crate::events::Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match confirm(&s, &caller, &headers, &Params::parse(&body)).await {
        Ok(r) => r,
        Err(e) => pages::internal_error_page(&e),
    }
}

async fn confirm(
    s: &Issuer,
    caller: &crate::events::Caller,
    headers: &HeaderMap,
    form: &Params,
) -> Result<Response, StorageError> {
    let Some((live, cookie)) = signed_in(s, headers).await? else {
        return Ok(pages::error_page(StatusCode::UNAUTHORIZED, SIGN_IN_FIRST));
    };
    let csrf_ok = form.first_repeated().is_none()
        && form.get("csrf").is_some_and(|c| argus_jose::ct_eq(c.as_bytes(), csrf_for(&cookie).as_bytes()));
    if !csrf_ok {
        return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID));
    }
    let cred = match s.store.totp_credential(&live.user.sub).await? {
        Some(c) if c.confirmed_at.is_some() => return Ok(already_set_up()),
        Some(c) => c,
        None => return Ok(pages::error_page(StatusCode::BAD_REQUEST, FORM_INVALID)),
    };
    let TotpCheck::Accepted { step } = check_totp(&cred.secret, form.get("code").unwrap_or(""), s.now(), None) else {
        return Ok(enrol_page(&live, &cred.secret, &cookie, Some(CODE_FAILED)));
    };
    let codes: Vec<String> = (0..RECOVERY_CODE_COUNT).map(|_| new_recovery_code()).collect();
    let hashes: Vec<String> =
        codes.iter().filter_map(|c| normalize_recovery_code(c)).map(|plain| hash_secret(&plain)).collect();
    // The step of this code counts as used: it cannot also sign in.
    if !s.store.confirm_totp(&cred.sub, step, &hashes, s.now()).await? {
        return Ok(already_set_up());
    }
    tracing::info!(sub = %cred.sub, "TOTP second factor confirmed");
    let device_id = s.store.session_device(&live.session.sid).await?;
    // "This wasn't me" for this device removes the credential again (account/not_me.rs).
    if let Some(device) = &device_id {
        s.store.set_totp_device(&cred.sub, device).await?;
    }
    let principal = argus_model::Principal {
        sub: Some(live.user.sub.clone()),
        sid: Some(live.session.sid.clone()),
        ..caller.principal()
    };
    let activity = argus_model::AccountActivity {
        activity: argus_model::Activity::FactorAdded,
        device_id,
        client_id: None,
        detail: Some("totp".to_owned()),
    };
    let body = argus_oauth::notice::NoticeBody {
        summary: "An authenticator app (TOTP) was added to your account".to_owned(),
        detail: Some("totp".to_owned()),
        ip: caller.ip.clone(),
        ..Default::default()
    };
    s.account_activity(principal, activity, body).await;
    let page = RecoveryCodesPage {
        heading: "Your authenticator app is set up",
        message: "From now on, signing in asks for a code from your app after your password.",
        codes: &codes,
    };
    Ok(pages::html(StatusCode::OK, &page))
}

/// The live session of this browser and its cookie (the CSRF token is derived from it).
async fn signed_in(s: &Issuer, headers: &HeaderMap) -> Result<Option<(LiveSession, String)>, StorageError> {
    let Some(cookie) = cookies::read(headers, cookies::SESSION) else {
        return Ok(None);
    };
    Ok(s.current_session(headers).await?.map(|live| (live, cookie)))
}

fn csrf_for(session_cookie: &str) -> String {
    hash_secret(&format!("argus totp enrolment csrf\n{session_cookie}"))
}

fn new_recovery_code() -> String {
    let mut random = [0u8; RECOVERY_CODE_BYTES];
    random.copy_from_slice(&random_bytes(RECOVERY_CODE_BYTES));
    format_recovery_code(&random)
}

fn enrol_page(live: &LiveSession, secret: &[u8], cookie: &str, error: Option<&str>) -> Response {
    let uri = otpauth_uri(APP_ISSUER, &live.user.username, secret);
    let qr_svg = qr_svg(&uri);
    let page = TotpEnrolPage {
        username: &live.user.username,
        secret: &totp_secret_base32(secret),
        uri: &uri,
        qr_svg: &qr_svg,
        csrf: &csrf_for(cookie),
        error,
    };
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
    pages::html(status, &page)
}

/// The QR code of `uri` as inline SVG (no XML declaration: it sits inside the HTML page). Empty if the URI is too
/// long for a QR code — the key and the link are on the page anyway.
fn qr_svg(uri: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(uri.as_bytes()) else {
        return String::new();
    };
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => String::new(),
    }
}

fn already_set_up() -> Response {
    let page = RecoveryCodesPage {
        heading: "Authenticator app",
        message: "Your authenticator app is already set up.",
        codes: &[],
    };
    pages::html(StatusCode::CONFLICT, &page)
}
