//! OpenAPI schemas turned into compiled JSON Schema 2020-12 validators, once, at load.
//!
//! Every schema a request or response is checked against is *bundled*: each `$ref` target (inside the document or
//! in another file of the spec's folder) becomes one entry of a `$defs` map, converted once and shared, and the
//! reference is rewritten to `#/$defs/<key>`. A validator is then compiled from its use-site schema plus the `$defs`
//! it reaches. Recursive schemas are legal: a target is registered before it is converted, so a cycle ends at the
//! registration. Nothing is resolved by `jsonschema` itself (no resolver features): what it sees is self-contained.
//!
//! OpenAPI 3.0 schemas are a dialect of draft 4/5 and are converted: `nullable: true` adds `"null"` to `type` (and
//! to `enum`), boolean `exclusiveMinimum/Maximum` take the value of `minimum/maximum`, `$ref` siblings are dropped
//! (3.0 ignores them), `example`, `discriminator`, `xml`, `externalDocs` and `x-*` are dropped (annotations). 3.1
//! schemas are 2020-12 already and only go through the reference rewriting. In both, the OpenAPI formats `int32` and
//! `int64` become range checks, `byte` a base64 check; other formats are asserted by `jsonschema`.
//!
//! ## Unknown fields (strict mode)
//! A field the schema never declares is refused: the bundler adds `unevaluatedProperties: false` at every place
//! an object instance is checked (the root, `properties/*`, `items`, ...) where the schema declares fields
//! (`properties`, `patternProperties`, a composition or a reference) and says nothing itself about extra ones.
//! `unevaluatedProperties` rather than `additionalProperties` because it sees through `allOf`/`oneOf`/`$ref`: a
//! field declared in any branch that matched is accepted, while `additionalProperties: false` in each branch would
//! refuse the other branches' fields and break every composed schema. It is never added inside a composition branch
//! (the enclosing instance position carries it), never where the schema speaks about extra fields itself (its own
//! answer wins), and never on an object that declares no fields at all (`type: object` alone is OpenAPI's idiom
//! for a free-form map).

use std::collections::{HashMap, HashSet, VecDeque};

use jsonschema::{Draft, PatternOptions, Validator};
use serde_json::{Map, Value, json};

use super::error::{LoadError, LoadErrorKind};
use super::load::{DocId, Documents};

/// The schema dialect of a spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAPI 3.0.x: the extended draft-5 subset, converted.
    Oas30,
    /// OpenAPI 3.1.x: JSON Schema 2020-12.
    Oas31,
}

/// Whether a schema sits where an instance is checked as a whole (strict mode may close it) or inside a
/// composition (the enclosing position decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Position {
    Instance,
    Branch,
}

/// How many `$ref` hops the shape reader follows inside the bundle.
const MAX_SHAPE_HOPS: usize = 32;

/// The converted `$defs` of one spec, for one strictness.
pub(crate) struct Bundle {
    dialect: Dialect,
    close_objects: bool,
    defs: Map<String, Value>,
    keys: HashMap<(DocId, String), String>,
    names: HashSet<String>,
}

impl Bundle {
    /// An empty bundle; `close_objects` turns on the strict-mode injection described in the module docs.
    pub(crate) fn new(dialect: Dialect, close_objects: bool) -> Bundle {
        Bundle { dialect, close_objects, defs: Map::new(), keys: HashMap::new(), names: HashSet::new() }
    }

    /// Convert the schema at (`doc`, `pointer`) as the root of a check.
    pub(crate) fn convert_at(&mut self, docs: &mut Documents, doc: DocId, pointer: &str) -> Result<Value, LoadError> {
        let raw = docs
            .value(doc)
            .pointer(pointer)
            .cloned()
            .ok_or_else(|| docs.error(doc, pointer, LoadErrorKind::DanglingRef(pointer.to_owned())))?;
        self.convert(docs, doc, pointer, &raw, Position::Instance)
    }

    /// Compile `root` (a converted schema) with the `$defs` it reaches. `doc`/`pointer` name it in errors.
    pub(crate) fn compile(
        &self,
        root: &Value,
        docs: &Documents,
        doc: DocId,
        pointer: &str,
    ) -> Result<Validator, LoadError> {
        let document = self.self_contained(root);
        compile_options().build(&document).map_err(|e| {
            let message = e.to_string();
            docs.error(doc, pointer, LoadErrorKind::Schema(argus_model::truncate_utf8(&message, 300).to_owned()))
        })
    }

