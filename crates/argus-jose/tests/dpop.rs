//! RFC 9449 §4.3 checks of `verify_dpop_proof`, one refused proof per error, with proofs from argus-testkit.

use argus_jose::{DPOP_IAT_LEEWAY_SECS, DpopCheck, DpopError, verify_dpop_proof};
use argus_testkit::{DpopKey, DpopProofBuilder};
use serde_json::json;

const NOW: i64 = 1_764_000_000;
const URL: &str = "https://api.example.com/accounts/42";
const TOKEN: &str = "eyJ.access.token";

fn check(access_token: Option<&str>) -> DpopCheck<'_> {
    DpopCheck { method: "GET", url: URL, now_secs: NOW, max_age_secs: 60, access_token }
}

fn good(key: &DpopKey) -> DpopProofBuilder<'_> {
    key.proof("GET", URL, NOW).ath_for(TOKEN)
}

fn verify(proof: &DpopProofBuilder<'_>) -> Result<argus_jose::DpopProof, DpopError> {
    verify_dpop_proof(&proof.build(), &check(Some(TOKEN)))
}

#[test]
fn a_good_proof_verifies_and_reports_its_claims() {
    let key = DpopKey::es256();
    let proof = verify(&good(&key).jti("j-1").nonce("n-1")).unwrap();
    assert_eq!(proof.jkt, key.jkt());
    assert_eq!((proof.jti.as_str(), proof.iat, proof.htm.as_str(), proof.htu.as_str()), ("j-1", NOW, "GET", URL));
    assert_eq!(proof.nonce.as_deref(), Some("n-1"));
    assert!(proof.ath.is_some());
    assert_eq!(proof.replayable_until(60), NOW + 60 + DPOP_IAT_LEEWAY_SECS);
}

#[test]
fn ath_is_only_required_with_an_access_token() {
    let key = DpopKey::es256();
    let at_token_endpoint = key.proof("GET", URL, NOW).build();
    assert!(verify_dpop_proof(&at_token_endpoint, &check(None)).is_ok());
    assert_eq!(verify_dpop_proof(&at_token_endpoint, &check(Some(TOKEN))), Err(DpopError::MissingAth));
    assert_eq!(verify(&good(&key).ath_for("another token")), Err(DpopError::AthMismatch));
}

#[test]
fn htu_and_htm_are_compared_after_normalisation() {
    let key = DpopKey::es256();
    let variant = key.proof("GET", "HTTPS://API.example.com:443/accounts/42?page=2#x", NOW).ath_for(TOKEN);
    assert!(verify(&variant).is_ok());
    assert_eq!(verify(&key.proof("POST", URL, NOW).ath_for(TOKEN)), Err(DpopError::MethodMismatch));
    assert_eq!(verify(&key.proof("get", URL, NOW).ath_for(TOKEN)), Err(DpopError::MethodMismatch));
    let other_path = key.proof("GET", "https://api.example.com/accounts/43", NOW).ath_for(TOKEN);
    assert_eq!(verify(&other_path), Err(DpopError::UrlMismatch));
    let other_port = key.proof("GET", "https://api.example.com:8443/accounts/42", NOW).ath_for(TOKEN);
    assert_eq!(verify(&other_port), Err(DpopError::UrlMismatch));
    let not_a_url = key.proof("GET", "/accounts/42", NOW).ath_for(TOKEN);
    assert_eq!(verify(&not_a_url), Err(DpopError::UrlMismatch));
}

#[test]
fn iat_window_holds_in_both_directions() {
    let key = DpopKey::es256();
    let edge = 60 + DPOP_IAT_LEEWAY_SECS;
    assert!(verify(&key.proof("GET", URL, NOW - edge).ath_for(TOKEN)).is_ok());
    assert!(verify(&key.proof("GET", URL, NOW + edge).ath_for(TOKEN)).is_ok());
    assert_eq!(verify(&key.proof("GET", URL, NOW - edge - 1).ath_for(TOKEN)), Err(DpopError::IatOutOfWindow));
    assert_eq!(verify(&key.proof("GET", URL, NOW + edge + 1).ath_for(TOKEN)), Err(DpopError::IatOutOfWindow));
    assert_eq!(verify(&key.proof("GET", URL, i64::MIN).ath_for(TOKEN)), Err(DpopError::IatOutOfWindow));
    // A fractional NumericDate is allowed by RFC 7519.
    assert!(verify(&good(&key).claim("iat", json!(NOW as f64 + 0.5))).is_ok());
}

#[test]
fn every_accepted_key_type_verifies() {
    for key in [DpopKey::es256(), DpopKey::es384(), DpopKey::ed25519(), DpopKey::rs256(), DpopKey::ps256()] {
        assert_eq!(verify(&good(&key)).map(|p| p.jkt), Ok(key.jkt()), "{}", key.alg_name());
    }
}

#[test]
fn an_rsa_key_signs_only_under_its_own_padding_and_never_as_ec() {
    let rsa = DpopKey::rs256();
    // A PKCS#1 v1.5 signature presented as PSS does not verify.
    assert_eq!(verify(&good(&rsa).alg("PS256")), Err(DpopError::BadSignature));
    assert_eq!(verify(&good(&rsa).alg("ES256")), Err(DpopError::InvalidKey));
    // An RSA key below 2048 bits is not accepted (aws-lc-rs verifies 2048..=8192).
    let mut small = rsa.public_jwk_json();
    small["n"] = json!(b64_bytes(&[0xC5; 128]));
    assert_eq!(verify(&good(&rsa).jwk(small)), Err(DpopError::InvalidKey));
}

