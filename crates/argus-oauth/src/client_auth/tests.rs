use argus_jose::SigningKey;
use serde_json::json;

use super::*;
use crate::client::{GrantType, new_client_secret};

const ISSUER: &str = "https://id.example";
const TOKEN_URL: &str = "https://id.example/token";
const NOW: i64 = 1_000_000;

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

fn params(q: &str) -> Params {
    Params::parse(q.as_bytes())
}

fn secret_client(method: TokenEndpointAuthMethod, secret: &str) -> ClientRegistration {
    ClientRegistration {
        client_id: "svc".into(),
        name: "Service".into(),
        public: false,
        token_endpoint_auth_method: method,
        client_secret_hash: Some(hash_client_secret(secret)),
        grant_types: vec![GrantType::ClientCredentials],
        ..ClientRegistration::default()
    }
}

fn jwt_client(key: &SigningKey) -> ClientRegistration {
    ClientRegistration {
        token_endpoint_auth_method: TokenEndpointAuthMethod::PrivateKeyJwt,
        client_secret_hash: None,
        jwks: Some(JwkSet { keys: vec![key.public_jwk().clone()] }),
        ..secret_client(TokenEndpointAuthMethod::ClientSecretBasic, "x")
    }
}

fn check() -> AssertionCheck<'static> {
    AssertionCheck {
        audiences: &[ISSUER, TOKEN_URL],
        now: Timestamp::from_secs(NOW),
        max_lifetime: Duration::from_secs(3600),
    }
}

fn claims() -> serde_json::Value {
    json!({"iss": "svc", "sub": "svc", "aud": TOKEN_URL, "exp": NOW + 60, "iat": NOW, "jti": "j-1"})
}

fn assertion(key: &SigningKey, claims: &serde_json::Value) -> String {
    key.sign("JWT", claims).unwrap()
}

fn code(r: Result<impl std::fmt::Debug, OAuthError>) -> &'static str {
    r.unwrap_err().code.as_str()
}

#[test]
fn basic_credentials_are_decoded_per_rfc_6749() {
    let h = format!("Basic {}", b64("my%20app:p%2Bss+word%3A"));
    let c = read_credentials(Some(&h), &params("grant_type=client_credentials")).unwrap();
    assert_eq!(c, Credentials::SecretBasic { client_id: "my app".into(), secret: "p+ss word:".into() });
    let same_id = read_credentials(Some(&h), &params("client_id=my+app")).unwrap();
    assert_eq!(same_id.client_id(), "my app");
    assert!(!format!("{c:?}").contains("word"), "Debug never shows the secret");

    for bad in ["Basic", "Basic !!!", &format!("Basic {}", b64("no-colon")), &format!("Basic {}", b64(":x"))] {
        assert_eq!(code(read_credentials(Some(bad), &params(""))), "invalid_client", "{bad}");
    }
    assert_eq!(code(read_credentials(Some(&format!("Basic {}", b64("a:%zz"))), &params(""))), "invalid_client");
    assert_eq!(code(read_credentials(Some("Bearer abc"), &params(""))), "invalid_client");
    assert_eq!(code(read_credentials(Some(&h), &params("client_id=other"))), "invalid_client");
}

#[test]
fn one_method_at_a_time() {
    let h = format!("Basic {}", b64("svc:s"));
    assert_eq!(code(read_credentials(Some(&h), &params("client_id=svc&client_secret=s"))), "invalid_request");
    let both = "client_id=svc&client_secret=s&client_assertion=a.b.c&client_assertion_type=x";
    assert_eq!(code(read_credentials(None, &params(both))), "invalid_request");
}

#[test]
fn body_credentials() {
    let post = read_credentials(None, &params("client_id=svc&client_secret=s")).unwrap();
    assert_eq!(post, Credentials::SecretPost { client_id: "svc".into(), secret: "s".into() });
    assert_eq!(code(read_credentials(None, &params("client_secret=s"))), "invalid_client");
    let none = read_credentials(None, &params("client_id=app")).unwrap();
    assert_eq!(none.method(), TokenEndpointAuthMethod::None);
    assert_eq!(code(read_credentials(None, &params("grant_type=x"))), "invalid_client");
}

