//! Filters as data (docs/filters.md): a JSON where-filter is parsed once into
//! an immutable [`Filter`], then evaluated inside the index against its
//! attribute index ([`attrs::AttrIndex`]) into a [`Bitset`] of matching live
//! slots with an exact count. No user code runs per candidate.

pub mod attrs;
mod bitset;
mod parse;
mod search;

pub use attrs::AttrIndex;
pub use bitset::Bitset;

use std::sync::Arc;

use crate::error::Result;

/// A JSON scalar as filters compare it: numbers by value (as f64, so `1`
/// equals `1.0`), strings by bytes, no conversion between types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scalar {
    Null,
    Bool(bool),
    /// The bits of a finite f64 with -0.0 folded into 0.0, so equal numbers
    /// have equal keys.
    Num(u64),
    Str(Arc<str>),
}

impl Scalar {
    pub(crate) fn num(x: f64) -> Scalar {
        Scalar::Num(if x == 0.0 {
            0f64.to_bits()
        } else {
            x.to_bits()
        })
    }

    /// The scalar of a JSON value; None for arrays and objects (and numbers
    /// that do not fit an f64, which serde_json never produces).
    pub(crate) fn of(v: &serde_json::Value) -> Option<Scalar> {
        use serde_json::Value;
        Some(match v {
            Value::Null => Scalar::Null,
            Value::Bool(b) => Scalar::Bool(*b),
            Value::Number(n) => Scalar::num(n.as_f64().filter(|x| x.is_finite())?),
            Value::String(s) => Scalar::Str(Arc::from(s.as_str())),
            Value::Array(_) | Value::Object(_) => return None,
        })
    }
}

/// A numeric bound of a range operator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Range {
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

/// One operator of a field condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Op {
    Eq(Scalar),
    Ne(Scalar),
    In(Vec<Scalar>),
    Nin(Vec<Scalar>),
    Range(Range),
    Exists(bool),
}

/// One operator of an `$id` condition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum IdOp {
    Eq(Arc<str>),
    Ne(Arc<str>),
    In(Vec<Arc<str>>),
    Nin(Vec<Arc<str>>),
}

/// A parsed filter. An empty `And` matches every live item.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// Every operator holds for the value at `path` (a metadata key split
    /// at dots).
    Field {
        path: Vec<Arc<str>>,
        ops: Vec<Op>,
    },
    Id(Vec<IdOp>),
}

/// A compiled filter: immutable, `Send + Sync`, reusable by any number of
/// searches on any index at once.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub(crate) root: Node,
    /// The last evaluation (search.rs): a filter reused for many searches
    /// of an unchanged index is evaluated once.
    pub(crate) last: EvalCache,
}

/// The set of slots a filter matched in one state of one index (`stamp`,
/// see `Inner::stamp`), and how many.
#[derive(Default)]
pub(crate) struct EvalCache(std::sync::Mutex<Option<(u64, Arc<Bitset>, usize)>>);

impl EvalCache {
    pub(crate) fn get(&self, stamp: u64) -> Option<(Arc<Bitset>, usize)> {
        let last = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &*last {
            Some((s, set, n)) if *s == stamp => Some((set.clone(), *n)),
            _ => None,
        }
    }

    pub(crate) fn put(&self, stamp: u64, set: Arc<Bitset>, n: usize) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((stamp, set, n));
    }
}

/// A copy starts with nothing cached; the cache never makes two filters
/// differ.
impl Clone for EvalCache {
    fn clone(&self) -> Self {
        EvalCache::default()
    }
}

impl PartialEq for EvalCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for EvalCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EvalCache")
    }
}

impl Filter {
    /// Parses a filter (docs/filters.md). A bad filter is
    /// `Error::InvalidArgument` whose message names the path of the problem,
    /// e.g. `$and[1].price: $gt needs a number`.
    pub fn new(json: &str) -> Result<Filter> {
        parse::parse(json).map(|root| Filter {
            root,
            last: EvalCache::default(),
        })
    }

    /// The filter that matches every item (`{}`).
    pub fn all() -> Filter {
        Filter {
            root: Node::And(Vec::new()),
            last: EvalCache::default(),
        }
    }
}

impl std::str::FromStr for Filter {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Filter> {
        Filter::new(s)
    }
}
