//! Deleting a user and resetting their passkeys through the admin API and the `argus admin` CLI, against a whole
//! Argus (`argus up --demo`): the deleted user's tokens die at the gate and at the token endpoint, they cannot sign
//! in, no table keeps a row of theirs, and a new user with the same name starts with nothing of the old one.

mod support;

use std::time::Duration;

use argus_bus::{Received, Subscriber};
use argus_model::{Activity, Event, EventKind, Timestamp};
use argus_oauth::{PasskeyRecord, PasskeyStore, SecondFactorStore, TotpCredential};
use argus_store::Store;
use http::StatusCode;
use serde_json::json;
use support::{Argus, PASSWORD};

async fn sub_of(argus: &Argus, user: &str) -> String {
    let r = argus.admin("GET", &format!("/users/{user}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["user"]["sub"].as_str().unwrap().to_owned()
}

/// A confirmed TOTP second factor with two recovery codes, written to the store.
async fn enrol_totp(store: &Store, sub: &str) {
    let now = Timestamp::from_millis(1_700_000_000_000);
    let cred = TotpCredential {
        sub: sub.to_owned(),
        secret: vec![9; 20],
        created_at: now,
        confirmed_at: None,
        last_step: None,
    };
    assert!(store.put_unconfirmed_totp(&cred).await.unwrap());
    assert!(store.confirm_totp(sub, 1, &["h1".into(), "h2".into()], now).await.unwrap());
}

async fn add_passkey(store: &Store, sub: &str, id: &str) {
    let p = PasskeyRecord {
        id: id.to_owned(),
        sub: sub.to_owned(),
        credential_id: format!("cred-{id}"),
        passkey_json: "{}".to_owned(),
        name: "key".to_owned(),
        created_at: Timestamp::from_millis(1_700_000_000_000),
        last_used_at: None,
    };
    assert!(store.add_passkey(&p).await.unwrap());
}

/// Rows that name `sub`, per table, over every table of the schema with a `sub` column.
async fn rows_naming(store: &Store, sub: &str) -> Vec<(String, u64)> {
    store.rows_naming_user(sub).await.unwrap()
}

/// The events on the bus until it is quiet for 300 ms.
async fn drain(events: &mut Subscriber<Event>) -> Vec<Event> {
    let mut all = Vec::new();
    while let Ok(Some(Received::Message(e))) = tokio::time::timeout(Duration::from_millis(300), events.recv()).await {
        all.push(Event::clone(&e));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_loses_everything_and_their_name_starts_clean() {
    let argus = Argus::start("").await;
    let store = Store::open_dir(&argus.data_dir).await.unwrap();
    let alice = argus.sign_in("alice", Default::default()).await;
    let alice = argus.refreshed(&alice).await;
    let bob = argus.sign_in("bob", Default::default()).await;
    let sub = sub_of(&argus, "alice").await;
    enrol_totp(&store, &sub).await;
    add_passkey(&store, &sub, "alice-key").await;
    let before: Vec<String> = rows_naming(&store, &sub).await.into_iter().map(|(t, _)| t).collect();
    for table in ["users", "sessions", "consents", "refresh_families", "refresh_tokens", "totp_credentials", "passkeys"]
    {
        assert!(before.iter().any(|t| t == table), "alice has rows in {table} before: {before:?}");
    }
    let mut events = argus.up.events.subscribe();

    // Without an admin token nothing happens.
    let url = format!("{}/admin/v1/users/alice", argus.up.issuer_url);
    assert_eq!(argus.call("DELETE", &url, &[], None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(argus.gate_status(&alice.access).await, StatusCode::OK);

    let r = argus.admin("DELETE", "/users/alice", None).await;
    assert_eq!((r.status, r.text.as_str()), (StatusCode::NO_CONTENT, ""));

    // Tokens die at the gate and at the token endpoint; the password opens nothing; bob is untouched.
    assert_eq!(argus.gate_status(&alice.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(argus.gate_status(&bob.access).await, StatusCode::OK);
    let refresh = argus.refresh(&alice.refresh).await;
    assert_eq!((refresh.status, refresh.body["error"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_grant")));
    assert!(argus::demo_client::token(&argus.up.issuer_url, "alice", PASSWORD, "openid").await.is_err());
    assert_eq!(rows_naming(&store, &sub).await, [], "no table keeps a row of the deleted user");
    assert_eq!(argus.admin("GET", "/users/alice", None).await.status, StatusCode::NOT_FOUND);

    // The gates keep refusing her tokens: a user revocation, in force, listed like any other.
    let listed = argus.admin("GET", "/revocations", None).await;
    let user_revoked = listed.body["revocations"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["scope"] == json!({ "kind": "user", "sub": sub }));
    assert!(user_revoked, "{}", listed.text);
    let seen = drain(&mut events).await;
    let change = seen.iter().find_map(|e| match &e.kind {
        EventKind::AdminChange(c) if c.action == "user.delete" => Some(c.clone()),
        _ => None,
    });
    let change = change.expect("an AdminChange user.delete");
    assert_eq!(change.target, sub);
    assert!(change.fields.iter().any(|f| f == "sessions") && change.fields.iter().any(|f| f == "users"), "{change:?}");
    assert!(seen.iter().any(|e| matches!(&e.kind, EventKind::Revoked(r) if r.by == "admin")));
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains(&alice.refresh) && !text.contains(PASSWORD), "no secret in the events");

    // Again, or someone unknown: 404 as a problem.
    let r = argus.admin("DELETE", "/users/alice", None).await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::NOT_FOUND, "application/problem+json"));

    // The name is free; the new alice is someone else: a new sub, no second factor, her own tokens work.
    let r = argus.admin("POST", "/users", Some(json!({ "username": "alice", "password": "the new alice" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let new_sub = r.body["user"]["sub"].as_str().unwrap().to_owned();
    assert_ne!(new_sub, sub);
    assert_eq!(rows_naming(&store, &new_sub).await, [("users".to_owned(), 1)]);
    let tokens = argus::demo_client::token(&argus.up.issuer_url, "alice", "the new alice", "openid accounts:read")
        .await
        .expect("the new alice signs in with the password alone");
    assert_eq!(argus.gate_status(tokens["access_token"].as_str().unwrap()).await, StatusCode::OK);
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passkeys_are_reset_and_users_deleted_through_the_api_and_the_cli() {
    let argus = Argus::start("").await;
    let store = Store::open_dir(&argus.data_dir).await.unwrap();
    let bob = argus.sign_in("bob", Default::default()).await;
    let bob_sub = sub_of(&argus, "bob").await;
    let alice_sub = sub_of(&argus, "alice").await;
    add_passkey(&store, &bob_sub, "bob-1").await;
    add_passkey(&store, &bob_sub, "bob-2").await;
    add_passkey(&store, &alice_sub, "alice-1").await;
    let mut events = argus.up.events.subscribe();

    let r = argus.admin("DELETE", "/users/bob/passkeys", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (&r.body["removed"], &r.body["passkeys_removed"], &r.body["user"]["sub"]),
        (&json!(true), &json!(2), &json!(bob_sub))
    );
    assert!(store.passkeys(&bob_sub).await.unwrap().is_empty());
    assert_eq!(store.passkeys(&alice_sub).await.unwrap().len(), 1, "only bob's");
    let seen = drain(&mut events).await;
    assert!(seen.iter().any(
        |e| matches!(&e.kind, EventKind::AdminChange(c) if c.action == "user.passkeys_reset" && c.target == bob_sub)
    ));
    assert!(seen.iter().any(|e| e.principal.sub.as_deref() == Some(bob_sub.as_str())
        && matches!(&e.kind, EventKind::Account(a) if a.activity == Activity::FactorRemoved && a.detail.as_deref() == Some("passkey"))));
    // Idempotent, and says so; nothing to tell anyone then.
    let r = argus.admin("DELETE", "/users/bob/passkeys", None).await;
    assert_eq!((r.status, &r.body["removed"]), (StatusCode::OK, &json!(false)));
    assert!(
        !drain(&mut events).await.iter().any(|e| matches!(&e.kind, EventKind::AdminChange(_) | EventKind::Account(_)))
    );
    let r = argus.admin("DELETE", "/users/nobody/passkeys", None).await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::NOT_FOUND, "application/problem+json"));
    let r = argus.admin("POST", "/users/bob/passkeys", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    // The CLI, through the real binary.
    let cli = |args: &[&str]| {
        let out = tokio::task::block_in_place(|| {
            std::process::Command::new(env!("CARGO_BIN_EXE_argus"))
                .args(["admin", "--issuer", &argus.up.issuer_url, "users"])
                .args(args)
                .env("ARGUS_ADMIN_CLIENT_SECRET", &argus.admin_secret)
                .env_remove("ARGUS_ADMIN_CLIENT_ID")
                .output()
                .unwrap()
        });
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = cli(&["reset-passkeys", "alice"]);
    assert!(ok, "{err}");
    assert!(out.contains("\"removed\": true"), "{out}");
    assert!(store.passkeys(&alice_sub).await.unwrap().is_empty());

    let (ok, out, err) = cli(&["delete", "bob"]);
    assert!(ok, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((&printed["deleted"]["sub"], &printed["deleted"]["username"]), (&json!(bob_sub), &json!("bob")));
    assert_eq!(argus.gate_status(&bob.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(rows_naming(&store, &bob_sub).await, []);
    let (ok, _, err) = cli(&["delete", "bob"]);
    assert!(!ok && err.contains("404"), "{err}");
    argus.shutdown().await;
}
