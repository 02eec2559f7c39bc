//! The OWASP CRS attack inputs of `../shared/data/payloads/crs-request-attacks.jsonl`, as the values an attacker
//! puts into a request: query and form values (decoded as a lenient browser would), whole bodies and header
//! values. Shared by the validation core's test and the gate's.

use std::collections::BTreeSet;

/// The payload file, relative to a crate's manifest folder (`crates/<name>`).
const CRS_FILE: &str = "../../../shared/data/payloads/crs-request-attacks.jsonl";

/// The distinct non-empty attack values and the number of test lines they came from; `None` when the shared data
/// is absent (a checkout without `../shared`).
pub fn crs_attack_values(manifest_dir: &str) -> Option<(usize, BTreeSet<String>)> {
    let text = std::fs::read_to_string(std::path::Path::new(manifest_dir).join(CRS_FILE)).ok()?;
    let mut values = BTreeSet::new();
    let form_values = |s: &str, values: &mut BTreeSet<String>| {
        for piece in s.split('&') {
            if let Some((_, v)) = piece.split_once('=') {
                values.insert(lossy_form_decode(v));
            }
        }
    };
    let mut lines = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let test: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        lines += 1;
        if let Some((_, query)) = test["uri"].as_str().and_then(|u| u.split_once('?')) {
            form_values(query, &mut values);
        }
        if let Some(data) = test["data"].as_str() {
            values.insert(data.to_owned());
            form_values(data, &mut values);
        }
        if let Some(headers) = test["headers"].as_object() {
            values.extend(headers.values().map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        }
    }
    values.remove("");
    Some((lines, values))
}

/// Decode as a lenient browser would (invalid escapes kept), so the attack reaches the validator as meant.
pub fn lossy_form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if s.get(i + 1..i + 3).is_some_and(|h| u8::from_str_radix(h, 16).is_ok()) => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode everything but RFC 3986 unreserved characters.
pub fn percent_encode_all(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
