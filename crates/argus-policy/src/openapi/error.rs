//! Errors of loading a spec (for the operator) and of validating a request (for the caller).

use std::fmt;

/// A spec the gate cannot enforce. Names the file and the JSON pointer of the offending value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}#{pointer}: {kind}")]
pub struct LoadError {
    /// The file, relative to the spec's folder.
    pub file: String,
    /// The JSON pointer (RFC 6901) of the offending value inside `file`.
    pub pointer: String,
    /// What is wrong there.
    pub kind: LoadErrorKind,
}

impl LoadError {
    pub(crate) fn new(file: &str, pointer: &str, kind: LoadErrorKind) -> LoadError {
        LoadError { file: file.to_owned(), pointer: pointer.to_owned(), kind }
    }
}

/// What is wrong with a spec.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read the file ({0})")]
    Io(std::io::ErrorKind),
    #[error("the file is larger than {0} bytes")]
    FileTooLarge(u64),
    #[error("more than {0} files are referenced")]
    TooManyFiles(usize),
    #[error("not valid {0}")]
    Syntax(String),
    #[error("not an OpenAPI 3.0 or 3.1 document ({0})")]
    NotOpenApi(String),
    #[error("a reference to a URL; only local references are followed")]
    RemoteRef,
    #[error("a reference to a file outside the spec's folder")]
    OutsideSpecFolder,
    #[error("a reference that is not a JSON pointer fragment")]
    BadRef,
    #[error("a reference to {0:?}, which does not exist")]
    DanglingRef(String),
    #[error("a loop of references")]
    RefLoop,
    #[error("{0}")]
    Invalid(String),
    #[error("the schema does not compile: {0}")]
    Schema(String),
}

/// Where a refused input was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
    Body,
    ContentType,
}

impl Location {
    /// A lower-case word for messages and event fields.
    pub fn as_str(self) -> &'static str {
        match self {
            Location::Path => "path",
            Location::Query => "query",
            Location::Header => "header",
            Location::Cookie => "cookie",
            Location::Body => "body",
            Location::ContentType => "content-type",
        }
    }
}

/// Why an input was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A required parameter or body is absent.
    Missing,
    /// A query parameter or JSON field the operation does not declare.
    Unknown,
    /// A non-array parameter given more than once, or a JSON object with a repeated key.
    Duplicate,
    /// The value cannot be read in the declared style or syntax (bad escape, not UTF-8, not JSON, ...).
    Malformed,
    /// The value does not satisfy the named JSON Schema keyword (`type`, `maximum`, `pattern`, `enum`, ...).
    Constraint(&'static str),
    /// The body's media type is not one the operation accepts (415).
    UnsupportedMediaType,
    /// The body is larger than the route allows (413).
    TooLarge,
}

/// One refused input: safe to show the caller (it never quotes the value itself; a name or pointer the caller chose
/// is cut short and stripped of anything but printable ASCII).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// Where the input was.
    pub location: Location,
    /// The parameter name, or the JSON pointer inside the body (empty for the body or content type as a whole).
    pub name_or_pointer: String,
    /// What is wrong with it.
    pub kind: ErrorKind,
}

/// Longest name or pointer an error carries.
const MAX_ECHO: usize = 64;

impl ValidationError {
    pub(crate) fn new(location: Location, name: &str, kind: ErrorKind) -> ValidationError {
        ValidationError { location, name_or_pointer: safe_echo(name), kind }
    }

    /// The HTTP status the refusal maps to: 415 for an unsupported media type, 413 for a body too large, else 400.
    pub fn status(&self) -> u16 {
        match self.kind {
            ErrorKind::UnsupportedMediaType => 415,
            ErrorKind::TooLarge => 413,
            _ => 400,
        }
    }

    /// A stable short reason for event fields and problem `type` slugs (`missing`, `unknown`, `maximum`, ...).
    pub fn reason(&self) -> &'static str {
        match self.kind {
            ErrorKind::Missing => "missing",
            ErrorKind::Unknown => "unknown",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::Malformed => "malformed",
            ErrorKind::Constraint(keyword) => keyword,
            ErrorKind::UnsupportedMediaType => "unsupported-media-type",
            ErrorKind::TooLarge => "too-large",
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.location {
            Location::Body if self.name_or_pointer.is_empty() => "the request body".to_owned(),
            Location::Body => format!("body field {:?}", self.name_or_pointer),
            Location::ContentType => "the content type".to_owned(),
            other => format!("{} parameter {:?}", other.as_str(), self.name_or_pointer),
        };
        match self.kind {
            ErrorKind::Missing => write!(f, "{what} is required"),
            ErrorKind::Unknown => write!(f, "{what} is not part of this operation"),
            ErrorKind::Duplicate => write!(f, "{what} is given more than once"),
            ErrorKind::Malformed => write!(f, "{what} cannot be read"),
            ErrorKind::Constraint(keyword) => write!(f, "{what} does not satisfy \"{keyword}\""),
            ErrorKind::UnsupportedMediaType => write!(f, "{what} is not accepted by this operation"),
            ErrorKind::TooLarge => write!(f, "{what} is too large"),
        }
    }
}

impl std::error::Error for ValidationError {}

/// A caller-chosen name, cut to [`MAX_ECHO`] characters, with everything but identifier and pointer characters
/// replaced by `?`, so that an error never carries a payload back (or into a log) as it came.
fn safe_echo(name: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./~[]$@:".contains(c);
    name.chars().take(MAX_ECHO).map(|c| if plain(c) { c } else { '?' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_are_short_and_printable() {
        let long = "x".repeat(500);
        let e = ValidationError::new(Location::Query, &long, ErrorKind::Unknown);
        assert_eq!(e.name_or_pointer.len(), MAX_ECHO);
        let e = ValidationError::new(Location::Body, "/a\u{0}<script>\n", ErrorKind::Unknown);
        assert_eq!(e.name_or_pointer, "/a??script??");
        assert_eq!(e.to_string(), "body field \"/a??script??\" is not part of this operation");
    }
}
