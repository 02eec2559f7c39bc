//! The admin API's lists a page at a time (`?limit=&after=`, `next`, RFC 8288 `Link`), and `argus admin ... list`
//! following the pages to print everything.

mod support;

use std::collections::HashSet;
use std::process::Command;

use argus_model::id::new_id;
use argus_model::{Clock, SystemClock};
use argus_oauth::UserRecord;
use argus_oauth::admin::AdminStore;
use http::StatusCode;
use serde_json::{Value, json};
use support::Argus;

/// The ids of a page's entries.
fn ids(page: &Value, field: &str, id: &str) -> Vec<String> {
    page[field].as_array().unwrap().iter().map(|e| e[id].as_str().unwrap().to_owned()).collect()
}

/// Walk `/admin/v1/<field>` with `limit`, checking each page's `next` against its `Link`; the ids of every page.
async fn walk(argus: &Argus, token: &str, field: &str, id: &str, limit: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut path = format!("/{field}?limit={limit}");
    loop {
        let r = argus.admin_as(token, "GET", &path, None).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text);
        pages.push(ids(&r.body, field, id));
        let Some(next) = r.body["next"].as_str() else {
            assert_eq!(r.header("link"), "", "no Link on the last page");
            return pages;
        };
        let link = format!("<{}/admin/v1/{field}?limit={limit}&after={next}>; rel=\"next\"", argus.up.issuer_url);
        assert_eq!(r.header("link"), link);
        path = format!("/{field}?limit={limit}&after={next}");
    }
}

fn argus_cli(argus: &Argus, args: &[&str]) -> Value {
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_argus"))
            .args(["admin", "--issuer", &argus.up.issuer_url])
            .args(args)
            .env("ARGUS_ADMIN_CLIENT_SECRET", &argus.admin_secret)
            .env_remove("ARGUS_ADMIN_CLIENT_ID")
            .output()
            .unwrap()
    });
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_come_in_pages_without_duplicates_or_misses() {
    let argus = Argus::start("").await;
    // Straight into the store: 250 argon2id hashes through the API would take minutes in a debug build.
    let now = SystemClock.now();
    for i in 0..250 {
        let user = UserRecord {
            sub: new_id(),
            username: format!("user-{i:03}"),
            password_hash: "$argon2id$unused".into(),
            disabled: false,
        };
        assert!(argus.up.store.insert_user(&user, now).await.unwrap());
    }
    let everyone: HashSet<String> =
        argus.up.store.users(None, 10_000).await.unwrap().into_iter().map(|u| u.sub).collect();
    assert!(everyone.len() > 250 && everyone.len() <= 300, "250 and the demo users: {}", everyone.len());

    let token = argus.admin_token().await;
    let pages = walk(&argus, &token, "users", "sub", 100).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, everyone.len() - 200]);
    let listed: Vec<String> = pages.concat();
    assert_eq!(listed.iter().cloned().collect::<HashSet<_>>(), everyone, "every user, once");
    assert_eq!(listed.len(), everyone.len(), "no user twice");
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "in key order");

    // The default page is 100; a user created while someone pages through still shows up, once, on a later page.
    let first = argus.admin_as(&token, "GET", "/users", None).await;
    assert_eq!(ids(&first.body, "users", "sub").len(), 100);
    let r =
        argus.admin_as(&token, "POST", "/users", Some(json!({ "username": "late", "password": "a long passphrase" })));
    let late = r.await.body["user"]["sub"].as_str().unwrap().to_owned();
    let rest = argus
        .admin_as(&token, "GET", &format!("/users?limit=1000&after={}", first.body["next"].as_str().unwrap()), None)
        .await;
    let rest = ids(&rest.body, "users", "sub");
    assert_eq!(rest.len(), everyone.len() + 1 - 100);
    assert!(rest.contains(&late));

    // Anything else is a 400 problem, and nothing is listed.
    let not_utf8 = "_w"; // base64url of the byte 0xff
    for bad in [
        "limit=0",
        "limit=1001",
        "limit=ten",
        "limit=-1",
        "after=!!!",
        &format!("after={not_utf8}"),
        "limt=5",
        "limit=5&limit=6",
    ] {
        let r = argus.admin_as(&token, "GET", &format!("/users?{bad}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text);
        assert_eq!(r.header("content-type"), "application/problem+json", "{bad}");
        assert_eq!(r.body["type"], "urn:argus:problem:invalid-request", "{bad}");
        assert!(r.body.get("users").is_none());
    }

    // The CLI follows `next` and prints everyone; with --limit, one page and its cursor.
    let all = argus_cli(&argus, &["users", "list"]);
    assert_eq!(ids(&all, "users", "sub").len(), everyone.len() + 1);
    assert!(all.get("next").is_none());
    let page = argus_cli(&argus, &["users", "list", "--limit", "7"]);
    assert_eq!(ids(&page, "users", "sub"), listed[..7]);
    let next = page["next"].as_str().unwrap();
    let page = argus_cli(&argus, &["users", "list", "--limit", "3", "--after", next]);
    assert_eq!(ids(&page, "users", "sub"), listed[7..10]);
    argus.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_and_revocations_come_in_pages_too() {
    let argus = Argus::start("").await;
    let token = argus.admin_token().await;
    for i in 0..3 {
        let body =
            json!({ "client_id": format!("app-{i}"), "name": "app", "redirect_uris": ["https://app.example/cb"] });
        assert_eq!(argus.admin_as(&token, "POST", "/clients", Some(body)).await.status, StatusCode::CREATED);
        let revoke = json!({ "scope": { "kind": "token", "jti": new_id() } });
        assert_eq!(argus.admin_as(&token, "POST", "/revocations", Some(revoke)).await.status, StatusCode::CREATED);
    }
    let clients = walk(&argus, &token, "clients", "client_id", 2).await;
    let all_clients: Vec<String> = clients.concat();
    assert!(clients.iter().all(|p| p.len() <= 2) && clients.len() >= 3, "{clients:?}");
    for id in ["app-0", "app-1", "app-2", "demo-app", "argus-admin"] {
        assert_eq!(all_clients.iter().filter(|c| *c == id).count(), 1, "{id} once in {all_clients:?}");
    }
    let revocations = walk(&argus, &token, "revocations", "id", 2).await;
    assert_eq!(revocations.iter().map(Vec::len).collect::<Vec<_>>(), [2, 1]);

    let listed = argus_cli(&argus, &["clients", "list"]);
    assert_eq!(ids(&listed, "clients", "client_id"), all_clients);
    let listed = argus_cli(&argus, &["revocations"]);
    assert_eq!(ids(&listed, "revocations", "id"), revocations.concat());
    let r = argus.admin_as(&token, "GET", "/revocations?after=bm9wZQ&limit=1001", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    argus.shutdown().await;
}
