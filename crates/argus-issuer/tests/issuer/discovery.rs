use argus_issuer::{IssuerConfig, IssuerDeps};
use argus_oauth::IssuerStore;

use crate::common::{AUDIENCE, DEMO_SCOPES, Issuer};

#[tokio::test]
async fn discovery_documents_describe_the_issuer() {
    let i = Issuer::start().await;
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let r = i.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").unwrap().starts_with("application/json"));
        let m = r.json();
        assert_eq!(m["issuer"], i.base.as_str());
        for (key, path) in [
            ("authorization_endpoint", "/authorize"),
            ("token_endpoint", "/token"),
            ("jwks_uri", "/jwks"),
            ("userinfo_endpoint", "/userinfo"),
            ("revocation_endpoint", "/revoke"),
            ("introspection_endpoint", "/introspect"),
            ("pushed_authorization_request_endpoint", "/par"),
        ] {
            assert_eq!(m[key], format!("{}{path}", i.base), "{key}");
        }
        let list = |k: &str| -> Vec<String> {
            m[k].as_array().unwrap_or_else(|| panic!("{k}")).iter().map(|v| v.as_str().unwrap().to_owned()).collect()
        };
        assert_eq!(list("response_types_supported"), ["code"]);
        assert_eq!(list("response_modes_supported"), ["query"]);
        assert_eq!(list("grant_types_supported"), ["authorization_code", "refresh_token", "client_credentials"]);
        assert_eq!(list("code_challenge_methods_supported"), ["S256"]);
        let methods = ["none", "client_secret_basic", "client_secret_post", "private_key_jwt"];
        assert_eq!(list("token_endpoint_auth_methods_supported"), methods);
        assert_eq!(list("revocation_endpoint_auth_methods_supported"), methods);
        assert_eq!(list("introspection_endpoint_auth_methods_supported"), methods[1..]);
        for k in [
            "token_endpoint_auth_signing_alg_values_supported",
            "revocation_endpoint_auth_signing_alg_values_supported",
            "introspection_endpoint_auth_signing_alg_values_supported",
            "dpop_signing_alg_values_supported",
        ] {
            let algs = list(k);
            assert!(algs.iter().any(|a| a == "ES256") && algs.iter().any(|a| a == "EdDSA"), "{k}: {algs:?}");
            assert!(!algs.iter().any(|a| a == "none" || a.starts_with("HS")), "{k}: {algs:?}");
        }
        assert_eq!(m["require_pushed_authorization_requests"], false);
        assert_eq!(m["request_uri_parameter_supported"], false);
        assert_eq!(list("subject_types_supported"), ["public"]);
        assert_eq!(list("id_token_signing_alg_values_supported"), ["ES256"]);
        assert_eq!(m["authorization_response_iss_parameter_supported"], true);
        let scopes = list("scopes_supported");
        for s in DEMO_SCOPES.split(' ') {
            assert!(scopes.iter().any(|x| x == s), "{s} in {scopes:?}");
        }
        let claims = list("claims_supported");
        for c in ["sub", "iss", "auth_time", "nonce", "preferred_username"] {
            assert!(claims.iter().any(|x| x == c), "{c}");
        }
    }
}

#[tokio::test]
async fn jwks_publishes_the_public_key_and_the_key_survives_a_restart() {
    let i = Issuer::start().await;
    let r = i.get("/jwks").await;
    assert_eq!(r.status, 200);
    let jwks = r.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let k = &keys[0];
    assert_eq!(
        (k["kty"].as_str(), k["crv"].as_str(), k["alg"].as_str(), k["use"].as_str()),
        (Some("EC"), Some("P-256"), Some("ES256"), Some("sig"))
    );
    assert!(k["kid"].as_str().is_some_and(|kid| !kid.is_empty()));
    for private in ["d", "p", "q"] {
        assert!(k.get(private).is_none(), "no private part: {private}");
    }

    // A second issuer over the same store signs with the same key instead of creating one.
    let deps = i.deps();
    let _second = argus_issuer::router(&IssuerConfig::default(), &i.base, AUDIENCE, deps).await.unwrap();
    let stored = i.store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(Some(stored[0].kid.as_str()), k["kid"].as_str());
}

#[tokio::test]
async fn bad_configuration_is_refused_at_start() {
    let i = Issuer::start().await;
    let deps = || i.deps();
    let zero = IssuerConfig { code_ttl_secs: 0, ..IssuerConfig::default() };
    assert!(argus_issuer::router(&zero, &i.base, AUDIENCE, deps()).await.is_err());
    assert!(argus_issuer::router(&IssuerConfig::default(), "not a url", AUDIENCE, deps()).await.is_err());
    assert!(argus_issuer::router(&IssuerConfig::default(), &i.base, " ", deps()).await.is_err());
    let short_secret = IssuerDeps { dpop_nonce_secret: vec![1; 31], ..deps() };
    assert!(argus_issuer::router(&IssuerConfig::default(), &i.base, AUDIENCE, short_secret).await.is_err());
}
