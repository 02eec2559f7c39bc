//! Parameters as values, typed by the operation's declared schemas: what `x-argus-rule` sees as `params` and
//! `query` (the rule engine is in `crate::rules`).
//!
//! The text of each parameter is read exactly as validation reads it (style, explode, the schema's declared type),
//! so `/accounts/{id}` with an `integer` id gives the rule the number 7 and `params.id == 7` holds. Rules run before
//! validation: a value that does not read as its declared type is left out (a rule that reads it denies with a
//! missing field), and validation refuses the call anyway.

use std::borrow::Cow;

use serde_json::{Map, Value};

use super::super::matcher::PathParams;
use super::super::operation::{Operation, ParamLocation, Parameter, Style};
use super::super::request::parse_query;
use super::super::schema::Shape;
use super::{array_from, insert_property, object_from_pairs};

impl Operation {
    /// The path parameters, typed as declared (loading refuses a template parameter that is not declared; one
    /// would stay text).
    pub fn typed_path_params(&self, params: &PathParams<'_, '_>) -> Map<String, Value> {
        params
            .iter()
            .filter_map(|(name, raw)| {
                let declared = self.params.iter().find(|p| p.location == ParamLocation::Path && p.name == name);
                let value = match declared {
                    Some(p) => read_one(p, raw)?,
                    None => Value::from(raw),
                };
                Some((name.to_owned(), value))
            })
            .collect()
    }

    /// The query parameters, decoded and typed as declared: a declared parameter as its schema reads it (arrays,
    /// exploded and `deepObject` objects included), an undeclared one (a route that is not strict) as text, or a
    /// list of texts when repeated. A query that does not decode gives no parameters at all.
    pub fn typed_query(&self, query: Option<&str>) -> Map<String, Value> {
        let Some(pairs) = parse_query(query.unwrap_or("")) else {
            return Map::new();
        };
        let mut used = vec![false; pairs.len()];
        let mut out = Map::new();
        for param in self.params.iter().filter(|p| p.location == ParamLocation::Query) {
            if let Some(value) = read_query_param(param, &pairs, &mut used) {
                out.insert(param.name.clone(), value);
            }
        }
        let is_declared = |name: &str| self.params.iter().any(|p| p.location == ParamLocation::Query && p.name == name);
        for ((name, value), _) in pairs.iter().zip(&used).filter(|(_, used)| !**used) {
            // A pair named like a declared `deepObject` or exploded object is not that parameter: leave it out.
            if is_declared(name) {
                continue;
            }
            let text = Value::from(value.as_ref());
            match out.get_mut(name.as_ref()) {
                None => {
                    out.insert(name.clone().into_owned(), text);
                }
                Some(Value::Array(values)) => values.push(text),
                Some(first) => *first = Value::Array(vec![first.take(), text]),
            }
        }
        out
    }
}

/// One occurrence of a parameter as its checker reads it.
fn read_one(param: &Parameter, raw: &str) -> Option<Value> {
    param.checker.read_text(param.style, param.explode, &param.name, raw)
}

/// A declared query parameter's value, marking the pairs it takes; `None` when absent or unreadable. Mirrors what
/// validation collects (`request::check_query_param`).
fn read_query_param(param: &Parameter, pairs: &[(Cow<'_, str>, Cow<'_, str>)], used: &mut [bool]) -> Option<Value> {
    let shape = &param.checker.shape;
    if param.style == Style::DeepObject {
        return read_deep_object(param, pairs, used);
    }
    if param.explode
        && !param.checker.json_content
        && let Shape::Object { properties, .. } = shape
    {
        // Exploded form objects spread their properties over the query: `?role=admin&name=x`.
        let mut found = Vec::new();
        for (i, (k, v)) in pairs.iter().enumerate() {
            if properties.iter().any(|(name, _)| name == k) {
                used[i] = true;
                found.push(Some((k.as_ref(), v.as_ref())));
            }
        }
        return if found.is_empty() { None } else { object_from_pairs(found.into_iter(), shape) };
    }
    let mut values = Vec::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if *k == param.name {
            used[i] = true;
            values.push(v.as_ref());
        }
    }
    match (values.as_slice(), shape) {
        ([], _) => None,
        (many, Shape::Array(items)) if param.explode && !param.checker.json_content => {
            array_from(many.iter().copied(), *items)
        }
        ([one], _) => read_one(param, one),
        // Which of two values would the upstream read? Validation refuses the call; the rule sees none.
        _ => None,
    }
}

