//! Revocation by scope through the admin API, end to end: for each scope, the gate refuses every access token the
//! scope covers, still accepts one it does not cover, and the store refuses the refresh tokens in scope.
//!
//! The cast, on one Argus (`argus up --demo`):
//! - `a1`: alice signs in on device A; `a1r` is `a1` refreshed (same session, family and device);
//! - `a2`: alice signs in again on device B (another session and family);
//! - `b1`: bob signs in on device A (the same browser, after alice).

mod support;

use http::StatusCode;
use serde_json::{Value, json};
use support::{Argus, Session};

struct Cast {
    argus: Argus,
    a1: Session,
    a1r: Session,
    a2: Session,
    b1: Session,
}

impl Cast {
    async fn new() -> Self {
        let argus = Argus::start("").await;
        let a1 = argus.sign_in("alice", Default::default()).await;
        let a1r = argus.refreshed(&a1).await;
        let a2 = argus.sign_in("alice", Default::default()).await;
        let b1 = argus.sign_in("bob", a1.same_device()).await;
        for s in [&a1, &a1r, &a2, &b1] {
            assert_eq!(argus.gate_status(&s.access).await, StatusCode::OK, "every token works before");
        }
        assert_eq!(a1.claim("sid"), a1r.claim("sid"));
        assert_eq!(a1.claim("fid"), a1r.claim("fid"));
        assert_eq!(a1.claim("did"), a1r.claim("did"), "a refreshed token keeps the device");
        assert_ne!(a1.claim("fid"), "", "access tokens carry their refresh family");
        assert_eq!(a1.claim("did"), b1.claim("did"), "same browser, same device");
        assert_ne!(a1.claim("did"), a2.claim("did"));
        assert_ne!(a1.claim("did"), "", "access tokens carry the device");
        Self { argus, a1, a1r, a2, b1 }
    }

    /// Revoke `scope` through the admin API; the answer.
    async fn revoke(&self, scope: Value) -> Value {
        let r = self.argus.admin("POST", "/revocations", Some(json!({ "scope": scope }))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
        r.body
    }

    /// The gate refuses each of `covered` (401 invalid_token) and accepts each of `uncovered`.
    async fn expect(&self, covered: &[&Session], uncovered: &[&Session]) {
        for (i, s) in covered.iter().enumerate() {
            let bearer = format!("Bearer {}", s.access);
            let r = self
                .argus
                .call("GET", &format!("{}/accounts", self.argus.up.gate_url), &[("authorization", &bearer)], None)
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED, "covered token #{i} still accepted");
            assert!(r.header("www-authenticate").contains("invalid_token"), "{}", r.header("www-authenticate"));
        }
        for (i, s) in uncovered.iter().enumerate() {
            assert_eq!(self.argus.gate_status(&s.access).await, StatusCode::OK, "uncovered token #{i} refused");
        }
    }

