//! Checking one request against its operation: parameters, content type, body. One call per request; every
//! schema was compiled at load.

use std::borrow::Cow;

use jsonschema::Validator;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::error::{ErrorKind, Location, ValidationError};
use super::matcher::PathParams;
use super::operation::{Operation, ParamLocation, Parameter, Style};
use super::params::{array_from, coerce, insert_property, keyword_of, object_from_pairs, property_types};
use super::schema::{Shape, Types};

/// Request headers as the validator reads them; the gate implements it over its header map (a newtype around
/// `http::HeaderMap` does it in a few lines), tests over a slice of pairs.
pub trait HeaderSource {
    /// Call `each` with every value of header `name` (given in lower case; match case-insensitively), in order.
    fn for_each_value(&self, name: &str, each: &mut dyn FnMut(&[u8]));
}

/// Name/value pairs, for tests and simple callers: pass `&pairs` where `pairs: &[(&str, &str)]`.
impl HeaderSource for &[(&str, &str)] {
    fn for_each_value(&self, name: &str, each: &mut dyn FnMut(&[u8])) {
        for (n, v) in self.iter() {
            if n.eq_ignore_ascii_case(name) {
                each(v.as_bytes());
            }
        }
    }
}

/// The parts of a request the validator reads.
pub struct RequestParts<'a> {
    /// From [`super::Match::Found`].
    pub path_params: &'a PathParams<'a, 'a>,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The request headers (`content-type`, `cookie` and declared header parameters are read).
    pub headers: &'a dyn HeaderSource,
    /// The body as received (empty when there is none). The gate bounds what it buffers; this checks the limit.
    pub body: &'a [u8],
}

/// How strictly undeclared input is treated; strict by default. Fixed per route at load, because unknown JSON fields
/// are refused by the compiled schemas themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Strictness {
    /// Let query parameters the operation does not declare through.
    pub allow_unknown_query_params: bool,
    /// Let JSON (and form) fields the schema does not declare through, where the schema itself says nothing.
    pub allow_unknown_fields: bool,
}

/// The per-route request policy the operations were compiled with.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RequestPolicy {
    pub(crate) allow_unknown_query_params: bool,
    pub(crate) max_body_bytes: usize,
}

/// A request body an operation accepts.
#[derive(Debug)]
pub struct RequestBody {
    /// Whether a request must carry a body.
    pub required: bool,
    pub(crate) media: Vec<MediaEntry>,
    pub(crate) policy: RequestPolicy,
}

impl RequestBody {
    /// The accepted media ranges as declared (e.g. `application/json`), for `Accept-Post`-style hints.
    pub fn content_types(&self) -> impl Iterator<Item = &str> {
        self.media.iter().map(|m| m.declared.as_str())
    }
}

/// One `content` entry.
#[derive(Debug)]
pub(crate) struct MediaEntry {
    pub(crate) declared: String,
    /// Lower-case type and subtype, either may be `*`.
    pub(crate) range: (String, String),
    pub(crate) validator: Option<Validator>,
    /// For form bodies: how each field's text becomes a value.
    pub(crate) shape: Shape,
}

/// What a media type is, for parsing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyKind {
    Json,
    Form,
    Opaque,
}

impl Operation {
    /// Check a request strictly against this operation. Returns the first refusal; the caller answers it with
    /// [`ValidationError::status`]. Never panics on any input.
    pub fn validate_request(&self, request: &RequestParts<'_>) -> Result<(), ValidationError> {
        self.check_path(request.path_params)?;
        self.check_query(request.query)?;
        self.check_headers(request.headers)?;
        self.check_cookies(request.headers)?;
        self.check_body(request.headers, request.body)
    }

    fn params_in(&self, location: ParamLocation) -> impl Iterator<Item = &Parameter> {
        self.params.iter().filter(move |p| p.location == location)
    }

    fn check_path(&self, path_params: &PathParams<'_, '_>) -> Result<(), ValidationError> {
        for param in self.params_in(ParamLocation::Path) {
            let fail = |kind| ValidationError::new(Location::Path, &param.name, kind);
            let raw = path_params.get(&param.name).ok_or_else(|| fail(ErrorKind::Missing))?;
            param.checker.check_text(param.style, param.explode, &param.name, raw).map_err(fail)?;
        }
        Ok(())
    }

