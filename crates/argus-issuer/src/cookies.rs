//! The issuer's cookies: the browser binding of pending requests and the sign-in session.
//!
//! Both hold a 256-bit random secret; the store keeps only its hash. HttpOnly (no script reads them), SameSite=Lax
//! (sent on the top-level navigation from the app to `/authorize`, not on cross-site POSTs), Path=/, and Secure when
//! the issuer is served over https.

use axum::http::{HeaderMap, HeaderValue, header};
use cookie::{Cookie, SameSite};

/// Binds pending authorization requests to the browser that started them (login CSRF protection).
pub(crate) const BROWSER: &str = "argus_browser";
/// The sign-in session.
pub(crate) const SESSION: &str = "argus_session";

/// The value of cookie `name` if it looks like one of our secrets (43 base64url characters); anything else is
/// treated as absent.
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| Cookie::split_parse(v).filter_map(Result::ok))
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| is_secret_shaped(v))
}

fn is_secret_shaped(v: &str) -> bool {
    v.len() == 43 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A `Set-Cookie` value. `max_age_secs` `None` makes a browser-session cookie.
pub(crate) fn set(name: &str, value: &str, max_age_secs: Option<u64>, secure: bool) -> Option<HeaderValue> {
    let mut c = Cookie::build((name.to_owned(), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure);
    if let Some(secs) = max_age_secs {
        c = c.max_age(time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX)));
    }
    HeaderValue::from_str(&c.build().to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_only_secret_shaped_values() {
        let secret = "a".repeat(43);
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_str(&format!("x=1; {SESSION}={secret}")).unwrap());
        h.append(header::COOKIE, HeaderValue::from_static("argus_browser=short"));
        assert_eq!(read(&h, SESSION), Some(secret));
        assert_eq!(read(&h, BROWSER), None);
    }

    #[test]
    fn set_cookie_attributes() {
        let v = set(SESSION, "v", Some(60), true).unwrap();
        let s = v.to_str().unwrap();
        for part in ["argus_session=v", "HttpOnly", "SameSite=Lax", "Path=/", "Secure", "Max-Age=60"] {
            assert!(s.contains(part), "{s}");
        }
        let plain = set(BROWSER, "v", None, false).unwrap();
        assert!(!plain.to_str().unwrap().contains("Secure") && !plain.to_str().unwrap().contains("Max-Age"));
    }
}
