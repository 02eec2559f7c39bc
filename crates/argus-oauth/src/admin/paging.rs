//! Keyset paging of the admin API's lists (`?limit=&after=`).
//!
//! A list is read in the order of a unique, never-changing key (a user's `sub`, a `client_id`, a revocation's id);
//! a page is the first `limit` rows whose key comes after the cursor. Rows added or removed meanwhile never make
//! another row appear twice or go missing, unlike offsets. The cursor is the last key of a page, base64url: opaque
//! to callers, so the encoding may change, and safe in a query string as it is.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::AdminError;

/// Rows per page when the request does not say.
pub const DEFAULT_PAGE_LIMIT: usize = 100;
/// The most rows one page may have.
pub const MAX_PAGE_LIMIT: usize = 1000;
/// The longest cursor accepted, in characters: keys are ids and names of at most a few hundred bytes.
const MAX_CURSOR_LEN: usize = 1024;

/// One page asked for: at most `limit` rows after the key `after` (from the first row without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<String>,
    pub limit: usize,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { after: None, limit: DEFAULT_PAGE_LIMIT }
    }
}

impl PageRequest {
    /// The page the query parameters `limit` and `after` ask for. A limit that is not a whole number from 1 to
    /// [`MAX_PAGE_LIMIT`], or a cursor that is not one this API handed out, is refused (400).
    pub fn parse(limit: Option<&str>, after: Option<&str>) -> Result<Self, AdminError> {
        let limit = match limit {
            None => DEFAULT_PAGE_LIMIT,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=MAX_PAGE_LIMIT).contains(l) && raw.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| AdminError::Invalid(format!("limit must be a number from 1 to {MAX_PAGE_LIMIT}")))?,
        };
        let after = after.map(decode_cursor).transpose()?;
        Ok(Self { after, limit })
    }

    /// How many rows to read from the store: one more than the page, which tells whether another page follows.
    pub fn rows_to_read(&self) -> usize {
        self.limit + 1
    }
}

/// One page of a list, and the cursor of the next page when more rows follow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl<T> Page<T> {
    /// The page of `rows` as read for `request` (up to [`PageRequest::rows_to_read`] rows, in key order); `key` gives
    /// a row's key.
    pub fn from_rows(mut rows: Vec<T>, request: &PageRequest, key: impl Fn(&T) -> &str) -> Self {
        let more = rows.len() > request.limit;
        rows.truncate(request.limit);
        let next = if more { rows.last().map(|last| encode_cursor(key(last))) } else { None };
        Self { items: rows, next }
    }

    /// The same page with each row turned into what the answer shows of it.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next: self.next }
    }
}

/// The cursor that continues after `key`.
pub fn encode_cursor(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

/// The key in a cursor.
fn decode_cursor(cursor: &str) -> Result<String, AdminError> {
    let bad = || AdminError::Invalid("after must be the next cursor of an earlier page".to_owned());
    if cursor.is_empty() || cursor.len() > MAX_CURSOR_LEN {
        return Err(bad());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    String::from_utf8(bytes).ok().filter(|k| !k.is_empty()).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(r: Result<PageRequest, AdminError>) -> String {
        match r {
            Err(AdminError::Invalid(detail)) => detail,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn limits() {
        assert_eq!(PageRequest::parse(None, None).unwrap(), PageRequest { after: None, limit: 100 });
        assert_eq!(PageRequest::parse(Some("1"), None).unwrap().limit, 1);
        assert_eq!(PageRequest::parse(Some("1000"), None).unwrap().limit, 1000);
        for bad in ["0", "1001", "-1", "+5", "ten", "1e2", " 5", "99999999999999999999999"] {
            assert!(invalid(PageRequest::parse(Some(bad), None)).contains("limit"), "{bad}");
        }
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let key = "0190f1c2-7a2b-7c3d-8e4f-a0b1c2d3e4f5";
        let cursor = encode_cursor(key);
        assert!(cursor.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(PageRequest::parse(None, Some(&cursor)).unwrap().after.as_deref(), Some(key));
        let too_long = "A".repeat(MAX_CURSOR_LEN + 4);
        for bad in ["", "!!!", "a", "_w", "YWJj=", too_long.as_str()] {
            assert!(invalid(PageRequest::parse(None, Some(bad))).contains("cursor"), "{bad}");
        }
    }

    #[test]
    fn a_page_says_whether_more_follow() {
        let request = PageRequest { after: None, limit: 2 };
        let rows = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
        let full = Page::from_rows(rows(3), &request, String::as_str);
        assert_eq!(full.items, ["k0", "k1"]);
        assert_eq!(full.next, Some(encode_cursor("k1")));
        let last = Page::from_rows(rows(2), &request, String::as_str);
        assert_eq!((last.items.len(), last.next), (2, None));
        assert_eq!(Page::from_rows(Vec::<String>::new(), &request, String::as_str).next, None);
        assert_eq!(request.rows_to_read(), 3);
    }
}
