//! Form and query parameters with the RFC 6749 §3.1 / §3.2 rules: a parameter must not be repeated, and a
//! parameter sent without a value is treated as omitted.

/// A parameter appeared more than once with a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("parameter repeated")]
pub struct Repeated;

/// The decoded `name=value` pairs of a query string or an `application/x-www-form-urlencoded` body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Decode a query string (without `?`) or a form body.
    pub fn parse(raw: &[u8]) -> Self {
        let pairs = url::form_urlencoded::parse(raw).map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
        Self { pairs }
    }

    /// The value of `name`, `None` when absent or empty. A repeated parameter is `Err(())`: which of its values
    /// is meant cannot be known, so the request is refused.
    pub fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name && !v.is_empty() {
                if found.is_some() {
                    return Err(Repeated);
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// The value of `name` if it appears exactly once; `None` when absent, empty or repeated.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.single(name).ok().flatten()
    }

    /// Add a parameter (e.g. the authenticated `client_id` to a pushed request that left it out).
    pub fn push(&mut self, name: &str, value: &str) {
        self.pairs.push((name.to_owned(), value.to_owned()));
    }

    /// Every value of `name`, in order, empty ones left out: for the few parameters that may repeat (RFC 8707
    /// `resource`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs.iter().filter(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str()).collect()
    }

    /// The names of the parameters, in order (a repeated one as often as it appears).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }

    /// The name of the first parameter that carries a value more than once, if any.
    pub fn first_repeated(&self) -> Option<&str> {
        self.first_repeated_except(&[])
    }

    /// [`Params::first_repeated`], except for the parameters in `repeatable`, which may carry several values.
    pub fn first_repeated_except(&self, repeatable: &[&str]) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, v))| {
            let repeated = !v.is_empty()
                && !repeatable.contains(&k.as_str())
                && self.pairs[..i].iter().any(|(k2, v2)| k2 == k && !v2.is_empty());
            repeated.then_some(k.as_str())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_count_as_absent_and_repeats_are_found() {
        let p = Params::parse(b"a=1&b=&c=x%20y&a=2&d=4&b=");
        assert_eq!(p.single("a"), Err(Repeated));
        assert_eq!(p.get("a"), None);
        assert_eq!(p.single("b"), Ok(None));
        assert_eq!(p.get("c"), Some("x y"));
        assert_eq!(p.get("missing"), None);
        assert_eq!(p.first_repeated(), Some("a"));
        assert_eq!(Params::parse(b"a=1&b=2&b=").first_repeated(), None);
        let p = Params::parse(b"resource=x&a=1&resource=&resource=y&a=2");
        assert_eq!(p.all("resource"), ["x", "y"]);
        assert_eq!(p.first_repeated_except(&["resource"]), Some("a"));
        assert_eq!(Params::parse(b"resource=x&resource=y").first_repeated_except(&["resource"]), None);
    }
}
