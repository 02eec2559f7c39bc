//! Request path + method -> operation, with OpenAPI's precedence: a concrete segment beats a templated one
//! (`/users/me` before `/users/{id}`), tried segment by segment with backtracking.
//!
//! A segment trie built at load: static children in a hash map, templated children (`{id}`, `{name}.{ext}`) in a
//! list ordered most specific first. Matching walks the canonical path once and allocates only the parameter list.

use std::collections::HashMap;

use super::operation::{Method, Operation};

/// The path parameters of a matched request: (name from the template, decoded value from the path).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathParams<'s, 'p> {
    pairs: Vec<(&'s str, &'p str)>,
}

impl<'s, 'p> PathParams<'s, 'p> {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// All parameters in template order (for events: the object ids a call touched).
    pub fn iter(&self) -> impl Iterator<Item = (&'s str, &'p str)> + '_ {
        self.pairs.iter().copied()
    }

    /// Whether the template had no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }
}

/// What a request path and method name in a spec.
#[derive(Debug)]
pub enum Match<'s, 'p> {
    /// The operation and the path parameters read from the path.
    Found(&'s Operation, PathParams<'s, 'p>),
    /// The path is the spec's but not with this method (405); the methods it has, for the `Allow` header.
    MethodNotAllowed(Vec<Method>),
    /// No path of the spec (404).
    NotFound,
}

/// A piece of a templated segment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Param(String),
}

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<String, usize>,
    /// (pattern, child), most literal text first, so `{id}.json` is tried before `{name}`.
    templated: Vec<(Vec<Piece>, usize)>,
    /// Operation index per method, when a path ends here.
    operations: Vec<(Method, usize)>,
}

/// The compiled path table of one spec.
#[derive(Debug, Default)]
pub(crate) struct Matcher {
    nodes: Vec<Node>,
}

/// Why a path template cannot be added.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplateError {
    /// Not `/`-rooted, an empty or dot segment, an unbalanced brace, two adjacent parameters in a segment.
    Malformed,
    /// The same method on the same path (after renaming parameters) twice.
    Duplicate,
}

impl Matcher {
    pub(crate) fn new() -> Matcher {
        Matcher { nodes: vec![Node::default()] }
    }

    /// Register operation `index` for `method` at `template`.
    pub(crate) fn insert(&mut self, template: &str, method: Method, index: usize) -> Result<(), TemplateError> {
        let rest = template.strip_prefix('/').ok_or(TemplateError::Malformed)?;
        let mut node = 0;
        if !rest.is_empty() {
            let segments: Vec<&str> = rest.split('/').collect();
            for (i, segment) in segments.iter().enumerate() {
                // A trailing slash is a path of its own (`/a/` is not `/a`), as in the canonical request path.
                let trailing_slash = segment.is_empty() && i + 1 == segments.len();
                node = if trailing_slash { self.static_child(node, "") } else { self.child(node, segment)? };
            }
        }
        let ops = &mut self.nodes[node].operations;
        if ops.iter().any(|(m, _)| *m == method) {
            return Err(TemplateError::Duplicate);
        }
        ops.push((method, index));
        Ok(())
    }

    fn child(&mut self, node: usize, segment: &str) -> Result<usize, TemplateError> {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(TemplateError::Malformed);
        }
        let pieces = parse_segment(segment)?;
        if let [Piece::Literal(literal)] = pieces.as_slice() {
            return Ok(self.static_child(node, literal));
        }
        let next = self.nodes.len();
        // `{a}` and `{b}` at the same place are one path to OpenAPI: share the node, keep the first names.
        let shape = |p: &[Piece]| p.iter().map(|x| matches!(x, Piece::Literal(_))).collect::<Vec<_>>();
        let same = self.nodes[node].templated.iter().find(|(p, _)| {
            shape(p) == shape(&pieces)
                && p.iter().zip(&pieces).all(|pair| match pair {
                    (Piece::Literal(a), Piece::Literal(b)) => a == b,
                    _ => true,
                })
        });
        if let Some((_, child)) = same {
            return Ok(*child);
        }
        self.nodes.push(Node::default());
        let templated = &mut self.nodes[node].templated;
        templated.push((pieces, next));
        templated.sort_by_key(|(p, _)| std::cmp::Reverse(literal_len(p)));
        Ok(next)
    }

    fn static_child(&mut self, node: usize, literal: &str) -> usize {
        let next = self.nodes.len();
        let entry = *self.nodes[node].statics.entry(literal.to_owned()).or_insert(next);
        if entry == next {
            self.nodes.push(Node::default());
        }
        entry
    }

    /// The operation registered for `path` and `method` (`None`: a method OpenAPI cannot describe).
    pub(crate) fn lookup<'s, 'p>(
        &self,
        operations: &'s [Operation],
        path: &'p str,
        method: Option<Method>,
    ) -> Match<'s, 'p> {
        let Some(rest) = path.strip_prefix('/') else {
            return Match::NotFound;
        };
        let segments: Vec<&'p str> = if rest.is_empty() { Vec::new() } else { rest.split('/').collect() };
        let mut values: Vec<&'p str> = Vec::new();
        let Some(node) = self.walk(0, &segments, &mut values) else {
            return Match::NotFound;
        };
        let ops = &self.nodes[node].operations;
        let found = method.and_then(|method| {
            ops.iter().find(|(m, _)| *m == method).or_else(|| {
                // HEAD asks for GET's headers: same resource, same rules.
                (method == Method::Head).then(|| ops.iter().find(|(m, _)| *m == Method::Get)).flatten()
            })
        });
        let Some(&(_, index)) = found else {
            let mut allowed: Vec<Method> = ops.iter().map(|(m, _)| *m).collect();
            allowed.sort();
            return Match::MethodNotAllowed(allowed);
        };
        let Some(operation) = operations.get(index) else {
            return Match::NotFound;
        };
        // Names come from the operation's own template: parameters were read in template order.
        let names = template_param_names(&operation.path_template);
        let pairs = names.zip(values).collect();
        Match::Found(operation, PathParams { pairs })
    }

    /// Depth-first walk: statics first, then templated children in order. The first node reached at the end of
    /// the path that has operations wins.
    fn walk<'p>(&self, node: usize, segments: &[&'p str], values: &mut Vec<&'p str>) -> Option<usize> {
        let Some((segment, rest)) = segments.split_first() else {
            return (!self.nodes[node].operations.is_empty()).then_some(node);
        };
        let here = &self.nodes[node];
        if let Some(&child) = here.statics.get(*segment)
            && let Some(found) = self.walk(child, rest, values)
        {
            return Some(found);
        }
        for (pieces, child) in &here.templated {
            let mark = values.len();
            if match_pieces(pieces, segment, values)
                && let Some(found) = self.walk(*child, rest, values)
            {
                return Some(found);
            }
            values.truncate(mark);
        }
        None
    }
}

