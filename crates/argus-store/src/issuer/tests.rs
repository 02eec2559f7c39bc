use argus_model::{Revocation, RevocationScope, Timestamp};
use argus_oauth::{
    AuthorizationCode, ClientRegistration, ConsentGrant, GrantType, IssuedAccess, IssuerStore, PendingAuthorization,
    PushedRequest, RedeemOutcome, RefreshToken, RotateOutcome, SessionRecord, StoredSigningKey,
    TokenEndpointAuthMethod,
};

use super::batch::Batch;
use super::lookup::Lookups;
use super::rotation::{self, Rotation, Rotations};
use crate::Store;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn client() -> ClientRegistration {
    ClientRegistration {
        client_id: "demo-app".into(),
        name: "Demo".into(),
        redirect_uris: vec!["http://127.0.0.1/callback".into(), "http://[::1]/callback".into()],
        allowed_scopes: vec!["openid".into(), "accounts:read".into()],
        ..ClientRegistration::default()
    }
}

fn code(hash: &str) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: hash.into(),
        client_id: "demo-app".into(),
        redirect_uri: "http://127.0.0.1:5000/callback".into(),
        code_challenge: "ch".into(),
        scope: "openid".into(),
        nonce: Some("n".into()),
        sub: "u1".into(),
        sid: "s1".into(),
        auth_time: t(10),
        acr: argus_oauth::ACR_PASSWORD.into(),
        expires_at: t(70),
        used_at: None,
        family_id: None,
        access: None,
        dpop_jkt: None,
        resources: Vec::new(),
    }
}

fn refresh(hash: &str, family: &str, jti: &str, created: i64) -> RefreshToken {
    RefreshToken {
        token_hash: hash.into(),
        family_id: family.into(),
        client_id: "demo-app".into(),
        sub: "u1".into(),
        sid: Some("s1".into()),
        scope: "openid".into(),
        auth_time: Some(t(10)),
        created_at: t(created),
        expires_at: t(created + 1000),
        family_expires_at: t(10_000),
        jkt: None,
        consumed_at: None,
        family_revoked_at: None,
        device: None,
        acr: Some(argus_oauth::ACR_PASSWORD.into()),
        resources: Vec::new(),
        access: IssuedAccess { jti: jti.into(), expires_at: t(created + 300) },
    }
}

#[tokio::test]
async fn users_keep_their_sub_when_the_password_is_reset() {
    let s = Store::in_memory().await.unwrap();
    let sub = s.upsert_user("sub-1", "alice", "$argon2id$one", t(1)).await.unwrap();
    assert_eq!(sub, "sub-1");
    let again = s.upsert_user("sub-2", "alice", "$argon2id$two", t(2)).await.unwrap();
    assert_eq!(again, "sub-1");
    let u = s.user_by_username("alice").await.unwrap().unwrap();
    assert_eq!((u.sub.as_str(), u.password_hash.as_str(), u.disabled), ("sub-1", "$argon2id$two", false));
    assert_eq!(s.user_by_sub("sub-1").await.unwrap().unwrap().username, "alice");
    assert!(s.user_by_username("bob").await.unwrap().is_none());
    assert!(!format!("{u:?}").contains("argon2id"), "Debug must not print the hash");
}

#[tokio::test]
async fn clients_and_keys_round_trip() {
    let s = Store::in_memory().await.unwrap();
    s.upsert_client(&client(), t(1)).await.unwrap();
    assert_eq!(s.client("demo-app").await.unwrap(), Some(client()));
    let mut changed = client();
    changed.name = "Renamed".into();
    changed.allowed_scopes.push("profile".into());
    s.upsert_client(&changed, t(2)).await.unwrap();
    assert_eq!(s.clients().await.unwrap(), vec![changed]);
    assert!(s.client("nope").await.unwrap().is_none());

    let key = StoredSigningKey { kid: "k1".into(), alg: "ES256".into(), pkcs8_der: vec![0, 1, 254], created_at: t(5) };
    s.add_signing_key(&key).await.unwrap();
    assert_eq!(s.signing_keys().await.unwrap(), vec![key.clone()]);
    assert!(s.add_signing_key(&key).await.is_err(), "a kid is unique");
}