    fn check_query(&self, query: Option<&str>) -> Result<(), ValidationError> {
        let pairs = parse_query(query.unwrap_or(""))
            .ok_or_else(|| ValidationError::new(Location::Query, "", ErrorKind::Malformed))?;
        let mut used = vec![false; pairs.len()];
        for param in self.params_in(ParamLocation::Query) {
            check_query_param(param, &pairs, &mut used)
                .map_err(|kind| ValidationError::new(Location::Query, &param.name, kind))?;
        }
        let allow_unknown = self.request_policy().allow_unknown_query_params;
        if let Some(i) = used.iter().position(|u| !u)
            && !allow_unknown
        {
            return Err(ValidationError::new(Location::Query, &pairs[i].0, ErrorKind::Unknown));
        }
        Ok(())
    }

    fn check_headers(&self, headers: &dyn HeaderSource) -> Result<(), ValidationError> {
        for param in self.params_in(ParamLocation::Header) {
            // OpenAPI: header parameters named Accept, Content-Type or Authorization are ignored.
            if ["accept", "content-type", "authorization"].iter().any(|n| param.name.eq_ignore_ascii_case(n)) {
                continue;
            }
            let fail = |kind| ValidationError::new(Location::Header, &param.name, kind);
            let joined = joined_header(headers, &param.name.to_ascii_lowercase()).map_err(fail)?;
            match joined {
                None if param.required => return Err(fail(ErrorKind::Missing)),
                None => {}
                Some(value) => {
                    param.checker.check_text(Style::Simple, param.explode, &param.name, &value).map_err(fail)?
                }
            }
        }
        Ok(())
    }

    fn check_cookies(&self, headers: &dyn HeaderSource) -> Result<(), ValidationError> {
        let mut params = self.params_in(ParamLocation::Cookie).peekable();
        if params.peek().is_none() {
            return Ok(());
        }
        let mut cookies: Vec<(String, String)> = Vec::new();
        let mut readable = true;
        headers.for_each_value("cookie", &mut |value| match std::str::from_utf8(value) {
            Ok(text) => cookies.extend(
                text.split(';').filter_map(|c| c.trim().split_once('=')).map(|(n, v)| (n.to_owned(), v.to_owned())),
            ),
            Err(_) => readable = false,
        });
        if !readable {
            return Err(ValidationError::new(Location::Cookie, "", ErrorKind::Malformed));
        }
        for param in params {
            let fail = |kind| ValidationError::new(Location::Cookie, &param.name, kind);
            let values: Vec<&str> = cookies.iter().filter(|(n, _)| *n == param.name).map(|(_, v)| v.as_str()).collect();
            check_occurrences(param, &values).map_err(fail)?;
        }
        Ok(())
    }

    fn check_body(&self, headers: &dyn HeaderSource, body: &[u8]) -> Result<(), ValidationError> {
        let content_type = joined_header(headers, "content-type")
            .map_err(|_| ValidationError::new(Location::ContentType, "", ErrorKind::Malformed))?;
        let Some(declared) = &self.request_body else {
            // A body the operation does not describe is data nobody checked; the upstream would still read it.
            if !body.is_empty() {
                return Err(ValidationError::new(Location::Body, "", ErrorKind::Unknown));
            }
            return Ok(());
        };
        if body.len() > declared.policy.max_body_bytes {
            return Err(ValidationError::new(Location::Body, "", ErrorKind::TooLarge));
        }
        if body.is_empty() && content_type.is_none() {
            return match declared.required {
                true => Err(ValidationError::new(Location::Body, "", ErrorKind::Missing)),
                false => Ok(()),
            };
        }
        let unsupported = || ValidationError::new(Location::ContentType, "", ErrorKind::UnsupportedMediaType);
        let media = parse_media_type(content_type.as_deref().unwrap_or("")).ok_or_else(unsupported)?;
        let entry = find_media(&declared.media, &media).ok_or_else(unsupported)?;
        if body.is_empty() && declared.required {
            return Err(ValidationError::new(Location::Body, "", ErrorKind::Missing));
        }
        let value = match media.kind {
            BodyKind::Json => parse_json_strict(body)?,
            BodyKind::Form => form_to_object(body, &entry.shape)?,
            BodyKind::Opaque => return Ok(()),
        };
        let Some(validator) = &entry.validator else {
            return Ok(());
        };
        match validator.validate(&value) {
            Ok(()) => Ok(()),
            Err(error) => Err(body_error(&error)),
        }
    }

