//! From a parsed document to compiled operations.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::error::{LoadError, LoadErrorKind};
use super::load::{DocId, Documents};
use super::matcher::{Matcher, TemplateError, template_param_names};
use super::operation::{Method, Operation, ParamLocation, Parameter, SchemeScopes, SecurityRequirement, Style};
use super::params::{ParamValidator, default_style};
use super::request::{MediaEntry, RequestBody, RequestPolicy, declared_range};
use super::response::{ResponseMedia, Responses, StatusKey, records_pointer};
use super::schema::{Bundle, Dialect, Shape, Types, escape_pointer};
use super::{LoadOptions, Spec};

/// Builds a [`Spec`] from its documents.
pub(crate) struct Builder<'o> {
    docs: Documents,
    options: &'o LoadOptions,
    /// Request schemas, closed against unknown fields unless the route allows them.
    requests: Bundle,
    /// Response schemas, always closed (undeclared fields are what response checking reports).
    responses: Option<Bundle>,
}

impl<'o> Builder<'o> {
    pub(crate) fn new(docs: Documents, options: &'o LoadOptions) -> Result<Builder<'o>, LoadError> {
        let dialect = dialect_of(&docs)?;
        let strict = !options.strictness.allow_unknown_fields;
        let responses = (!strict).then(|| Bundle::new(dialect, true));
        Ok(Builder { docs, options, requests: Bundle::new(dialect, strict), responses })
    }

    pub(crate) fn build(mut self) -> Result<Spec, LoadError> {
        let root = self.docs.root().clone();
        let version = root.get("openapi").and_then(Value::as_str).unwrap_or_default().to_owned();
        let base_paths = match &self.options.base_path {
            Some(base) => normalise_base(base).into_iter().collect(),
            None => base_paths(&root),
        };
        let top_security = root.get("security").cloned();
        let Some(Value::Object(paths)) = root.get("paths") else {
            return Err(self.docs.error(0, "/paths", LoadErrorKind::Invalid("no paths object".into())));
        };
        let mut operations = Vec::new();
        let mut matcher = Matcher::new();
        let mut ids = HashSet::new();
        for template in paths.keys() {
            let pointer = format!("/paths/{}", escape_pointer(template));
            let (doc, item_pointer) = self.docs.follow(0, pointer.clone())?;
            let item = self.object_at(doc, &item_pointer)?;
            for (key, _) in item.iter() {
                let Some(method) = Method::from_openapi_key(key) else { continue };
                let op_pointer = format!("{item_pointer}/{key}");
                let operation =
                    self.operation(template, method, doc, &item_pointer, &op_pointer, top_security.as_ref())?;
                if !ids.insert(operation.id.clone()) {
                    let kind = LoadErrorKind::Invalid(format!("operationId {:?} is used twice", operation.id));
                    return Err(self.docs.error(doc, &op_pointer, kind));
                }
                matcher.insert(template, method, operations.len()).map_err(|e| {
                    let message = match e {
                        TemplateError::Malformed => "a path template must be /-rooted segments with balanced {names}",
                        TemplateError::Duplicate => "the same method on an equivalent path twice",
                    };
                    self.docs.error(0, &pointer, LoadErrorKind::Invalid(message.into()))
                })?;
                operations.push(operation);
            }
        }
        Ok(Spec { version, base_paths, operations, matcher })
    }

    fn object_at(&self, doc: DocId, pointer: &str) -> Result<Map<String, Value>, LoadError> {
        match self.docs.value(doc).pointer(pointer) {
            Some(Value::Object(map)) => Ok(map.clone()),
            _ => Err(self.docs.error(doc, pointer, LoadErrorKind::Invalid("expected an object".into()))),
        }
    }

    fn operation(
        &mut self,
        template: &str,
        method: Method,
        doc: DocId,
        item_pointer: &str,
        op_pointer: &str,
        top_security: Option<&Value>,
    ) -> Result<Operation, LoadError> {
        let item = self.object_at(doc, item_pointer)?;
        let op = self.object_at(doc, op_pointer)?;
        let id = match op.get("operationId").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!("{} {template}", method.as_str()),
        };
        let params = self.parameters(template, doc, item_pointer, op_pointer, &item, &op)?;
        let policy = RequestPolicy {
            allow_unknown_query_params: self.options.strictness.allow_unknown_query_params,
            max_body_bytes: self.options.max_body_bytes,
        };
        let request_body = match op.get("requestBody") {
            Some(_) => Some(self.request_body(doc, &format!("{op_pointer}/requestBody"), policy)?),
            None => None,
        };
        let mut extensions = BTreeMap::new();
        for (k, v) in item.iter().chain(op.iter()) {
            if k.starts_with("x-argus-") {
                extensions.insert(k.clone(), v.clone());
            }
        }
        let mut responses = self.responses(doc, op_pointer, &op)?;
        responses.records_at = records_pointer(extensions.get("x-argus-sensitive"));
        let security_value = op.get("security").or(top_security);
        let security = security_requirements(security_value)
            .map_err(|m| self.docs.error(doc, &format!("{op_pointer}/security"), LoadErrorKind::Invalid(m.into())))?;
        Ok(Operation {
            id,
            method,
            path_template: template.to_owned(),
            params,
            request_body,
            responses,
            security,
            extensions,
            policy,
        })
    }