#[tokio::test]
async fn pending_requests_expire_and_are_taken_once() {
    let s = Store::in_memory().await.unwrap();
    s.upsert_client(&client(), t(1)).await.unwrap();
    let p = PendingAuthorization {
        handle_hash: "h".into(),
        browser_hash: "b".into(),
        csrf_hash: "c".into(),
        client_id: "demo-app".into(),
        redirect_uri: "http://127.0.0.1:5000/callback".into(),
        scope: "openid".into(),
        state: None,
        nonce: Some("n".into()),
        code_challenge: "ch".into(),
        prompt: "".into(),
        dpop_jkt: Some("jkt".into()),
        max_age: Some(300),
        acr_values: Some("urn:x urn:argus:acr:pwd".into()),
        resources: vec!["https://a.example/api".into(), "urn:example:b".into()],
        created_at: t(0),
        expires_at: t(600),
    };
    s.insert_pending(&p).await.unwrap();
    assert_eq!(s.pending("h", t(10)).await.unwrap(), Some(p));
    assert!(s.pending("h", t(600)).await.unwrap().is_none(), "expired");
    assert!(s.take_pending("h", t(10)).await.unwrap());
    assert!(!s.take_pending("h", t(10)).await.unwrap(), "taken once only");
}

#[tokio::test]
async fn sessions_and_consents() {
    let s = Store::in_memory().await.unwrap();
    s.upsert_user("u1", "alice", "$h", t(0)).await.unwrap();
    s.upsert_client(&client(), t(0)).await.unwrap();
    let sess = SessionRecord {
        sid: "s1".into(),
        cookie_hash: "ck".into(),
        sub: "u1".into(),
        auth_time: t(1),
        acr: "urn:argus:acr:pwd".into(),
        expires_at: t(100),
    };
    s.insert_session(&sess).await.unwrap();
    assert_eq!(s.session_by_cookie("ck", t(50)).await.unwrap(), Some(sess.clone()));
    assert!(s.session_by_cookie("ck", t(100)).await.unwrap().is_none());
    assert!(s.session_by_cookie("other", t(50)).await.unwrap().is_none());

    // A new sign-in in the same browser renews the session in place: same sid, new cookie, time, level and end.
    let renewed = SessionRecord {
        cookie_hash: "ck2".into(),
        auth_time: t(60),
        acr: "urn:argus:acr:other".into(),
        expires_at: t(160),
        ..sess.clone()
    };
    assert!(s.renew_session(&renewed, t(60)).await.unwrap());
    assert!(s.session_by_cookie("ck", t(61)).await.unwrap().is_none(), "the old cookie is gone");
    assert_eq!(s.session_by_cookie("ck2", t(61)).await.unwrap(), Some(renewed.clone()));
    let bobs = SessionRecord { sub: "u2".into(), ..renewed.clone() };
    assert!(!s.renew_session(&bobs, t(61)).await.unwrap(), "only the session's own user");
    assert!(!s.renew_session(&renewed, t(160)).await.unwrap(), "an ended session is never revived");
    assert_eq!(s.session_by_cookie("ck2", t(61)).await.unwrap(), Some(renewed));

    assert!(s.consent("u1", "demo-app").await.unwrap().is_none());
    let g = ConsentGrant { sub: "u1".into(), client_id: "demo-app".into(), scope: "openid".into(), granted_at: t(2) };
    s.record_consent(&g).await.unwrap();
    let wider = ConsentGrant { scope: "openid accounts:read".into(), granted_at: t(3), ..g };
    s.record_consent(&wider).await.unwrap();
    assert_eq!(s.consent("u1", "demo-app").await.unwrap(), Some(wider));
}