    pub(crate) fn request_policy(&self) -> RequestPolicy {
        self.policy
    }
}

/// A schema error in the body, named by its JSON pointer and keyword; unknown fields and missing required ones get
/// their own kinds, with the field's pointer.
fn body_error(error: &jsonschema::ValidationError<'_>) -> ValidationError {
    use jsonschema::error::ValidationErrorKind as K;
    let at = error.instance_path().as_str();
    match error.kind() {
        K::UnevaluatedProperties { unexpected } | K::AdditionalProperties { unexpected } => {
            let field = unexpected.first().map(String::as_str).unwrap_or("");
            ValidationError::new(
                Location::Body,
                &format!("{at}/{}", super::schema::escape_pointer(field)),
                ErrorKind::Unknown,
            )
        }
        K::Required { property } => {
            let field = property.as_str().unwrap_or("");
            ValidationError::new(
                Location::Body,
                &format!("{at}/{}", super::schema::escape_pointer(field)),
                ErrorKind::Missing,
            )
        }
        kind => ValidationError::new(Location::Body, at, ErrorKind::Constraint(keyword_of(kind))),
    }
}

/// Collect and check one query parameter, marking the pairs it consumed.
fn check_query_param(
    param: &Parameter,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    used: &mut [bool],
) -> Result<(), ErrorKind> {
    let shape = &param.checker.shape;
    if param.style == Style::DeepObject {
        return check_deep_object(param, pairs, used);
    }
    if param.explode && matches!(shape, Shape::Object { .. }) && !param.checker.json_content {
        // Exploded form objects spread their properties over the query: `?role=admin&name=x`.
        let Shape::Object { properties, .. } = shape else { return Ok(()) };
        let mut found = Vec::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if properties.iter().any(|(name, _)| name == k) {
                used[i] = true;
                found.push(Some((k.as_ref(), v.as_ref())));
            }
        }
        if found.is_empty() {
            return if param.required { Err(ErrorKind::Missing) } else { Ok(()) };
        }
        let repeated =
            found.iter().enumerate().any(|(i, a)| found[..i].iter().any(|b| a.map(|p| p.0) == b.map(|p| p.0)));
        if repeated {
            return Err(ErrorKind::Duplicate);
        }
        let value = object_from_pairs(found.into_iter(), shape).ok_or(ErrorKind::Malformed)?;
        return param.checker.check_value(&value);
    }
    let mut values = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if *k == param.name {
            used[i] = true;
            values.push(v.as_ref());
        }
    }
    check_occurrences(param, &values)
}

/// Check the values a form-style parameter (query or cookie) was given.
fn check_occurrences(param: &Parameter, values: &[&str]) -> Result<(), ErrorKind> {
    match values {
        [] if param.required => Err(ErrorKind::Missing),
        [] => Ok(()),
        [one] if !(param.explode && matches!(param.checker.shape, Shape::Array(_))) || param.checker.json_content => {
            param.checker.check_text(param.style, param.explode, &param.name, one)
        }
        many => match (&param.checker.shape, param.explode && !param.checker.json_content) {
            (Shape::Array(items), true) => {
                let value = array_from(many.iter().copied(), *items).ok_or(ErrorKind::Malformed)?;
                param.checker.check_value(&value)
            }
            // Which of two values would the upstream read? Refuse rather than guess.
            _ => Err(ErrorKind::Duplicate),
        },
    }
}

