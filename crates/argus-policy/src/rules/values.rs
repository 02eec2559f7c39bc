//! Request data as CEL values, borrowed rather than copied.
//!
//! Strings stay references into the request's JSON (CEL's `CelString` borrows), and a root the rule reads only as
//! `root.field` is converted for those fields alone, so a rule about `body.amount` does not walk a large body.
//!
//! Converting, and iterating in a comprehension, cost about a microsecond per value; a [`Budget`] caps the values
//! one evaluation may convert, so the cost of a rule stays bounded whatever the request carries.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use cel::common::types::{CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt};
use cel::common::value::Val;
use serde_json::{Map, Value};

use super::analysis::Fields;

/// A boxed CEL value borrowing request data for `'v`.
pub(crate) type BoxVal<'v> = Box<dyn Val + 'v>;

/// Most request values one evaluation converts. Rules decide on a few fields (an owner, an amount, the items of a
/// small order); a rule reading a larger structure denies rather than spend milliseconds per call.
pub(crate) const MAX_INPUT_VALUES: usize = 4096;

/// The input exceeds [`MAX_INPUT_VALUES`].
#[derive(Debug)]
pub(crate) struct TooLarge;

/// Values left to convert in this evaluation.
pub(crate) struct Budget(usize);

impl Budget {
    pub(crate) fn new() -> Self {
        Self(MAX_INPUT_VALUES)
    }

    fn spend(&mut self, n: usize) -> Result<(), TooLarge> {
        self.0 = self.0.checked_sub(n).ok_or(TooLarge)?;
        Ok(())
    }

    /// A JSON value as CEL sees it. Integers that fit `i64` are `int` (what CEL literals are), larger ones `uint`,
    /// the rest `double`; CEL compares numbers across the three.
    pub(crate) fn json<'v>(&mut self, value: &'v Value) -> Result<BoxVal<'v>, TooLarge> {
        self.spend(1)?;
        Ok(match value {
            Value::Null => Box::new(CelNull),
            Value::Bool(b) => Box::new(CelBool::from(*b)),
            Value::Number(n) => number(n),
            Value::String(s) => Box::new(CelString::from(s.as_str())),
            Value::Array(items) => {
                let items = items.iter().map(|v| self.json(v)).collect::<Result<Vec<_>, _>>()?;
                Box::new(CelList::from(items))
            }
            Value::Object(map) => self.object(map, &Fields::All)?,
        })
    }

    /// A JSON object as a CEL map, keeping only the members `fields` asks for.
    pub(crate) fn object<'v>(&mut self, map: &'v Map<String, Value>, fields: &Fields) -> Result<BoxVal<'v>, TooLarge> {
        let mut entries: HashMap<CelMapKey<'v>, BoxVal<'v>> = HashMap::new();
        for (k, v) in map.iter().filter(|(k, _)| fields.wants(k)) {
            entries.insert(CelMapKey::from(k.as_str()), self.json(v)?);
        }
        Ok(Box::new(CelMap::from(entries)))
    }

    /// An optional JSON object; absent is an empty map, so `has(query.x)` is simply false.
    pub(crate) fn optional_object<'v>(
        &mut self,
        map: Option<&'v Map<String, Value>>,
        fields: &Fields,
    ) -> Result<BoxVal<'v>, TooLarge> {
        match map {
            Some(map) => self.object(map, fields),
            None => Ok(Box::new(CelMap::from(HashMap::new()))),
        }
    }

    /// Access-token claims. `scope` becomes a list of scope tokens (a missing claim, the empty list), so
    /// `'admin' in token.scope` works whatever form the issuer used.
    pub(crate) fn claims<'v>(
        &mut self,
        claims: &'v Map<String, Value>,
        fields: &Fields,
    ) -> Result<BoxVal<'v>, TooLarge> {
        let mut entries: HashMap<CelMapKey<'v>, BoxVal<'v>> = HashMap::new();
        for (k, v) in claims.iter().filter(|(k, _)| k.as_str() != "scope" && fields.wants(k)) {
            entries.insert(CelMapKey::from(k.as_str()), self.json(v)?);
        }
        if fields.wants("scope") {
            entries.insert(CelMapKey::from("scope"), self.scope_list(claims.get("scope"))?);
        }
        Ok(Box::new(CelMap::from(entries)))
    }

    fn scope_list<'v>(&mut self, scope: Option<&'v Value>) -> Result<BoxVal<'v>, TooLarge> {
        let items: Vec<BoxVal<'v>> = match scope {
            Some(Value::String(s)) => {
                let tokens: Vec<BoxVal<'v>> =
                    s.split_ascii_whitespace().map(|t| Box::new(CelString::from(t)) as BoxVal<'v>).collect();
                self.spend(tokens.len())?;
                tokens
            }
            Some(Value::Array(items)) => items.iter().map(|v| self.json(v)).collect::<Result<_, _>>()?,
            _ => Vec::new(),
        };
        Ok(Box::new(CelList::from(items)))
    }

    /// Headers by lower-case name. A repeated header reads as its values joined with ", " (RFC 9110 §5.3).
    pub(crate) fn headers<'v>(
        &mut self,
        headers: &[(&'v str, &'v str)],
        fields: &Fields,
    ) -> Result<BoxVal<'v>, TooLarge> {
        let mut values: HashMap<&'v str, Cow<'v, str>> = HashMap::new();
        for &(name, value) in headers.iter().filter(|(name, _)| fields.wants(name)) {
            self.spend(1)?;
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
        Ok(Box::new(CelMap::from(entries)))
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