#[tokio::test]
async fn a_code_is_redeemed_once() {
    let s = Store::in_memory().await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let first = refresh("r1", "f1", "j1", 20);
    assert_eq!(s.redeem_code("c1", t(20), &first.access, Some(&first)).await.unwrap(), RedeemOutcome::Redeemed);
    let stored = s.code("c1").await.unwrap().unwrap();
    assert_eq!(stored.used_at, Some(t(20)));
    assert_eq!(stored.family_id.as_deref(), Some("f1"));
    assert_eq!(stored.access, Some(first.access.clone()));
    assert_eq!(s.refresh_token("r1").await.unwrap(), Some(first));

    // A second redemption writes nothing: no second family, no second refresh token.
    let second = refresh("r2", "f2", "j2", 21);
    assert_eq!(s.redeem_code("c1", t(21), &second.access, Some(&second)).await.unwrap(), RedeemOutcome::NotRedeemable);
    assert!(s.refresh_token("r2").await.unwrap().is_none());

    s.insert_code(&code("c2")).await.unwrap();
    assert_eq!(
        s.redeem_code("c2", t(70), &second.access, Some(&second)).await.unwrap(),
        RedeemOutcome::NotRedeemable,
        "expired"
    );
    assert_eq!(
        s.redeem_code("missing", t(20), &second.access, Some(&second)).await.unwrap(),
        RedeemOutcome::NotRedeemable
    );
}

#[tokio::test]
async fn rotation_consumes_once_and_family_revocation_stops_it() {
    let s = Store::in_memory().await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let r1 = refresh("r1", "f1", "j1", 20);
    s.redeem_code("c1", t(20), &r1.access, Some(&r1)).await.unwrap();

    let r2 = refresh("r2", "f1", "j2", 30);
    assert_eq!(s.rotate_refresh("r1", t(30), &r2).await.unwrap(), RotateOutcome::Rotated);
    assert_eq!(s.refresh_token("r1").await.unwrap().unwrap().consumed_at, Some(t(30)));
    let r3 = refresh("r3", "f1", "j3", 31);
    assert_eq!(s.rotate_refresh("r1", t(31), &r3).await.unwrap(), RotateOutcome::NotRotatable);
    assert!(s.refresh_token("r3").await.unwrap().is_none());
    // The family id of the replacement must be the old token's.
    let other_family = refresh("r4", "f9", "j4", 31);
    assert_eq!(s.rotate_refresh("r2", t(31), &other_family).await.unwrap(), RotateOutcome::NotRotatable);

    let accesses = s.revoke_family("f1", t(40)).await.unwrap();
    let jtis: Vec<_> = accesses.iter().map(|a| a.jti.as_str()).collect();
    assert_eq!(jtis, ["j1", "j2"]);
    assert_eq!(s.refresh_token("r2").await.unwrap().unwrap().family_revoked_at, Some(t(40)));
    assert_eq!(s.rotate_refresh("r2", t(41), &r3).await.unwrap(), RotateOutcome::NotRotatable);
    // Revoking again keeps the first revocation time.
    s.revoke_family("f1", t(50)).await.unwrap();
    assert_eq!(s.refresh_token("r2").await.unwrap().unwrap().family_revoked_at, Some(t(40)));
}

#[tokio::test]
async fn revocations_are_kept_until_they_lapse_and_purge_cleans_up() {
    let s = Store::in_memory().await.unwrap();
    let r =
        Revocation { id: "rv1".into(), scope: RevocationScope::Token { jti: "j1".into() }, at: t(10), until: t(100) };
    s.add_revocation(&r).await.unwrap();
    s.add_revocation(&r).await.unwrap();
    assert_eq!(s.active_revocations(t(50)).await.unwrap(), vec![r]);
    assert!(s.active_revocations(t(100)).await.unwrap().is_empty());

    s.insert_code(&code("c1")).await.unwrap();
    let r1 = refresh("r1", "f1", "j1", 20);
    s.redeem_code("c1", t(20), &r1.access, Some(&r1)).await.unwrap();
    assert_eq!(s.purge_expired(t(50)).await.unwrap(), 0);
    // code (70), revocation (100), family and its token (10 000).
    assert_eq!(s.purge_expired(t(10_000)).await.unwrap(), 4);
    assert!(s.refresh_token("r1").await.unwrap().is_none());
}

fn confidential() -> ClientRegistration {
    ClientRegistration {
        client_id: "svc".into(),
        name: "Service".into(),
        redirect_uris: vec![],
        allowed_scopes: vec!["argus:introspect".into()],
        public: false,
        token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
        client_secret_hash: None,
        jwks: Some(
            serde_json::from_value(serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "k1",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}))
            .unwrap(),
        ),
        grant_types: vec![GrantType::ClientCredentials],
        access_token_ttl_secs: Some(60),
        refresh_token_ttl_secs: Some(3600),
        require_pushed_authorization_requests: true,
        dpop_bound_access_tokens: true,
        disabled: false,
    }
}

