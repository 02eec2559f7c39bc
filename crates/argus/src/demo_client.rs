//! `argus demo token`: sign in to the demo as a user would — authorization code + PKCE through the real login and
//! consent forms — and print the tokens. A convenience for trying the gate with curl; the interop tests use npm
//! `openid-client` instead, so this is not what proves the protocol.

use std::collections::HashMap;

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

/// The redirect URI the helper uses: the registered loopback one. Nothing needs to listen there; the helper reads
/// the code from the redirect.
const REDIRECT_URI: &str = "http://127.0.0.1/callback";

#[derive(Deserialize)]
struct Discovery {
    authorization_endpoint: String,
    token_endpoint: String,
}

struct Browser {
    http: Client<HttpConnector, Full<Bytes>>,
    cookies: HashMap<String, String>,
}

struct Page {
    status: StatusCode,
    location: Option<String>,
    body: String,
}

impl Browser {
    fn new() -> Self {
        Self { http: Client::builder(TokioExecutor::new()).build_http(), cookies: HashMap::new() }
    }

    async fn send(&mut self, method: &str, url: &str, form: Option<&[(String, String)]>) -> anyhow::Result<Page> {
        let mut req = Request::builder().method(method).uri(url);
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect();
            req = req.header(header::COOKIE, jar.join("; "));
        }
        let body = match form {
            Some(fields) => {
                req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in fields {
                    ser.append_pair(k, v);
                }
                Full::new(Bytes::from(ser.finish()))
            }
            None => Full::new(Bytes::new()),
        };
        let resp = self.http.request(req.body(body)?).await.with_context(|| format!("{method} {url}"))?;
        for c in resp.headers().get_all(header::SET_COOKIE) {
            if let Some((name, rest)) = c.to_str().unwrap_or_default().split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                self.cookies.insert(name.trim().to_owned(), value.to_owned());
            }
        }
        let status = resp.status();
        let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = String::from_utf8_lossy(&resp.into_body().collect().await?.to_bytes()).into_owned();
        Ok(Page { status, location, body })
    }
}

