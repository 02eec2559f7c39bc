use argus_model::{Activity, Timestamp};
use argus_oauth::account::{AccountStore, DeviceFactors};
use argus_oauth::admin::AdminStore;
use argus_oauth::notice::{NoticeBody, NoticeRecord, NoticeStore};
use argus_oauth::{
    ClientRegistration, ConsentGrant, IssuerStore, PasskeyRecord, PasskeyStore, SecondFactorStore, SessionRecord,
    TotpCredential, UserRecord,
};

use crate::Store;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

/// Users `u1`, `u2`, each with sessions `s-<user>-a` and `s-<user>-b`; app `app` ("The App") granted by `u1`.
async fn fixture() -> Store {
    let s = Store::in_memory().await.unwrap();
    for sub in ["u1", "u2"] {
        let user =
            UserRecord { sub: sub.into(), username: format!("name-{sub}"), password_hash: "h".into(), disabled: false };
        assert!(s.insert_user(&user, t(0)).await.unwrap());
        for tag in ["a", "b"] {
            let sid = format!("s-{sub}-{tag}");
            let session = SessionRecord {
                sid: sid.clone(),
                cookie_hash: format!("cookie-{sid}"),
                sub: sub.into(),
                auth_time: t(0),
                acr: "urn:argus:acr:pwd".into(),
                expires_at: t(10_000),
            };
            s.insert_session(&session).await.unwrap();
        }
    }
    let client = ClientRegistration {
        client_id: "app".into(),
        name: "The App".into(),
        redirect_uris: vec!["http://127.0.0.1/cb".into()],
        allowed_scopes: vec!["openid".into()],
        public: true,
        ..ClientRegistration::default()
    };
    s.upsert_client(&client, t(0)).await.unwrap();
    let grant = ConsentGrant { sub: "u1".into(), client_id: "app".into(), scope: "openid".into(), granted_at: t(5) };
    s.record_consent(&grant).await.unwrap();
    s
}

#[tokio::test]
async fn grants_list_with_their_last_use() {
    let s = fixture().await;
    let grants = s.user_grants("u1").await.unwrap();
    assert_eq!(grants.len(), 1);
    assert_eq!((grants[0].client_name.as_str(), grants[0].scope.as_str()), ("The App", "openid"));
    assert_eq!((grants[0].granted_at, grants[0].last_used_at), (t(5), None));
    s.touch_grant("u1", "app", t(60)).await.unwrap();
    s.touch_grant("u2", "app", t(70)).await.unwrap();
    assert_eq!(s.user_grants("u1").await.unwrap()[0].last_used_at, Some(t(60)));
    assert!(s.user_grants("u2").await.unwrap().is_empty(), "a touch creates no grant");
}

#[tokio::test]
async fn the_password_change_mark() {
    let s = fixture().await;
    assert!(!s.must_change_password("u1").await.unwrap());
    assert!(s.set_must_change_password("u1", true).await.unwrap());
    assert!(s.must_change_password("u1").await.unwrap());
    assert!(!s.must_change_password("u2").await.unwrap());
    assert!(s.set_must_change_password("u1", false).await.unwrap());
    assert!(!s.must_change_password("u1").await.unwrap());
    assert!(!s.set_must_change_password("nobody", true).await.unwrap());
    assert!(!s.must_change_password("nobody").await.unwrap());
}

#[tokio::test]
async fn a_new_password_clears_a_required_reset_and_nothing_else_does() {
    let s = fixture().await;
    assert!(s.set_must_change_password("u1", true).await.unwrap());
    assert!(s.update_user("u1", None, Some(false), t(1)).await.unwrap());
    assert!(s.must_change_password("u1").await.unwrap(), "enabling the user is no new password");
    assert!(s.update_user("u1", Some("$argon2id$new"), None, t(2)).await.unwrap());
    assert!(!s.must_change_password("u1").await.unwrap());
}

#[tokio::test]
async fn ending_sessions_keeps_the_one_named_and_other_users() {
    let s = fixture().await;
    let live = |sid: &'static str| {
        let s = &s;
        async move { s.session_by_cookie(&format!("cookie-{sid}"), t(100)).await.unwrap().is_some() }
    };
    assert_eq!(s.end_sessions("u1", Some("s-u1-a"), t(100)).await.unwrap(), 1);
    assert!(live("s-u1-a").await && !live("s-u1-b").await && live("s-u2-a").await && live("s-u2-b").await);
    assert!(!s.end_session("u2", "s-u1-a", t(100)).await.unwrap(), "not another user's session");
    assert!(s.end_session("u1", "s-u1-a", t(100)).await.unwrap());
    assert!(!s.end_session("u1", "s-u1-a", t(100)).await.unwrap(), "once");
    assert!(!live("s-u1-a").await);
    assert_eq!(s.end_sessions("u2", None, t(100)).await.unwrap(), 2);
    assert!(!live("s-u2-a").await && !live("s-u2-b").await);
}

