//! The HTML pages (login, consent, error) and the headers every page carries.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The login form. Contract (an automated test parses it): `<form method="post" action="/login">`, hidden inputs
/// written `<input type="hidden" name="NAME" value="VALUE">`, text inputs `username` and `password`.
#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage<'a> {
    pub client_name: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    /// Not echoed back after a failure: the page must be byte-identical for an unknown user and a wrong password.
    pub error: Option<&'a str>,
}

/// The consent page. Contract: `<form method="post" action="/consent">` with the same hidden inputs and two
/// buttons `name="decision"` with values `allow` and `deny`.
#[derive(Template)]
#[template(path = "consent.html")]
pub(crate) struct ConsentPage<'a> {
    pub client_name: &'a str,
    pub username: &'a str,
    /// Each scope in plain words.
    pub scopes: Vec<String>,
    pub request: &'a str,
    pub csrf: &'a str,
}

/// The second step of a sign-in. Contract: with `totp`, `<form method="post" action="/login/totp">` with the same
/// hidden inputs as the login form and a text input `code` (a TOTP code or a recovery code); with `passkey`, the
/// button `#passkey-use` and `<form method="post" action="/login/passkey/finish" id="passkey-sign-in">` with the
/// same hidden inputs and an empty hidden `credential` the script fills.
#[derive(Template)]
#[template(path = "second_factor.html")]
pub(crate) struct SecondFactorPage<'a> {
    pub client_name: &'a str,
    pub request: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
    /// The user has a confirmed TOTP credential (and recovery codes).
    pub totp: bool,
    /// The user has a passkey.
    pub passkey: bool,
}

/// TOTP enrolment. Contract: the secret in `<code id="totp-secret">BASE32</code>`, and
/// `<form method="post" action="/account/totp">` with a hidden input `csrf` and a text input `code`.
#[derive(Template)]
#[template(path = "totp_enrol.html")]
pub(crate) struct TotpEnrolPage<'a> {
    pub username: &'a str,
    /// Base32, as typed into an app.
    pub secret: &'a str,
    /// The `otpauth://` URI.
    pub uri: &'a str,
    /// An SVG QR code of `uri`, made by us from `uri` alone (so inserted unescaped).
    pub qr_svg: &'a str,
    pub csrf: &'a str,
    pub error: Option<&'a str>,
}

/// The end of enrolment: the recovery codes, shown once; or a message alone. Contract: each code in
/// `<li><code>CODE</code></li>`.
#[derive(Template)]
#[template(path = "recovery_codes.html")]
pub(crate) struct RecoveryCodesPage<'a> {
    pub heading: &'a str,
    pub message: &'a str,
    pub codes: &'a [String],
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage<'a> {
    pub message: &'a str,
}

/// The one message for every failed sign-in: unknown user, wrong password and disabled account look the same.
pub(crate) const LOGIN_FAILED: &str = "The user name or password is not correct.";

/// The one message for a throttled sign-in. It names no user and no count: an unknown user name is throttled alike.
pub(crate) const SIGN_IN_THROTTLED: &str = "Too many failed sign-ins. Wait a moment, then try again.";

/// The one message for a refused second factor: a wrong code, a used one and a used recovery code look the same.
pub(crate) const CODE_FAILED: &str = "That code is not correct, or was already used.";

/// Render a page with the security headers every issuer page carries.
pub(crate) fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, page_headers(), body).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "page rendering failed");
            (StatusCode::INTERNAL_SERVER_ERROR, page_headers(), "internal error").into_response()
        }
    }
}

/// An error page; the browser is never redirected from it.
pub(crate) fn error_page(status: StatusCode, message: &str) -> Response {
    html(status, &ErrorPage { message })
}

/// The answer when the store fails: no detail for the user, the cause in the log.
pub(crate) fn internal_error_page(e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "issuer storage failure");
    error_page(StatusCode::INTERNAL_SERVER_ERROR, "The sign-in service is not available right now.")
}

/// No caching, no framing (clickjacking), nothing loaded but the inline style, and no Referer that could carry the
/// request handle elsewhere. No `form-action`: Chromium applies it to the redirect after the consent POST.
pub(crate) fn page_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_page_keeps_the_form_contract_and_escapes() {
        let body = LoginPage { client_name: "<App>", request: "req-123_x", csrf: "csrf-9", error: Some(LOGIN_FAILED) }
            .render()
            .unwrap();
        assert!(body.contains(r#"<form method="post" action="/login">"#));
        assert!(body.contains(r#"<input type="hidden" name="request" value="req-123_x">"#));
        assert!(body.contains(r#"<input type="hidden" name="csrf" value="csrf-9">"#));
        assert!(body.contains(r#"name="username""#) && body.contains(r#"name="password""#));
        assert!(body.contains("&#60;App&#62;") && !body.contains("<App>"));
        assert!(body.contains(LOGIN_FAILED));
    }

    #[test]
    fn second_factor_pages_keep_their_contracts() {
        let page = |totp, passkey| SecondFactorPage {
            client_name: "<App>",
            request: "r1",
            csrf: "c1",
            error: Some(CODE_FAILED),
            totp,
            passkey,
        };
        let body = page(false, true).render().unwrap();
        assert!(!body.contains(r#"action="/login/totp""#), "no TOTP form without TOTP");
        assert!(body.contains(r#"<form method="post" action="/login/passkey/finish" id="passkey-sign-in">"#));
        assert!(body.contains(r#"<script src="/passkey.js"></script>"#));
        let body = page(true, false).render().unwrap();
        assert!(!body.contains("passkey"), "no passkey part without a passkey");
        assert!(body.contains(r#"<form method="post" action="/login/totp">"#));
        assert!(body.contains(r#"<input type="hidden" name="request" value="r1">"#));
        assert!(body.contains(r#"<input type="hidden" name="csrf" value="c1">"#));
        assert!(body.contains(r#"name="code""#) && body.contains(CODE_FAILED) && !body.contains("<App>"));
        let body = TotpEnrolPage {
            username: "<b>",
            secret: "ABC",
            uri: "otpauth://totp/x?a=1&b=2",
            qr_svg: "<svg></svg>",
            csrf: "c2",
            error: None,
        }
        .render()
        .unwrap();
        assert!(body.contains(r#"<code id="totp-secret">ABC</code>"#));
        assert!(body.contains("<svg></svg>") && !body.contains("<b>"));
        assert!(body.contains(r#"<form method="post" action="/account/totp">"#));
        assert!(body.contains(r#"<input type="hidden" name="csrf" value="c2">"#));
        let codes = ["aaaa-bbbb".to_owned()];
        let body = RecoveryCodesPage { heading: "h", message: "m", codes: &codes }.render().unwrap();
        assert!(body.contains("<li><code>aaaa-bbbb</code></li>"));
    }

    #[test]
    fn consent_page_keeps_the_form_contract() {
        let body = ConsentPage {
            client_name: "Demo",
            username: "alice",
            scopes: vec!["Read your accounts".into()],
            request: "r",
            csrf: "c",
        }
        .render()
        .unwrap();
        assert!(body.contains(r#"<form method="post" action="/consent">"#));
        assert!(body.contains(r#"<input type="hidden" name="request" value="r">"#));
        assert!(body.contains(r#"<button type="submit" name="decision" value="allow">"#));
        assert!(body.contains(r#"<button type="submit" name="decision" value="deny">"#));
        assert!(body.contains("<li>Read your accounts</li>"));
    }
}
