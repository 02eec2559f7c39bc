//! The admin API end to end: who may call it (RFC 6750 answers otherwise), clients and users through it, the
//! events it emits, and the `argus admin` CLI against a running Argus.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use argus_bus::Received;
use argus_model::EventKind;
use http::StatusCode;
use serde_json::json;
use support::{Argus, PASSWORD};

/// A confidential client with `scopes`, created through the admin API; its secret.
async fn service(argus: &Argus, id: &str, scopes: &[&str]) -> String {
    let r = argus
        .admin(
            "POST",
            "/clients",
            Some(json!({
                "client_id": id, "name": id, "allowed_scopes": scopes,
                "token_endpoint_auth_method": "client_secret_basic",
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["client_secret"].as_str().unwrap().to_owned()
}

async fn token_of(argus: &Argus, id: &str, secret: &str, scope: &str) -> String {
    let r = argus.client_token(id, secret, scope).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_enabled_admin_clients_with_the_admin_scope_get_in() {
    let argus = Argus::start("").await;
    let url = format!("{}/admin/v1/clients", argus.up.issuer_url);

    // No token: 401 with a bare challenge (RFC 6750 §3.1), as a problem.
    let r = argus.call("GET", &url, &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.header("www-authenticate").starts_with("Bearer realm=\"argus-admin\""));
    assert!(!r.header("www-authenticate").contains("error="));
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.body["type"], "urn:argus:problem:missing-token");

    let invalid = |r: &support::Reply| {
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
        assert!(r.header("www-authenticate").contains("error=\"invalid_token\""), "{}", r.header("www-authenticate"));
    };
    invalid(&argus.admin_as("not-a-token", "GET", "/clients", None).await);
    let admin = argus.admin_token().await;
    invalid(&argus.admin_as(&format!("{admin}x"), "GET", "/clients", None).await);
    // Two Authorization headers: 400 invalid_request.
    let bearer = format!("Bearer {admin}");
    let r = argus.call("GET", &url, &[("authorization", &bearer), ("authorization", &bearer)], None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.header("www-authenticate").contains("invalid_request"));
    // A user's token, even a valid one, is not an admin token.
    let alice = argus.sign_in("alice", Default::default()).await;
    invalid(&argus.admin_as(&alice.access, "GET", "/clients", None).await);

    // A client-credentials token without the scope: 403 insufficient_scope naming argus:admin.
    let secret = service(&argus, "reporting", &["accounts:read"]).await;
    let reporting = token_of(&argus, "reporting", &secret, "accounts:read").await;
    let r = argus.admin_as(&reporting, "GET", "/clients", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let challenge = r.header("www-authenticate");
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"argus:admin\""));

    // A second admin client works until it is disabled; then its token and its credentials are refused.
    let ops_secret = service(&argus, "ops", &["argus:admin"]).await;
    let ops = token_of(&argus, "ops", &ops_secret, "argus:admin").await;
    assert_eq!(argus.admin_as(&ops, "GET", "/users", None).await.status, StatusCode::OK);
    let r = argus.admin("POST", "/clients/ops/disable", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["client"]["disabled"], true);
    invalid(&argus.admin_as(&ops, "GET", "/users", None).await);
    assert_eq!(argus.client_token("ops", &ops_secret, "argus:admin").await.status, StatusCode::UNAUTHORIZED);

    // An admin client that loses the scope loses the API, with the tokens it already has.
    let ops2_secret = service(&argus, "ops2", &["argus:admin"]).await;
    let ops2 = token_of(&argus, "ops2", &ops2_secret, "argus:admin").await;
    let r = argus.admin("PATCH", "/clients/ops2", Some(json!({ "allowed_scopes": ["accounts:read"] }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(argus.admin_as(&ops2, "GET", "/users", None).await.status, StatusCode::FORBIDDEN);

    // A revoked admin token is refused.
    let r = argus
        .admin(
            "POST",
            "/revocations",
            Some(json!({ "scope": { "kind": "token", "jti": support::claim(&admin, "jti") } })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    invalid(&argus.admin_as(&admin, "GET", "/clients", None).await);
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_are_created_shown_changed_and_their_secrets_rotated() {
    let argus = Argus::start("").await;
    let mut events = argus.up.events.subscribe();

    let secret = service(&argus, "billing", &["accounts:read"]).await;
    let r = argus.admin("GET", "/clients/billing", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["client"]["has_secret"], true);
    assert!(!r.text.contains(&secret) && !r.text.contains("hash"), "neither the secret nor its hash is shown");
    let listed = argus.admin("GET", "/clients", None).await;
    let ids: Vec<&str> =
        listed.body["clients"].as_array().unwrap().iter().filter_map(|c| c["client_id"].as_str()).collect();
    assert!(ids.contains(&"billing") && ids.contains(&"demo-app") && ids.contains(&"argus-admin"), "{ids:?}");

    // A public app gets an id and no secret.
    let r = argus
        .admin("POST", "/clients", Some(json!({ "name": "SPA", "redirect_uris": ["https://spa.example/cb"] })))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert!(r.body.get("client_secret").is_none());
    assert!(r.header("location").starts_with("/admin/v1/clients/"));

    // The same id again: 409, and the first registration is untouched.
    let dup = argus
        .admin(
            "POST",
            "/clients",
            Some(json!({ "client_id": "billing", "name": "Other", "redirect_uris": ["https://x.example/cb"] })),
        )
        .await;
    assert_eq!(dup.status, StatusCode::CONFLICT, "{}", dup.text);
    assert_eq!(argus.admin("GET", "/clients/billing", None).await.body["client"]["name"], "billing");

    let r =
        argus.admin("PATCH", "/clients/billing", Some(json!({ "name": "Billing", "access_token_ttl_secs": 60 }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["client"]["name"].as_str(), r.body["client"]["access_token_ttl_secs"].as_u64()),
        (Some("Billing"), Some(60))
    );

    // A new secret: the old one stops working, the new one works.
    let r = argus.admin("POST", "/clients/billing/secret", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.header("cache-control"), "no-store");
    let new_secret = r.body["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(argus.client_token("billing", &secret, "accounts:read").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(argus.client_token("billing", &new_secret, "accounts:read").await.status, StatusCode::OK);
    // A public client has no secret to rotate.
    assert_eq!(argus.admin("POST", "/clients/demo-app/secret", None).await.status, StatusCode::BAD_REQUEST);

    let mut actions = Vec::new();
    while let Ok(Some(Received::Message(e))) =
        tokio::time::timeout(std::time::Duration::from_millis(200), events.recv()).await
    {
        if let EventKind::AdminChange(c) = &e.kind {
            assert_eq!(e.principal.client_id.as_deref(), Some("argus-admin"));
            actions.push(format!("{} {}", c.action, c.target));
        }
    }
    assert!(actions.contains(&"client.create billing".to_owned()), "{actions:?}");
    assert!(actions.contains(&"client.update billing".to_owned()), "{actions:?}");
    assert!(actions.contains(&"client.rotate_secret billing".to_owned()), "{actions:?}");
    assert_eq!(
        actions.iter().filter(|a| a.starts_with("client.create")).count(),
        2,
        "the refused duplicate emits nothing"
    );
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problems_and_change_nothing() {
    let argus = Argus::start("").await;
    let token = argus.admin_token().await;
    let bearer = format!("Bearer {token}");
    let url = |p: &str| format!("{}/admin/v1{p}", argus.up.issuer_url);

    let r = argus
        .call(
            "POST",
            &url("/users"),
            &[("authorization", &bearer), ("content-type", "text/plain")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for (path, body) in [
        ("/users", "not json"),
        ("/users", r#"{"username":"eve"}"#),
        ("/users", r#"{"username":"eve","password":"pw","role":"root"}"#),
        ("/users", r#"{"username":"","password":"pw"}"#),
        ("/clients", r#"{"name":"no redirect"}"#),
        ("/clients", r#"{"name":"x","redirect_uris":["https://a.example/cb#frag"]}"#),
    ] {
        let r = argus
            .call(
                "POST",
                &url(path),
                &[("authorization", &bearer), ("content-type", "application/json")],
                Some(body.as_bytes().to_vec()),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.header("content-type"), "application/problem+json");
        assert_eq!(r.body["status"], 400);
    }
    assert_eq!(argus.admin_as(&token, "GET", "/users/nobody", None).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        argus.admin_as(&token, "PATCH", "/clients/nobody", Some(json!({"name": "x"}))).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(argus.admin_as(&token, "PATCH", "/users/alice", Some(json!({}))).await.status, StatusCode::BAD_REQUEST);
    let r = argus.admin_as(&token, "GET", "/nothing/here", None).await;
    assert_eq!((r.status, r.header("content-type")), (StatusCode::NOT_FOUND, "application/problem+json"));
    let r = argus.admin_as(&token, "DELETE", "/clients", None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    // Nothing was created by any of it.
    let users = argus.admin_as(&token, "GET", "/users", None).await;
    assert_eq!(users.body["users"].as_array().unwrap().len(), 2, "{}", users.text);
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_created_changed_and_disabled() {
    let argus = Argus::start("").await;
    let r = argus.admin("POST", "/users", Some(json!({ "username": "carol", "password": "carol's first" }))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sub = r.body["user"]["sub"].as_str().unwrap().to_owned();
    assert!(!r.text.contains("carol's first") && !r.text.contains("argon2"));
    let dup = argus.admin("POST", "/users", Some(json!({ "username": "carol", "password": "x" }))).await;
    assert_eq!(dup.status, StatusCode::CONFLICT);
    assert_eq!(argus.admin("GET", "/users/carol", None).await.body["user"]["sub"], sub.as_str());
    assert_eq!(argus.admin("GET", &format!("/users/{sub}"), None).await.body["user"]["username"], "carol");

    let signed_in = argus::demo_client::token(&argus.up.issuer_url, "carol", "carol's first", "openid").await;
    assert!(signed_in.is_ok(), "{signed_in:?}");
    let r = argus.admin("PATCH", "/users/carol", Some(json!({ "password": "carol's second" }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(argus::demo_client::token(&argus.up.issuer_url, "carol", "carol's first", "openid").await.is_err());
    assert!(argus::demo_client::token(&argus.up.issuer_url, "carol", "carol's second", "openid").await.is_ok());

    // Disabling alice ends her sessions and revokes her tokens; bob is untouched.
    let alice = argus.sign_in("alice", Default::default()).await;
    let bob = argus.sign_in("bob", Default::default()).await;
    let r = argus.admin("POST", "/users/alice/disable", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["user"]["disabled"], true);
    assert_eq!(r.body["revoked"]["revocation"]["scope"]["kind"], "user");
    assert_eq!(argus.gate_status(&alice.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(argus.gate_status(&bob.access).await, StatusCode::OK);
    assert_eq!(argus.refresh(&alice.refresh).await.status, StatusCode::BAD_REQUEST);
    assert!(argus::demo_client::token(&argus.up.issuer_url, "alice", PASSWORD, "openid").await.is_err());
    // And enabled again.
    let r = argus.admin("PATCH", "/users/alice", Some(json!({ "disabled": false }))).await;
    assert_eq!(r.body["user"]["disabled"], false);
    assert!(argus::demo_client::token(&argus.up.issuer_url, "alice", PASSWORD, "openid").await.is_ok());
    argus.shutdown().await;
}

fn argus_cli(argus: &Argus, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["admin", "--issuer", &argus.up.issuer_url])
        .args(args)
        .env("ARGUS_ADMIN_CLIENT_SECRET", &argus.admin_secret)
        .env_remove("ARGUS_ADMIN_CLIENT_ID")
        .env_remove("ARGUS_USER_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_drives_the_admin_api() {
    let argus = Argus::start("").await;
    let alice = argus.sign_in("alice", Default::default()).await;
    let bob = argus.sign_in("bob", Default::default()).await;

    // Blocking subprocesses run off the runtime's threads.
    let run = |args: Vec<&'static str>, stdin: Option<&'static str>| {
        let argus = &argus;
        async move { tokio::task::block_in_place(|| argus_cli(argus, &args, stdin)) }
    };
    let (ok, out, err) = run(vec!["clients", "list"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"demo-app\""), "{out}");

    let (ok, out, err) =
        run(vec!["users", "create", "--username", "dave", "--password-stdin"], Some("dave's password\n")).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"dave\""), "{out}");
    assert!(argus::demo_client::token(&argus.up.issuer_url, "dave", "dave's password", "openid").await.is_ok());

    // A user named by user name is resolved to the sub.
    let (ok, out, err) = run(vec!["revoke", "--user", "alice"], None).await;
    assert!(ok, "{err}");
    assert!(out.contains("\"user\""), "{out}");
    assert_eq!(argus.gate_status(&alice.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(argus.gate_status(&bob.access).await, StatusCode::OK);
    let (ok, _, err) = run(vec!["revoke", "--grant", "bob", "demo-app"], None).await;
    assert!(ok, "{err}");
    assert_eq!(argus.gate_status(&bob.access).await, StatusCode::UNAUTHORIZED);

    let (ok, out, _) = run(vec!["revocations"], None).await;
    assert!(ok && out.contains("\"grant\""), "{out}");
    // Errors come back as problems, and a non-zero exit.
    let (ok, _, err) = run(vec!["clients", "show", "nope"], None).await;
    assert!(!ok && err.contains("404"), "{err}");
    let (ok, _, err) = run(vec!["revoke", "--token", "a", "--user", "b"], None).await;
    assert!(!ok && err.contains("cannot be used with"), "{err}");
    argus.shutdown().await;
}

#[test]
fn bootstrap_writes_an_admin_client_and_prints_its_secret_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_argus"))
        .args(["admin", "bootstrap", "--data-dir"])
        .arg(dir.path())
        .env_remove("ARGUS_ADMIN_CLIENT_SECRET")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let secret = stdout.lines().nth(2).unwrap_or_default().trim().to_owned();
    assert_eq!(secret.len(), 43, "{stdout}");

    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = argus_store::Store::open_dir(dir.path()).await.unwrap();
        let client = argus_oauth::IssuerStore::client(&store, "argus-admin").await.unwrap().unwrap();
        assert_eq!(client.client_secret_hash, Some(argus_oauth::hash_client_secret(&secret)));
        assert_eq!(client.allowed_scopes, ["argus:admin"]);
        assert!(!client.public && !client.disabled);
        let audit = argus_detect::AuditLog::records_after(&store, 0, 10).await.unwrap();
        assert!(audit.iter().any(|r| r.event_type == "AdminChange"), "bootstrap is audited");
    });
}
