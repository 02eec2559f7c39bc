//! Black-box tests of the demo API over real HTTP.

mod common;

use common::{Demo, NOW, token_for};
use hyper::{Method, StatusCode};
use serde_json::json;

const PROTECTED_GETS: [&str; 4] = ["/accounts", "/accounts/1001", "/accounts/1001/transfers", "/transfers/5001"];

#[tokio::test]
async fn health_and_spec_are_public() {
    let demo = Demo::start().await;
    let health = demo.get("/health", None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({ "status": "ok" }));
    let spec = demo.get("/openapi.yaml", None).await;
    assert_eq!(spec.status, StatusCode::OK);
    assert_eq!(spec.header("content-type"), Some("application/yaml"));
    assert_eq!(spec.body, argus_demo::OPENAPI_YAML.as_bytes());
}

#[tokio::test]
async fn calls_without_a_token_are_refused_with_a_bearer_challenge() {
    let demo = Demo::start().await;
    for path in PROTECTED_GETS {
        let reply = demo.get(path, None).await;
        reply.assert_problem(401, "missing-token");
        assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="argus-demo""#), "{path}");
    }
    let post = demo.send(Method::POST, "/transfers", &[("content-type", "application/json")], b"{}".to_vec()).await;
    post.assert_problem(401, "missing-token");
}