/// The `<form method="post" action="...">` of a page and its hidden inputs.
fn parse_form(html: &str) -> Option<(String, Vec<(String, String)>)> {
    let start = html.find("<form method=\"post\" action=\"")? + "<form method=\"post\" action=\"".len();
    let action = html[start..].split('"').next()?.to_owned();
    let mut fields = Vec::new();
    let mut rest = &html[start..];
    const HIDDEN: &str = "<input type=\"hidden\" name=\"";
    while let Some(i) = rest.find(HIDDEN) {
        rest = &rest[i + HIDDEN.len()..];
        let name = rest.split('"').next()?.to_owned();
        let v = rest.find("value=\"")? + "value=\"".len();
        let value = unescape(rest[v..].split('"').next()?);
        fields.push((name, value));
    }
    Some((action, fields))
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn absolute(base: &str, action: &str) -> String {
    if action.starts_with("http://") || action.starts_with("https://") {
        action.to_owned()
    } else {
        format!("{}{}", base.trim_end_matches('/'), action)
    }
}

/// Run the flow and return the token response JSON.
pub async fn token(issuer: &str, username: &str, password: &str, scope: &str) -> anyhow::Result<serde_json::Value> {
    token_with_cookies(issuer, username, password, scope, HashMap::new()).await.map(|(tokens, _)| tokens)
}

/// [`token`] in a browser that starts with `cookies` (name to value), e.g. the `argus_device` cookie of an earlier
/// sign-in to sign in again on the same device; returns the token response and the cookies the browser ends with.
pub async fn token_with_cookies(
    issuer: &str,
    username: &str,
    password: &str,
    scope: &str,
    cookies: HashMap<String, String>,
) -> anyhow::Result<(serde_json::Value, HashMap<String, String>)> {
    token_with_params(issuer, username, password, scope, cookies, &[]).await
}

/// [`token_with_cookies`] with further authorization request parameters, e.g. `("max_age", "0")` to meet an RFC 9470
/// step-up challenge.
pub async fn token_with_params(
    issuer: &str,
    username: &str,
    password: &str,
    scope: &str,
    cookies: HashMap<String, String>,
    extra: &[(&str, &str)],
) -> anyhow::Result<(serde_json::Value, HashMap<String, String>)> {
    let mut b = Browser::new();
    b.cookies = cookies;
    let tokens = flow(&mut b, issuer, (username, password), scope, extra).await?;
    Ok((tokens, b.cookies))
}

async fn flow(
    b: &mut Browser,
    issuer: &str,
    (username, password): (&str, &str),
    scope: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<serde_json::Value> {
    let disc =
        b.send("GET", &format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/')), None).await?;
    let disc: Discovery = serde_json::from_str(&disc.body).context("discovery document")?;

    let verifier = argus_model::id::random_secret(32);
    let state = argus_model::id::random_secret(16);
    let mut url = url::Url::parse(&disc.authorization_endpoint)?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", crate::demo::DEMO_CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("scope", scope)
        .append_pair("state", &state)
        .append_pair("code_challenge", &argus_jose::pkce_challenge_s256(&verifier))
        .append_pair("code_challenge_method", "S256")
        .extend_pairs(extra);

    let mut page = b.send("GET", url.as_str(), None).await?;
    let mut credentials_sent = false;
    // Login form, then consent form, until the redirect back to the app.
    for _ in 0..4 {
        if let Some(loc) = page.location.clone().filter(|l| l.starts_with(REDIRECT_URI)) {
            return redeem(b, &disc, &loc, &state, &verifier).await;
        }
        if !page.status.is_success() {
            bail!("the issuer answered {}: {}", page.status, first_line(&page.body));
        }
        let (action, mut fields) = parse_form(&page.body).context("no form on the issuer's page")?;
        if action.ends_with("/login") {
            if credentials_sent {
                bail!("sign-in refused: wrong user name or password");
            }
            fields.push(("username".into(), username.into()));
            fields.push(("password".into(), password.into()));
            credentials_sent = true;
        } else {
            fields.push(("decision".into(), "allow".into()));
        }
        page = b.send("POST", &absolute(issuer, &action), Some(&fields)).await?;
    }
    bail!("the issuer did not redirect back to the app")
}

async fn redeem(
    b: &mut Browser,
    disc: &Discovery,
    location: &str,
    state: &str,
    verifier: &str,
) -> anyhow::Result<serde_json::Value> {
    let url = url::Url::parse(location)?;
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    if let Some(e) = q.get("error") {
        bail!("authorization refused: {e}");
    }
    if q.get("state").map(String::as_str) != Some(state) {
        bail!("state mismatch in the redirect");
    }
    let code = q.get("code").context("no code in the redirect")?;
    let form = [
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        ("code".to_owned(), code.clone()),
        ("redirect_uri".to_owned(), REDIRECT_URI.to_owned()),
        ("client_id".to_owned(), crate::demo::DEMO_CLIENT_ID.to_owned()),
        ("code_verifier".to_owned(), verifier.to_owned()),
    ];
    let resp = b.send("POST", &disc.token_endpoint, Some(&form)).await?;
    if !resp.status.is_success() {
        bail!("token endpoint answered {}: {}", resp.status, resp.body);
    }
    Ok(serde_json::from_str(&resp.body)?)
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_form_contract() {
        let html = r#"<form method="post" action="/login"><input type="hidden" name="request_id" value="a&amp;b">
            <input type="hidden" name="csrf" value="c"><input name="username"></form>"#;
        let (action, fields) = parse_form(html).unwrap();
        assert_eq!(action, "/login");
        assert_eq!(fields, vec![("request_id".into(), "a&b".into()), ("csrf".into(), "c".into())]);
    }
}