    /// `root` with the `$defs` it reaches (transitively) attached.
    fn self_contained(&self, root: &Value) -> Value {
        let mut reached = Map::new();
        let mut queue: VecDeque<&Value> = VecDeque::from([root]);
        let mut refs = Vec::new();
        while let Some(value) = queue.pop_front() {
            refs.clear();
            collect_def_refs(value, &mut refs);
            for key in refs.drain(..) {
                if reached.contains_key(key) {
                    continue;
                }
                if let Some(def) = self.defs.get(key) {
                    reached.insert(key.to_owned(), def.clone());
                    queue.push_back(def);
                }
            }
        }
        let mut document = match root {
            Value::Object(map) => map.clone(),
            other => Map::from_iter([("allOf".to_owned(), Value::Array(vec![other.clone()]))]),
        };
        if !reached.is_empty() {
            document.insert("$defs".to_owned(), Value::Object(reached));
        }
        Value::Object(document)
    }

    /// Follow `#/$defs/...` references of a converted schema to the schema they name (for reading its shape).
    pub(crate) fn deref<'a>(&'a self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..MAX_SHAPE_HOPS {
            let Some(key) = schema.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) else {
                return schema;
            };
            match self.defs.get(key) {
                Some(target) => schema = target,
                None => return schema,
            }
        }
        schema
    }

    fn convert(
        &mut self,
        docs: &mut Documents,
        doc: DocId,
        pointer: &str,
        schema: &Value,
        position: Position,
    ) -> Result<Value, LoadError> {
        let map = match schema {
            Value::Bool(_) => return Ok(schema.clone()),
            Value::Object(map) => map,
            _ => return Err(docs.error(doc, pointer, LoadErrorKind::Invalid("a schema must be an object".into()))),
        };
        let mut out = Map::new();
        let mut ref_target = None;
        if let Some(reference) = map.get("$ref") {
            let Some(reference) = reference.as_str() else {
                return Err(docs.error(doc, pointer, LoadErrorKind::BadRef));
            };
            let (key, target) = self.def_key(docs, doc, &format!("{pointer}/$ref"), reference)?;
            out.insert("$ref".to_owned(), Value::String(format!("#/$defs/{key}")));
            ref_target = Some(target);
        }
        // OpenAPI 3.0: "sibling properties of a $ref are ignored".
        if ref_target.is_none() || self.dialect == Dialect::Oas31 {
            self.convert_keywords(docs, doc, pointer, map, &mut out)?;
        }
        if self.dialect == Dialect::Oas30 && ref_target.is_none() {
            convert_oas30_only(map, &mut out);
        }
        add_openapi_format_checks(&mut out);
        if self.close_objects && position == Position::Instance && self.should_close(docs, map, ref_target) {
            out.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
        }
        Ok(Value::Object(out))
    }

    fn convert_keywords(
        &mut self,
        docs: &mut Documents,
        doc: DocId,
        pointer: &str,
        map: &Map<String, Value>,
        out: &mut Map<String, Value>,
    ) -> Result<(), LoadError> {
        for (keyword, value) in map {
            let at = format!("{pointer}/{}", escape_pointer(keyword));
            let converted = match keyword.as_str() {
                "$ref" => continue,
                "properties" | "patternProperties" => self.convert_map(docs, doc, &at, value, Position::Instance)?,
                "dependentSchemas" => self.convert_map(docs, doc, &at, value, Position::Branch)?,
                "additionalProperties"
                | "unevaluatedProperties"
                | "items"
                | "additionalItems"
                | "unevaluatedItems"
                | "contains" => self.convert(docs, doc, &at, value, Position::Instance)?,
                "prefixItems" => self.convert_list(docs, doc, &at, value, Position::Instance)?,
                "allOf" | "anyOf" | "oneOf" => self.convert_list(docs, doc, &at, value, Position::Branch)?,
                "not" | "if" | "then" | "else" | "propertyNames" => {
                    self.convert(docs, doc, &at, value, Position::Branch)?
                }
                "$dynamicRef" | "$recursiveRef" | "$id" => {
                    return Err(docs.error(doc, &at, LoadErrorKind::Invalid(format!("{keyword} is not supported"))));
                }
                // Reached through full pointers only; a nested `$defs` would also clash with the bundle's own.
                "$defs" | "definitions" | "$schema" | "$anchor" | "$dynamicAnchor" | "$comment" => continue,
                "example" | "discriminator" | "xml" | "externalDocs" => continue,
                k if k.starts_with("x-") => continue,
                // 3.0 keywords with another meaning in 2020-12, handled by `convert_oas30_only`.
                "nullable" | "exclusiveMinimum" | "exclusiveMaximum" if self.dialect == Dialect::Oas30 => continue,
                _ => value.clone(),
            };
            out.insert(keyword.clone(), converted);
        }
        Ok(())
    }

    fn convert_map(
        &mut self,
        docs: &mut Documents,
        doc: DocId,
        at: &str,
        value: &Value,
        position: Position,
    ) -> Result<Value, LoadError> {
        let Value::Object(entries) = value else {
            return Err(docs.error(doc, at, LoadErrorKind::Invalid("expected a map of schemas".into())));
        };
        let mut out = Map::new();
        for (name, schema) in entries {
            let converted = self.convert(docs, doc, &format!("{at}/{}", escape_pointer(name)), schema, position)?;
            out.insert(name.clone(), converted);
        }
        Ok(Value::Object(out))
    }

    fn convert_list(
        &mut self,
        docs: &mut Documents,
        doc: DocId,
        at: &str,
        value: &Value,
        position: Position,
    ) -> Result<Value, LoadError> {
        let Value::Array(items) = value else {
            return Err(docs.error(doc, at, LoadErrorKind::Invalid("expected a list of schemas".into())));
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, schema) in items.iter().enumerate() {
            out.push(self.convert(docs, doc, &format!("{at}/{i}"), schema, position)?);
        }
        Ok(Value::Array(out))
    }

    /// The `$defs` key of the schema `reference` names, converting it on first use.
    fn def_key(
        &mut self,
        docs: &mut Documents,
        from: DocId,
        at: &str,
        reference: &str,
    ) -> Result<(String, (DocId, String)), LoadError> {
        let target = docs.resolve(from, at, reference)?;
        if let Some(key) = self.keys.get(&target) {
            return Ok((key.clone(), target));
        }
        let key = self.fresh_key(target.0, &target.1);
        self.keys.insert(target.clone(), key.clone());
        // Registered before conversion: a recursive reference met below finds the key and stops.
        self.defs.insert(key.clone(), Value::Bool(true));
        let raw = docs.value(target.0).pointer(&target.1).cloned().unwrap_or(Value::Bool(true));
        let converted = self.convert(docs, target.0, &target.1, &raw, Position::Branch)?;
        self.defs.insert(key.clone(), converted);
        Ok((key, target))
    }

    /// A readable, unique `$defs` key: the component name when there is one.
    fn fresh_key(&mut self, doc: DocId, pointer: &str) -> String {
        let base = match pointer.strip_prefix("/components/schemas/") {
            Some(name) if doc == 0 && !name.contains('/') => sanitize_key(name),
            _ => format!("d{doc}{}", sanitize_key(pointer)),
        };
        let mut key = base.clone();
        let mut n = 2;
        while !self.names.insert(key.clone()) {
            key = format!("{base}_{n}");
            n += 1;
        }
        key
    }

    /// Strict mode closes an object schema that declares fields and says nothing about extra ones.
    fn should_close(
        &self,
        docs: &mut Documents,
        map: &Map<String, Value>,
        ref_target: Option<(DocId, String)>,
    ) -> bool {
        if map.contains_key("additionalProperties") || map.contains_key("unevaluatedProperties") {
            return false;
        }
        if !type_allows_object(map.get("type")) {
            return false;
        }
        if declares_fields(map) {
            return true;
        }
        let Some((doc, pointer)) = ref_target else {
            return false;
        };
        match docs.follow(doc, pointer) {
            Ok((doc, pointer)) => match docs.value(doc).pointer(&pointer) {
                Some(Value::Object(target)) => type_allows_object(target.get("type")) && declares_fields(target),
                _ => false,
            },
            Err(_) => false,
        }
    }
}