#[tokio::test]
async fn a_token_without_a_subject_is_invalid() {
    let demo = Demo::start().await;
    for auth in ["Bearer abc", "Basic YWxpY2U6cHc=", "Bearer a.e30.c"] {
        for path in PROTECTED_GETS {
            let reply = demo.send(Method::GET, path, &[("authorization", auth)], Vec::new()).await;
            reply.assert_problem(401, "invalid-token");
            assert_eq!(reply.header("www-authenticate"), Some(r#"Bearer realm="argus-demo", error="invalid_token""#));
        }
    }
}

#[tokio::test]
async fn each_user_lists_only_their_own_accounts() {
    let demo = Demo::start().await;
    let alice = demo.get("/accounts", Some("sub-alice")).await;
    assert_eq!(alice.status, StatusCode::OK);
    assert_eq!(alice.header("content-type"), Some("application/json"));
    let alice = alice.json();
    let alice = alice.as_array().unwrap();
    assert_eq!(alice.len(), 3);
    assert!(alice.iter().all(|a| a["owner"] == "alice"));
    let ids: Vec<u64> = alice.iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, vec![1001, 1002, 1003]);
    assert_eq!(alice[0]["currency"], "EUR");
    assert!(alice[0]["balance"].is_i64());
    assert!(alice[0].get("owner_sub").is_none(), "the owner's sub is not part of the API");

    let bob = demo.get("/accounts", Some("sub-bob")).await.json();
    let bob_ids: Vec<u64> = bob.as_array().unwrap().iter().map(|a| a["id"].as_u64().unwrap()).collect();
    assert_eq!(bob_ids, vec![1004, 1005]);

    let stranger = demo.get("/accounts", Some("sub-unknown")).await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert_eq!(stranger.json(), json!([]));
}

#[tokio::test]
async fn object_reads_by_id_intentionally_skip_the_ownership_check() {
    let demo = Demo::start().await;
    // bob reads alice's account and a transfer between alice's accounts: the documented BOLA hole.
    let account = demo.get("/accounts/1001", Some("sub-bob")).await;
    assert_eq!(account.status, StatusCode::OK);
    assert_eq!(account.json()["owner"], "alice");
    let transfer = demo.get("/transfers/5001", Some("sub-bob")).await;
    assert_eq!(transfer.status, StatusCode::OK);
    let transfer = transfer.json();
    assert_eq!((transfer["from_account"].as_u64(), transfer["to_account"].as_u64()), (Some(1001), Some(1002)));
    assert!(transfer["created_at"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[tokio::test]
async fn bad_and_unknown_ids_are_problems() {
    let demo = Demo::start().await;
    for path in [
        "/accounts/abc",
        "/accounts/0",
        "/accounts/-1",
        "/transfers/1.5",
        "/accounts/%FF",
        "/transfers/99999999999999999999",
    ] {
        demo.get(path, Some("sub-alice")).await.assert_problem(400, "invalid-request");
    }
    for path in ["/accounts/999", "/transfers/999", "/accounts/999/transfers"] {
        demo.get(path, Some("sub-alice")).await.assert_problem(404, "not-found");
    }
}

#[tokio::test]
async fn account_transfers_are_the_owners_only_newest_first_and_paged() {
    let demo = Demo::start().await;
    let own = demo.get("/accounts/1001/transfers", Some("sub-alice")).await;
    assert_eq!(own.status, StatusCode::OK);
    let own = own.json();
    let ids: Vec<u64> = own.as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect();
    assert!(!ids.is_empty());
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "{ids:?}");
    let one = demo.get("/accounts/1001/transfers?limit=1", Some("sub-alice")).await.json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["id"].as_u64(), ids.first().copied());
    for query in ["limit=0", "limit=101", "limit=abc", "limit=-1"] {
        demo.get(&format!("/accounts/1001/transfers?{query}"), Some("sub-alice"))
            .await
            .assert_problem(400, "invalid-request");
    }
    // A foreign account looks exactly like a missing one.
    let foreign = demo.get("/accounts/1004/transfers", Some("sub-alice")).await;
    let missing = demo.get("/accounts/999/transfers", Some("sub-alice")).await;
    foreign.assert_problem(404, "not-found");
    assert_eq!(foreign.body, missing.body);
}

#[tokio::test]
async fn a_transfer_is_created_and_visible() {
    let demo = Demo::start().await;
    let before_from = demo.get("/accounts/1001", Some("sub-alice")).await.json()["balance"].as_i64().unwrap();
    let before_to = demo.get("/accounts/1004", Some("sub-alice")).await.json()["balance"].as_i64().unwrap();
    let body =
        json!({ "from_account": 1001, "to_account": 1004, "amount": 1999, "currency": "EUR", "memo": "Concert" });
    let reply = demo.post_transfer("sub-alice", &body).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    let created = reply.json();
    let id = created["id"].as_u64().unwrap();
    assert_eq!(reply.header("location"), Some(format!("/transfers/{id}").as_str()));
    assert_eq!(created["amount"], 1999);
    assert_eq!(created["memo"], "Concert");
    assert_eq!(created["created_at"], NOW.to_rfc3339());

    assert_eq!(demo.get(&format!("/transfers/{id}"), Some("sub-alice")).await.json(), created);
    let after_from = demo.get("/accounts/1001", Some("sub-alice")).await.json()["balance"].as_i64().unwrap();
    let after_to = demo.get("/accounts/1004", Some("sub-alice")).await.json()["balance"].as_i64().unwrap();
    assert_eq!((after_from, after_to), (before_from - 1999, before_to + 1999));
    let bobs = demo.get("/accounts/1004/transfers?limit=1", Some("sub-bob")).await.json();
    assert_eq!(bobs[0], created);

    // memo is optional.
    let no_memo = json!({ "from_account": 1001, "to_account": 1002, "amount": 1, "currency": "EUR" });
    let reply = demo.post_transfer("sub-alice", &no_memo).await;
    assert_eq!(reply.status, StatusCode::CREATED);
    assert_eq!(reply.json()["memo"], "");
}

#[tokio::test]
async fn refused_transfers_are_problems_and_change_nothing() {
    let demo = Demo::start().await;
    let snapshot = |demo: &Demo| (demo.api.accounts_of("sub-alice"), demo.api.accounts_of("sub-bob"));
    let before = snapshot(&demo);
    let cases = [
        (json!({ "from_account": 1004, "to_account": 1001, "amount": 1, "currency": "EUR" }), 403, "not-account-owner"),
        (json!({ "from_account": 999, "to_account": 1001, "amount": 1, "currency": "EUR" }), 403, "not-account-owner"),
        (
            json!({ "from_account": 1001, "to_account": 1004, "amount": 100_000_000, "currency": "EUR" }),
            409,
            "insufficient-funds",
        ),
        (json!({ "from_account": 1001, "to_account": 1004, "amount": 0, "currency": "EUR" }), 400, "invalid-request"),
        (json!({ "from_account": 1001, "to_account": 1004, "amount": -10, "currency": "EUR" }), 400, "invalid-request"),
        (json!({ "from_account": 1001, "to_account": 1004, "amount": 10, "currency": "XXX" }), 400, "invalid-request"),
        (json!({ "from_account": 1001, "to_account": 1003, "amount": 10, "currency": "EUR" }), 400, "invalid-request"),
        (json!({ "from_account": 1001, "to_account": 1001, "amount": 10, "currency": "EUR" }), 400, "invalid-request"),
        (json!({ "from_account": 1001, "to_account": 999, "amount": 10, "currency": "EUR" }), 400, "invalid-request"),
        (
            json!({ "from_account": 1001, "to_account": 1004, "amount": 10, "currency": "EUR", "fee": 0 }),
            400,
            "invalid-request",
        ),
        (
            json!({ "from_account": "1001", "to_account": 1004, "amount": 10, "currency": "EUR" }),
            400,
            "invalid-request",
        ),
        (json!({ "from_account": 1001, "to_account": 1004, "currency": "EUR" }), 400, "invalid-request"),
        (
            json!({ "from_account": 1001, "to_account": 1004, "amount": 10, "currency": "EUR", "memo": "x".repeat(141) }),
            400,
            "invalid-request",
        ),
        (json!([1001, 1004, 10]), 400, "invalid-request"),
    ];
    for (body, status, slug) in cases {
        let reply = demo.post_transfer("sub-alice", &body).await;
        reply.assert_problem(status, slug);
    }
    let raw = |content_type: &'static str, body: &[u8]| demo.post_raw("sub-alice", content_type, body.to_vec());
    raw("application/json", b"{not json").await.assert_problem(400, "invalid-request");
    raw("application/json", b"").await.assert_problem(400, "invalid-request");
    let valid = br#"{"from_account":1001,"to_account":1004,"amount":1,"currency":"EUR"}"#;
    raw("text/plain", valid).await.assert_problem(415, "unsupported-media-type");
    raw("application/x-www-form-urlencoded", valid).await.assert_problem(415, "unsupported-media-type");
    let huge = format!(
        r#"{{"from_account":1001,"to_account":1004,"amount":1,"currency":"EUR","memo":"{}"}}"#,
        "a".repeat(20_000)
    );
    raw("application/json", huge.as_bytes()).await.assert_problem(413, "body-too-large");

    assert_eq!(snapshot(&demo), before, "a refused transfer changed balances");
    demo.get("/transfers/5005", Some("sub-alice")).await.assert_problem(404, "not-found");
}

#[tokio::test]
async fn unknown_paths_and_methods_are_problems() {
    let demo = Demo::start().await;
    demo.get("/nope", Some("sub-alice")).await.assert_problem(404, "not-found");
    demo.get("/accounts/1001/extra/segments", Some("sub-alice")).await.assert_problem(404, "not-found");
    let auth = format!("Bearer {}", token_for("sub-alice"));
    let delete = demo.send(Method::DELETE, "/accounts/1001", &[("authorization", &auth)], Vec::new()).await;
    delete.assert_problem(405, "method-not-allowed");
    let get_transfers = demo.get("/transfers", Some("sub-alice")).await;
    get_transfers.assert_problem(405, "method-not-allowed");
}

#[tokio::test]
async fn responses_are_not_cacheable() {
    let demo = Demo::start().await;
    for reply in [
        demo.get("/accounts", Some("sub-alice")).await,
        demo.get("/accounts", None).await,
        demo.get("/nope", None).await,
    ] {
        assert_eq!(reply.header("cache-control"), Some("no-store"));
    }
}