    fn parameters(
        &mut self,
        template: &str,
        doc: DocId,
        item_pointer: &str,
        op_pointer: &str,
        item: &Map<String, Value>,
        op: &Map<String, Value>,
    ) -> Result<Vec<Parameter>, LoadError> {
        let mut declared: Vec<Parameter> = Vec::new();
        for (owner, pointer) in [(item, item_pointer), (op, op_pointer)] {
            let Some(list) = owner.get("parameters") else { continue };
            let count = list.as_array().map_or(0, Vec::len);
            for i in 0..count {
                let param = self.parameter(doc, &format!("{pointer}/parameters/{i}"))?;
                // Operation-level parameters override the path item's of the same name and location.
                declared.retain(|p| !(p.location == param.location && p.name == param.name));
                declared.push(param);
            }
        }
        let names: Vec<&str> = template_param_names(template).collect();
        for p in declared.iter().filter(|p| p.location == ParamLocation::Path) {
            if !names.contains(&p.name.as_str()) {
                let kind = LoadErrorKind::Invalid(format!("path parameter {:?} is not in the template", p.name));
                return Err(self.docs.error(doc, op_pointer, kind));
            }
        }
        let mut ordered = Vec::with_capacity(declared.len());
        for name in names {
            match declared.iter().position(|p| p.location == ParamLocation::Path && p.name == name) {
                Some(i) => ordered.push(declared.remove(i)),
                None => {
                    let kind = LoadErrorKind::Invalid(format!("template parameter {name:?} is not declared"));
                    return Err(self.docs.error(doc, op_pointer, kind));
                }
            }
        }
        ordered.append(&mut declared);
        Ok(ordered)
    }

