//! OpenAPI 3.0 / 3.1 as the gate enforces it: load a spec once, then per request match the operation and validate
//! its inputs strictly, and optionally check what the upstream answered.
//!
//! ```no_run
//! # use argus_policy::openapi::{Spec, LoadOptions, Match, RequestParts};
//! let spec = Spec::load("api/openapi.yaml".as_ref(), &LoadOptions::default())?;
//! let headers: &[(&str, &str)] = &[("content-type", "application/json")];
//! if let Match::Found(op, params) = spec.match_request("POST", "/transfers") {
//!     let parts = RequestParts { path_params: &params, query: None, headers: &headers, body: br#"{"amount":1}"# };
//!     if let Err(refusal) = op.validate_request(&parts) {
//!         println!("{} {refusal}", refusal.status());
//!     }
//! }
//! # Ok::<(), argus_policy::openapi::LoadError>(())
//! ```

mod build;
mod error;
mod load;
mod matcher;
mod operation;
mod params;
mod request;
mod response;
mod schema;

use std::path::Path;

pub use error::{ErrorKind, LoadError, LoadErrorKind, Location, ValidationError};
pub use matcher::{Match, PathParams};
pub use operation::{Method, Operation, ParamLocation, Parameter, SchemeScopes, SecurityRequirement, Style};
pub use request::{HeaderSource, RequestBody, RequestParts, Strictness};
pub use response::{MAX_REPORTED, ResponseHead, ResponseReport, Responses};

use matcher::Matcher;

/// How a spec is loaded for one route.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Strict by default: unknown query parameters and undeclared JSON fields are refused.
    pub strictness: Strictness,
    /// Largest request body accepted (413 above it). Default 1 MiB.
    pub max_body_bytes: usize,
    /// Largest spec file read (each referenced file counts alone). Default 8 MiB.
    pub max_file_bytes: u64,
    /// The base path requests carry before the spec's paths; `None` takes it from `servers`, `Some("")` says
    /// there is none.
    pub base_path: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> LoadOptions {
        LoadOptions {
            strictness: Strictness::default(),
            max_body_bytes: 1 << 20,
            max_file_bytes: 8 << 20,
            base_path: None,
        }
    }
}

/// A loaded, compiled spec: the operations of one API.
#[derive(Debug)]
pub struct Spec {
    /// The document's `openapi` version string.
    pub version: String,
    /// Base paths the requests carry before the spec's paths (from `servers` or [`LoadOptions::base_path`]).
    pub base_paths: Vec<String>,
    operations: Vec<Operation>,
    matcher: Matcher,
}

impl Spec {
    /// Load a spec file (YAML or JSON) and everything it references inside its folder, and compile every schema.
    pub fn load(path: &Path, options: &LoadOptions) -> Result<Spec, LoadError> {
        let docs = load::Documents::open(path, options.max_file_bytes)?;
        build::Builder::new(docs, options)?.build()
    }

    /// Compile a spec given as text (YAML or JSON). References to other files are refused: there is no folder.
    pub fn parse(text: &str, options: &LoadOptions) -> Result<Spec, LoadError> {
        if text.len() as u64 > options.max_file_bytes {
            return Err(LoadError::new("", "", LoadErrorKind::FileTooLarge(options.max_file_bytes)));
        }
        let value = load::parse_document(text.as_bytes(), None).map_err(|kind| LoadError::new("", "", kind))?;
        build::Builder::new(load::Documents::in_memory(value), options)?.build()
    }

    /// Every operation, in document order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// The operation with this id.
    pub fn operation(&self, id: &str) -> Option<&Operation> {
        self.operations.iter().find(|op| op.id == id)
    }

    /// The operation for a request. `path` is the canonical path (see [`crate::canonical_path`]) after the
    /// route's prefix; a spec base path is stripped when present, and required when the spec declares one.
    /// `method` is the request's method token; one OpenAPI cannot describe is answered as not allowed.
    pub fn match_request<'s, 'p>(&'s self, method: &str, path: &'p str) -> Match<'s, 'p> {
        let path = self.strip_base(path);
        let Some(path) = path else {
            return Match::NotFound;
        };
        self.matcher.lookup(&self.operations, path, Method::from_http(method))
    }

    fn strip_base<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.base_paths.is_empty() {
            return Some(path);
        }
        self.base_paths.iter().find_map(|base| {
            let rest = path.strip_prefix(base.as_str())?;
            match rest {
                "" => Some("/"),
                r if r.starts_with('/') => Some(r),
                _ => None,
            }
        })
    }
}
