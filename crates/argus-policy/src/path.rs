//! Paths as the policy reads them.
//!
//! A gate that decides on a path one way while the upstream reads it another way can be walked around
//! (`/public/../admin`, `/admin%2Fx`, `/accounts;x` on servlet containers). So the policy matches on one canonical
//! form and refuses the spellings whose meaning depends on the upstream, instead of guessing how to normalize them.

use std::borrow::Cow;

/// Why a request path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path does not start with '/'")]
    NotOriginForm,
    #[error("a percent escape is not two hex digits")]
    BadEscape,
    #[error("an escaped '/' or '\\' would change the segments")]
    EncodedSeparator,
    #[error("a backslash in the path")]
    Backslash,
    #[error("a control character in the path")]
    ControlCharacter,
    #[error("the decoded path is not UTF-8")]
    NotUtf8,
    #[error("a '.' or '..' segment")]
    DotSegment,
    #[error("an empty segment ('//')")]
    EmptySegment,
}

/// The form of `raw` (a request path without query) that routes and rules are matched on: percent-decoded once,
/// with segment parameters (`;...`) dropped. Borrowed when `raw` is already canonical.
///
/// Refused: anything not starting with `/`, bad escapes, escaped `/` or `\`, backslashes, control characters,
/// `.`/`..` segments (also escaped or with parameters) and empty segments other than a trailing slash.
///
/// Matching on the decoded form is the cautious choice: an upstream that decodes sees the resource the gate
/// matched; one that does not sees a different resource, which the gate has only treated more strictly.
pub fn canonical_path(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if !raw.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    if raw.contains('\\') {
        return Err(PathError::Backslash);
    }
    // Split on the literal separators first and decode each segment afterwards: an escaped `;` (`%3B`) is data
    // that belongs to the segment (and to the path parameter the spec validates), not a segment parameter.
    let mut canonical = String::with_capacity(raw.len());
    let segments: Vec<&str> = raw[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut changed = false;
    for (i, segment) in segments.iter().enumerate() {
        let raw_name = match segment.split_once(';') {
            Some((name, _params)) => {
                changed = true;
                name
            }
            None => segment,
        };
        let name = percent_decode(raw_name)?;
        changed |= matches!(name, Cow::Owned(_));
        if name == "." || name == ".." {
            return Err(PathError::DotSegment);
        }
        if name.is_empty() && i != last {
            return Err(PathError::EmptySegment);
        }
        canonical.push('/');
        canonical.push_str(&name);
    }
    if changed { Ok(Cow::Owned(canonical)) } else { Ok(Cow::Borrowed(raw)) }
}

/// Decode `%XX` escapes once. Escapes that would introduce a separator or a control character are refused, as is a
/// result that is not UTF-8.
fn percent_decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    if raw.bytes().any(|b| b.is_ascii_control()) {
        return Err(PathError::ControlCharacter);
    }
    if !raw.contains('%') {
        return Ok(Cow::Borrowed(raw));
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hi = bytes.get(i + 1).and_then(|b| hex_value(*b));
        let lo = bytes.get(i + 2).and_then(|b| hex_value(*b));
        let (Some(hi), Some(lo)) = (hi, lo) else {
            return Err(PathError::BadEscape);
        };
        let b = (hi << 4) | lo;
        match b {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            b if b.is_ascii_control() => return Err(PathError::ControlCharacter),
            b => out.push(b),
        }
        i += 3;
    }
    String::from_utf8(out).map(Cow::Owned).map_err(|_| PathError::NotUtf8)
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` lies under `prefix` on whole segments: `/api` matches `/api`, `/api/` and `/api/x`, not `/apix`.
/// `/` matches every path. Both are expected in canonical form, `prefix` without a trailing slash.
pub fn segment_prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_escaped_semicolon_is_data_not_a_segment_parameter() {
        // The upstream reads the id `1234; domain=x`; the gate must validate that, not `1234`.
        assert_eq!(canonical_path("/orders/1234%3B%20domain=x").unwrap(), "/orders/1234; domain=x");
        assert_eq!(canonical_path("/orders/1234;v=1").unwrap(), "/orders/1234");
        assert_eq!(canonical_path("/orders/1234").unwrap(), Cow::Borrowed("/orders/1234"));
        assert_eq!(canonical_path("/a%2E%2E/b").unwrap(), "/a../b");
        assert!(canonical_path("/a/%2E%2E/b").is_err());
        assert!(canonical_path("/a/..;x/b").is_err());
    }

    #[test]
    fn segment_boundaries() {
        assert!(segment_prefix_matches("/api", "/api"));
        assert!(segment_prefix_matches("/api", "/api/"));
        assert!(segment_prefix_matches("/api", "/api/x/y"));
        assert!(!segment_prefix_matches("/api", "/apix"));
        assert!(!segment_prefix_matches("/api", "/ap"));
        assert!(!segment_prefix_matches("/api/v1", "/api"));
        assert!(segment_prefix_matches("/", "/"));
        assert!(segment_prefix_matches("/", "/anything/at/all"));
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/accounts", "/accounts/", "/a/b.json", "/a/..b/c.", "/~user"] {
            assert!(matches!(canonical_path(p), Ok(Cow::Borrowed(s)) if s == p), "{p}");
        }
    }

    #[test]
    fn escapes_are_decoded_once_and_parameters_dropped() {
        assert_eq!(canonical_path("/acc%6Funts").unwrap(), "/accounts");
        assert_eq!(canonical_path("/caf%C3%A9").unwrap(), "/café");
        assert_eq!(canonical_path("/a%2541").unwrap(), "/a%41", "decoded once only");
        assert_eq!(canonical_path("/accounts;jsessionid=1").unwrap(), "/accounts");
        assert_eq!(canonical_path("/a;x/b").unwrap(), "/a/b");
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        let cases = [
            ("accounts", PathError::NotOriginForm),
            ("*", PathError::NotOriginForm),
            ("/a/../admin", PathError::DotSegment),
            ("/a/./b", PathError::DotSegment),
            ("/..", PathError::DotSegment),
            ("/a/%2e%2E/admin", PathError::DotSegment),
            ("/a/..;x/admin", PathError::DotSegment),
            ("/a//b", PathError::EmptySegment),
            ("//a", PathError::EmptySegment),
            ("/a/;x/b", PathError::EmptySegment),
            ("/admin%2Fx", PathError::EncodedSeparator),
            ("/admin%5cx", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::ControlCharacter),
            ("/a%1", PathError::BadEscape),
            ("/a%zz", PathError::BadEscape),
            ("/a%ff", PathError::NotUtf8),
        ];
        for (raw, err) in cases {
            assert_eq!(canonical_path(raw), Err(err), "{raw}");
        }
    }
}
