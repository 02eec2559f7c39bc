//! Parameter text turned into JSON values by OpenAPI `style`/`explode`, then checked by the compiled schema.
//!
//! Text is coerced by the schema's declared type only: `"5"` becomes the number 5 where the schema says `integer`,
//! and stays the string `"5"` otherwise, so `type`, `minimum`, `enum`, `format` and `pattern` then mean what they
//! mean for JSON. Anything that does not read as the declared type is refused as malformed before the schema runs.

use jsonschema::Validator;
use serde_json::{Map, Number, Value};

use super::error::ErrorKind;
use super::operation::Style;
use super::schema::{Shape, Types};

/// The compiled checker of one parameter.
#[derive(Debug)]
pub(crate) struct ParamValidator {
    pub(crate) shape: Shape,
    pub(crate) validator: Validator,
    /// `content: {application/json: ...}` instead of `schema`: the value is JSON text.
    pub(crate) json_content: bool,
}

impl ParamValidator {
    /// Read `raw` (one value, already percent-decoded) in `style` and check it.
    pub(crate) fn check_text(&self, style: Style, explode: bool, name: &str, raw: &str) -> Result<(), ErrorKind> {
        let value = self.read_text(style, explode, name, raw).ok_or(ErrorKind::Malformed)?;
        self.check_value(&value)
    }

    /// The value `raw` reads as, before the schema checks it; `None` when it does not read.
    pub(crate) fn read_text(&self, style: Style, explode: bool, name: &str, raw: &str) -> Option<Value> {
        if self.json_content {
            serde_json::from_str(raw).ok()
        } else {
            parse_styled(style, explode, name, raw, &self.shape)
        }
    }

    /// Check an already-built value against the schema.
    pub(crate) fn check_value(&self, value: &Value) -> Result<(), ErrorKind> {
        match self.validator.validate(value) {
            Ok(()) => Ok(()),
            Err(error) => Err(ErrorKind::Constraint(keyword_of(error.kind()))),
        }
    }
}

/// The keyword a schema error is about, as a `'static` name (never text from the instance).
pub(crate) fn keyword_of(kind: &jsonschema::error::ValidationErrorKind) -> &'static str {
    use jsonschema::error::ValidationErrorKind as K;
    match kind {
        K::AdditionalItems { .. } => "additionalItems",
        K::AdditionalProperties { .. } => "additionalProperties",
        K::AnyOf { .. } => "anyOf",
        K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } | K::Pattern { .. } => "pattern",
        K::Constant { .. } => "const",
        K::Contains => "contains",
        K::ContentEncoding { .. } | K::FromUtf8 { .. } => "contentEncoding",
        K::ContentMediaType { .. } => "contentMediaType",
        K::Enum { .. } => "enum",
        K::ExclusiveMaximum { .. } => "exclusiveMaximum",
        K::ExclusiveMinimum { .. } => "exclusiveMinimum",
        K::FalseSchema => "false",
        K::Format { .. } => "format",
        K::MaxItems { .. } => "maxItems",
        K::Maximum { .. } => "maximum",
        K::MaxLength { .. } => "maxLength",
        K::MaxProperties { .. } => "maxProperties",
        K::MinItems { .. } => "minItems",
        K::Minimum { .. } => "minimum",
        K::MinLength { .. } => "minLength",
        K::MinProperties { .. } => "minProperties",
        K::MultipleOf { .. } => "multipleOf",
        K::Not { .. } => "not",
        K::OneOfMultipleValid { .. } | K::OneOfNotValid { .. } => "oneOf",
        K::PropertyNames { .. } => "propertyNames",
        K::Required { .. } => "required",
        K::Type { .. } => "type",
        K::UnevaluatedItems { .. } => "unevaluatedItems",
        K::UnevaluatedProperties { .. } => "unevaluatedProperties",
        K::UniqueItems => "uniqueItems",
        _ => "schema",
    }
}

/// The default style of a location (OpenAPI 3.x "Style Values").
pub(crate) fn default_style(location: super::operation::ParamLocation) -> Style {
    use super::operation::ParamLocation as L;
    match location {
        L::Path | L::Header => Style::Simple,
        L::Query | L::Cookie => Style::Form,
    }
}

/// Parse one value written in `style`. `None` when it does not read.
pub(crate) fn parse_styled(style: Style, explode: bool, name: &str, raw: &str, shape: &Shape) -> Option<Value> {
    match style {
        Style::Simple => parse_delimited(raw, ',', explode, shape),
        Style::Label => parse_label(raw, explode, shape),
        Style::Matrix => parse_matrix(raw, name, explode, shape),
        Style::Form => parse_delimited(raw, ',', false, shape),
        Style::SpaceDelimited => parse_delimited(raw, ' ', false, shape),
        Style::PipeDelimited => parse_delimited(raw, '|', false, shape),
        // A deepObject is spread over several query pairs; see `object_from_pairs`.
        Style::DeepObject => None,
    }
}

/// `simple` (and non-exploded `form`, `spaceDelimited`, `pipeDelimited`): `5`, `3,4,5`, `role,admin,x,y` or, exploded,
/// `role=admin,x=y`.
fn parse_delimited(raw: &str, delimiter: char, explode: bool, shape: &Shape) -> Option<Value> {
    match shape {
        Shape::Scalar(types) => coerce(raw, *types),
        Shape::Array(items) => array_from(split_nonempty(raw, delimiter), *items),
        Shape::Object { .. } if explode => object_from_pairs(raw.split(delimiter).map(|kv| kv.split_once('=')), shape),
        Shape::Object { .. } => object_from_flat(raw.split(delimiter), shape),
    }
}

