use argus_model::{Activity, Timestamp};
use argus_oauth::account::AccountStore;
use argus_oauth::admin::AdminStore;
use argus_oauth::notice::{NoticeBody, NoticeRecord, NoticeStore};
use argus_oauth::{ClientRegistration, ConsentGrant, IssuerStore, SessionRecord, UserRecord};

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