#[tokio::test]
async fn every_client_field_round_trips_and_clients_can_be_disabled() {
    let s = Store::in_memory().await.unwrap();
    s.upsert_client(&confidential(), t(1)).await.unwrap();
    assert_eq!(s.client("svc").await.unwrap(), Some(confidential()));
    let basic = ClientRegistration {
        token_endpoint_auth_method: TokenEndpointAuthMethod::ClientSecretBasic,
        client_secret_hash: Some(argus_oauth::hash_client_secret("s")),
        jwks: None,
        access_token_ttl_secs: None,
        ..confidential()
    };
    s.upsert_client(&basic, t(2)).await.unwrap();
    assert_eq!(s.client("svc").await.unwrap(), Some(basic.clone()), "an upsert replaces every field");

    assert!(s.set_client_disabled("svc", true, t(3)).await.unwrap());
    assert!(s.client("svc").await.unwrap().unwrap().disabled);
    assert_eq!(s.clients().await.unwrap().len(), 1, "disabled clients are still listed");
    assert!(s.set_client_disabled("svc", false, t(4)).await.unwrap());
    assert_eq!(s.client("svc").await.unwrap(), Some(basic));
    assert!(!s.set_client_disabled("nope", true, t(4)).await.unwrap());
}

fn pushed(hash: &str) -> PushedRequest {
    PushedRequest {
        request_uri_hash: hash.into(),
        client_id: "demo-app".into(),
        redirect_uri: "http://127.0.0.1:5000/callback".into(),
        scope: "openid".into(),
        state: Some("st".into()),
        nonce: None,
        code_challenge: "ch".into(),
        prompt: "login".into(),
        dpop_jkt: Some("jkt".into()),
        max_age: Some(u64::MAX),
        acr_values: None,
        resources: vec!["https://a.example/api".into()],
        created_at: t(0),
        expires_at: t(60),
    }
}