/// `?filter[status]=open&filter[owner]=me`.
fn check_deep_object(
    param: &Parameter,
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    used: &mut [bool],
) -> Result<(), ErrorKind> {
    let shape = &param.checker.shape;
    let mut object = Map::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let Some(inner) = k.strip_prefix(param.name.as_str()).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        used[i] = true;
        let property = inner.strip_suffix(']').filter(|p| !p.contains(['[', ']'])).ok_or(ErrorKind::Malformed)?;
        insert_property(&mut object, property, v, shape).ok_or(ErrorKind::Malformed)?;
    }
    if object.is_empty() {
        return if param.required { Err(ErrorKind::Missing) } else { Ok(()) };
    }
    param.checker.check_value(&Value::Object(object))
}

/// All values of a header joined by `,` (RFC 9110 §5.3); `Err` when one is not UTF-8.
fn joined_header(headers: &dyn HeaderSource, name: &str) -> Result<Option<String>, ErrorKind> {
    let mut joined: Option<String> = None;
    let mut readable = true;
    headers.for_each_value(name, &mut |value| match std::str::from_utf8(value) {
        Ok(text) => match &mut joined {
            Some(j) => {
                j.push(',');
                j.push_str(text);
            }
            None => joined = Some(text.to_owned()),
        },
        Err(_) => readable = false,
    });
    if readable { Ok(joined) } else { Err(ErrorKind::Malformed) }
}

/// `application/x-www-form-urlencoded` pairs, strictly decoded (a bad escape or non-UTF-8 text is refused, not
/// replaced). Empty pieces (`a=1&&b=2`) are skipped.
pub(crate) fn parse_query(raw: &str) -> Option<Vec<(Cow<'_, str>, Cow<'_, str>)>> {
    raw.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            Some((form_decode(k)?, form_decode(v)?))
        })
        .collect()
}

fn form_decode(s: &str) -> Option<Cow<'_, str>> {
    if !s.contains(['%', '+']) {
        return Some(Cow::Borrowed(s));
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return None;
                }
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// A parsed `Content-Type`.
struct MediaType {
    essence: (String, String),
    kind: BodyKind,
}

/// Parse `type/subtype; charset=utf-8`. JSON and form bodies must be UTF-8 (RFC 8259 §8.1): another charset is
/// refused rather than read wrongly.
fn parse_media_type(header: &str) -> Option<MediaType> {
    let mut parts = header.split(';');
    let essence = parts.next()?.trim().to_ascii_lowercase();
    let (t, s) = essence.split_once('/')?;
    let token = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
    if !token(t) || !token(s) {
        return None;
    }
    let kind = media_kind(t, s);
    for param in parts {
        let (name, value) = param.trim().split_once('=')?;
        if name.trim().eq_ignore_ascii_case("charset") {
            let charset = value.trim().trim_matches('"');
            if kind != BodyKind::Opaque && !charset.eq_ignore_ascii_case("utf-8") {
                return None;
            }
        }
    }
    Some(MediaType { essence: (t.to_owned(), s.to_owned()), kind })
}

fn media_kind(t: &str, s: &str) -> BodyKind {
    if (t == "application" || t == "*") && (s == "json" || s.ends_with("+json")) {
        BodyKind::Json
    } else if t == "application" && s == "x-www-form-urlencoded" {
        BodyKind::Form
    } else {
        BodyKind::Opaque
    }
}

/// The most specific declared range covering `media`: exact, then `type/*`, then `*/*`.
fn find_media<'a>(entries: &'a [MediaEntry], media: &MediaType) -> Option<&'a MediaEntry> {
    let (t, s) = &media.essence;
    entries
        .iter()
        .find(|e| e.range.0 == *t && e.range.1 == *s)
        .or_else(|| entries.iter().find(|e| e.range.0 == *t && e.range.1 == "*"))
        .or_else(|| entries.iter().find(|e| e.range.0 == "*"))
}

/// Parse a declared content key into its range.
pub(crate) fn declared_range(key: &str) -> Option<(String, String)> {
    let essence = key.split(';').next()?.trim().to_ascii_lowercase();
    let (t, s) = essence.split_once('/')?;
    Some((t.to_owned(), s.to_owned()))
}