/// `label`: `.5`, `.3,4,5` or exploded `.3.4.5`, `.role,admin` or exploded `.role=admin.x=y`.
fn parse_label(raw: &str, explode: bool, shape: &Shape) -> Option<Value> {
    let rest = raw.strip_prefix('.')?;
    match shape {
        Shape::Scalar(types) => coerce(rest, *types),
        Shape::Array(items) => array_from(split_nonempty(rest, if explode { '.' } else { ',' }), *items),
        Shape::Object { .. } if explode => object_from_pairs(rest.split('.').map(|kv| kv.split_once('=')), shape),
        Shape::Object { .. } => object_from_flat(rest.split(','), shape),
    }
}

/// `matrix`: `;id=5`, `;id=3,4,5` or exploded `;id=3;id=4;id=5`, `;id=role,admin` or exploded `;role=admin;x=y`.
fn parse_matrix(raw: &str, name: &str, explode: bool, shape: &Shape) -> Option<Value> {
    let rest = raw.strip_prefix(';')?;
    let value_of = |part: &str| -> Option<String> {
        match part.split_once('=') {
            Some((n, v)) if n == name => Some(v.to_owned()),
            None if part == name => Some(String::new()),
            _ => None,
        }
    };
    match shape {
        Shape::Object { .. } if explode => object_from_pairs(rest.split(';').map(|kv| kv.split_once('=')), shape),
        Shape::Array(items) if explode => {
            let values: Option<Vec<String>> = rest.split(';').map(value_of).collect();
            array_from(values?.iter().map(String::as_str), *items)
        }
        _ => {
            let value = value_of(rest)?;
            parse_delimited(&value, ',', false, shape)
        }
    }
}

fn split_nonempty(raw: &str, delimiter: char) -> impl Iterator<Item = &str> {
    // An empty value is an empty array, not an array of one empty string.
    raw.split(delimiter).filter(move |_| !raw.is_empty())
}

/// Items coerced to the item type.
pub(crate) fn array_from<'a>(items: impl Iterator<Item = &'a str>, types: Types) -> Option<Value> {
    items.map(|item| coerce(item, types)).collect::<Option<Vec<_>>>().map(Value::Array)
}

/// `k1,v1,k2,v2`.
fn object_from_flat<'a>(mut parts: impl Iterator<Item = &'a str>, shape: &Shape) -> Option<Value> {
    let mut object = Map::new();
    while let Some(key) = parts.next() {
        let value = parts.next()?;
        insert_property(&mut object, key, value, shape)?;
    }
    Some(Value::Object(object))
}

/// `(key, value)` pairs; a part without `=` is refused.
pub(crate) fn object_from_pairs<'a>(
    pairs: impl Iterator<Item = Option<(&'a str, &'a str)>>,
    shape: &Shape,
) -> Option<Value> {
    let mut object = Map::new();
    for pair in pairs {
        let (key, value) = pair?;
        insert_property(&mut object, key, value, shape)?;
    }
    Some(Value::Object(object))
}

/// Add one property, coerced to its declared type; a repeated key is refused (a parser differential otherwise).
pub(crate) fn insert_property(object: &mut Map<String, Value>, key: &str, value: &str, shape: &Shape) -> Option<()> {
    if object.contains_key(key) {
        return None;
    }
    let types = property_types(shape, key);
    object.insert(key.to_owned(), coerce(value, types)?);
    Some(())
}

/// The declared type of property `key` of an object shape; undeclared ones read as text (the schema decides).
pub(crate) fn property_types(shape: &Shape, key: &str) -> Types {
    match shape {
        Shape::Object { properties, additional } => {
            properties.iter().find(|(name, _)| name == key).map(|(_, t)| *t).or(*additional).unwrap_or(Types::STRING)
        }
        _ => Types::STRING,
    }
}

/// Text to the first JSON type the schema admits that it reads as, in the order integer, number, boolean, null,
/// string. `None` when it reads as none of them.
pub(crate) fn coerce(text: &str, types: Types) -> Option<Value> {
    if types == Types::ANY {
        return Some(Value::String(text.to_owned()));
    }
    if types.has(Types::INTEGER)
        && let Some(n) = parse_integer(text)
    {
        return Some(Value::Number(n));
    }
    if types.has(Types::NUMBER)
        && let Some(n) = parse_number(text)
    {
        return Some(Value::Number(n));
    }
    if types.has(Types::BOOLEAN) {
        match text {
            "true" => return Some(Value::Bool(true)),
            "false" => return Some(Value::Bool(false)),
            _ => {}
        }
    }
    if types.has(Types::NULL) && (text.is_empty() || text == "null") {
        return Some(Value::Null);
    }
    if types.has(Types::STRING) {
        return Some(Value::String(text.to_owned()));
    }
    None
}

/// An integer in JSON's grammar (`-?(0|[1-9][0-9]*)`) that fits in 64 bits: no `+`, no leading zeros, no spaces.
fn parse_integer(text: &str) -> Option<Number> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    if let Ok(i) = text.parse::<i64>() {
        return Some(Number::from(i));
    }
    text.parse::<u64>().ok().map(Number::from)
}

/// A number in JSON's grammar (no `NaN`, `inf`, hex, `+` or surrounding space), finite.
fn parse_number(text: &str) -> Option<Number> {
    if let Some(n) = parse_integer(text) {
        return Some(n);
    }
    // serde_json would skip surrounding whitespace; a parameter is read exactly.
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) || !text.ends_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Number(n)) => Some(n),
        _ => None,
    }
}

mod typed;

#[cfg(test)]
mod tests;
