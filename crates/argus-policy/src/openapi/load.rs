//! Reading spec files and resolving `$ref`s, with the operator's file treated as untrusted input.
//!
//! Only local references are followed: `#/...` inside a document and relative files inside the root spec's folder
//! (canonicalised, so `../` and symlinks cannot leave it). A URL is never fetched. Each file is size-capped before
//! it is parsed.
//!
//! YAML goes through `serde_yaml_ng`, the maintained fork of `serde_yaml` (already in the workspace lock). It keeps
//! `serde_yaml`'s alias-expansion guard, which refuses a document whose aliases would replay more events than a
//! fixed multiple of its size (the billion-laughs case); a test below holds it to that. Its parser is
//! `unsafe-libyaml` (libyaml machine-translated to Rust, fuzzed upstream): the pure-Rust alternatives (`saphyr`)
//! are younger and have no serde front end in the lock. Specs are operator files read once at load, after the size
//! cap, which bounds that exposure; swapping the parser touches only `parse_document`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::error::{LoadError, LoadErrorKind};

/// How many `$ref` hops a chain of references to references may take before it is called a loop.
const MAX_REF_HOPS: usize = 32;
/// How many files one spec may pull in through `$ref`s.
const MAX_DOCUMENTS: usize = 64;

/// A document by its position in [`Documents`]; `0` is the root spec.
pub(crate) type DocId = usize;

/// The parsed files of one spec, loaded on first reference.
pub(crate) struct Documents {
    folder: PathBuf,
    files: Vec<PathBuf>,
    values: Vec<Value>,
    by_path: HashMap<PathBuf, DocId>,
    max_file_bytes: u64,
}

impl Documents {
    /// Read the root spec at `path`; its folder bounds every relative reference.
    pub(crate) fn open(path: &Path, max_file_bytes: u64) -> Result<Documents, LoadError> {
        let display = path.display().to_string();
        let file = path.canonicalize().map_err(|e| LoadError::new(&display, "", LoadErrorKind::Io(e.kind())))?;
        let folder = file.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/"));
        let mut docs =
            Documents { folder, files: Vec::new(), values: Vec::new(), by_path: HashMap::new(), max_file_bytes };
        docs.load(file)?;
        Ok(docs)
    }

    /// A spec given as text: it has no folder, so every reference to another file is refused.
    pub(crate) fn in_memory(value: Value) -> Documents {
        Documents {
            folder: PathBuf::new(),
            files: vec![PathBuf::from("<inline>")],
            values: vec![value],
            by_path: HashMap::new(),
            max_file_bytes: 0,
        }
    }

    /// The root document.
    pub(crate) fn root(&self) -> &Value {
        &self.values[0]
    }

    /// The parsed value of document `doc`.
    pub(crate) fn value(&self, doc: DocId) -> &Value {
        &self.values[doc]
    }

    /// A location for error messages: the file name relative to the spec folder and the JSON pointer.
    pub(crate) fn error(&self, doc: DocId, pointer: &str, kind: LoadErrorKind) -> LoadError {
        let file = self.files.get(doc).map(|f| f.strip_prefix(&self.folder).unwrap_or(f).display().to_string());
        LoadError::new(&file.unwrap_or_default(), pointer, kind)
    }

    fn load(&mut self, file: PathBuf) -> Result<DocId, LoadError> {
        if let Some(&doc) = self.by_path.get(&file) {
            return Ok(doc);
        }
        let name = file.strip_prefix(&self.folder).unwrap_or(&file).display().to_string();
        if self.values.len() >= MAX_DOCUMENTS {
            return Err(LoadError::new(&name, "", LoadErrorKind::TooManyFiles(MAX_DOCUMENTS)));
        }
        let value = read_document(&file, self.max_file_bytes).map_err(|kind| LoadError::new(&name, "", kind))?;
        let doc = self.values.len();
        self.values.push(value);
        self.files.push(file.clone());
        self.by_path.insert(file, doc);
        Ok(doc)
    }

    /// Resolve the reference `reference` written in document `from` to the document and (unescaped-ready) JSON
    /// pointer it names, loading the target file if needed. `at` is where the reference is written, for errors.
    pub(crate) fn resolve(&mut self, from: DocId, at: &str, reference: &str) -> Result<(DocId, String), LoadError> {
        let (file_part, fragment) = reference.split_once('#').unwrap_or((reference, ""));
        let pointer = percent_decode(fragment).ok_or_else(|| self.error(from, at, LoadErrorKind::BadRef))?;
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            // `#anchor` names need `$id`/`$anchor` scopes, which the gate does not follow.
            return Err(self.error(from, at, LoadErrorKind::BadRef));
        }
        if file_part.is_empty() {
            self.target(from, at, from, &pointer)?;
            return Ok((from, pointer));
        }
        if has_uri_scheme(file_part) || file_part.starts_with("//") {
            return Err(self.error(from, at, LoadErrorKind::RemoteRef));
        }
        if self.folder.as_os_str().is_empty() {
            return Err(self.error(from, at, LoadErrorKind::OutsideSpecFolder));
        }
        let relative = percent_decode(file_part).ok_or_else(|| self.error(from, at, LoadErrorKind::BadRef))?;
        let base = self.files[from].parent().map(Path::to_path_buf).unwrap_or_default();
        let candidate = base.join(&relative);
        let canonical = candidate.canonicalize().map_err(|e| self.error(from, at, LoadErrorKind::Io(e.kind())))?;
        if !canonical.starts_with(&self.folder) {
            return Err(self.error(from, at, LoadErrorKind::OutsideSpecFolder));
        }
        let doc = self.load(canonical)?;
        self.target(from, at, doc, &pointer)?;
        Ok((doc, pointer))
    }

    fn target(&self, from: DocId, at: &str, doc: DocId, pointer: &str) -> Result<&Value, LoadError> {
        self.values[doc]
            .pointer(pointer)
            .ok_or_else(|| self.error(from, at, LoadErrorKind::DanglingRef(pointer.into())))
    }

    /// Follow `$ref`s from the object at (`doc`, `pointer`) until one that is not a reference (OpenAPI reference
    /// objects for parameters, bodies, responses, path items). Returns where the final object lives.
    pub(crate) fn follow(&mut self, mut doc: DocId, mut pointer: String) -> Result<(DocId, String), LoadError> {
        for _ in 0..MAX_REF_HOPS {
            let Some(value) = self.values[doc].pointer(&pointer) else {
                return Err(self.error(doc, &pointer, LoadErrorKind::DanglingRef(pointer.clone())));
            };
            let Some(reference) = value.get("$ref") else {
                return Ok((doc, pointer));
            };
            let Some(reference) = reference.as_str() else {
                return Err(self.error(doc, &pointer, LoadErrorKind::BadRef));
            };
            let reference = reference.to_owned();
            let at = format!("{pointer}/$ref");
            (doc, pointer) = self.resolve(doc, &at, &reference)?;
        }
        Err(self.error(doc, &pointer, LoadErrorKind::RefLoop))
    }
}