#[tokio::test]
async fn a_pushed_request_is_taken_once_by_its_own_client_before_it_expires() {
    let s = Store::in_memory().await.unwrap();
    s.upsert_client(&client(), t(0)).await.unwrap();
    for h in ["p1", "p2"] {
        s.insert_pushed_request(&pushed(h)).await.unwrap();
    }
    assert!(s.take_pushed_request("p1", "other-app", t(1)).await.unwrap().is_none(), "bound to its client");
    let taken = s.take_pushed_request("p1", "demo-app", t(1)).await.unwrap().unwrap();
    // A max_age beyond the column's range is kept as the longest span it holds.
    assert_eq!(taken, PushedRequest { max_age: Some(i64::MAX.unsigned_abs()), ..pushed("p1") });
    assert!(s.take_pushed_request("p1", "demo-app", t(2)).await.unwrap().is_none(), "single use");
    assert!(s.take_pushed_request("p2", "demo-app", t(60)).await.unwrap().is_none(), "expired");
    assert_eq!(s.purge_expired(t(60)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_code_without_refresh_records_its_access_token_only() {
    let s = Store::in_memory().await.unwrap();
    s.insert_code(&AuthorizationCode { dpop_jkt: Some("k".into()), ..code("c1") }).await.unwrap();
    let access = IssuedAccess { jti: "j1".into(), expires_at: t(320) };
    assert_eq!(s.redeem_code("c1", t(20), &access, None).await.unwrap(), RedeemOutcome::Redeemed);
    let stored = s.code("c1").await.unwrap().unwrap();
    assert_eq!((stored.family_id, stored.access, stored.dpop_jkt.as_deref()), (None, Some(access), Some("k")));
}

#[tokio::test]
async fn codes_and_families_keep_the_resources_of_their_grant() {
    let s = Store::in_memory().await.unwrap();
    let two = vec!["https://a.example/api".to_owned(), "https://b.example/".to_owned()];
    s.insert_code(&AuthorizationCode { resources: two.clone(), ..code("c1") }).await.unwrap();
    assert_eq!(s.code("c1").await.unwrap().unwrap().resources, two);
    let first = RefreshToken { resources: two.clone(), ..refresh("r1", "f1", "j1", 20) };
    s.redeem_code("c1", t(20), &first.access, Some(&first)).await.unwrap();
    assert_eq!(s.refresh_token("r1").await.unwrap().unwrap().resources, two);
    // A rotation does not write them: they are the family's.
    s.rotate_refresh("r1", t(30), &refresh("r2", "f1", "j2", 30)).await.unwrap();
    assert_eq!(s.refresh_token("r2").await.unwrap().unwrap().resources, two);
    s.insert_code(&code("c2")).await.unwrap();
    assert!(s.code("c2").await.unwrap().unwrap().resources.is_empty(), "none named: none stored");
}

#[tokio::test]
async fn clients_and_revocations_are_listed_a_page_at_a_time() {
    let s = Store::in_memory().await.unwrap();
    for id in ["c", "a", "b"] {
        s.upsert_client(&ClientRegistration { client_id: id.into(), ..client() }, t(0)).await.unwrap();
    }
    let ids = |v: Vec<ClientRegistration>| v.into_iter().map(|c| c.client_id).collect::<Vec<_>>();
    assert_eq!(ids(s.clients_page(None, 2).await.unwrap()), ["a", "b"]);
    assert_eq!(ids(s.clients_page(Some("b"), 2).await.unwrap()), ["c"]);
    assert!(s.clients_page(Some("c"), 2).await.unwrap().is_empty());

    for (id, until) in [("r3", 100), ("r1", 100), ("r2", 5), ("r4", 100)] {
        let r =
            Revocation { id: id.into(), scope: RevocationScope::Token { jti: id.into() }, at: t(0), until: t(until) };
        s.add_revocation(&r).await.unwrap();
    }
    let rev_ids = |v: Vec<Revocation>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(rev_ids(s.active_revocations_page(t(10), None, 2).await.unwrap()), ["r1", "r3"], "r2 has expired");
    assert_eq!(rev_ids(s.active_revocations_page(t(10), Some("r3"), 2).await.unwrap()), ["r4"]);
}

#[tokio::test]
async fn a_server_secret_is_created_once_and_shared() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open_dir(dir.path()).await.unwrap();
    let other = Store::open_dir(dir.path()).await.unwrap();
    let secret = first.server_secret("dpop", &[1; 32], t(0)).await.unwrap();
    assert_eq!(secret, [1; 32]);
    assert_eq!(other.server_secret("dpop", &[2; 32], t(1)).await.unwrap(), secret, "the first one stays");
    assert_eq!(other.server_secret("gate", &[3; 32], t(1)).await.unwrap(), [3; 32], "one per name");
}

#[tokio::test]
async fn families_keep_their_key_and_end_and_rotated_tokens_outlive_their_idle_time() {
    let s = Store::in_memory().await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let first = RefreshToken { jkt: Some("k1".into()), ..refresh("r1", "f1", "j1", 20) };
    s.redeem_code("c1", t(20), &first.access, Some(&first)).await.unwrap();
    let stored = s.refresh_token("r1").await.unwrap().unwrap();
    assert_eq!((stored.jkt.as_deref(), stored.family_expires_at, stored.expires_at), (Some("k1"), t(10_000), t(1020)));
    s.rotate_refresh("r1", t(30), &RefreshToken { jkt: None, ..refresh("r2", "f1", "j2", 30) }).await.unwrap();
    let r2 = s.refresh_token("r2").await.unwrap().unwrap();
    assert_eq!(r2.jkt.as_deref(), Some("k1"), "the family's key");
    assert_eq!(r2.acr.as_deref(), Some(argus_oauth::ACR_PASSWORD), "the family's acr");
    assert_eq!(r2.auth_time, Some(t(10)), "the family's sign-in time");

    // Long after r1's idle lifetime, it is still known as rotated, so its reuse can still end the family.
    s.purge_expired(t(5_000)).await.unwrap();
    assert!(s.refresh_token("r1").await.unwrap().unwrap().consumed_at.is_some());
}

#[tokio::test]
async fn a_refresh_token_carries_its_familys_device() {
    use argus_oauth::admin::{AdminStore, DeviceRecord};
    let s = Store::in_memory().await.unwrap();
    s.upsert_user("u1", "alice", "h", t(0)).await.unwrap();
    let session = SessionRecord {
        sid: "s1".into(),
        cookie_hash: "c".into(),
        sub: "u1".into(),
        auth_time: t(10),
        acr: "urn:argus:acr:pwd".into(),
        expires_at: t(5000),
    };
    s.insert_session(&session).await.unwrap();
    let device =
        DeviceRecord { device_id: "d1".into(), cookie_hash: "dc".into(), created_at: t(0), expires_at: t(9000) };
    s.insert_device(&device).await.unwrap();
    s.attach_device("s1", "d1").await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let r1 = refresh("r1", "f1", "j1", 20);
    s.redeem_code("c1", t(20), &r1.access, Some(&r1)).await.unwrap();
    assert_eq!(s.refresh_token("r1").await.unwrap().unwrap().device.as_deref(), Some("d1"));
    s.rotate_refresh("r1", t(30), &refresh("r2", "f1", "j2", 30)).await.unwrap();
    assert_eq!(
        s.refresh_token("r2").await.unwrap().unwrap().device.as_deref(),
        Some("d1"),
        "the family's, not the row's"
    );
}

#[tokio::test]
async fn a_rotation_writes_the_successor_and_consumes_only_its_predecessor() {
    let s = Store::in_memory().await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let r1 = refresh("r1", "f1", "j1", 20);
    s.redeem_code("c1", t(20), &r1.access, Some(&r1)).await.unwrap();
    assert_eq!(s.refresh_token("r1").await.unwrap().unwrap().consumed_at, None, "a first token consumes nothing");
    let r2 = refresh("r2", "f1", "j2", 30);
    assert_eq!(s.rotate_refresh("r1", t(30), &r2).await.unwrap(), RotateOutcome::Rotated);
    assert_eq!(s.refresh_token("r2").await.unwrap(), Some(r2.clone()), "stored as given, unconsumed");
    let r3 = refresh("r3", "f1", "j3", 40);
    assert_eq!(s.rotate_refresh("r2", t(40), &r3).await.unwrap(), RotateOutcome::Rotated);
    let consumed = |h: &'static str| {
        let s = s.clone();
        async move { s.refresh_token(h).await.unwrap().unwrap().consumed_at }
    };
    assert_eq!((consumed("r1").await, consumed("r2").await, consumed("r3").await), (Some(t(30)), Some(t(40)), None));
    // A token that does not exist rotates nothing and stores nothing.
    let r4 = refresh("r4", "f1", "j4", 50);
    assert_eq!(s.rotate_refresh("missing", t(50), &r4).await.unwrap(), RotateOutcome::NotRotatable);
    assert!(s.refresh_token("r4").await.unwrap().is_none());
}

/// Many connections race to rotate one token, each with its own successor: exactly one wins, on a database file
/// with the store's real pools (an in-memory database has a single connection and cannot race).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_of_one_token_yield_one_successor() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open_dir(dir.path()).await.unwrap();
    s.insert_code(&code("c1")).await.unwrap();
    let r1 = refresh("r1", "f1", "j1", 20);
    s.redeem_code("c1", t(20), &r1.access, Some(&r1)).await.unwrap();
    let racers: Vec<_> = (0..16)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let next = refresh(&format!("next-{i}"), "f1", &format!("j-{i}"), 30);
                s.rotate_refresh("r1", t(30), &next).await.unwrap()
            })
        })
        .collect();
    let mut rotated = 0;
    for racer in racers {
        rotated += usize::from(racer.await.unwrap() == RotateOutcome::Rotated);
    }
    assert_eq!(rotated, 1);
    let successors: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM refresh_tokens WHERE rotated_from = 'r1'")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(successors, 1);
}

