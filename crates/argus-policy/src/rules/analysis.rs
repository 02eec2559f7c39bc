//! What a rule may be, checked once at load: size, shape and the inputs it reads.
//!
//! CEL has no loops or recursion, so an expression's cost is its size times the size of the data it walks. The
//! data is bounded by the gate's body and header limits; this module bounds the rest: the source length, the
//! number of nodes after macro expansion, comprehension nesting (one level: `items.all(i, ...)` is linear in the
//! request, a nested one would be quadratic), and `matches` patterns, which must be literals so that a request
//! can never choose the regular expression the gate compiles.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};

use super::RuleError;

/// Longest accepted rule source, in bytes.
pub(crate) const MAX_SOURCE_BYTES: usize = 4096;
/// Most AST nodes a rule may have after macro expansion.
pub(crate) const MAX_NODES: usize = 512;
/// Deepest parse nesting (parentheses, calls, selections) the parser accepts.
pub(crate) const MAX_PARSE_DEPTH: u16 = 48;
/// Comprehensions (`all`, `exists`, `exists_one`, `map`, `filter`) may not nest.
const MAX_COMPREHENSION_DEPTH: usize = 1;

/// The variables a rule can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Root {
    /// Access-token claims.
    Token,
    /// Path parameters, typed.
    Params,
    /// Query parameters, typed.
    Query,
    /// Request headers, by lower-case name.
    Headers,
    /// The parsed JSON body.
    Body,
    /// `method`, `path`, `ip`.
    Request,
}

impl Root {
    pub(crate) const ALL: [Root; 6] =
        [Root::Token, Root::Params, Root::Query, Root::Headers, Root::Body, Root::Request];

    /// The variable's name in CEL.
    pub fn name(self) -> &'static str {
        match self {
            Root::Token => "token",
            Root::Params => "params",
            Root::Query => "query",
            Root::Headers => "headers",
            Root::Body => "body",
            Root::Request => "request",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Which top-level fields of a root a rule reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) enum Fields {
    /// The rule never mentions the root.
    #[default]
    Unused,
    /// Only `root.<field>` for these fields (sorted, deduplicated): only they need converting per request.
    Some(Vec<String>),
    /// The root is used as a whole (`body[k]`, `size(body)`, `body.all(...)`, ...).
    All,
}

impl Fields {
    fn add_field(&mut self, field: &str) {
        match self {
            Fields::Unused => *self = Fields::Some(vec![field.to_owned()]),
            Fields::Some(fields) => {
                if let Err(at) = fields.binary_search_by(|f| f.as_str().cmp(field)) {
                    fields.insert(at, field.to_owned());
                }
            }
            Fields::All => {}
        }
    }

    /// Whether the rule needs `field` of this root.
    pub(crate) fn wants(&self, field: &str) -> bool {
        match self {
            Fields::Unused => false,
            Fields::Some(fields) => fields.binary_search_by(|f| f.as_str().cmp(field)).is_ok(),
            Fields::All => true,
        }
    }

