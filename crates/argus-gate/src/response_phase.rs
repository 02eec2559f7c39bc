//! Phase: response. The upstream's answer is held to the responses the operation declares (excessive data
//! exposure: fields, statuses or content types the spec never mentions), and the records of an
//! `x-argus-sensitive` answer are counted, both from one read of the body.
//!
//! The head (status, content type, framing) is classified first, and a body is read only when it can be checked or
//! counted, so everything else keeps streaming. `log` reads JSON of declared length up to [`MAX_READ_BYTES`] and
//! lets the rest through unchecked; `block` reads every JSON body it has to check and withholds what it cannot
//! read (fail closed).

use argus_model::{ResponseCheck, truncate_utf8};
use argus_policy::ResponseMode;
use argus_policy::openapi::{Operation, ResponseHead, ResponseReport};
use argus_policy::rules::Sensitive;
use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::emit::CallRecord;
use crate::refusal::Refusal;

/// Largest answer body read whole, to check or to count; a larger one streams through unchecked (`log`) or is
/// withheld (`block`). Bounds the memory one call can pin.
pub(crate) const MAX_READ_BYTES: u64 = 4 << 20;
/// Field pointers in events are cut to this many bytes: the upstream chooses the names.
const MAX_POINTER_BYTES: usize = 256;

/// What the response phase needs to know about the call's operation.
pub(crate) struct ResponsePlan<'a> {
    pub(crate) operation: &'a Operation,
    pub(crate) mode: ResponseMode,
    /// The operation is `x-argus-sensitive`: count the records of a successful answer.
    pub(crate) sensitive: Option<Sensitive>,
    /// The call was a HEAD request: its answer has no body, whatever its headers say.
    pub(crate) head_request: bool,
}