#[test]
fn assertions_name_their_client() {
    let key = SigningKey::generate_es256().unwrap();
    let a = assertion(&key, &claims());
    let q = format!("client_assertion={a}&client_assertion_type={JWT_BEARER_CLIENT_ASSERTION_TYPE}");
    let c = read_credentials(None, &params(&q)).unwrap();
    assert_eq!((c.client_id(), c.method()), ("svc", TokenEndpointAuthMethod::PrivateKeyJwt));
    assert_eq!(code(read_credentials(None, &params(&format!("{q}&client_id=other")))), "invalid_client");
    let wrong_type = format!("client_assertion={a}&client_assertion_type=urn:x");
    assert_eq!(code(read_credentials(None, &params(&wrong_type))), "invalid_client");
    let garbage = format!("client_assertion=abc&client_assertion_type={JWT_BEARER_CLIENT_ASSERTION_TYPE}");
    assert_eq!(code(read_credentials(None, &params(&garbage))), "invalid_client");
}

#[test]
fn secrets_must_match_and_the_method_must_be_the_registered_one() {
    let secret = new_client_secret();
    let basic = secret_client(TokenEndpointAuthMethod::ClientSecretBasic, &secret);
    let ok = Credentials::SecretBasic { client_id: "svc".into(), secret: secret.clone() };
    assert_eq!(authenticate_client(&basic, &ok, &check()), Ok(None));
    let wrong = Credentials::SecretBasic { client_id: "svc".into(), secret: format!("{secret}x") };
    assert_eq!(code(authenticate_client(&basic, &wrong, &check())), "invalid_client");
    let as_post = Credentials::SecretPost { client_id: "svc".into(), secret: secret.clone() };
    assert_eq!(code(authenticate_client(&basic, &as_post, &check())), "invalid_client", "method is fixed");
    let none = Credentials::None { client_id: "svc".into() };
    assert_eq!(code(authenticate_client(&basic, &none, &check())), "invalid_client", "no downgrade to none");
    let disabled = ClientRegistration { disabled: true, ..basic.clone() };
    assert_eq!(code(authenticate_client(&disabled, &ok, &check())), "invalid_client");

    let public = ClientRegistration::default();
    assert_eq!(authenticate_client(&public, &Credentials::None { client_id: String::new() }, &check()), Ok(None));
    assert_eq!(code(authenticate_client(&public, &ok, &check())), "invalid_client");
}

#[test]
fn a_good_assertion_verifies() {
    let key = SigningKey::generate_es256().unwrap();
    let client = jwt_client(&key);
    let a = assertion(&key, &claims());
    let creds = Credentials::PrivateKeyJwt { client_id: "svc".into(), assertion: a };
    let v = authenticate_client(&client, &creds, &check()).unwrap().unwrap();
    assert_eq!(v, VerifiedAssertion { jti: "j-1".into(), expires_at: Timestamp::from_secs(NOW + 60) });

    // The issuer identifier, or an array containing an accepted value, is an accepted audience too.
    for aud in [json!(ISSUER), json!(["https://other", TOKEN_URL])] {
        let mut c = claims();
        c["aud"] = aud;
        assert!(verify_client_assertion(&assertion(&key, &c), "svc", client.jwks.as_ref().unwrap(), &check()).is_ok());
    }
}

#[test]
fn a_key_without_kid_is_found_by_type() {
    let key = SigningKey::generate_es256().unwrap();
    let mut public = key.public_jwk().clone();
    public.common.key_id = None;
    let jwks = JwkSet { keys: vec![public] };
    let header = jsonwebtoken::Header::new(Algorithm::ES256);
    let enc = jsonwebtoken::EncodingKey::from_ec_der(key.pkcs8_der());
    let a = jsonwebtoken::encode(&header, &claims(), &enc).unwrap();
    assert!(verify_client_assertion(&a, "svc", &jwks, &check()).is_ok());
}