    pub(crate) fn is_used(&self) -> bool {
        !matches!(self, Fields::Unused)
    }
}

/// The inputs a rule reads, per root.
#[derive(Clone, Debug, Default)]
pub(crate) struct Usage {
    fields: [Fields; 6],
}

impl Usage {
    pub(crate) fn of(&self, root: Root) -> &Fields {
        &self.fields[root.index()]
    }
}

/// Type names that CEL resolves as identifiers (`type(x) == int`).
const TYPE_IDENTS: [&str; 10] = ["bool", "bytes", "double", "dyn", "int", "list", "map", "null_type", "string", "uint"];

/// Reject source text that is too large before the parser sees it.
pub(crate) fn check_source(source: &str) -> Result<(), RuleError> {
    if source.trim().is_empty() {
        return Err(RuleError::Empty);
    }
    if source.len() > MAX_SOURCE_BYTES {
        return Err(RuleError::TooLong { len: source.len(), max: MAX_SOURCE_BYTES });
    }
    Ok(())
}

/// Walk the parsed rule: enforce the cost limits, reject unknown variables and struct literals, and record which
/// inputs the rule reads.
pub(crate) fn analyse(expr: &IdedExpr) -> Result<Usage, RuleError> {
    let mut walk = Walk { nodes: 0, usage: Usage::default(), scopes: Vec::new() };
    walk.visit(expr, 0)?;
    Ok(walk.usage)
}

struct Walk {
    nodes: usize,
    usage: Usage,
    /// Variables bound by the enclosing comprehensions (iteration and accumulator variables).
    scopes: Vec<String>,
}

impl Walk {
    fn visit(&mut self, expr: &IdedExpr, comprehension_depth: usize) -> Result<(), RuleError> {
        self.nodes += 1;
        if self.nodes > MAX_NODES {
            return Err(RuleError::TooComplex { max_nodes: MAX_NODES });
        }
        match &expr.expr {
            Expr::Unspecified | Expr::Literal(_) => Ok(()),
            Expr::Ident(name) => self.ident(name),
            Expr::Select(select) => {
                if let Expr::Ident(name) = &select.operand.expr
                    && let Some(root) = self.root(name)
                {
                    self.nodes += 1;
                    self.usage.fields[root.index()].add_field(&select.field);
                    return Ok(());
                }
                self.visit(&select.operand, comprehension_depth)
            }
            Expr::Call(call) => {
                if call.func_name == "matches" {
                    check_literal_pattern(call.args.last())?;
                }
                if let Some(target) = &call.target {
                    self.visit(target, comprehension_depth)?;
                }
                call.args.iter().try_for_each(|a| self.visit(a, comprehension_depth))
            }
            Expr::List(list) => list.elements.iter().try_for_each(|e| self.visit(e, comprehension_depth)),
            Expr::Map(map) => map.entries.iter().try_for_each(|entry| match &entry.expr {
                EntryExpr::MapEntry(e) => {
                    self.visit(&e.key, comprehension_depth)?;
                    self.visit(&e.value, comprehension_depth)
                }
                EntryExpr::StructField(_) => Err(RuleError::Unsupported("message literals")),
            }),
            Expr::Struct(_) => Err(RuleError::Unsupported("message literals")),
            Expr::Comprehension(c) => {
                if comprehension_depth >= MAX_COMPREHENSION_DEPTH {
                    return Err(RuleError::NestedComprehension);
                }
                self.visit(&c.iter_range, comprehension_depth)?;
                self.visit(&c.accu_init, comprehension_depth)?;
                let bound = 2 + usize::from(c.iter_var2.is_some());
                self.scopes.push(c.iter_var.clone());
                self.scopes.push(c.accu_var.clone());
                if let Some(v) = &c.iter_var2 {
                    self.scopes.push(v.clone());
                }
                let inner = comprehension_depth + 1;
                let result = [&c.loop_cond, &c.loop_step, &c.result].into_iter().try_for_each(|e| self.visit(e, inner));
                self.scopes.truncate(self.scopes.len() - bound);
                result
            }
        }
    }

    /// The root an identifier names, unless a comprehension variable shadows it.
    fn root(&self, name: &str) -> Option<Root> {
        if self.scopes.iter().any(|s| s == name) {
            return None;
        }
        Root::from_name(name)
    }

    fn ident(&mut self, name: &str) -> Result<(), RuleError> {
        if let Some(root) = self.root(name) {
            self.usage.fields[root.index()] = Fields::All;
            return Ok(());
        }
        if self.scopes.iter().any(|s| s == name) || TYPE_IDENTS.contains(&name) {
            return Ok(());
        }
        Err(RuleError::UnknownVariable(name.to_owned()))
    }
}

/// `matches` compiles its pattern on every call: only a literal, compiled once here to prove it valid, may be used.
fn check_literal_pattern(pattern: Option<&IdedExpr>) -> Result<(), RuleError> {
    let Some(IdedExpr { expr: Expr::Literal(LiteralValue::String(pattern)), .. }) = pattern else {
        return Err(RuleError::DynamicPattern);
    };
    regex::Regex::new(pattern.inner()).map(|_| ()).map_err(|e| RuleError::BadPattern(e.to_string()))
}