fn b64_bytes(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[test]
fn wrong_type_is_refused() {
    let key = DpopKey::es256();
    assert_eq!(verify(&good(&key).typ("JWT")), Err(DpopError::WrongType));
    assert_eq!(verify(&good(&key).typ("at+jwt")), Err(DpopError::WrongType));
    assert_eq!(verify(&good(&key).typ("application/dpop+jwt")), Err(DpopError::WrongType));
}

#[test]
fn symmetric_and_unsigned_algorithms_are_refused() {
    let key = DpopKey::es256();
    for alg in ["HS256", "none", "RS1", "ES512", ""] {
        assert_eq!(verify(&good(&key).alg(alg)), Err(DpopError::UnsupportedAlgorithm), "{alg}");
    }
    assert_eq!(verify(&good(&key).unsigned()), Err(DpopError::UnsupportedAlgorithm));
}

#[test]
fn the_key_must_be_public_and_fit_the_algorithm() {
    let key = DpopKey::es256();
    let mut private = key.public_jwk_json();
    private["d"] = json!("c2VjcmV0");
    assert_eq!(verify(&good(&key).jwk(private)), Err(DpopError::PrivateKeyInHeader));
    assert_eq!(verify(&good(&key).jwk(json!({ "kty": "oct", "k": "c2VjcmV0" }))), Err(DpopError::PrivateKeyInHeader));
    assert_eq!(verify(&good(&key).jwk(json!(null))), Err(DpopError::InvalidKey));
    assert_eq!(verify(&good(&key).jwk(json!({ "kty": "EC", "crv": "P-256" }))), Err(DpopError::InvalidKey));
    // An Ed25519 key under alg ES256, and a P-384 key under ES256: never let the header pick the curve.
    assert_eq!(verify(&good(&key).jwk(DpopKey::ed25519().public_jwk_json())), Err(DpopError::InvalidKey));
    assert_eq!(verify(&good(&key).jwk(DpopKey::es384().public_jwk_json())), Err(DpopError::InvalidKey));
    let mut names_other_alg = key.public_jwk_json();
    names_other_alg["alg"] = json!("ES384");
    assert_eq!(verify(&good(&key).jwk(names_other_alg)), Err(DpopError::InvalidKey));
    let mut bad_point = key.public_jwk_json();
    bad_point["x"] = json!("AAAA");
    assert_eq!(verify(&good(&key).jwk(bad_point)), Err(DpopError::InvalidKey));
    let no_jwk = {
        let proof = good(&key).build();
        let mut parts: Vec<String> = proof.split('.').map(str::to_owned).collect();
        parts[0] = b64(r#"{"typ":"dpop+jwt","alg":"ES256"}"#);
        parts.join(".")
    };
    assert_eq!(verify_dpop_proof(&no_jwk, &check(Some(TOKEN))), Err(DpopError::InvalidKey));
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    assert_eq!(verify(&good(&key).jwk(other.public_jwk_json())), Err(DpopError::BadSignature));
    assert_eq!(verify(&good(&key).tamper_signature()), Err(DpopError::BadSignature));
    assert_eq!(verify(&good(&DpopKey::ed25519()).tamper_signature()), Err(DpopError::BadSignature));
}

#[test]
fn malformed_proofs_are_refused() {
    let key = DpopKey::es256();
    let good_proof = good(&key).build();
    let c = check(Some(TOKEN));
    for bad in ["", "a.b", "a.b.c.d", "..", "!!.!!.!!", &"a".repeat(10_000)] {
        assert_eq!(verify_dpop_proof(bad, &c), Err(DpopError::Malformed), "{bad:.20}");
    }
    assert_eq!(verify_dpop_proof(&format!("{good_proof}.x"), &c), Err(DpopError::Malformed));
    let header_not_object = format!("{}.{}", b64("[1]"), good_proof.split_once('.').unwrap().1);
    assert_eq!(verify_dpop_proof(&header_not_object, &c), Err(DpopError::Malformed));
    for claim in ["jti", "htm", "htu", "iat"] {
        assert_eq!(verify(&good(&key).without_claim(claim)), Err(DpopError::Malformed), "without {claim}");
    }
    assert_eq!(verify(&good(&key).jti("")), Err(DpopError::Malformed));
    assert_eq!(verify(&good(&key).jti(&"j".repeat(300))), Err(DpopError::Malformed));
    assert_eq!(verify(&good(&key).claim("iat", json!("1764000000"))), Err(DpopError::Malformed));
    assert_eq!(verify(&good(&key).claim("htu", json!(["x"]))), Err(DpopError::Malformed));
    assert_eq!(verify(&good(&key).claim("nonce", json!(7))), Err(DpopError::Malformed));
    let signature_not_b64 = format!("{}!", good_proof.rsplit_once('.').unwrap().0.to_owned() + ".");
    assert_eq!(verify_dpop_proof(&signature_not_b64, &c), Err(DpopError::Malformed));
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
