//! The `x-argus-*` extensions of one OpenAPI operation, parsed and compiled into its typed policy.
//!
//! | extension | value |
//! |---|---|
//! | `x-argus-rule` | a CEL expression, see [`crate::rules`] |
//! | `x-argus-step-up` | `{acr: "urn:..." \| [...], max_age: secs}`, see [`crate::stepup`] |
//! | `x-argus-decoy` | `true`: never proxied, every call raises a high-severity event |
//! | `x-argus-sensitive` | `true`, or `{records: "/json/pointer/to/array"}`: responses whose record count feeds the exfiltration features |
//! | `x-argus-rate-limit` | `{per_ip, per_user, per_client, per_token}`, each `"N/unit"`, `"N/unit burst B"` or `"off"` |
//! | `x-argus-note` | free text for people (why an operation is as it is); enforces nothing |
//!
//! Any other `x-argus-` name is a load error: a misspelt `x-argus-rul` must not silently drop a rule.

use serde_json::Value;

use super::{RuleEngine, RuleError, RuleProgram};
use crate::openapi::Operation;
use crate::ratelimit::LimitOverrides;
use crate::stepup::{StepUpError, StepUpPolicy};

/// Prefix of Argus's OpenAPI extensions.
pub const EXTENSION_PREFIX: &str = "x-argus-";

/// An operation's extensions that the gate cannot run with. The message names the operation and the extension.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExtensionError {
    #[error("operation {operation:?}: x-argus-rule: {error}")]
    Rule { operation: String, error: RuleError },
    #[error("operation {operation:?}: x-argus-rule must be a string")]
    RuleNotString { operation: String },
    #[error("operation {operation:?}: x-argus-step-up: {error}")]
    StepUp { operation: String, error: StepUpError },
    #[error("operation {operation:?}: x-argus-decoy must be true or false")]
    Decoy { operation: String },
    #[error("operation {operation:?}: x-argus-sensitive must be true, false or {{records: \"/json/pointer\"}}")]
    Sensitive { operation: String },
    #[error("operation {operation:?}: x-argus-rate-limit: {message}")]
    RateLimit { operation: String, message: String },
    #[error(
        "operation {operation:?}: unknown extension {name:?} (known: x-argus-rule, x-argus-step-up, x-argus-decoy, x-argus-sensitive, x-argus-rate-limit, x-argus-note)"
    )]
    Unknown { operation: String, name: String },
}

/// What the `x-argus-*` extensions ask of one operation, ready to apply per call.
#[derive(Clone, Debug, Default)]
pub struct OperationPolicy {
    /// `x-argus-rule`.
    pub rule: Option<RuleProgram>,
    /// `x-argus-step-up`.
    pub step_up: Option<StepUpPolicy>,
    /// `x-argus-decoy`: a trap operation no legitimate client calls.
    pub decoy: bool,
    /// `x-argus-sensitive`.
    pub sensitive: Option<Sensitive>,
    /// `x-argus-rate-limit`: per-operation limits replacing the route's or the defaults, key kind by key kind.
    pub rate_limit: LimitOverrides,
}

/// How to count the records a sensitive operation returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sensitive {
    /// JSON pointer (RFC 6901) to the array of records in the response body; `None` means the body itself: an
    /// array counts its items, anything else one record.
    pub records: Option<String>,
}

impl Sensitive {
    /// The number of records in a response body, `None` when the pointer does not lead to an array.
    pub fn count_records(&self, body: &Value) -> Option<u64> {
        let at = match &self.records {
            Some(pointer) => body.pointer(pointer)?,
            None => body,
        };
        match (at, &self.records) {
            (Value::Array(items), _) => u64::try_from(items.len()).ok(),
            (_, None) => Some(1),
            (_, Some(_)) => None,
        }
    }
}

impl OperationPolicy {
    /// Parse and compile the `x-argus-*` extensions of a loaded OpenAPI operation.
    pub fn for_operation(engine: &RuleEngine, operation: &Operation) -> Result<Self, ExtensionError> {
        Self::from_extensions(engine, &operation.id, operation.extensions.iter().map(|(k, v)| (k.as_str(), v)))
    }

    /// Parse and compile the extensions of the operation named `operation` (its `operationId`, or
    /// `METHOD /path` when it has none). Members not starting with `x-argus-` are ignored.
    pub fn from_extensions<'a>(
        engine: &RuleEngine,
        operation: &str,
        extensions: impl IntoIterator<Item = (&'a str, &'a Value)>,
    ) -> Result<Self, ExtensionError> {
        let mut policy = Self::default();
        let op = || operation.to_owned();
        for (name, value) in extensions {
            let Some(kind) = name.strip_prefix(EXTENSION_PREFIX) else { continue };
            match kind {
                "rule" => {
                    let Value::String(source) = value else {
                        return Err(ExtensionError::RuleNotString { operation: op() });
                    };
                    let rule =
                        engine.compile(source).map_err(|error| ExtensionError::Rule { operation: op(), error })?;
                    policy.rule = Some(rule);
                }
                "step-up" => {
                    let step_up = StepUpPolicy::from_extension(value)
                        .map_err(|error| ExtensionError::StepUp { operation: op(), error })?;
                    policy.step_up = Some(step_up);
                }
                "decoy" => {
                    policy.decoy = value.as_bool().ok_or_else(|| ExtensionError::Decoy { operation: op() })?;
                }
                "sensitive" => {
                    policy.sensitive =
                        parse_sensitive(value).ok_or_else(|| ExtensionError::Sensitive { operation: op() })?;
                }
                "rate-limit" => {
                    policy.rate_limit = LimitOverrides::deserialize_value(value)
                        .map_err(|message| ExtensionError::RateLimit { operation: op(), message })?;
                }
                // Documentation for people (e.g. why an operation is deliberately open); enforces nothing.
                "note" => {}
                _ => return Err(ExtensionError::Unknown { operation: op(), name: name.to_owned() }),
            }
        }
        Ok(policy)
    }
}

/// `true` | `false` | `{records: "/pointer"}`; `None` when malformed.
fn parse_sensitive(value: &Value) -> Option<Option<Sensitive>> {
    match value {
        Value::Bool(false) => Some(None),
        Value::Bool(true) => Some(Some(Sensitive { records: None })),
        Value::Object(map) => {
            if map.keys().any(|k| k != "records") {
                return None;
            }
            match map.get("records") {
                None => Some(Some(Sensitive { records: None })),
                Some(Value::String(p)) if p.is_empty() => Some(Some(Sensitive { records: None })),
                Some(Value::String(p)) if p.starts_with('/') => Some(Some(Sensitive { records: Some(p.clone()) })),
                _ => None,
            }
        }
        _ => None,
    }
}
