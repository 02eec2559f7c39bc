//! Per-operation access rules: the `x-argus-rule` CEL expression, and the other `x-argus-*` extensions of an
//! OpenAPI operation, compiled once when the spec loads.
//!
//! ```yaml
//! /accounts/{owner}/transfers:
//!   post:
//!     operationId: createTransfer
//!     x-argus-rule: "params.owner == token.sub && ('payments:admin' in token.scope || body.amount < 100000)"
//! ```
//!
//! A rule sees `token` (the access token's claims, `scope` as a list), `params` (path parameters, typed as the
//! spec declares), `query`, `headers` (lower-case names), `body` (the parsed JSON body) and `request` (`method`,
//! `path`, `ip`). It allows the call only if it evaluates to `true`: `false`, a value of another type, a missing
//! field, a type error or any other evaluation error deny. A rule that cannot be compiled, or that exceeds the
//! cost limits (source size, node count, nested comprehensions, non-literal regular expressions), is a load error
//! naming the operation; at run time a rule converts at most 4096 request values, or denies.

mod analysis;
mod extensions;
mod values;

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cel::common::types::CelBool;
use cel::{Context, Env, ExecutionError, Value as CelValue};
use serde_json::{Map, Value};

pub use analysis::Root;
pub use extensions::{ExtensionError, OperationPolicy, Sensitive};

use analysis::Usage;

/// Compiles rules. One per loaded configuration: it holds CEL's standard library, which every rule shares.
#[derive(Clone)]
pub struct RuleEngine {
    env: Arc<Env>,
}

impl std::fmt::Debug for RuleEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleEngine").finish_non_exhaustive()
    }
}

impl Default for RuleEngine {
    fn default() -> Self {
        Self::new()
    }
}

/// A rule that cannot be used. The message says why; [`ExtensionError`] adds the operation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("the rule is empty")]
    Empty,
    #[error("the rule is {len} bytes long; at most {max} are allowed")]
    TooLong { len: usize, max: usize },
    #[error("the rule does not parse: {0}")]
    Syntax(String),
    #[error("the rule is too complex (more than {max_nodes} nodes after macro expansion)")]
    TooComplex { max_nodes: usize },
    #[error("comprehensions (all, exists, exists_one, map, filter) may not be nested")]
    NestedComprehension,
    #[error("unknown variable {0:?}; a rule can use token, params, query, headers, body and request")]
    UnknownVariable(String),
    #[error("the pattern of matches() must be a string literal")]
    DynamicPattern,
    #[error("the pattern of matches() is not a valid regular expression: {0}")]
    BadPattern(String),
    #[error("{0} are not supported")]
    Unsupported(&'static str),
}

/// A compiled `x-argus-rule`.
#[derive(Clone)]
pub struct RuleProgram {
    env: Arc<Env>,
    expr: Arc<cel::IdedExpr>,
    usage: Arc<Usage>,
    source: Arc<str>,
}

impl std::fmt::Debug for RuleProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleProgram").field("source", &self.source).finish_non_exhaustive()
    }
}

/// What a rule sees of one call. Everything is borrowed; only the parts the rule reads are converted.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuleInput<'a> {
    /// The verified access token's claims; `None` on a route without tokens, where any use of `token` denies.
    pub claims: Option<&'a Map<String, Value>>,
    /// Path parameters, typed as the spec declares them.
    pub params: Option<&'a Map<String, Value>>,
    /// Query parameters, typed as the spec declares them.
    pub query: Option<&'a Map<String, Value>>,
    /// Headers as `(lower-case name, value)`; values that are not valid UTF-8 are best left out.
    pub headers: &'a [(&'a str, &'a str)],
    /// The parsed JSON body, if the call has one.
    pub body: Option<&'a Value>,
    /// The request method, upper-case.
    pub method: &'a str,
    /// The request path as received (canonical).
    pub path: &'a str,
    /// The client address, after trusted-proxy handling.
    pub ip: Option<IpAddr>,
}

/// The answer of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleDecision {
    Allow,
    Deny(DenyReason),
}

/// Why a rule denied. Stable and free of request data, so it can go into events and logs as is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// The rule evaluated to `false`.
    False,
    /// The rule evaluated to something other than a boolean.
    NotBoolean,
    /// A field or key the rule reads is absent (`no such key`), or `token` on a route without tokens.
    MissingField,
    /// An operator or function was applied to values of the wrong type.
    TypeError,
    /// Arithmetic overflow, division by zero, index out of range.
    ArithmeticError,
    /// Any other evaluation error, a panic inside the interpreter included.
    EvaluationError,
    /// The rule reads more request data than one evaluation may convert (4096 values).
    InputTooLarge,
}