/// The options every validator is compiled with.
fn compile_options() -> jsonschema::ValidationOptions<'static> {
    // The `regex` crate: linear-time matching, so a hostile value cannot make a `pattern` backtrack for seconds.
    // JSON Schema patterns are unanchored searches, which is what `Regex::is_match` does.
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .with_format("byte", is_base64)
}

/// OpenAPI's `byte` format: standard base64 with padding.
fn is_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return false;
    }
    let body = s.trim_end_matches('=');
    if bytes.len() - body.len() > 2 {
        return false;
    }
    body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
}

/// The 3.0 keywords whose meaning changed: `nullable` and boolean `exclusiveMinimum/Maximum`.
fn convert_oas30_only(map: &Map<String, Value>, out: &mut Map<String, Value>) {
    for (exclusive, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
        match map.get(exclusive) {
            Some(Value::Bool(true)) => {
                if let Some(limit) = out.remove(bound) {
                    out.insert(exclusive.to_owned(), limit);
                }
            }
            // A number here is already the 2020-12 form (some 3.0 specs are written that way).
            Some(n @ Value::Number(_)) => {
                out.insert(exclusive.to_owned(), n.clone());
            }
            _ => {}
        }
    }
    // 3.0.3: `nullable` "adds null to the allowed types specified by the type keyword, only if type is explicitly
    // defined within the same Schema Object".
    if map.get("nullable") == Some(&Value::Bool(true))
        && let Some(Value::String(t)) = out.get("type").cloned()
    {
        out.insert("type".to_owned(), json!([t, "null"]));
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
}

/// `int32`/`int64` are OpenAPI formats over numbers, which JSON Schema formats never check: add the range.
fn add_openapi_format_checks(out: &mut Map<String, Value>) {
    let range = match out.get("format").and_then(Value::as_str) {
        Some("int32") => json!({"minimum": i32::MIN, "maximum": i32::MAX}),
        Some("int64") => json!({"minimum": i64::MIN, "maximum": i64::MAX}),
        _ => return,
    };
    match out.get_mut("allOf") {
        Some(Value::Array(all)) => all.push(range),
        _ => {
            out.insert("allOf".to_owned(), Value::Array(vec![range]));
        }
    }
}

fn type_allows_object(t: Option<&Value>) -> bool {
    match t {
        None => true,
        Some(Value::String(t)) => t == "object",
        Some(Value::Array(ts)) => ts.iter().any(|t| t == "object"),
        Some(_) => false,
    }
}

fn declares_fields(map: &Map<String, Value>) -> bool {
    ["properties", "patternProperties", "allOf", "anyOf", "oneOf", "$ref"].iter().any(|k| map.contains_key(*k))
}

fn collect_def_refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref"
                    && let Some(key) = v.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    out.push(key);
                } else if k != "enum" && k != "const" && k != "default" && k != "examples" {
                    collect_def_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_def_refs(v, out)),
        _ => {}
    }
}

