//! One OpenAPI operation as the gate enforces it.
//!
//! SHAPE NOTICE (for `rules/`, `ratelimit/` and the gate): the public fields of [`Operation`], [`Method`],
//! [`SecurityRequirement`], [`SchemeScopes`], [`Parameter`] and [`ParamLocation`] are a contract. Adding a field or a
//! method is fine; renaming or removing one needs a note here and a word to whoever consumes it.
//! Everything compiled (schemas, parsers) stays private so it can change freely.

use std::collections::BTreeMap;

use serde_json::Value;

use super::params::ParamValidator;
use super::request::{RequestBody, RequestPolicy};
use super::response::Responses;

/// An HTTP method an OpenAPI path item can describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Method {
    Get,
    Put,
    Post,
    Delete,
    Options,
    Head,
    Patch,
    Trace,
}

impl Method {
    /// Every method, in the order OpenAPI lists them in a path item.
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Put,
        Method::Post,
        Method::Delete,
        Method::Options,
        Method::Head,
        Method::Patch,
        Method::Trace,
    ];

    /// The method of a request line (`GET`, case-sensitive as RFC 9110 says); `None` for any other token.
    pub fn from_http(token: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str() == token)
    }

    /// The method named by a path item key (`get`, `post`, ...).
    pub fn from_openapi_key(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(key))
    }

    /// The upper-case HTTP token.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Head => "HEAD",
            Method::Patch => "PATCH",
            Method::Trace => "TRACE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation of the spec, compiled at load: matching, rules and validation read it, never the document.
#[derive(Debug)]
pub struct Operation {
    /// `operationId`, or `"METHOD /path/template"` when the spec gives none. Unique within a spec.
    pub id: String,
    /// The method the operation is declared under.
    pub method: Method,
    /// The path template as written under `paths` (without the server base path), e.g. `/accounts/{id}`.
    pub path_template: String,
    /// Parameters, path-item level merged with operation level (the operation's win on the same name and
    /// location). Path parameters are in template order first.
    pub params: Vec<Parameter>,
    /// The request body, when the operation declares one.
    pub request_body: Option<RequestBody>,
    /// Response schemas by status and content type, for response checking.
    pub responses: Responses,
    /// The effective security requirements (the operation's own, else the document's): alternatives (OR), each a
    /// set of schemes that must all be satisfied (AND). Empty means no requirement at all; an alternative with no
    /// schemes (`{}` in the spec) means anonymous access is one of the alternatives.
    pub security: Vec<SecurityRequirement>,
    /// Raw `x-argus-*` extension values (`x-argus-rule`, `x-argus-step-up`, `x-argus-decoy`, `x-argus-sensitive`,
    /// `x-argus-rate-limit`, ...): the path item's, overridden key by key by the operation's. Keys keep their
    /// `x-argus-` prefix.
    pub extensions: BTreeMap<String, Value>,
    pub(crate) policy: RequestPolicy,
}

impl Operation {
    /// The raw value of an `x-argus-*` extension (pass the full key, e.g. `"x-argus-rule"`).
    pub fn extension(&self, key: &str) -> Option<&Value> {
        self.extensions.get(key)
    }

    /// Whether a caller whose token grants the scopes `has_scope` accepts satisfies the OR-of-ANDs of
    /// [`Operation::security`]. Schemes are not told apart: Argus issues one kind of token, whose scopes serve every
    /// OAuth2/OpenID scheme of the spec.
    pub fn security_satisfied_by(&self, has_scope: impl Fn(&str) -> bool) -> bool {
        self.security.is_empty()
            || self.security.iter().any(|alt| alt.schemes.iter().all(|s| s.scopes.iter().all(|scope| has_scope(scope))))
    }

    /// Whether the operation can be called without any credential.
    pub fn allows_anonymous(&self) -> bool {
        self.security.is_empty() || self.security.iter().any(|alt| alt.schemes.is_empty())
    }
}

/// One alternative of an OpenAPI `security` list: every scheme in it must be satisfied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityRequirement {
    /// The schemes of this alternative with the scopes each needs (empty for non-OAuth schemes).
    pub schemes: Vec<SchemeScopes>,
}

/// One scheme of a [`SecurityRequirement`] and the scopes it requires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemeScopes {
    /// The key under `components.securitySchemes`.
    pub scheme: String,
    /// Scopes (or roles, for non-OAuth schemes) the token must carry.
    pub scopes: Vec<String>,
}

/// Where a parameter is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ParamLocation {
    Path,
    Query,
    Header,
    Cookie,
}

impl ParamLocation {
    /// The OpenAPI `in` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamLocation::Path => "path",
            ParamLocation::Query => "query",
            ParamLocation::Header => "header",
            ParamLocation::Cookie => "cookie",
        }
    }
}

/// How a parameter's value is serialised (OpenAPI `style`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Simple,
    Label,
    Matrix,
    Form,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

/// One declared parameter with its compiled checker.
#[derive(Debug)]
pub struct Parameter {
    /// The name as declared (header names are matched case-insensitively).
    pub name: String,
    /// Where it is read from.
    pub location: ParamLocation,
    /// Whether a request must carry it (always true for path parameters).
    pub required: bool,
    /// The serialisation style (the location's default when the spec gives none).
    pub style: Style,
    /// Whether arrays and objects are exploded (the style's default when the spec gives none).
    pub explode: bool,
    pub(crate) checker: ParamValidator,
}
