//! The access token in a request's `Authorization` header: `Bearer` (RFC 6750 §2.1) or `DPoP` (RFC 9449 §7.1),
//! schemes case-insensitive. One reading for every protected resource — the gate, the issuer's userinfo, account and
//! admin APIs, and watch's API — so that none of them accepts a header another refuses.

/// How the token was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresentedScheme {
    Bearer,
    Dpop,
}

/// Why no token could be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialsError {
    /// No `Authorization` header, or credentials of another scheme (`Basic`, ...): a missing token (RFC 6750 §3.1,
    /// answered with a bare challenge).
    Missing,
    /// More than one `Authorization` header: an invalid request, since two readers might each take another one.
    Repeated,
    /// The right scheme with no token, a token with spaces in it, or bytes that are not visible ASCII.
    Malformed,
}

/// The scheme and token of the request's `Authorization` header values (all of them, in order).
pub fn presented_token<'a>(
    values: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(PresentedScheme, &'a str), CredentialsError> {
    let mut values = values.into_iter();
    let value = values.next().ok_or(CredentialsError::Missing)?;
    if values.next().is_some() {
        return Err(CredentialsError::Repeated);
    }
    // As `http::HeaderValue::to_str`: visible ASCII, space and tab only.
    if !value.iter().all(|&b| b == b'\t' || (b' '..=b'~').contains(&b)) {
        return Err(CredentialsError::Malformed);
    }
    let value = std::str::from_utf8(value).map_err(|_| CredentialsError::Malformed)?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("bearer") {
        PresentedScheme::Bearer
    } else if scheme.eq_ignore_ascii_case("dpop") {
        PresentedScheme::Dpop
    } else {
        return Err(CredentialsError::Missing);
    };
    let token = rest.trim_start_matches(' ');
    if token.is_empty() || token.contains([' ', '\t']) {
        return Err(CredentialsError::Malformed);
    }
    Ok((scheme, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(values: &[&'static [u8]]) -> Result<(PresentedScheme, &'static str), CredentialsError> {
        presented_token(values.iter().copied())
    }

    #[test]
    fn reads_bearer_and_dpop_and_refuses_the_rest() {
        use CredentialsError::*;
        use PresentedScheme::*;
        assert_eq!(read(&[b"Bearer abc.def.ghi"]), Ok((Bearer, "abc.def.ghi")));
        assert_eq!(read(&[b"bEaReR   abc"]), Ok((Bearer, "abc")));
        assert_eq!(read(&[b"dpop abc"]), Ok((Dpop, "abc")));
        assert_eq!(read(&[]), Err(Missing));
        assert_eq!(read(&[b"Basic YTpi"]), Err(Missing));
        assert_eq!(read(&[b"Bearer"]), Err(Malformed));
        assert_eq!(read(&[b"Bearer "]), Err(Malformed));
        assert_eq!(read(&[b"Bearer a b"]), Err(Malformed));
        assert_eq!(read(&[b"Bearer a\tb"]), Err(Malformed));
        assert_eq!(read(&[b"Bearer \xff"]), Err(Malformed));
        assert_eq!(read(&[b"Bearer a", b"Bearer b"]), Err(Repeated));
    }
}