fn sanitize_key(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// RFC 6901 escaping of one reference token.
pub(crate) fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// JSON value types a schema admits, as bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Types(u8);

impl Types {
    pub(crate) const NULL: Types = Types(1);
    pub(crate) const BOOLEAN: Types = Types(2);
    pub(crate) const INTEGER: Types = Types(4);
    pub(crate) const NUMBER: Types = Types(8);
    pub(crate) const STRING: Types = Types(16);
    pub(crate) const ARRAY: Types = Types(32);
    pub(crate) const OBJECT: Types = Types(64);
    pub(crate) const ANY: Types = Types(127);

    /// Both sets together.
    #[cfg(test)]
    pub(crate) fn or(self, other: Types) -> Types {
        Types(self.0 | other.0)
    }

    pub(crate) fn has(self, other: Types) -> bool {
        self.0 & other.0 != 0
    }

    fn from_name(name: &str) -> Types {
        match name {
            "null" => Types::NULL,
            "boolean" => Types::BOOLEAN,
            "integer" => Types::INTEGER,
            "number" => Types::NUMBER,
            "string" => Types::STRING,
            "array" => Types::ARRAY,
            "object" => Types::OBJECT,
            _ => Types(0),
        }
    }
}

/// The outline of a parameter's schema that decides how its text is turned into a JSON value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Shape {
    Scalar(Types),
    Array(Types),
    Object { properties: Vec<(String, Types)>, additional: Option<Types> },
}