/// `?filter[status]=open&filter[owner]=me`.
fn read_deep_object(param: &Parameter, pairs: &[(Cow<'_, str>, Cow<'_, str>)], used: &mut [bool]) -> Option<Value> {
    let mut object = Map::new();
    let mut readable = true;
    for (i, (k, v)) in pairs.iter().enumerate() {
        let Some(inner) = k.strip_prefix(param.name.as_str()).and_then(|r| r.strip_prefix('[')) else {
            continue;
        };
        used[i] = true;
        let property = inner.strip_suffix(']').filter(|p| !p.contains(['[', ']']));
        readable &= property.and_then(|p| insert_property(&mut object, p, v, &param.checker.shape)).is_some();
    }
    (readable && !object.is_empty()).then_some(Value::Object(object))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::super::{Match, Spec};

    const SPEC: &str = r#"
openapi: 3.1.0
info: {title: t, version: '1'}
paths:
  /accounts/{id}/{slug}:
    get:
      parameters:
        - {name: id, in: path, required: true, schema: {type: integer}}
        - {name: slug, in: path, required: true, schema: {type: string}}
        - {name: limit, in: query, schema: {type: integer}}
        - {name: ratio, in: query, schema: {type: number}}
        - {name: full, in: query, schema: {type: boolean}}
        - {name: tag, in: query, schema: {type: string}}
        - {name: ids, in: query, schema: {type: array, items: {type: integer}}}
        - {name: csv, in: query, explode: false, schema: {type: array, items: {type: integer}}}
        - {name: filter, in: query, style: deepObject, schema: {type: object, properties: {min: {type: integer}, who: {type: string}}}}
        - {name: where, in: query, content: {application/json: {schema: {type: object}}}}
      responses: {'200': {description: ok}}
"#;

    fn matched<R>(path: &str, f: impl FnOnce(&super::Operation, &super::PathParams<'_, '_>) -> R) -> R {
        let spec = Spec::parse(SPEC, &Default::default()).unwrap();
        let Match::Found(op, params) = spec.match_request("GET", path) else { panic!("no match for {path}") };
        f(op, &params)
    }

    #[test]
    fn path_parameters_take_their_declared_type() {
        let typed = matched("/accounts/7/007", |op, p| op.typed_path_params(p));
        assert_eq!(serde_json::Value::Object(typed), json!({"id": 7, "slug": "007"}));
        // An id that is no integer is left out: a rule reading it denies, validation refuses the call.
        let typed = matched("/accounts/x7/a", |op, p| op.typed_path_params(p));
        assert_eq!(serde_json::Value::Object(typed), json!({"slug": "a"}));
    }

    #[test]
    fn query_parameters_take_their_declared_type() {
        let q = "limit=5&ratio=0.5&full=true&tag=07&ids=1&ids=2&csv=3,4&filter%5Bmin%5D=9&filter[who]=me\
                 &where=%7B%22a%22%3A1%7D&extra=x&more=1&more=2";
        let typed = matched("/accounts/1/a", |op, _| op.typed_query(Some(q)));
        assert_eq!(
            serde_json::Value::Object(typed),
            json!({
                "limit": 5, "ratio": 0.5, "full": true, "tag": "07", "ids": [1, 2], "csv": [3, 4],
                "filter": {"min": 9, "who": "me"}, "where": {"a": 1}, "extra": "x", "more": ["1", "2"],
            })
        );
    }

    #[test]
    fn unreadable_or_ambiguous_values_are_left_out() {
        let typed = matched("/accounts/1/a", |op, _| op.typed_query(Some("limit=five&tag=a&tag=b&ids=1&ids=x")));
        assert!(typed.is_empty(), "{typed:?}");
        let typed = matched("/accounts/1/a", |op, _| op.typed_query(Some("limit=%zz")));
        assert!(typed.is_empty(), "an undecodable query gives nothing");
        let typed = matched("/accounts/1/a", |op, _| op.typed_query(None));
        assert!(typed.is_empty());
    }
}