#[tokio::test]
async fn links_are_used_once_and_forgotten_after_they_expire() {
    let s = fixture().await;
    assert!(!s.link_used("n1").await.unwrap());
    assert!(s.use_link_once("n1", t(10), t(100)).await.unwrap());
    assert!(!s.use_link_once("n1", t(11), t(100)).await.unwrap());
    assert!(s.link_used("n1").await.unwrap());
    // Another link's use after n1 expired forgets n1 (it cannot be used any more anyway).
    assert!(s.use_link_once("n2", t(100), t(200)).await.unwrap());
    assert!(!s.link_used("n1").await.unwrap());
}

#[tokio::test]
async fn a_notice_by_id() {
    let s = fixture().await;
    let notice = NoticeRecord {
        id: "n1".into(),
        sub: "u1".into(),
        kind: Activity::NewDevice,
        created_at: t(3),
        read_at: None,
        device_id: Some("d9".into()),
        body: NoticeBody { summary: "hello".into(), ..NoticeBody::default() },
    };
    s.insert_notice(&notice, &[]).await.unwrap();
    assert_eq!(s.notice("n1").await.unwrap(), Some(notice));
    assert_eq!(s.notice("n2").await.unwrap(), None);
}

fn passkey_on(id: &str, sub: &str) -> PasskeyRecord {
    PasskeyRecord {
        id: id.into(),
        sub: sub.into(),
        credential_id: format!("cred-{id}"),
        passkey_json: "{}".into(),
        name: id.into(),
        created_at: t(1),
        last_used_at: None,
    }
}

async fn confirmed_totp(s: &Store, sub: &str) {
    let cred =
        TotpCredential { sub: sub.into(), secret: vec![7; 20], created_at: t(1), confirmed_at: None, last_step: None };
    assert!(s.put_unconfirmed_totp(&cred).await.unwrap());
    assert!(s.confirm_totp(sub, 1, &["r1".into(), "r2".into()], t(2)).await.unwrap());
}

#[tokio::test]
async fn only_the_factors_enrolled_from_the_device_are_removed() {
    let s = fixture().await;
    // u1: TOTP and passkey p1 from d1, p2 from d2, p3 from no known device; u2: TOTP from d2 and p4 from d1.
    confirmed_totp(&s, "u1").await;
    s.set_totp_device("u1", "d1").await.unwrap();
    confirmed_totp(&s, "u2").await;
    s.set_totp_device("u2", "d2").await.unwrap();
    for (id, sub, device) in
        [("p1", "u1", Some("d1")), ("p2", "u1", Some("d2")), ("p3", "u1", None), ("p4", "u2", Some("d1"))]
    {
        assert!(s.add_passkey(&passkey_on(id, sub)).await.unwrap());
        if let Some(d) = device {
            s.set_passkey_device(sub, id, d).await.unwrap();
        }
    }
    // Another user's passkey id does not take this user's device.
    s.set_passkey_device("u1", "p4", "d9").await.unwrap();

    let removed = s.remove_device_factors("u1", "d1").await.unwrap();
    assert_eq!(removed, DeviceFactors { totp: true, passkeys: 1 });
    assert!(s.totp_credential("u1").await.unwrap().is_none());
    assert!(!s.use_recovery_code("u1", "r1", t(3)).await.unwrap(), "its recovery codes went with it");
    let ids = |v: Vec<PasskeyRecord>| v.into_iter().map(|p| p.id).collect::<Vec<_>>();
    assert_eq!(ids(s.passkeys("u1").await.unwrap()), ["p2", "p3"]);
    // u2's factors stay, the one from d1 too: it is another user's.
    assert!(s.totp_credential("u2").await.unwrap().is_some());
    assert_eq!(ids(s.passkeys("u2").await.unwrap()), ["p4"]);

    assert_eq!(s.remove_device_factors("u2", "d1").await.unwrap(), DeviceFactors { totp: false, passkeys: 1 });
    assert!(s.totp_credential("u2").await.unwrap().is_some(), "u2's TOTP is from d2");
    assert!(s.use_recovery_code("u2", "r1", t(3)).await.unwrap(), "and its recovery codes stay");
    assert_eq!(s.remove_device_factors("u1", "d1").await.unwrap(), DeviceFactors::default());
}
