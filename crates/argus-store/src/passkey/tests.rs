use argus_model::Timestamp;
use argus_oauth::{CeremonyState, IssuerStore, PasskeyRecord, PasskeyStore};

use crate::Store;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

async fn store_with_users() -> Store {
    let s = Store::in_memory().await.unwrap();
    for (sub, name) in [("u1", "alice"), ("u2", "bob")] {
        s.upsert_user(sub, name, "$argon2id$x", t(0)).await.unwrap();
    }
    s
}

fn passkey(id: &str, sub: &str, cred: &str, created: i64) -> PasskeyRecord {
    PasskeyRecord {
        id: id.into(),
        sub: sub.into(),
        credential_id: cred.into(),
        passkey_json: format!("{{\"cred\":\"{cred}\",\"counter\":0}}"),
        name: format!("key {id}"),
        created_at: t(created),
        last_used_at: None,
    }
}

#[tokio::test]
async fn passkeys_are_per_user_unique_by_credential_and_removable() {
    let s = store_with_users().await;
    assert!(!s.has_passkey("u1").await.unwrap());
    assert!(s.add_passkey(&passkey("p2", "u1", "c2", 20)).await.unwrap());
    assert!(s.add_passkey(&passkey("p1", "u1", "c1", 10)).await.unwrap());
    assert!(!s.add_passkey(&passkey("p3", "u2", "c1", 30)).await.unwrap(), "a credential belongs to one account");
    assert!(!s.has_passkey("u2").await.unwrap());
    let listed: Vec<String> = s.passkeys("u1").await.unwrap().into_iter().map(|p| p.id).collect();
    assert_eq!(listed, ["p1", "p2"], "oldest first");
    assert_eq!(s.passkeys("u1").await.unwrap()[0], passkey("p1", "u1", "c1", 10), "round trip");
    assert!(!s.remove_passkey("u2", "p1").await.unwrap(), "another user's passkey is not removed");
    assert!(s.remove_passkey("u1", "p1").await.unwrap());
    assert!(!s.remove_passkey("u1", "p1").await.unwrap());
    assert!(s.has_passkey("u1").await.unwrap());
    assert!(s.add_passkey(&passkey("p4", "nobody", "c4", 1)).await.is_err(), "only for a user that exists");
}

#[tokio::test]
async fn a_use_updates_only_from_the_state_read() {
    let s = store_with_users().await;
    let p = passkey("p1", "u1", "c1", 10);
    s.add_passkey(&p).await.unwrap();
    let next = "{\"cred\":\"c1\",\"counter\":1}";
    assert!(!s.record_passkey_use("u2", "c1", &p.passkey_json, next, t(20)).await.unwrap(), "another user");
    assert!(s.record_passkey_use("u1", "c1", &p.passkey_json, next, t(20)).await.unwrap());
    // A second sign-in that read the same (now old) state loses: the counter it checked against is gone.
    assert!(!s.record_passkey_use("u1", "c1", &p.passkey_json, next, t(21)).await.unwrap());
    let stored = &s.passkeys("u1").await.unwrap()[0];
    assert_eq!((stored.passkey_json.as_str(), stored.last_used_at), (next, Some(t(20))));
}

#[tokio::test]
async fn a_ceremony_is_taken_once_and_not_after_it_expires() {
    let s = store_with_users().await;
    let state = |key: &str, json: &str, exp: i64| CeremonyState {
        key_hash: key.into(),
        sub: "u1".into(),
        state_json: json.into(),
        expires_at: t(exp),
    };
    s.put_ceremony(&state("k", "first", 100), t(0)).await.unwrap();
    s.put_ceremony(&state("k", "second", 100), t(1)).await.unwrap();
    assert_eq!(s.take_ceremony("k", t(50)).await.unwrap(), Some(state("k", "second", 100)), "replaced");
    assert_eq!(s.take_ceremony("k", t(50)).await.unwrap(), None, "single use");
    s.put_ceremony(&state("late", "x", 100), t(0)).await.unwrap();
    assert_eq!(s.take_ceremony("late", t(100)).await.unwrap(), None, "expired");
    s.put_ceremony(&state("old", "x", 10), t(0)).await.unwrap();
    s.put_ceremony(&state("new", "y", 100), t(20)).await.unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM passkey_ceremonies").fetch_one(s.pool()).await.unwrap();
    assert_eq!(left, 1, "expired states are dropped when a new one is stored");
}

#[tokio::test]
async fn passkey_sign_ins_are_remembered_by_session_and_time() {
    let s = store_with_users().await;
    assert!(!s.was_passkey_sign_in("s1", t(10)).await.unwrap());
    s.record_passkey_sign_in("s1", t(10), t(1000)).await.unwrap();
    assert!(s.was_passkey_sign_in("s1", t(10)).await.unwrap());
    assert!(!s.was_passkey_sign_in("s1", t(11)).await.unwrap(), "a later sign-in of the session is another one");
    assert!(!s.was_passkey_sign_in("s2", t(10)).await.unwrap());
    s.record_passkey_sign_in("s2", t(2000), t(3000)).await.unwrap();
    assert!(!s.was_passkey_sign_in("s1", t(10)).await.unwrap(), "expired records are dropped");
}

#[tokio::test]
async fn a_deleted_user_takes_its_passkeys_along() {
    let s = store_with_users().await;
    s.add_passkey(&passkey("p1", "u1", "c1", 10)).await.unwrap();
    let cer = CeremonyState { key_hash: "k".into(), sub: "u1".into(), state_json: "{}".into(), expires_at: t(99) };
    s.put_ceremony(&cer, t(0)).await.unwrap();
    sqlx::query("DELETE FROM users WHERE sub = 'u1'").execute(s.pool()).await.unwrap();
    assert!(!s.has_passkey("u1").await.unwrap());
    assert_eq!(s.take_ceremony("k", t(1)).await.unwrap(), None);
    // The credential is free again.
    assert!(s.add_passkey(&passkey("p9", "u2", "c1", 20)).await.unwrap());
}