/// Parse one file: JSON when it says so (extension or first byte), YAML otherwise.
fn read_document(file: &Path, max_bytes: u64) -> Result<Value, LoadErrorKind> {
    let size = std::fs::metadata(file).map_err(|e| LoadErrorKind::Io(e.kind()))?.len();
    if size > max_bytes {
        return Err(LoadErrorKind::FileTooLarge(max_bytes));
    }
    let bytes = std::fs::read(file).map_err(|e| LoadErrorKind::Io(e.kind()))?;
    // The file may have grown between the two calls.
    if bytes.len() as u64 > max_bytes {
        return Err(LoadErrorKind::FileTooLarge(max_bytes));
    }
    parse_document(&bytes, file.extension().and_then(|e| e.to_str()))
}

/// Parse spec bytes as JSON or YAML into a JSON value.
pub(crate) fn parse_document(bytes: &[u8], extension: Option<&str>) -> Result<Value, LoadErrorKind> {
    let looks_json = match extension {
        Some(ext) if ext.eq_ignore_ascii_case("json") => true,
        Some(ext) if ext.eq_ignore_ascii_case("yaml") || ext.eq_ignore_ascii_case("yml") => false,
        _ => bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{'),
    };
    if looks_json {
        return serde_json::from_slice(bytes).map_err(|e| LoadErrorKind::Syntax(format!("JSON: {e}")));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| LoadErrorKind::Syntax("YAML: not UTF-8".into()))?;
    let yaml: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| LoadErrorKind::Syntax(format!("YAML: {e}")))?;
    yaml_to_json(yaml, 0)
}

/// YAML allows non-string keys (`200:` is an integer); OpenAPI means them as strings.
fn yaml_to_json(yaml: serde_yaml_ng::Value, depth: usize) -> Result<Value, LoadErrorKind> {
    use serde_yaml_ng::Value as Y;
    if depth > 256 {
        return Err(LoadErrorKind::Syntax("YAML: nested too deeply".into()));
    }
    Ok(match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| LoadErrorKind::Syntax("YAML: a number that JSON cannot hold".into()))?
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => {
            Value::Array(items.into_iter().map(|v| yaml_to_json(v, depth + 1)).collect::<Result<_, _>>()?)
        }
        Y::Mapping(map) => {
            let mut object = serde_json::Map::with_capacity(map.len());
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => return Err(LoadErrorKind::Syntax("YAML: a mapping key that is not a scalar".into())),
                };
                object.insert(key, yaml_to_json(v, depth + 1)?);
            }
            Value::Object(object)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value, depth + 1)?,
    })
}

/// `scheme:` at the start of a reference (RFC 3986 §3.1), e.g. `https:`, `file:`, `urn:`.
fn has_uri_scheme(reference: &str) -> bool {
    match reference.split_once(':') {
        Some((scheme, _)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// Decode `%XX` escapes of a URI reference; `None` for a bad escape or non-UTF-8 result.
pub(crate) fn percent_decode(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_schemes_are_recognised() {
        for r in ["http://x/y.yaml", "https://x", "file:///etc/passwd", "urn:x:y", "C:foo"] {
            assert!(has_uri_scheme(r), "{r}");
        }
        for r in ["./a.yaml", "a.yaml", "sub/a:b.yaml", "../x"] {
            assert!(!has_uri_scheme(r), "{r}");
        }
    }

    #[test]
    fn yaml_integer_keys_become_strings() {
        let v = parse_document(b"responses:\n  200:\n    description: ok\n", Some("yaml")).unwrap();
        assert_eq!(v["responses"]["200"]["description"], "ok");
    }

    #[test]
    fn billion_laughs_is_refused() {
        let mut doc =
            String::from("a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            let items = [prev.as_str(); 9].join(",");
            doc.push_str(&format!("a{i}: &a{i} [{items}]\n"));
        }
        let started = std::time::Instant::now();
        assert!(matches!(parse_document(doc.as_bytes(), Some("yaml")), Err(LoadErrorKind::Syntax(_))));
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn escaped_pointers_decode() {
        assert_eq!(percent_decode("/paths/~1a~1%7Bid%7D").as_deref(), Some("/paths/~1a~1{id}"));
        assert_eq!(percent_decode("%zz"), None);
    }
}
