//! Provisioning users and clients (the demo, tests, and later the admin API).

use argus_model::{Clock, SystemClock, Timestamp};
use argus_oauth::{ClientError, ClientRegistration, IssuerStore, PasswordError, StorageError};

/// Why provisioning failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("user name must be 1..=256 characters without control characters")]
    BadUsername,
    #[error(transparent)]
    Password(#[from] PasswordError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Create the user or reset its password (argon2id); returns its `sub` (stable, opaque: a UUID).
pub async fn ensure_user(
    store: &dyn IssuerStore,
    username: &str,
    password: &str,
    now: Timestamp,
) -> Result<String, ProvisionError> {
    let valid = (1..=256).contains(&username.len()) && !username.chars().any(char::is_control);
    if !valid {
        return Err(ProvisionError::BadUsername);
    }
    let hash = argus_oauth::hash_password(password)?;
    Ok(store.upsert_user(&argus_model::id::new_id(), username, &hash, now).await?)
}

/// Create or replace a client registration.
pub async fn ensure_client(store: &dyn IssuerStore, client: ClientRegistration) -> Result<(), ProvisionError> {
    ensure_client_at(store, client, SystemClock.now()).await
}

/// [`ensure_client`] with the time of the change given.
pub async fn ensure_client_at(
    store: &dyn IssuerStore,
    client: ClientRegistration,
    now: Timestamp,
) -> Result<(), ProvisionError> {
    client.validate()?;
    Ok(store.upsert_client(&client, now).await?)
}
