//! How many access tokens one core can sign per second, by algorithm: the ceiling of any token endpoint that
//! signs one token per request. `bench/token-endpoint/run.sh` runs it pinned to the servers' core, in the same
//! run, so the measured ratio can be read against what the signature alone allows.
//!
//!     cargo run --release -p argus-jose --example sign_rate -- [seconds per algorithm, default 2]

use std::time::{Duration, Instant};

use argus_jose::{ACCESS_TOKEN_TYP, SigningKey};

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    // Claims of the size the client_credentials grant issues.
    let claims = serde_json::json!({
        "iss": "http://127.0.0.1:7400", "sub": "bench-service", "aud": "http://127.0.0.1:7480",
        "exp": 1_800_000_300_i64, "iat": 1_800_000_000_i64, "jti": "019a7c1e-5b2f-7d3e-8f00-0123456789ab",
        "client_id": "bench-service", "scope": "accounts:read",
    });
    for alg in ["ES256", "EdDSA"] {
        let key = SigningKey::generate(alg).expect("key");
        let rate = signs_per_second(&key, &claims, Duration::from_secs_f64(seconds));
        println!("{alg} {rate:.0}");
    }
}

fn signs_per_second(key: &SigningKey, claims: &serde_json::Value, budget: Duration) -> f64 {
    let start = Instant::now();
    let mut n = 0_u64;
    while start.elapsed() < budget {
        for _ in 0..100 {
            std::hint::black_box(key.sign(ACCESS_TOKEN_TYP, claims).expect("sign"));
        }
        n += 100;
    }
    n as f64 / start.elapsed().as_secs_f64()
}
