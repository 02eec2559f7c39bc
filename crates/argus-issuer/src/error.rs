//! The issuer's errors at its edge (start-up and provisioning).

use argus_oauth::StorageError;

/// Why the issuer could not start.
#[derive(Debug, thiserror::Error)]
pub enum IssuerError {
    #[error("invalid issuer configuration: {0}")]
    Config(String),
    #[error("signing key: {0}")]
    Key(#[from] argus_jose::KeyError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}