    fn parameter(&mut self, doc: DocId, pointer: &str) -> Result<Parameter, LoadError> {
        let (doc, pointer) = self.docs.follow(doc, pointer.to_owned())?;
        let map = self.object_at(doc, &pointer)?;
        let invalid = |docs: &Documents, m: String| docs.error(doc, &pointer, LoadErrorKind::Invalid(m));
        let name = map.get("name").and_then(Value::as_str).ok_or_else(|| invalid(&self.docs, "no name".into()))?;
        let location = match map.get("in").and_then(Value::as_str) {
            Some("path") => ParamLocation::Path,
            Some("query") => ParamLocation::Query,
            Some("header") => ParamLocation::Header,
            Some("cookie") => ParamLocation::Cookie,
            other => return Err(invalid(&self.docs, format!("parameter {name:?}: `in` is {other:?}"))),
        };
        let style = match map.get("style").and_then(Value::as_str) {
            None => default_style(location),
            Some(s) => parse_style(s, location).ok_or_else(|| {
                invalid(&self.docs, format!("parameter {name:?}: style {s:?} is not allowed in {}", location.as_str()))
            })?,
        };
        if style == Style::Matrix {
            // The gate matches on canonical paths, which drop `;` segment parameters (see `canonical_path`).
            return Err(invalid(
                &self.docs,
                format!("parameter {name:?}: matrix-style path parameters are not supported"),
            ));
        }
        let explode = map.get("explode").and_then(Value::as_bool).unwrap_or(style == Style::Form);
        let required = location == ParamLocation::Path || map.get("required").and_then(Value::as_bool).unwrap_or(false);
        let (schema_pointer, json_content) = if map.contains_key("schema") {
            (Some(format!("{pointer}/schema")), false)
        } else if let Some(Value::Object(content)) = map.get("content") {
            match content.iter().next() {
                Some((media, entry)) if entry.get("schema").is_some() => {
                    let json = declared_range(media).is_some_and(|(_, s)| s == "json" || s.ends_with("+json"));
                    (Some(format!("{pointer}/content/{}/schema", escape_pointer(media))), json)
                }
                _ => (None, false),
            }
        } else {
            (None, false)
        };
        let (shape, validator) = match schema_pointer {
            Some(at) => {
                let converted = self.requests.convert_at(&mut self.docs, doc, &at)?;
                let shape = self.requests.shape(&converted);
                (shape, self.requests.compile(&converted, &self.docs, doc, &at)?)
            }
            None => {
                let any = Value::Object(Map::new());
                (Shape::Scalar(Types::ANY), self.requests.compile(&any, &self.docs, doc, &pointer)?)
            }
        };
        let checker = ParamValidator { shape, validator, json_content };
        Ok(Parameter { name: name.to_owned(), location, required, style, explode, checker })
    }

    fn request_body(&mut self, doc: DocId, pointer: &str, policy: RequestPolicy) -> Result<RequestBody, LoadError> {
        let (doc, pointer) = self.docs.follow(doc, pointer.to_owned())?;
        let map = self.object_at(doc, &pointer)?;
        let required = map.get("required").and_then(Value::as_bool).unwrap_or(false);
        let mut media = Vec::new();
        if let Some(Value::Object(content)) = map.get("content") {
            for (key, entry) in content {
                let at = format!("{pointer}/content/{}", escape_pointer(key));
                let range = declared_range(key)
                    .ok_or_else(|| self.docs.error(doc, &at, LoadErrorKind::Invalid("not a media range".into())))?;
                let (validator, shape) = match entry.get("schema") {
                    Some(_) => {
                        let at = format!("{at}/schema");
                        let converted = self.requests.convert_at(&mut self.docs, doc, &at)?;
                        let shape = self.requests.shape(&converted);
                        (Some(self.requests.compile(&converted, &self.docs, doc, &at)?), shape)
                    }
                    None => (None, Shape::Scalar(Types::ANY)),
                };
                media.push(MediaEntry { declared: key.clone(), range, validator, shape });
            }
        }
        Ok(RequestBody { required, media, policy })
    }

    fn responses(&mut self, doc: DocId, op_pointer: &str, op: &Map<String, Value>) -> Result<Responses, LoadError> {
        let mut responses = Responses::default();
        let Some(Value::Object(declared)) = op.get("responses") else {
            return Ok(responses);
        };
        for status in declared.keys() {
            let at = format!("{op_pointer}/responses/{}", escape_pointer(status));
            let key = StatusKey::parse(status)
                .ok_or_else(|| self.docs.error(doc, &at, LoadErrorKind::Invalid("not a status code".into())))?;
            let (rdoc, rpointer) = self.docs.follow(doc, at)?;
            let response = self.object_at(rdoc, &rpointer)?;
            let mut media = Vec::new();
            if let Some(Value::Object(content)) = response.get("content") {
                for (ct, entry) in content {
                    let Some(range) = declared_range(ct) else { continue };
                    let validator = match entry.get("schema") {
                        Some(_) => {
                            let at = format!("{rpointer}/content/{}/schema", escape_pointer(ct));
                            let bundle = self.responses.as_mut().unwrap_or(&mut self.requests);
                            let converted = bundle.convert_at(&mut self.docs, rdoc, &at)?;
                            Some(bundle.compile(&converted, &self.docs, rdoc, &at)?)
                        }
                        None => None,
                    };
                    media.push(ResponseMedia { range, validator });
                }
            }
            responses.entries.push((key, media));
        }
        Ok(responses)
    }
}