/// Write `rotations` as one batch, as the rotation task would had they all been queued at once.
async fn write_together(
    s: &Store,
    rotations: Vec<(&str, Timestamp, RefreshToken)>,
) -> Vec<Result<RotateOutcome, argus_oauth::StorageError>> {
    let batch = rotations.into_iter().map(|(old, now, next)| Rotation { old_hash: old.into(), now, next }).collect();
    Rotations::run(s.pool(), batch).await
}

/// Families `f1`..`f5` (from codes `c1`..`c5`), each with its first token `r1`..`r5`.
async fn five_families() -> Store {
    let s = Store::in_memory().await.unwrap();
    for i in 1..=5 {
        s.insert_code(&code(&format!("c{i}"))).await.unwrap();
        let first = refresh(&format!("r{i}"), &format!("f{i}"), &format!("j{i}"), 20);
        s.redeem_code(&format!("c{i}"), t(20), &first.access, Some(&first)).await.unwrap();
    }
    s
}

#[tokio::test]
async fn a_batch_of_rotations_answers_each_by_its_own_predecessor() {
    use RotateOutcome::{NotRotatable, Rotated};
    let s = five_families().await;
    s.rotate_refresh("r2", t(25), &refresh("r2-next", "f2", "j", 25)).await.unwrap();
    s.revoke_family("f3", t(25)).await.unwrap();
    let batch = vec![
        ("r1", t(30), refresh("n1", "f1", "k1", 30)),
        ("r1", t(30), refresh("n1-again", "f1", "k1b", 30)), // the same token twice in one batch
        ("r2", t(30), refresh("n2", "f2", "k2", 30)),        // rotated before
        ("r3", t(30), refresh("n3", "f3", "k3", 30)),        // family revoked
        ("r4", t(30), refresh("n4", "f9", "k4", 30)),        // not its family
        ("missing", t(30), refresh("n6", "f5", "k6", 30)),   // no such token
        ("r5", t(31), refresh("n5", "f5", "k5", 31)),
    ];
    let outcomes: Vec<_> = write_together(&s, batch).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes, [Rotated, NotRotatable, NotRotatable, NotRotatable, NotRotatable, NotRotatable, Rotated]);
    let stored = |h: &'static str| {
        let s = s.clone();
        async move { s.refresh_token(h).await.unwrap() }
    };
    assert_eq!(stored("r1").await.unwrap().consumed_at, Some(t(30)));
    assert_eq!(stored("r5").await.unwrap().consumed_at, Some(t(31)), "each at its own time");
    assert_eq!(stored("n5").await, Some(refresh("n5", "f5", "k5", 31)));
    for (h, why) in [("n1-again", "duplicate"), ("n2", "rotated"), ("n3", "revoked"), ("n4", "family"), ("n6", "none")]
    {
        assert!(stored(h).await.is_none(), "{why}");
    }
    assert_eq!(stored("r4").await.unwrap().consumed_at, None, "a refused rotation consumes nothing");
}