    /// Refreshing `s` is refused (`invalid_grant`) or works.
    async fn refresh_works(&self, s: &Session) -> bool {
        let r = self.argus.refresh(&s.refresh).await;
        match r.status {
            StatusCode::OK => true,
            StatusCode::BAD_REQUEST => {
                assert_eq!(r.body["error"], "invalid_grant", "{}", r.text);
                false
            }
            other => panic!("refresh answered {other}: {}", r.text),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_scope_revokes_exactly_one_access_token() {
    let c = Cast::new().await;
    let answer = c.revoke(json!({ "kind": "token", "jti": c.a1.claim("jti") })).await;
    assert_eq!(answer["revocation"]["scope"]["kind"], "token");
    assert_eq!(answer["families_revoked"], 0);
    c.expect(&[&c.a1], &[&c.a1r, &c.a2, &c.b1]).await;
    assert!(c.refresh_works(&c.a1r).await, "the refresh token is not touched");
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_scope_revokes_the_sign_in_and_its_refresh_tokens() {
    let c = Cast::new().await;
    let answer = c.revoke(json!({ "kind": "session", "sid": c.a1.claim("sid") })).await;
    assert_eq!((answer["families_revoked"].as_u64(), answer["sessions_ended"].as_u64()), (Some(1), Some(1)));
    c.expect(&[&c.a1, &c.a1r], &[&c.a2, &c.b1]).await;
    assert!(!c.refresh_works(&c.a1r).await);
    assert!(c.refresh_works(&c.a2).await);
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn family_scope_revokes_one_family_only() {
    let c = Cast::new().await;
    let answer = c.revoke(json!({ "kind": "family", "family": c.a1.claim("fid") })).await;
    assert_eq!(answer["families_revoked"], 1);
    assert_eq!(answer["sessions_ended"], 0);
    c.expect(&[&c.a1, &c.a1r], &[&c.a2, &c.b1]).await;
    assert!(!c.refresh_works(&c.a1r).await);
    assert!(c.refresh_works(&c.b1).await);
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_scope_revokes_everything_signed_in_on_that_browser() {
    let c = Cast::new().await;
    let answer = c.revoke(json!({ "kind": "device", "device": c.a1.claim("did") })).await;
    assert_eq!((answer["families_revoked"].as_u64(), answer["sessions_ended"].as_u64()), (Some(2), Some(2)));
    c.expect(&[&c.a1, &c.a1r, &c.b1], &[&c.a2]).await;
    assert!(!c.refresh_works(&c.a1r).await);
    assert!(!c.refresh_works(&c.b1).await);
    assert!(c.refresh_works(&c.a2).await);
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_scope_revokes_every_token_of_the_user_until_they_sign_in_again() {
    let c = Cast::new().await;
    let alice = c.a1.claim("sub");
    let answer = c.revoke(json!({ "kind": "user", "sub": alice })).await;
    assert_eq!((answer["families_revoked"].as_u64(), answer["sessions_ended"].as_u64()), (Some(2), Some(2)));
    c.expect(&[&c.a1, &c.a1r, &c.a2], &[&c.b1]).await;
    assert!(!c.refresh_works(&c.a2).await);
    assert!(c.refresh_works(&c.b1).await);
    // A sign-in after the revocation is not covered: the user is not locked out. Token times are whole seconds
    // and a token of the revocation's own second counts as covered, so the new sign-in waits for the next second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let again = c.argus.sign_in("alice", Default::default()).await;
    c.expect(&[], &[&again]).await;
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_scope_revokes_every_token_of_the_app_and_no_other() {
    let c = Cast::new().await;
    // Another app, with a token of its own that the gate accepts.
    let created = c
        .argus
        .admin(
            "POST",
            "/clients",
            Some(json!({
                "client_id": "reporting", "name": "Reporting", "allowed_scopes": ["accounts:read"],
                "token_endpoint_auth_method": "client_secret_basic",
            })),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let secret = created.body["client_secret"].as_str().unwrap().to_owned();
    let reporting = c.argus.client_token("reporting", &secret, "accounts:read").await;
    assert_eq!(reporting.status, StatusCode::OK, "{}", reporting.text);
    let other = Session {
        access: reporting.body["access_token"].as_str().unwrap().to_owned(),
        refresh: String::new(),
        cookies: Default::default(),
    };

    let answer = c.revoke(json!({ "kind": "client", "client_id": "demo-app" })).await;
    assert_eq!(answer["families_revoked"], 3);
    assert_eq!(answer["sessions_ended"], 0, "users stay signed in at the issuer");
    c.expect(&[&c.a1, &c.a1r, &c.a2, &c.b1], &[&other]).await;
    assert!(!c.refresh_works(&c.b1).await);
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_scope_revokes_one_users_grant_to_one_app_and_its_consent() {
    let c = Cast::new().await;
    let alice = c.a1.claim("sub");
    let answer = c.revoke(json!({ "kind": "grant", "sub": alice, "client_id": "demo-app" })).await;
    assert_eq!(answer["families_revoked"], 2);
    assert_eq!(answer["consents_removed"], 1);
    c.expect(&[&c.a1, &c.a1r, &c.a2], &[&c.b1]).await;
    assert!(!c.refresh_works(&c.a1r).await);
    assert!(c.refresh_works(&c.b1).await);
    let consent = argus_oauth::IssuerStore::consent(&c.argus.up.store, &alice, "demo-app").await.unwrap();
    assert!(consent.is_none(), "alice is asked again next time");
    c.argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_are_listed_kept_until_the_tokens_expire_and_refused_when_malformed() {
    let c = Cast::new().await;
    c.revoke(json!({ "kind": "session", "sid": c.a2.claim("sid") })).await;
    let listed = c.argus.admin("GET", "/revocations", None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let revocations = listed.body["revocations"].as_array().unwrap();
    let session = revocations.iter().find(|r| r["scope"]["kind"] == "session").expect("listed");
    // Kept for the longest access-token lifetime (300 s) plus the verifiers' leeway (30 s).
    let at = argus_model::Timestamp::parse_rfc3339(session["at"].as_str().unwrap()).unwrap();
    let until = argus_model::Timestamp::parse_rfc3339(session["until"].as_str().unwrap()).unwrap();
    assert_eq!(until.as_secs() - at.as_secs(), 330);

    for (body, why) in [
        (json!({ "scope": { "kind": "everything" } }), "unknown kind"),
        (json!({ "scope": { "kind": "token" } }), "missing jti"),
        (json!({ "scope": { "kind": "token", "jti": "" } }), "empty jti"),
        (json!({ "scope": { "kind": "user", "sub": "alice" } }), "a user name, not a sub"),
        (json!({ "scope": { "kind": "token", "jti": "x" }, "also": 1 }), "unknown field"),
    ] {
        let r = c.argus.admin("POST", "/revocations", Some(body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{why}: {}", r.text);
        assert_eq!(r.header("content-type"), "application/problem+json", "{why}");
    }
    let r = c
        .argus
        .admin("POST", "/revocations", Some(json!({ "scope": { "kind": "client", "client_id": "nope" } })))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let after = c.argus.admin("GET", "/revocations", None).await;
    assert_eq!(
        after.body["revocations"].as_array().unwrap().len(),
        revocations.len(),
        "refused requests revoke nothing"
    );
    c.expect(&[], &[&c.a1, &c.b1]).await;
    c.argus.shutdown().await;
}
