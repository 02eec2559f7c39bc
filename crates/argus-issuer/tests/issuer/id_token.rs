//! The id_token's `at_hash` follows the signing key's algorithm: half of SHA-256 for ES256, half of SHA-512 for
//! EdDSA (Ed25519).

use std::time::{Duration, Instant};

use argus_issuer::IssuerConfig;
use argus_jose::SigningKey;
use argus_model::Clock;
use argus_oauth::{IssuerStore, StoredSigningKey};

use crate::common::{Issuer, jwt_claims, jwt_header};

/// The number of keys in the JWKS, once it is `n` (the issuer looks at the store every second here).
async fn wait_for_keys(i: &Issuer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jwks = i.get("/jwks").await.json();
        let count = jwks["keys"].as_array().map_or(0, Vec::len);
        if count == n {
            return;
        }
        assert!(Instant::now() < deadline, "the JWKS has {count} keys, not {n}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_eddsa_id_token_carries_the_sha512_at_hash() {
    let i = Issuer::start_with(IssuerConfig { key_reload_secs: 1, ..IssuerConfig::default() }).await;
    let es256 = i.tokens_for("alice").await;
    let id = es256["id_token"].as_str().unwrap();
    assert_eq!(jwt_header(id)["alg"], "ES256");
    let access = es256["access_token"].as_str().unwrap();
    assert_eq!(jwt_claims(id)["at_hash"], argus_oauth::at_hash(access, "ES256"));
    assert_eq!(argus_oauth::at_hash(access, "ES256").len(), 22, "16 bytes: half of SHA-256");

    // An Ed25519 key, added as `argus keys rotate --alg EdDSA` adds it; it signs once its publishing lead is over.
    let key = SigningKey::generate_ed25519().unwrap();
    let stored = StoredSigningKey {
        kid: key.kid().to_owned(),
        alg: key.alg_name().to_owned(),
        pkcs8_der: key.pkcs8_der().to_vec(),
        created_at: i.clock.now().plus(Duration::from_secs(1)),
    };
    i.store.add_signing_key(&stored).await.unwrap();
    i.clock.advance(Duration::from_secs(1 + IssuerConfig::default().key_publish_lead_secs));
    wait_for_keys(&i, 2).await;

    let eddsa = i.tokens_for("bob").await;
    let id = eddsa["id_token"].as_str().unwrap();
    assert_eq!((jwt_header(id)["alg"].as_str(), jwt_header(id)["kid"].as_str()), (Some("EdDSA"), Some(key.kid())));
    let access = eddsa["access_token"].as_str().unwrap();
    let at_hash = jwt_claims(id)["at_hash"].as_str().unwrap().to_owned();
    assert_eq!(at_hash, argus_oauth::at_hash(access, "EdDSA"));
    assert_eq!(at_hash.len(), 43, "32 bytes: half of SHA-512");
    assert_ne!(at_hash, argus_oauth::at_hash(access, "ES256"));
}
