//! Output JSON values and the reference's trace file layout (spec §4.6).
//!
//! Objects are written as `{\n` + `  "key": value` lines joined by `,\n` + `\n}`, two
//! spaces per level; a list of scalars on one line as `[a, b, c]`; other lists one item
//! per line; `{}` / `[]` when empty. Scalars are written as Python's `json.dumps` writes
//! them (ensure_ascii strings, `repr(float)`); keys are written raw between quotes, as the
//! reference does (ours are fixed ASCII names).

use crate::pyjson::{escape_str, float_repr};

/// A JSON value as the trace writer emits it.
#[derive(Debug, Clone, PartialEq)]
pub enum J {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<J>),
    Obj(Vec<(&'static str, J)>),
    /// A scalar already in output form (written verbatim), e.g. read back from a trace.
    Raw(String),
    /// An object with keys read back from a trace (same layout as `Obj`).
    Map(Vec<(String, J)>),
    /// A list of ids, written like a list of `Int`s without a `J` per element.
    Ids(Vec<u64>),
}

impl J {
    fn is_scalar(&self) -> bool {
        !matches!(self, J::List(_) | J::Obj(_) | J::Map(_) | J::Ids(_))
    }

    /// A parsed trace value, scalars kept exactly as they were written.
    pub fn from_py(v: &crate::pyjson::Value) -> J {
        use crate::pyjson::Value as V;
        match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Number(n) => J::Raw(n.to_string()),
            V::Str(s) => J::Raw(format!("\"{s}\"")),
            V::Array(items) => J::List(items.iter().map(J::from_py).collect()),
            V::Object(members) => J::Map(
                members
                    .iter()
                    .map(|(k, v)| (crate::pyjson::unescape(k), J::from_py(v)))
                    .collect(),
            ),
        }
    }

    /// A `serde_json` value carried through unchanged (e.g. sub-agent counters).
    pub fn from_serde(v: &serde_json::Value) -> J {
        use serde_json::Value as V;
        match v {
            V::Null => J::Null,
            V::Bool(b) => J::Bool(*b),
            V::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => J::Int(i),
                (None, Some(f)) if n.is_u64() => J::Float(f),
                (None, Some(f)) => J::Float(f),
                _ => J::Null,
            },
            V::String(s) => J::Str(s.clone()),
            V::Array(items) => J::List(items.iter().map(J::from_serde).collect()),
            // Nested objects never occur in the fields we carry; keep them out of traces.
            V::Object(_) => J::Null,
        }
    }

    /// Serialize with the trace layout.
    pub fn to_layout(&self) -> String {
        let mut out = String::new();
        self.write_layout(&mut out, 0);
        out
    }

    fn write_scalar(&self, out: &mut String) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(true) => out.push_str("true"),
            J::Bool(false) => out.push_str("false"),
            J::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
            J::Float(f) => out.push_str(&float_repr(*f)),
            J::Str(s) => {
                out.push('"');
                escape_str(s, out);
                out.push('"');
            }
            J::Raw(r) => out.push_str(r),
            J::List(_) | J::Obj(_) | J::Map(_) | J::Ids(_) => {}
        }
    }

    fn write_layout(&self, out: &mut String, indent: usize) {
        match self {
            J::Obj(members) if members.is_empty() => out.push_str("{}"),
            J::Map(members) if members.is_empty() => out.push_str("{}"),
            J::Obj(_) | J::Map(_) => {
                let members: Vec<(&str, &J)> = match self {
                    J::Obj(m) => m.iter().map(|(k, v)| (*k, v)).collect(),
                    J::Map(m) => m.iter().map(|(k, v)| (k.as_str(), v)).collect(),
                    _ => Vec::new(),
                };
                out.push_str("{\n");
                for (i, (k, v)) in members.into_iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    push_indent(out, indent + 1);
                    out.push('"');
                    out.push_str(k);
                    out.push_str("\": ");
                    v.write_layout(out, indent + 1);
                }
                out.push('\n');
                push_indent(out, indent);
                out.push('}');
            }
            J::Ids(ids) => {
                out.push('[');
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(itoa::Buffer::new().format(*id));
                }
                out.push(']');
            }
            J::List(items) if items.is_empty() => out.push_str("[]"),
            J::List(items) if items.iter().all(J::is_scalar) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    item.write_scalar(out);
                }
                out.push(']');
            }
            J::List(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(",\n");
                    }
                    push_indent(out, indent + 1);
                    item.write_layout(out, indent + 1);
                }
                out.push('\n');
                push_indent(out, indent);
                out.push(']');
            }
            scalar => scalar.write_scalar(out),
        }
    }
}

fn push_indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_reference_shape() {
        let v = J::Obj(vec![
            ("id", J::Str("ab\u{e9}".into())),
            ("ids", J::List(vec![J::Int(1), J::Int(2)])),
            ("empty", J::List(vec![])),
            ("o", J::Obj(vec![])),
            ("reqs", J::List(vec![J::Obj(vec![("t", J::Float(0.0))])])),
        ]);
        assert_eq!(
            v.to_layout(),
            "{\n  \"id\": \"ab\\u00e9\",\n  \"ids\": [1, 2],\n  \"empty\": [],\n  \"o\": {},\n  \"reqs\": [\n    {\n      \"t\": 0.0\n    }\n  ]\n}"
        );
    }
}
