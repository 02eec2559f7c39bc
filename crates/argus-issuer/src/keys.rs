//! The issuer's signing keys: loaded from the store, an ES256 key created on first start.

use argus_jose::{JwkSet, SigningKey};
use argus_model::Timestamp;
use argus_oauth::{IssuerStore, StoredSigningKey};

use crate::error::IssuerError;

/// The key that signs, and every stored key's public half for the JWKS (so tokens signed by an older key still
/// verify while they live).
pub(crate) struct Keys {
    pub active: SigningKey,
    pub jwks: JwkSet,
}

/// Load the stored keys; create, store and use a new ES256 key if there is none.
pub(crate) async fn load_or_create(store: &dyn IssuerStore, now: Timestamp) -> Result<Keys, IssuerError> {
    let mut keys = store
        .signing_keys()
        .await?
        .into_iter()
        .map(|k| SigningKey::from_pkcs8_der(Some(k.kid), k.pkcs8_der))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        let key = SigningKey::generate_es256()?;
        store
            .add_signing_key(&StoredSigningKey {
                kid: key.kid().to_owned(),
                alg: key.alg_name().to_owned(),
                pkcs8_der: key.pkcs8_der().to_vec(),
                created_at: now,
            })
            .await?;
        keys.push(key);
    }
    let jwks = JwkSet { keys: keys.iter().map(|k| k.public_jwk().clone()).collect() };
    // Stored oldest first: the newest signs.
    let active = keys.pop().ok_or_else(|| IssuerError::Config("no signing key".into()))?;
    Ok(Keys { active, jwks })
}