#[test]
fn each_bad_assertion_is_refused() {
    let key = SigningKey::generate_es256().unwrap();
    let other = SigningKey::generate_es256().unwrap();
    let jwks = JwkSet { keys: vec![key.public_jwk().clone()] };
    let verify = |a: &str| verify_client_assertion(a, "svc", &jwks, &check()).map_err(|e| e.description);
    let with = |k: &str, v: serde_json::Value| {
        let mut c = claims();
        c[k] = v;
        assertion(&key, &c)
    };
    let without = |k: &str| {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(k);
        assertion(&key, &c)
    };

    assert!(verify("not-a-jwt").is_err());
    assert!(verify(&assertion(&other, &claims())).is_err(), "signed by a key the client does not have");
    assert!(verify(&with("iss", json!("intruder"))).is_err());
    assert!(verify(&with("sub", json!("intruder"))).is_err());
    assert!(verify(&with("aud", json!("https://elsewhere/token"))).is_err());
    assert!(verify(&with("exp", json!(NOW - 31))).is_err(), "expired");
    assert!(verify(&with("exp", json!(NOW + 3600 + 31))).is_err(), "valid for too long");
    assert!(verify(&with("iat", json!(NOW + 31))).is_err(), "issued in the future");
    assert!(verify(&with("nbf", json!(NOW + 31))).is_err(), "not valid yet");
    assert!(verify(&with("jti", json!(""))).is_err());
    assert!(verify(&with("jti", json!("j".repeat(257)))).is_err());
    for claim in ["exp", "jti", "aud", "iss", "sub"] {
        assert!(verify(&without(claim)).is_err(), "{claim} is required");
    }

    // HS256 with anything as the secret is never accepted, nor alg=none.
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims(),
        &jsonwebtoken::EncodingKey::from_secret(b"secret").unwrap(),
    )
    .unwrap();
    assert!(verify(&hs).is_err());
    let none =
        format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#), URL_SAFE_NO_PAD.encode(claims().to_string()));
    assert!(verify(&none).is_err());
}

/// A compact JWS signed with an RSA key by aws-lc-rs directly, as a client library would make it.
fn rsa_signed(pair: &aws_lc_rs::rsa::KeyPair, alg: &str, claims: &serde_json::Value) -> String {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256, RsaEncoding};
    let encoding: &'static dyn RsaEncoding = if alg == "PS256" { &RSA_PSS_SHA256 } else { &RSA_PKCS1_SHA256 };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT"}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public_modulus_len()];
    pair.sign(encoding, &aws_lc_rs::rand::SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

#[test]
fn rsa_assertions_verify_as_common_libraries_send_them() {
    use aws_lc_rs::signature::{KeyPair, RsaPublicKeyComponents};
    // authlib's private_key_jwt default: RS256, no kid, valid for an hour.
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
    let jwk = json!({"kty": "RSA", "n": URL_SAFE_NO_PAD.encode(&parts.n), "e": URL_SAFE_NO_PAD.encode(&parts.e)});
    let jwks: JwkSet = serde_json::from_value(json!({ "keys": [jwk] })).unwrap();
    let mut c = claims();
    c["exp"] = json!(NOW + 3600);
    for alg in ["RS256", "PS256"] {
        assert!(verify_client_assertion(&rsa_signed(&pair, alg, &c), "svc", &jwks, &check()).is_ok(), "{alg}");
    }
    // An EC key does not verify an RS256 assertion, nor the RSA key an ES256 one.
    let ec = SigningKey::generate_es256().unwrap();
    let ec_only = JwkSet { keys: vec![ec.public_jwk().clone()] };
    assert!(verify_client_assertion(&rsa_signed(&pair, "RS256", &c), "svc", &ec_only, &check()).is_err());
    assert!(verify_client_assertion(&assertion(&ec, &claims()), "svc", &jwks, &check()).is_err());
}
