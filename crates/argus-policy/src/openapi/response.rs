//! Response checking: which fields of a response the spec never declared (excessive data exposure), and how many
//! records it carries (for `x-argus-sensitive`).

use jsonschema::Validator;
use serde_json::Value;

use super::operation::Operation;

/// The response schemas of an operation.
#[derive(Debug, Default)]
pub struct Responses {
    /// (status key, content entries); status keys are `"200"`, `"2XX"` or `"default"` as declared.
    pub(crate) entries: Vec<(StatusKey, Vec<ResponseMedia>)>,
    /// Where the records of a sensitive response are: `Some("")` for the top-level array.
    pub(crate) records_at: Option<String>,
}

impl Responses {
    /// Whether the operation declares any response.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A declared status: exact, a range (`2XX`), or `default`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusKey {
    Exact(u16),
    Range(u16),
    Default,
}

impl StatusKey {
    pub(crate) fn parse(key: &str) -> Option<StatusKey> {
        if key == "default" {
            return Some(StatusKey::Default);
        }
        let bytes = key.as_bytes();
        if bytes.len() != 3 || !(b'1'..=b'5').contains(&bytes[0]) {
            return None;
        }
        if bytes[1..].eq_ignore_ascii_case(b"XX") {
            return Some(StatusKey::Range(u16::from(bytes[0] - b'0')));
        }
        key.parse().ok().map(StatusKey::Exact)
    }
}

/// One response `content` entry; always compiled in strict mode, whatever the route's request strictness.
#[derive(Debug)]
pub(crate) struct ResponseMedia {
    pub(crate) range: (String, String),
    pub(crate) validator: Option<Validator>,
}

/// What the head of an upstream answer (status, content type, whether a body follows) says, before the body is
/// read: the gate reads a body only when it can be checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseHead {
    /// The operation declares no response of this status with this content type, or declares no body where one
    /// came.
    Undocumented,
    /// Declared, with nothing to check the body against: no body, no schema, a media type other than JSON, or an
    /// operation that declares no responses at all (OpenAPI 3.1 allows that; it describes nothing to hold to).
    Unchecked,
    /// Declared with a schema for a JSON media type: read the body and call [`Operation::check_response_body`].
    Checkable,
}

/// What response checking found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResponseReport {
    /// Whether the spec declares this status and content type at all.
    pub documented: bool,
    /// The body is not one JSON value (or repeats an object key, which a client might read differently).
    pub malformed: bool,
    /// JSON pointers of fields the schema does not declare (`/0/password_hash`), at most [`MAX_REPORTED`].
    pub undeclared_fields: Vec<String>,
    /// Other schema violations (wrong type, missing required field, ...), counted.
    pub other_violations: usize,
    /// The record count for an `x-argus-sensitive` operation.
    pub records: Option<u64>,
}

/// At most this many undeclared fields are listed per response.
pub const MAX_REPORTED: usize = 32;

impl ResponseReport {
    /// Whether the answer is what the spec describes: documented, well-formed, nothing undeclared, no violation.
    pub fn conforms(&self) -> bool {
        self.documented && !self.malformed && self.undeclared_fields.is_empty() && self.other_violations == 0
    }
}

impl Operation {
    /// Classify an answer by its head. `content_type` is the `Content-Type` header value; `has_body` is false for
    /// answers that carry none (HEAD, 204, 304, `Content-Length: 0`).
    pub fn response_head(&self, status: u16, content_type: Option<&str>, has_body: bool) -> ResponseHead {
        if self.responses.is_empty() {
            return ResponseHead::Unchecked;
        }
        let Some(content) = self.declared_content(status) else {
            return ResponseHead::Undocumented;
        };
        if !has_body {
            return ResponseHead::Unchecked;
        }
        // RFC 9110 §8.3: a body without a type may be taken as application/octet-stream.
        let content_type = content_type.unwrap_or("application/octet-stream");
        match find_media(content, content_type) {
            None => ResponseHead::Undocumented,
            Some(media) if media.validator.is_some() && is_json(content_type) => ResponseHead::Checkable,
            Some(_) => ResponseHead::Unchecked,
        }
    }

    /// Check a JSON body as received. It is parsed strictly: a repeated key or trailing bytes make it malformed,
    /// since the caller's parser might read something other than what was checked.
    pub fn check_response_body(&self, status: u16, content_type: Option<&str>, body: &[u8]) -> ResponseReport {
        match super::request::parse_json_strict(body) {
            Ok(value) => self.check_response(status, content_type, &value),
            Err(_) => ResponseReport {
                documented: self.response_media(status, content_type).is_some(),
                malformed: true,
                ..ResponseReport::default()
            },
        }
    }