impl Bundle {
    /// The shape of a converted schema.
    pub(crate) fn shape(&self, schema: &Value) -> Shape {
        let types = self.types_of(schema);
        // A schema without `type` reads as text: a parameter of unknown shape is taken at face value.
        if types == Types::ANY {
            return Shape::Scalar(types);
        }
        if types.has(Types::ARRAY) {
            let items = self.find(schema, "items").map(|s| self.types_of(s)).unwrap_or(Types::ANY);
            return Shape::Array(items);
        }
        if types.has(Types::OBJECT) {
            let mut properties = Vec::new();
            self.collect_properties(schema, &mut properties, 0);
            let additional = match self.find(schema, "additionalProperties") {
                Some(Value::Bool(false)) => None,
                Some(s @ Value::Object(_)) => Some(self.types_of(s)),
                _ if properties.is_empty() => Some(Types::ANY),
                _ => None,
            };
            return Shape::Object { properties, additional };
        }
        Shape::Scalar(types)
    }

    /// The `type` a schema admits, looking through references and `allOf` when the schema itself has none.
    pub(crate) fn types_of(&self, schema: &Value) -> Types {
        match self.find(schema, "type") {
            Some(Value::String(t)) => Types::from_name(t),
            Some(Value::Array(ts)) => {
                Types(ts.iter().filter_map(Value::as_str).fold(0, |acc, t| acc | Types::from_name(t).0))
            }
            _ => Types::ANY,
        }
    }

    /// A keyword of the schema, of the schema it references, or of an `allOf` branch.
    fn find<'a>(&'a self, schema: &'a Value, keyword: &str) -> Option<&'a Value> {
        self.find_depth(schema, keyword, 0)
    }

    fn find_depth<'a>(&'a self, schema: &'a Value, keyword: &str, depth: usize) -> Option<&'a Value> {
        if depth > MAX_SHAPE_HOPS {
            return None;
        }
        if let Some(v) = schema.get(keyword) {
            return Some(v);
        }
        let target = self.deref(schema);
        if !std::ptr::eq(target, schema) {
            return self.find_depth(target, keyword, depth + 1);
        }
        schema.get("allOf")?.as_array()?.iter().find_map(|branch| self.find_depth(branch, keyword, depth + 1))
    }