/// Parse a JSON body, refusing repeated object keys (the gate and the upstream might keep different ones) and
/// nesting deeper than serde_json's limit of 128.
pub(crate) fn parse_json_strict(body: &[u8]) -> Result<Value, ValidationError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = StrictValue.deserialize(&mut deserializer).map_err(|e| {
        let kind = if e.to_string().starts_with(DUPLICATE_KEY) { ErrorKind::Duplicate } else { ErrorKind::Malformed };
        ValidationError::new(Location::Body, "", kind)
    })?;
    deserializer.end().map_err(|_| ValidationError::new(Location::Body, "", ErrorKind::Malformed))?;
    Ok(value)
}

const DUPLICATE_KEY: &str = "duplicate object key";

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v).map(Value::Number).ok_or_else(|| E::custom("not a finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE_KEY));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A form body as an object: each field coerced to its declared type; repeated fields only for array properties.
fn form_to_object(body: &[u8], shape: &Shape) -> Result<Value, ValidationError> {
    let malformed = || ValidationError::new(Location::Body, "", ErrorKind::Malformed);
    let text = std::str::from_utf8(body).map_err(|_| malformed())?;
    let pairs = parse_query(text).ok_or_else(malformed)?;
    let mut object = Map::new();
    for (k, v) in &pairs {
        let types = property_types(shape, k);
        let pointer = format!("/{}", super::schema::escape_pointer(k));
        let field_error = |kind| ValidationError::new(Location::Body, &pointer, kind);
        if types.has(Types::ARRAY) && types != Types::ANY {
            let item = coerce(v, Types::ANY).ok_or_else(|| field_error(ErrorKind::Malformed))?;
            match object.entry(k.to_string()).or_insert_with(|| Value::Array(Vec::new())) {
                Value::Array(items) => items.push(item),
                _ => return Err(field_error(ErrorKind::Duplicate)),
            }
            continue;
        }
        if object.contains_key(k.as_ref()) {
            return Err(field_error(ErrorKind::Duplicate));
        }
        let value = coerce(v, types).ok_or_else(|| field_error(ErrorKind::Constraint("type")))?;
        object.insert(k.to_string(), value);
    }
    Ok(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding_is_strict() {
        let pairs = parse_query("a=1&b=x+y%21&&c").unwrap();
        assert_eq!(pairs.len(), 3);
        assert_eq!(pairs[1].1, "x y!");
        assert_eq!(pairs[2].1, "");
        assert!(parse_query("a=%zz").is_none());
        assert!(parse_query("a=%ff").is_none(), "not UTF-8");
        assert!(parse_query("a=%4").is_none());
    }

    #[test]
    fn media_types_parse() {
        let m = parse_media_type("Application/JSON; charset=UTF-8").unwrap();
        assert_eq!(m.essence, ("application".into(), "json".into()));
        assert_eq!(m.kind, BodyKind::Json);
        assert_eq!(parse_media_type("application/problem+json").unwrap().kind, BodyKind::Json);
        assert!(parse_media_type("application/json; charset=latin1").is_none());
        assert!(parse_media_type("json").is_none());
        assert!(parse_media_type("a/b c").is_none());
        assert_eq!(parse_media_type("text/plain; charset=latin1").unwrap().kind, BodyKind::Opaque);
    }

    #[test]
    fn json_duplicates_and_garbage_are_refused() {
        assert!(parse_json_strict(br#"{"a":1,"b":[1,{"c":null}]}"#).is_ok());
        assert_eq!(parse_json_strict(br#"{"a":1,"a":2}"#).unwrap_err().kind, ErrorKind::Duplicate);
        assert_eq!(parse_json_strict(br#"{"a":{"b":1,"b":1}}"#).unwrap_err().kind, ErrorKind::Duplicate);
        for bad in [&b"{"[..], b"{\"a\":1} x", b"NaN", b"", b"\xff", &[b'['; 200]] {
            assert_eq!(parse_json_strict(bad).unwrap_err().kind, ErrorKind::Malformed);
        }
    }
}