#[tokio::test]
async fn a_failing_batch_is_written_one_rotation_at_a_time() {
    use RotateOutcome::Rotated;
    let s = five_families().await;
    // Two successors with one hash: the batch statement fails on the primary key, so each is tried alone.
    let batch = vec![
        ("r1", t(30), refresh("same", "f1", "k1", 30)),
        ("r2", t(30), refresh("same", "f2", "k2", 30)),
        ("r3", t(30), refresh("n3", "f3", "k3", 30)),
    ];
    let outcomes = write_together(&s, batch).await;
    assert_eq!(outcomes[0].as_ref().ok(), Some(&Rotated));
    assert!(outcomes[1].is_err(), "the clash is the second one's alone");
    assert_eq!(outcomes[2].as_ref().ok(), Some(&Rotated));
    assert_eq!(s.refresh_token("r2").await.unwrap().unwrap().consumed_at, None, "its predecessor is untouched");
}

/// The query plan of a batch statement of three, its parameters bound to `x`.
async fn plan(s: &Store, sql: String, parameters: usize) -> Vec<String> {
    let mut q = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")));
    for _ in 0..parameters {
        q = q.bind("x");
    }
    q.fetch_all(s.pool()).await.unwrap().iter().map(|r| sqlx::Row::get::<String, _>(r, "detail")).collect()
}

