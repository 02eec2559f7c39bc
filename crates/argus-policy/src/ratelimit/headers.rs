//! The `RateLimit` and `RateLimit-Policy` header fields, and `Retry-After`.
//!
//! Syntax of draft-ietf-httpapi-ratelimit-headers-09 (§3 `RateLimit-Policy`, §4 `RateLimit`): each field is a
//! Structured Field List (RFC 9651) of Items whose bare value is the policy name as an sf-string, with Integer
//! parameters: `q` (quota) and `w` (window, seconds) on the policy; `r` (remaining) and `t` (seconds until the quota
//! resets) on the current state. For example:
//!
//! ```text
//! RateLimit-Policy: "ip";q=6000;w=60
//! RateLimit: "ip";r=5999;t=1
//! Retry-After: 3
//! ```

use std::fmt::Write;

use super::quota::Quota;

/// A `RateLimit-Policy` list member: `"<name>";q=<count>;w=<window seconds>`.
pub(crate) fn policy_member(name: &str, quota: &Quota) -> String {
    let mut out = sf_string(name);
    let _ = write!(out, ";q={};w={}", quota.count(), quota.window_secs());
    out
}

/// A `RateLimit` list member: `"<name>";r=<remaining>;t=<reset seconds>`.
pub(crate) fn state_member(name: &str, remaining: u64, reset_secs: u64) -> String {
    let mut out = sf_string(name);
    let _ = write!(out, ";r={remaining};t={reset_secs}");
    out
}

/// An RFC 9651 §3.3.3 sf-string: printable ASCII in quotes, `"` and `\` escaped. Other characters cannot be
/// represented and become `_` (policy names are built from configuration, never from requests).
fn sf_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('_'),
        }
    }
    out.push('"');
    out
}
