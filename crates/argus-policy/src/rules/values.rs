//! Request data as CEL values, borrowed rather than copied.
//!
//! Strings stay references into the request's JSON (CEL's `CelString` borrows), and a root the rule reads only as
//! `root.field` is converted for those fields alone, so a rule about `body.amount` does not walk a large body.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::Val;
use serde_json::{Map, Value};

use super::analysis::Fields;

/// A boxed CEL value borrowing request data for `'v`.
pub(crate) type BoxVal<'v> = Box<dyn Val + 'v>;

/// A JSON value as CEL sees it. Integers that fit `i64` are `int` (what CEL literals are), larger ones `uint`, the
/// rest `double`, so `body.amount < 100000` compares like with like.
pub(crate) fn json<'v>(value: &'v Value) -> BoxVal<'v> {
    match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => number(n),
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => Box::new(CelList::from(items.iter().map(json).collect::<Vec<_>>())),
        Value::Object(map) => object(map, &Fields::All),
    }
}

/// CEL `null`, for a call without a body.
pub(crate) fn null() -> BoxVal<'static> {
    Box::new(CelNull)
}

fn number(n: &serde_json::Number) -> BoxVal<'static> {
    if let Some(i) = n.as_i64() {
        Box::new(CelInt::from(i))
    } else if let Some(u) = n.as_u64() {
        Box::new(CelUInt::from(u))
    } else {
        Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
    }
}

/// A JSON object as a CEL map, keeping only the members `fields` asks for.
pub(crate) fn object<'v>(map: &'v Map<String, Value>, fields: &Fields) -> BoxVal<'v> {
    let entries: HashMap<CelMapKey<'v>, BoxVal<'v>> = map
        .iter()
        .filter(|(k, _)| fields.wants(k))
        .map(|(k, v)| (CelMapKey::from(k.as_str()), json(v)))
        .collect();
    Box::new(CelMap::from(entries))
}

/// An optional JSON object; absent is an empty map, so `has(query.x)` is simply false.
pub(crate) fn optional_object<'v>(map: Option<&'v Map<String, Value>>, fields: &Fields) -> BoxVal<'v> {
    match map {
        Some(map) => object(map, fields),
        None => Box::new(CelMap::from(HashMap::new())),
    }
}

/// Access-token claims. `scope` becomes a list of scope tokens (a missing claim, the empty list), so
/// `'admin' in token.scope` works whatever form the issuer used.
pub(crate) fn claims<'v>(claims: &'v Map<String, Value>, fields: &Fields) -> BoxVal<'v> {
    let mut entries: HashMap<CelMapKey<'v>, BoxVal<'v>> =
        claims.iter().filter(|(k, _)| k.as_str() != "scope" && fields.wants(k)).map(|(k, v)| (k.as_str().into(), json(v))).collect();
    if fields.wants("scope") {
        entries.insert(CelMapKey::from("scope"), scope_list(claims.get("scope")));
    }
    Box::new(CelMap::from(entries))
}

fn scope_list(scope: Option<&Value>) -> BoxVal<'_> {
    let items: Vec<BoxVal<'_>> = match scope {
        Some(Value::String(s)) => s.split_ascii_whitespace().map(|t| Box::new(CelString::from(t)) as BoxVal<'_>).collect(),
        Some(Value::Array(items)) => items.iter().map(json).collect(),
        _ => Vec::new(),
    };
    Box::new(CelList::from(items))
}

/// Headers by lower-case name. A repeated header reads as its values joined with ", " (RFC 9110 §5.3).
pub(crate) fn headers<'v>(headers: &[(&'v str, &'v str)], fields: &Fields) -> BoxVal<'v> {
    let mut values: HashMap<&'v str, Cow<'v, str>> = HashMap::new();
    for &(name, value) in headers.iter().filter(|(name, _)| fields.wants(name)) {
        values
            .entry(name)
            .and_modify(|all| {
                let all = all.to_mut();
                all.push_str(", ");
                all.push_str(value);
            })
            .or_insert(Cow::Borrowed(value));
    }
    let entries: HashMap<CelMapKey<'v>, BoxVal<'v>> =
        values.into_iter().map(|(k, v)| (CelMapKey::from(k), Box::new(CelString::from(v)) as BoxVal<'v>)).collect();
    Box::new(CelMap::from(entries))
}

/// `request`: `method`, `path` and `ip` (absent when unknown).
pub(crate) fn request<'v>(method: &'v str, path: &'v str, ip: Option<IpAddr>) -> BoxVal<'v> {
    let mut entries: HashMap<CelMapKey<'v>, BoxVal<'v>> = HashMap::with_capacity(3);
    entries.insert("method".into(), Box::new(CelString::from(method)));
    entries.insert("path".into(), Box::new(CelString::from(path)));
    if let Some(ip) = ip {
        entries.insert("ip".into(), Box::new(CelString::from(ip.to_string())));
    }
    Box::new(CelMap::from(entries))
}
