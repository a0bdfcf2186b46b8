//! The filter language's parser and checker. Every error names where in the
//! filter it is: `$and[1].price: $gt needs a number`.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::{IdOp, Node, Op, Range, Scalar};
use crate::error::{Error, Result};

/// Longest filter text accepted.
const MAX_FILTER_BYTES: usize = 16 << 20;
/// Deepest nesting of filter objects accepted (the top level is 1).
const MAX_DEPTH: usize = 32;

fn bad(path: &str, why: impl std::fmt::Display) -> Error {
    if path.is_empty() {
        Error::InvalidArgument(format!("filter: {why}"))
    } else {
        Error::InvalidArgument(format!("filter: {path}: {why}"))
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub(super) fn parse(json: &str) -> Result<Node> {
    if json.len() > MAX_FILTER_BYTES {
        return Err(bad(
            "",
            format_args!(
                "filter text is {} bytes, more than {MAX_FILTER_BYTES}",
                json.len()
            ),
        ));
    }
    let v: Value =
        serde_json::from_str(json).map_err(|e| bad("", format_args!("invalid JSON: {e}")))?;
    filter(&v, "", 1)
}

fn filter(v: &Value, path: &str, depth: usize) -> Result<Node> {
    if depth > MAX_DEPTH {
        return Err(bad(
            path,
            format_args!("filters nest deeper than {MAX_DEPTH}"),
        ));
    }
    let Value::Object(obj) = v else {
        return Err(bad(
            path,
            format_args!("a filter is a JSON object, not {}", kind(v)),
        ));
    };
    let mut all = Vec::with_capacity(obj.len());
    for (key, val) in obj {
        let here = join(path, key);
        all.push(match key.as_str() {
            "$and" | "$or" => {
                let Value::Array(items) = val else {
                    return Err(bad(&here, "needs an array of filters"));
                };
                if items.is_empty() {
                    return Err(bad(&here, "needs at least one filter"));
                }
                let mut subs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    subs.push(filter(item, &format!("{here}[{i}]"), depth + 1)?);
                }
                if key == "$and" {
                    Node::And(subs)
                } else {
                    Node::Or(subs)
                }
            }
            "$not" => Node::Not(Box::new(filter(val, &here, depth + 1)?)),
            "$id" => Node::Id(id_condition(val, &here)?),
            k if k.starts_with('$') => {
                return Err(bad(
                    &here,
                    "unknown operator (filter keys starting with $ are $and, $or, $not, $id)",
                ))
            }
            k => {
                if k.is_empty() || k.split('.').any(str::is_empty) {
                    return Err(bad(
                        &here,
                        "a field name is one or more non-empty keys joined by dots",
                    ));
                }
                Node::Field {
                    path: k.split('.').map(Arc::from).collect(),
                    ops: condition(val, &here)?,
                }
            }
        });
    }
    Ok(if all.len() == 1 {
        all.pop().unwrap_or(Node::And(Vec::new()))
    } else {
        Node::And(all)
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn scalar(v: &Value, path: &str, op: &str) -> Result<Scalar> {
    match v {
        Value::Number(n) if n.as_f64().is_none_or(|x| !x.is_finite()) => Err(bad(
            path,
            format_args!("{op}: the number {n} does not fit a 64-bit float"),
        )),
        _ => Scalar::of(v).ok_or_else(|| {
            bad(
                path,
                format_args!(
                    "{op} needs a scalar (string, number, bool or null), not {}",
                    kind(v)
                ),
            )
        }),
    }
}

fn scalars(v: &Value, path: &str, op: &str) -> Result<Vec<Scalar>> {
    array_of(v, path, op, "needs an array of scalars", scalar)
}

/// The items of an array operand, each read by `item` under the name
/// `op[i]`; anything but an array is refused with `{op} {need}`.
fn array_of<T>(
    v: &Value,
    path: &str,
    op: &str,
    need: &str,
    item: fn(&Value, &str, &str) -> Result<T>,
) -> Result<Vec<T>> {
    let Value::Array(items) = v else {
        return Err(bad(path, format_args!("{op} {need}, not {}", kind(v))));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| item(x, path, &format!("{op}[{i}]")))
        .collect()
}

fn number(v: &Value, path: &str, op: &str) -> Result<f64> {
    match v.as_f64().filter(|x| x.is_finite() && v.is_number()) {
        Some(x) => Ok(x),
        None => Err(bad(
            path,
            format_args!("{op} needs a number, not {}", kind(v)),
        )),
    }
}

/// The operators of a field condition: a scalar is `$eq`.
fn condition(v: &Value, path: &str) -> Result<Vec<Op>> {
    let obj: &Map<String, Value> = match v {
        Value::Object(o) => o,
        Value::Array(_) => {
            return Err(bad(
                path,
                "a condition is a scalar or an object of operators, not an array (use $in)",
            ))
        }
        _ => return Ok(vec![Op::Eq(scalar(v, path, "$eq")?)]),
    };
    operators(obj, path, |o, x| {
        Ok(match o {
            "$eq" => Op::Eq(scalar(x, path, o)?),
            "$ne" => Op::Ne(scalar(x, path, o)?),
            "$in" => Op::In(scalars(x, path, o)?),
            "$nin" => Op::Nin(scalars(x, path, o)?),
            "$gt" => Op::Range(Range::Gt(number(x, path, o)?)),
            "$gte" => Op::Range(Range::Gte(number(x, path, o)?)),
            "$lt" => Op::Range(Range::Lt(number(x, path, o)?)),
            "$lte" => Op::Range(Range::Lte(number(x, path, o)?)),
            "$exists" => match x {
                Value::Bool(b) => Op::Exists(*b),
                _ => {
                    return Err(bad(
                        path,
                        format_args!("$exists needs a bool, not {}", kind(x)),
                    ))
                }
            },
            _ => {
                return Err(bad(
                    path,
                    format_args!(
                        "unknown operator {o:?} (a condition takes $eq, $ne, $gt, $gte, \
                         $lt, $lte, $in, $nin, $exists)"
                    ),
                ))
            }
        })
    })
}

/// Reads every operator of a condition object with `op` (name, operand);
/// an empty object is refused.
fn operators<T>(
    obj: &Map<String, Value>,
    path: &str,
    mut op: impl FnMut(&str, &Value) -> Result<T>,
) -> Result<Vec<T>> {
    if obj.is_empty() {
        return Err(bad(path, "a condition object needs at least one operator"));
    }
    obj.iter().map(|(name, x)| op(name.as_str(), x)).collect()
}

fn id_string(v: &Value, path: &str, op: &str) -> Result<Arc<str>> {
    match v {
        Value::String(s) => Ok(Arc::from(s.as_str())),
        _ => Err(bad(
            path,
            format_args!("{op} on $id needs a string, not {}", kind(v)),
        )),
    }
}

fn id_strings(v: &Value, path: &str, op: &str) -> Result<Vec<Arc<str>>> {
    array_of(v, path, op, "on $id needs an array of strings", id_string)
}

fn id_condition(v: &Value, path: &str) -> Result<Vec<IdOp>> {
    let obj = match v {
        Value::Object(o) => o,
        Value::String(s) => return Ok(vec![IdOp::Eq(Arc::from(s.as_str()))]),
        _ => {
            return Err(bad(
                path,
                format_args!(
                    "$id takes a string or an object of $eq, $ne, $in, $nin, not {}",
                    kind(v)
                ),
            ))
        }
    };
    operators(obj, path, |o, x| {
        Ok(match o {
            "$eq" => IdOp::Eq(id_string(x, path, o)?),
            "$ne" => IdOp::Ne(id_string(x, path, o)?),
            "$in" => IdOp::In(id_strings(x, path, o)?),
            "$nin" => IdOp::Nin(id_strings(x, path, o)?),
            _ => {
                return Err(bad(
                    path,
                    format_args!("unknown operator {o:?} on $id (it takes $eq, $ne, $in, $nin)"),
                ))
            }
        })
    })
}