#[tokio::test]
async fn batch_statements_find_tokens_by_index() {
    let s = five_families().await;
    for (what, plan) in [
        ("rotation", plan(&s, rotation::batch_sql(3), 48).await),
        ("lookup", plan(&s, super::lookup::batch_sql(3), 4).await),
    ] {
        // The VALUES list is walked; the tables are searched by key, never scanned.
        let table_scan = |d: &&String| d.starts_with("SCAN") && !d.ends_with("VALUES CLAUSE");
        assert_eq!(plan.iter().find(table_scan), None, "{what}: {plan:?}");
        assert!(plan.iter().any(|d| d.starts_with("SEARCH t USING INDEX")), "{what}: {plan:?}");
    }
}

#[tokio::test]
async fn a_batch_of_lookups_answers_each_by_its_own_hash() {
    let s = five_families().await;
    s.rotate_refresh("r2", t(25), &refresh("r2-next", "f2", "j", 25)).await.unwrap();
    let hashes = ["r1", "missing", "r2", "r1", "r2-next"].map(str::to_owned).to_vec();
    let found: Vec<_> = Lookups::run(s.pool(), hashes).await.into_iter().map(Result::unwrap).collect();
    let summary: Vec<_> = found.iter().map(|t| t.as_ref().map(|t| (t.token_hash.as_str(), t.consumed_at))).collect();
    assert_eq!(
        summary,
        [Some(("r1", None)), None, Some(("r2", Some(t(25)))), Some(("r1", None)), Some(("r2-next", None))]
    );
    assert_eq!(found[0], s.refresh_token("r1").await.unwrap(), "the same record as a lookup alone");
}

#[tokio::test]
async fn totp_credentials_steps_and_recovery_codes() {
    use argus_oauth::{SecondFactorStore, TotpCredential};
    let s = Store::in_memory().await.unwrap();
    let cred = |secret: &[u8]| TotpCredential {
        sub: "u1".into(),
        secret: secret.to_vec(),
        created_at: t(1),
        confirmed_at: None,
        last_step: None,
    };
    assert!(s.totp_credential("u1").await.unwrap().is_none());
    assert!(s.put_unconfirmed_totp(&cred(b"first")).await.unwrap());
    assert!(s.put_unconfirmed_totp(&cred(b"second")).await.unwrap(), "an unconfirmed one is replaced");
    assert!(!s.use_totp_step("u1", 5).await.unwrap(), "no step is used before confirmation");
    let hashes = vec!["h1".to_owned(), "h2".to_owned()];
    assert!(s.confirm_totp("u1", 10, &hashes, t(2)).await.unwrap());
    assert!(!s.confirm_totp("u1", 11, &hashes, t(3)).await.unwrap(), "confirmed once");
    assert!(!s.put_unconfirmed_totp(&cred(b"third")).await.unwrap(), "a confirmed one stays");
    let stored = s.totp_credential("u1").await.unwrap().unwrap();
    assert_eq!(
        (stored.secret.as_slice(), stored.confirmed_at, stored.last_step),
        (&b"second"[..], Some(t(2)), Some(10))
    );
    assert!(!format!("{stored:?}").contains("second"), "Debug must not print the secret");
    assert!(!s.use_totp_step("u1", 10).await.unwrap(), "the step of confirmation is used");
    assert!(s.use_totp_step("u1", 11).await.unwrap());
    assert!(!s.use_totp_step("u1", 11).await.unwrap());
    assert!(s.use_recovery_code("u1", "h1", t(4)).await.unwrap());
    assert!(!s.use_recovery_code("u1", "h1", t(5)).await.unwrap(), "single use");
    assert!(!s.use_recovery_code("u2", "h2", t(5)).await.unwrap(), "another user's code");

    s.insert_second_factor_wait("w", "u1", t(100)).await.unwrap();
    assert_eq!(s.second_factor_wait("w", t(50)).await.unwrap().as_deref(), Some("u1"));
    assert_eq!(s.fail_second_factor("w").await.unwrap(), 1);
    s.insert_second_factor_wait("w", "u1", t(100)).await.unwrap();
    assert_eq!(s.fail_second_factor("w").await.unwrap(), 2, "a new password does not reset the count");
    assert!(s.second_factor_wait("w", t(100)).await.unwrap().is_none(), "expired");
    s.end_second_factor_wait("w").await.unwrap();
    assert_eq!(s.fail_second_factor("w").await.unwrap(), u32::MAX, "an ended wait is spent");
}