fn literal_len(pieces: &[Piece]) -> usize {
    pieces.iter().map(|p| if let Piece::Literal(l) = p { l.len() } else { 0 }).sum()
}

/// Split `{name}.{ext}` into pieces.
fn parse_segment(segment: &str) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces = Vec::new();
    let mut rest = segment;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('{') {
            let (name, tail) = after.split_once('}').ok_or(TemplateError::Malformed)?;
            if name.is_empty() || name.contains('{') || matches!(pieces.last(), Some(Piece::Param(_))) {
                return Err(TemplateError::Malformed);
            }
            pieces.push(Piece::Param(name.to_owned()));
            rest = tail;
        } else {
            let end = rest.find('{').unwrap_or(rest.len());
            let literal = &rest[..end];
            if literal.contains('}') {
                return Err(TemplateError::Malformed);
            }
            pieces.push(Piece::Literal(literal.to_owned()));
            rest = &rest[end..];
        }
    }
    Ok(pieces)
}

/// Match one path segment against pieces; a parameter takes a non-empty run up to the next literal's first
/// occurrence (or the rest of the segment).
fn match_pieces<'p>(pieces: &[Piece], segment: &'p str, values: &mut Vec<&'p str>) -> bool {
    let mut rest = segment;
    let mut iter = pieces.iter().peekable();
    while let Some(piece) = iter.next() {
        match piece {
            Piece::Literal(l) => match rest.strip_prefix(l.as_str()) {
                Some(r) => rest = r,
                None => return false,
            },
            Piece::Param(_) => {
                let end = match iter.peek() {
                    Some(Piece::Literal(next)) => match rest.get(1..).and_then(|r| r.find(next.as_str())) {
                        Some(i) => i + 1,
                        None => return false,
                    },
                    _ => rest.len(),
                };
                if end == 0 {
                    return false;
                }
                values.push(&rest[..end]);
                rest = &rest[end..];
            }
        }
    }
    rest.is_empty()
}

/// The `{names}` of a template, in order.
pub(crate) fn template_param_names(template: &str) -> impl Iterator<Item = &str> {
    template.split('{').skip(1).filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_parse() {
        assert_eq!(parse_segment("{id}").unwrap(), vec![Piece::Param("id".into())]);
        assert_eq!(
            parse_segment("{name}.{ext}").unwrap(),
            vec![Piece::Param("name".into()), Piece::Literal(".".into()), Piece::Param("ext".into())]
        );
        assert_eq!(parse_segment("{a}{b}"), Err(TemplateError::Malformed));
        assert_eq!(parse_segment("{a"), Err(TemplateError::Malformed));
        assert_eq!(parse_segment("a}"), Err(TemplateError::Malformed));
    }

    #[test]
    fn pieces_match() {
        let pieces = parse_segment("{name}.{ext}").unwrap();
        let mut values = Vec::new();
        assert!(match_pieces(&pieces, "report.tar.gz", &mut values));
        assert_eq!(values, ["report", "tar.gz"]);
        values.clear();
        assert!(!match_pieces(&pieces, ".gz", &mut values), "a parameter is never empty");
        values.clear();
        assert!(!match_pieces(&pieces, "report", &mut values));
        let pieces = parse_segment("v{n}").unwrap();
        values.clear();
        assert!(match_pieces(&pieces, "v2", &mut values));
        assert!(!match_pieces(&pieces, "v", &mut Vec::new()));
    }

    #[test]
    fn names_in_order() {
        assert_eq!(template_param_names("/a/{x}/b/{y}.{z}").collect::<Vec<_>>(), ["x", "y", "z"]);
    }
}