    fn collect_properties(&self, schema: &Value, out: &mut Vec<(String, Types)>, depth: usize) {
        if depth > MAX_SHAPE_HOPS {
            return;
        }
        let schema = self.deref(schema);
        if let Some(Value::Object(props)) = schema.get("properties") {
            for (name, s) in props {
                if !out.iter().any(|(n, _)| n == name) {
                    out.push((name.clone(), self.types_of(s)));
                }
            }
        }
        if let Some(Value::Array(branches)) = schema.get("allOf") {
            for branch in branches {
                self.collect_properties(branch, out, depth + 1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn convert(dialect: Dialect, strict: bool, doc: Value) -> (Value, Map<String, Value>) {
        let mut docs = Documents::in_memory(doc);
        let mut bundle = Bundle::new(dialect, strict);
        let root = bundle.convert_at(&mut docs, 0, "/schema").unwrap();
        (root, bundle.defs)
    }

    #[test]
    fn oas30_keywords_become_2020_12() {
        let doc = json!({"schema": {
            "type": "object",
            "properties": {
                "a": {"type": "string", "nullable": true, "enum": ["x"], "example": "x", "x-foo": 1},
                "b": {"type": "number", "minimum": 1, "exclusiveMinimum": true, "maximum": 9, "exclusiveMaximum": false},
                "c": {"$ref": "#/components/schemas/C", "description": "ignored in 3.0"},
                "d": {"allOf": [{"$ref": "#/components/schemas/C"}], "nullable": true},
                "e": {"type": "integer", "format": "int32"},
            },
            "discriminator": {"propertyName": "a"},
            "xml": {"name": "x"},
        }, "components": {"schemas": {"C": {"type": "object", "properties": {"id": {"type": "string"}}}}}});
        let (root, defs) = convert(Dialect::Oas30, false, doc);
        assert_eq!(
            root,
            json!({"type": "object", "properties": {
                "a": {"type": ["string", "null"], "enum": ["x", null]},
                "b": {"type": "number", "exclusiveMinimum": 1, "maximum": 9},
                "c": {"$ref": "#/$defs/C"},
                "d": {"allOf": [{"$ref": "#/$defs/C"}]},
                "e": {"type": "integer", "format": "int32", "allOf": [{"minimum": -2147483648, "maximum": 2147483647}]},
            }})
        );
        assert_eq!(defs["C"], json!({"type": "object", "properties": {"id": {"type": "string"}}}));
    }

    #[test]
    fn oas31_keeps_ref_siblings_and_numeric_exclusives() {
        let doc = json!({"schema": {
            "$ref": "#/components/schemas/C", "description": "kept", "exclusiveMinimum": 3,
            "type": ["integer", "null"], "$defs": {"x": {}}, "$schema": "https://json-schema.org/draft/2020-12/schema",
        }, "components": {"schemas": {"C": true}}});
        let (root, _) = convert(Dialect::Oas31, false, doc);
        assert_eq!(
            root,
            json!({"$ref": "#/$defs/C", "description": "kept", "exclusiveMinimum": 3, "type": ["integer", "null"]})
        );
    }

    #[test]
    fn strict_mode_closes_instance_positions_only() {
        let doc = json!({"schema": {
            "type": "object",
            "properties": {
                "composed": {"allOf": [{"$ref": "#/components/schemas/C"}, {"properties": {"x": {}}}]},
                "open": {"type": "object", "additionalProperties": true},
                "map": {"type": "object"},
                "list": {"type": "array", "items": {"$ref": "#/components/schemas/C"}},
                "text": {"type": "string"},
            },
        }, "components": {"schemas": {"C": {"type": "object", "properties": {"id": {"type": "string"}}}}}});
        let (root, defs) = convert(Dialect::Oas30, true, doc);
        let closed = json!(false);
        assert_eq!(root["unevaluatedProperties"], closed);
        let props = &root["properties"];
        assert_eq!(props["composed"]["unevaluatedProperties"], closed);
        assert!(props["composed"]["allOf"][0].get("unevaluatedProperties").is_none(), "branches stay open");
        assert!(props["composed"]["allOf"][1].get("unevaluatedProperties").is_none());
        assert!(props["open"].get("unevaluatedProperties").is_none(), "the schema's own answer wins");
        assert!(props["map"].get("unevaluatedProperties").is_none(), "a free-form map");
        assert_eq!(props["list"]["items"], json!({"$ref": "#/$defs/C", "unevaluatedProperties": false}));
        assert!(props["text"].get("unevaluatedProperties").is_none());
        assert!(defs["C"].get("unevaluatedProperties").is_none(), "a definition is closed where it is used");
    }

    #[test]
    fn only_reached_defs_are_attached() {
        let doc = json!({"schema": {"$ref": "#/components/schemas/A"}, "other": {"$ref": "#/components/schemas/B"},
            "components": {"schemas": {"A": {"properties": {"a": {"$ref": "#/components/schemas/A"}}}, "B": {}}}});
        let mut docs = Documents::in_memory(doc);
        let mut bundle = Bundle::new(Dialect::Oas30, false);
        let root = bundle.convert_at(&mut docs, 0, "/schema").unwrap();
        bundle.convert_at(&mut docs, 0, "/other").unwrap();
        let contained = bundle.self_contained(&root);
        let defs = contained["$defs"].as_object().unwrap();
        assert_eq!(defs.keys().collect::<Vec<_>>(), ["A"]);
        assert!(bundle.compile(&root, &docs, 0, "/schema").is_ok());
    }

    #[test]
    fn base64_is_checked() {
        for ok in ["", "aGk=", "aGk/", "YQ=="] {
            assert!(is_base64(ok), "{ok}");
        }
        for bad in ["a", "a===", "aGk", "aG k", "aGk-", "=aGk"] {
            assert!(!is_base64(bad), "{bad}");
        }
    }
}