impl DenyReason {
    /// A short stable name for events: `rule-false`, `rule-missing-field`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::False => "rule-false",
            DenyReason::NotBoolean => "rule-not-boolean",
            DenyReason::MissingField => "rule-missing-field",
            DenyReason::TypeError => "rule-type-error",
            DenyReason::ArithmeticError => "rule-arithmetic-error",
            DenyReason::EvaluationError => "rule-evaluation-error",
            DenyReason::InputTooLarge => "rule-input-too-large",
        }
    }
}

impl RuleEngine {
    /// An engine with CEL's standard library (no extensions, no timestamps).
    pub fn new() -> Self {
        Self { env: Arc::new(Env::stdlib()) }
    }

    /// Compile one rule, checking its size and shape (see the module docs).
    pub fn compile(&self, source: &str) -> Result<RuleProgram, RuleError> {
        analysis::check_source(source)?;
        let expr = self
            .env
            .parser()
            .max_recursion_depth(analysis::MAX_PARSE_DEPTH)
            .parse(source)
            .map_err(|e| RuleError::Syntax(first_line(&e.to_string())))?;
        let usage = analysis::analyse(&expr)?;
        Ok(RuleProgram {
            env: Arc::clone(&self.env),
            expr: Arc::new(expr),
            usage: Arc::new(usage),
            source: source.into(),
        })
    }
}

impl RuleProgram {
    /// The rule as written in the spec.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the rule reads `root`; the gate can skip gathering inputs the rule never looks at (headers, body).
    pub fn reads(&self, root: Root) -> bool {
        self.usage.of(root).is_used()
    }

    /// Evaluate the rule for one call. Never panics: anything but `true` denies.
    pub fn evaluate(&self, input: &RuleInput<'_>) -> RuleDecision {
        let mut ctx = Context::with_env(Arc::clone(&self.env));
        if let Err(reason) = self.bind(&mut ctx, input) {
            return RuleDecision::Deny(reason);
        }
        // The interpreter is third-party code run on request data: a panic in it must deny the call, not take the
        // connection (or, with panic=abort, the gate) down with it.
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            CelValue::resolve_val(&self.expr, &ctx).map(|v| v.downcast_ref::<CelBool>().map(|b| *b.inner()))
        }));
        match outcome {
            Ok(Ok(Some(true))) => RuleDecision::Allow,
            Ok(Ok(Some(false))) => RuleDecision::Deny(DenyReason::False),
            Ok(Ok(None)) => RuleDecision::Deny(DenyReason::NotBoolean),
            Ok(Err(error)) => RuleDecision::Deny(classify(&error)),
            Err(_) => RuleDecision::Deny(DenyReason::EvaluationError),
        }
    }

    /// Bind the roots the rule reads, converting only the fields it names, within the input budget.
    fn bind<'v>(&self, ctx: &mut Context<'_, 'v>, input: &RuleInput<'v>) -> Result<(), DenyReason> {
        let mut budget = values::Budget::new();
        let too_large = |_| DenyReason::InputTooLarge;
        for root in Root::ALL {
            let fields = self.usage.of(root);
            if !fields.is_used() {
                continue;
            }
            let value = match root {
                Root::Token => budget.claims(input.claims.ok_or(DenyReason::MissingField)?, fields),
                Root::Params => budget.optional_object(input.params, fields),
                Root::Query => budget.optional_object(input.query, fields),
                Root::Headers => budget.headers(input.headers, fields),
                Root::Body => match input.body {
                    Some(Value::Object(map)) => budget.object(map, fields),
                    Some(other) => budget.json(other),
                    None => Ok(values::null()),
                },
                Root::Request => Ok(values::request(input.method, input.path, input.ip)),
            };
            ctx.add_variable_as_val(root.name(), value.map_err(too_large)?);
        }
        Ok(())
    }
}

/// Map an interpreter error to a reason without carrying its text, which may quote request data.
fn classify(error: &ExecutionError) -> DenyReason {
    match error {
        ExecutionError::NoSuchKey(_) | ExecutionError::UndeclaredReference(_) => DenyReason::MissingField,
        ExecutionError::UnexpectedType { .. }
        | ExecutionError::NoSuchOverload(_)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::UnsupportedTargetType { .. }
        | ExecutionError::NotSupportedAsMethod { .. }
        | ExecutionError::UnsupportedKeyType(_)
        | ExecutionError::UnsupportedIndex(..) => DenyReason::TypeError,
        ExecutionError::DivisionByZero(_)
        | ExecutionError::RemainderByZero(_)
        | ExecutionError::Overflow(..)
        | ExecutionError::IndexOutOfBounds(_) => DenyReason::ArithmeticError,
        _ => DenyReason::EvaluationError,
    }
}

/// The first line of a parser message (the rest is a caret drawing of the source).
fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_owned()
}

#[cfg(test)]
mod tests;