    /// Check a JSON response body (already parsed by the caller) against the declared schema for `status` and
    /// `content_type`. Fields the schema never declares are listed whatever the route's request strictness.
    pub fn check_response(&self, status: u16, content_type: Option<&str>, body: &Value) -> ResponseReport {
        let mut report = ResponseReport { records: self.count_records(body), ..ResponseReport::default() };
        let Some(media) = self.response_media(status, content_type) else {
            return report;
        };
        report.documented = true;
        let Some(validator) = &media.validator else {
            return report;
        };
        use jsonschema::error::ValidationErrorKind as K;
        for error in validator.iter_errors(body) {
            match error.kind() {
                K::UnevaluatedProperties { unexpected } | K::AdditionalProperties { unexpected } => {
                    let at = error.instance_path().as_str();
                    for field in unexpected {
                        if report.undeclared_fields.len() < MAX_REPORTED {
                            report.undeclared_fields.push(format!("{at}/{}", super::schema::escape_pointer(field)));
                        }
                    }
                }
                _ => report.other_violations += 1,
            }
        }
        report
    }

    /// The number of records in a response of an `x-argus-sensitive` operation: the length of the top-level array
    /// (or of the array at the configured pointer), 1 for a single object; `None` when the operation is not
    /// sensitive or the body has no such array.
    pub fn count_records(&self, body: &Value) -> Option<u64> {
        let at = self.responses.records_at.as_deref()?;
        match body.pointer(at)? {
            Value::Array(items) => Some(items.len() as u64),
            Value::Object(_) if at.is_empty() => Some(1),
            _ => None,
        }
    }

    fn response_media(&self, status: u16, content_type: Option<&str>) -> Option<&ResponseMedia> {
        find_media(self.declared_content(status)?, content_type.unwrap_or("application/json"))
    }

    /// The content entries declared for a status: the exact code, else its range (`2XX`), else `default`.
    fn declared_content(&self, status: u16) -> Option<&[ResponseMedia]> {
        let entries = &self.responses.entries;
        entries
            .iter()
            .find(|(k, _)| *k == StatusKey::Exact(status))
            .or_else(|| entries.iter().find(|(k, _)| *k == StatusKey::Range(status / 100)))
            .or_else(|| entries.iter().find(|(k, _)| *k == StatusKey::Default))
            .map(|(_, content)| content.as_slice())
    }
}

/// The entry for a content type: the exact media type, else `type/*`, else `*/*`.
fn find_media<'a>(content: &'a [ResponseMedia], content_type: &str) -> Option<&'a ResponseMedia> {
    let (t, s) = super::request::declared_range(content_type)?;
    content
        .iter()
        .find(|m| m.range.0 == t && m.range.1 == s)
        .or_else(|| content.iter().find(|m| m.range.0 == t && m.range.1 == "*"))
        .or_else(|| content.iter().find(|m| m.range.0 == "*"))
}

/// `application/json` and the `+json` structured syntax suffix (RFC 6839), e.g. `application/problem+json`.
fn is_json(content_type: &str) -> bool {
    super::request::declared_range(content_type).is_some_and(|(_, s)| s == "json" || s.ends_with("+json"))
}

/// Where `x-argus-sensitive` says the records are: `true` for the top level, `{records: "/data"}` (a JSON pointer)
/// or `{records: "data"}` (a top-level property).
pub(crate) fn records_pointer(extension: Option<&Value>) -> Option<String> {
    match extension? {
        Value::Bool(true) => Some(String::new()),
        Value::Object(map) => match map.get("records") {
            Some(Value::String(p)) if p.is_empty() || p.starts_with('/') => Some(p.clone()),
            Some(Value::String(p)) => Some(format!("/{}", super::schema::escape_pointer(p))),
            _ => Some(String::new()),
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_keys_parse() {
        assert_eq!(StatusKey::parse("200"), Some(StatusKey::Exact(200)));
        assert_eq!(StatusKey::parse("4xx"), Some(StatusKey::Range(4)));
        assert_eq!(StatusKey::parse("default"), Some(StatusKey::Default));
        assert_eq!(StatusKey::parse("600"), None);
        assert_eq!(StatusKey::parse("20"), None);
    }

    #[test]
    fn sensitive_pointer_forms() {
        assert_eq!(records_pointer(Some(&Value::Bool(true))).as_deref(), Some(""));
        assert_eq!(records_pointer(Some(&serde_json::json!({"records": "items"}))).as_deref(), Some("/items"));
        assert_eq!(records_pointer(Some(&serde_json::json!({"records": "/a/b"}))).as_deref(), Some("/a/b"));
        assert_eq!(records_pointer(Some(&Value::Bool(false))), None);
        assert_eq!(records_pointer(None), None);
    }
}