/// Check and count the answer as its plan says; the answer comes back (read or still streaming) or is withheld.
/// Calls without an operation (routes without a spec) pass untouched.
pub(crate) async fn response_phase(
    response: Response,
    plan: Option<&ResponsePlan<'_>>,
    record: &mut CallRecord,
) -> Result<Response, Refusal> {
    let Some(plan) = plan else { return Ok(response) };
    let head = Head::of(response.status(), response.headers(), plan.head_request);
    let status = head.status.as_u16();
    let block = plan.mode == ResponseMode::Block;
    let class = (plan.mode != ResponseMode::Off)
        .then(|| plan.operation.response_head(status, head.content_type.as_deref(), head.has_body));
    if class == Some(ResponseHead::Undocumented) {
        record.flag_response(status, ResponseCheck { undocumented: true, blocked: block, ..ResponseCheck::default() });
        if block {
            return Err(Refusal::UndeclaredResponse);
        }
    }
    let check = class == Some(ResponseHead::Checkable);
    let count = plan.sensitive.as_ref().filter(|_| head.status.is_success() && head.is_json());
    if !check && count.is_none() {
        return Ok(response);
    }
    let readable = !head.encoded && head.declared.is_none_or(|n| n <= MAX_READ_BYTES);
    // `log` keeps streaming what it cannot read cheaply: unknown length means it might be large.
    if !readable || (!block && head.declared.is_none()) {
        return if check && block { withhold(record, status) } else { Ok(response) };
    }
    let (parts, body) = response.into_parts();
    let bytes = match read(body).await {
        Ok(bytes) => bytes,
        Err(Unread::TooLarge) if check && block => return withhold(record, status),
        Err(Unread::TooLarge | Unread::Broken) => return Err(Refusal::UpstreamUnavailable),
    };
    if check {
        let report = plan.operation.check_response_body(status, head.content_type.as_deref(), &bytes);
        if !report.conforms() {
            record.flag_response(status, finding(&report, block));
            if block {
                return Err(Refusal::UndeclaredResponse);
            }
        }
    }
    if let Some(n) = count.and_then(|s| serde_json::from_slice(&bytes).ok().and_then(|v| s.count_records(&v))) {
        record.set_records(n);
    }
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

/// `block` and a body it cannot check: withheld, and said so in the event.
fn withhold(record: &mut CallRecord, status: u16) -> Result<Response, Refusal> {
    record.flag_response(status, ResponseCheck { unchecked: true, blocked: true, ..ResponseCheck::default() });
    Err(Refusal::UndeclaredResponse)
}

/// The event's view of a report: names and counts, bounded.
fn finding(report: &ResponseReport, blocked: bool) -> ResponseCheck {
    ResponseCheck {
        undocumented: !report.documented,
        undeclared_fields: report
            .undeclared_fields
            .iter()
            .map(|p| truncate_utf8(p, MAX_POINTER_BYTES).to_owned())
            .collect(),
        other_violations: u64::try_from(report.other_violations).unwrap_or(u64::MAX) + u64::from(report.malformed),
        unchecked: false,
        blocked,
    }
}

/// What the answer's head says about its body.
struct Head {
    status: StatusCode,
    content_type: Option<String>,
    /// `Content-Length`, when the upstream declared one.
    declared: Option<u64>,
    /// Whether a body follows (RFC 9110 §6.4.1: none for HEAD, 1xx, 204 and 304).
    has_body: bool,
    /// A `Content-Encoding` other than identity: the bytes are not the JSON the spec describes.
    encoded: bool,
}

impl Head {
    fn of(status: StatusCode, headers: &HeaderMap, head_request: bool) -> Head {
        let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
        let bodiless = head_request
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
            || declared == Some(0);
        Head {
            status,
            content_type: headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
            declared,
            has_body: !bodiless,
            encoded: headers
                .get_all(header::CONTENT_ENCODING)
                .iter()
                .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity")),
        }
    }

    /// `application/json` or a `+json` type (RFC 6839).
    fn is_json(&self) -> bool {
        let Some(essence) = self.content_type.as_deref().and_then(|v| v.split(';').next()) else { return false };
        let essence = essence.trim();
        essence.eq_ignore_ascii_case("application/json")
            || essence.rsplit_once('+').is_some_and(|(_, suffix)| suffix.eq_ignore_ascii_case("json"))
    }
}

enum Unread {
    TooLarge,
    Broken,
}

/// The whole body, up to [`MAX_READ_BYTES`]. Nothing was sent yet, so a broken upstream body can still be
/// answered properly.
async fn read(body: Body) -> Result<Bytes, Unread> {
    let limit = usize::try_from(MAX_READ_BYTES).unwrap_or(usize::MAX);
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<LengthLimitError>() => Err(Unread::TooLarge),
        Err(_) => Err(Unread::Broken),
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn head(status: u16, headers: &[(&str, &str)], head_request: bool) -> Head {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(header::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        Head::of(StatusCode::from_u16(status).unwrap(), &map, head_request)
    }

    #[test]
    fn heads_say_whether_a_body_follows_and_what_it_is() {
        let json = ("content-type", "application/json; charset=utf-8");
        assert!(head(200, &[json], false).has_body);
        assert!(!head(200, &[json], true).has_body, "HEAD");
        assert!(!head(204, &[], false).has_body && !head(304, &[json], false).has_body);
        assert!(!head(200, &[json, ("content-length", "0")], false).has_body);
        assert_eq!(head(200, &[("content-length", "12")], false).declared, Some(12));
        assert!(head(200, &[json], false).is_json());
        assert!(head(404, &[("content-type", "application/problem+json")], false).is_json());
        assert!(!head(200, &[("content-type", "text/html")], false).is_json());
        assert!(!head(200, &[], false).is_json());
        assert!(head(200, &[("content-encoding", "gzip")], false).encoded);
        assert!(!head(200, &[("content-encoding", "identity")], false).encoded);
    }

    #[test]
    fn findings_keep_names_bounded_and_count_malformed_bodies() {
        let report = ResponseReport {
            documented: true,
            malformed: true,
            undeclared_fields: vec![format!("/{}", "x".repeat(1000))],
            other_violations: 2,
            records: None,
        };
        let check = finding(&report, true);
        assert_eq!(check.undeclared_fields[0].len(), MAX_POINTER_BYTES);
        assert_eq!((check.other_violations, check.undocumented, check.blocked), (3, false, true));
    }
}