fn dialect_of(docs: &Documents) -> Result<Dialect, LoadError> {
    let version = docs.root().get("openapi").and_then(Value::as_str);
    match version {
        Some(v) if v.starts_with("3.0.") => Ok(Dialect::Oas30),
        Some(v) if v.starts_with("3.1.") => Ok(Dialect::Oas31),
        Some(v) => Err(docs.error(0, "/openapi", LoadErrorKind::NotOpenApi(format!("version {v:?}")))),
        None => Err(docs.error(0, "/openapi", LoadErrorKind::NotOpenApi("no `openapi` version".into()))),
    }
}

fn parse_style(style: &str, location: ParamLocation) -> Option<Style> {
    use ParamLocation as L;
    let style = match style {
        "simple" => Style::Simple,
        "label" => Style::Label,
        "matrix" => Style::Matrix,
        "form" => Style::Form,
        "spaceDelimited" => Style::SpaceDelimited,
        "pipeDelimited" => Style::PipeDelimited,
        "deepObject" => Style::DeepObject,
        _ => return None,
    };
    let allowed = match location {
        L::Path => matches!(style, Style::Simple | Style::Label | Style::Matrix),
        L::Query => matches!(style, Style::Form | Style::SpaceDelimited | Style::PipeDelimited | Style::DeepObject),
        L::Header => style == Style::Simple,
        L::Cookie => style == Style::Form,
    };
    allowed.then_some(style)
}

/// The OR-of-ANDs of a `security` list.
fn security_requirements(value: Option<&Value>) -> Result<Vec<SecurityRequirement>, &'static str> {
    let Some(value) = value else { return Ok(Vec::new()) };
    let list = value.as_array().ok_or("security must be a list")?;
    let mut out = Vec::with_capacity(list.len());
    for alternative in list {
        let schemes = alternative.as_object().ok_or("a security requirement must be an object")?;
        let mut requirement = SecurityRequirement { schemes: Vec::new() };
        for (scheme, scopes) in schemes {
            let scopes = scopes.as_array().ok_or("scopes must be a list")?;
            let scopes = scopes.iter().map(|s| s.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>();
            let scopes = scopes.ok_or("a scope must be a string")?;
            requirement.schemes.push(SchemeScopes { scheme: scheme.clone(), scopes });
        }
        out.push(requirement);
    }
    Ok(out)
}

/// The path parts of the document's `servers` (variables replaced by their defaults), without a trailing slash;
/// empty when they are all at the root.
fn base_paths(root: &Value) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for server in root.get("servers").and_then(Value::as_array).into_iter().flatten() {
        let Some(url) = server.get("url").and_then(Value::as_str) else { continue };
        let mut url = url.to_owned();
        if let Some(Value::Object(vars)) = server.get("variables") {
            for (name, var) in vars {
                if let Some(default) = var.get("default").and_then(Value::as_str) {
                    url = url.replace(&format!("{{{name}}}"), default);
                }
            }
        }
        let path = match url.split_once("://") {
            Some((_, rest)) => rest.find('/').map(|i| rest[i..].to_owned()).unwrap_or_default(),
            None => url,
        };
        if let Some(base) = normalise_base(&path)
            && !out.contains(&base)
        {
            out.push(base);
        }
    }
    // With one server at the root, the others' prefixes are optional, not required.
    if out.len() < root.get("servers").and_then(Value::as_array).map_or(0, Vec::len) {
        out.clear();
    }
    out
}

fn normalise_base(path: &str) -> Option<String> {
    let path = path.split(['?', '#']).next().unwrap_or("").trim_end_matches('/');
    (!path.is_empty() && path.starts_with('/')).then(|| path.to_owned())
}
