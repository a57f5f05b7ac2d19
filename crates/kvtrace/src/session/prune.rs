//! One session-log line parsed into a [`Value`] holding only the members the tools read.
//!
//! Most of a session file's bytes are tool results, file contents and tool inputs that no
//! tool looks at. Building them into a full [`Value`] (strings copied, maps allocated) was
//! most of the cost of reading a log. [`parse`] walks the same JSON with `serde_json` but
//! builds only the members named in [`ENTRY`]; the others are checked and dropped.
//!
//! It gives what the full parse gives, restricted to those members: where it cannot be sure
//! (anything `serde_json` rejects — a lone surrogate escape, `NaN`, nesting past its depth
//! limit, a line that is not an object) it returns `None` and the caller falls back to
//! the full, CPython-compatible parse. A member kept whole is deserialized as
//! `serde_json` deserializes a [`Value`]; a member spec'd as an object but holding
//! something else is kept whole, so every accessor sees the same value either way.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Which parts of a value to build.
#[derive(Debug)]
pub enum Keep {
    /// The whole value.
    All,
    /// An object's listed members (each by its own spec); any other value whole.
    Members(&'static [(&'static str, Keep)]),
    /// An array's elements (each by the spec); any other value whole.
    Elements(&'static Keep),
}

/// What [`crate::session::SessionLog`] reads of an entry.
pub static ENTRY: Keep = Keep::Members(&[
    ("type", Keep::All),
    ("isSidechain", Keep::All),
    ("uuid", Keep::All),
    ("parentUuid", Keep::All),
    ("timestamp", Keep::All),
    ("message", MESSAGE),
    ("toolUseResult", TOOL_USE_RESULT),
]);

const MESSAGE: Keep = Keep::Members(&[
    ("id", Keep::All),
    ("model", Keep::All),
    ("content", Keep::Elements(&BLOCK)),
]);

const BLOCK: Keep = Keep::Members(&[
    ("type", Keep::All),
    ("name", Keep::All),
    ("id", Keep::All),
    ("text", Keep::All),
    ("tool_use_id", Keep::All),
    (
        "input",
        Keep::Members(&[("prompt", Keep::All), ("subagent_type", Keep::All)]),
    ),
]);

const TOOL_USE_RESULT: Keep = Keep::Members(&[
    ("agentId", Keep::All),
    ("totalDurationMs", Keep::All),
    ("totalTokens", Keep::All),
    ("totalToolUseCount", Keep::All),
    ("status", Keep::All),
]);

/// `line` (one JSON object) with only the members of `keep`; `None` when `serde_json`
/// rejects it or it is not an object (the caller then parses it in full).
pub fn parse(line: &str, keep: &'static Keep) -> Option<Value> {
    if !line.starts_with('{') {
        return None;
    }
    let mut de = serde_json::Deserializer::from_str(line);
    let v = Prune(keep).deserialize(&mut de).ok()?;
    de.end().ok()?;
    v.is_object().then_some(v)
}

/// `full` restricted to `keep`: what [`parse`] builds from its text.
#[cfg(test)]
pub(crate) fn restrict(full: &Value, keep: &Keep) -> Value {
    match (keep, full) {
        (Keep::Members(members), Value::Object(m)) => Value::Object(
            m.iter()
                .filter_map(|(k, v)| {
                    let (_, spec) = members.iter().find(|(name, _)| name == k)?;
                    Some((k.clone(), restrict(v, spec)))
                })
                .collect(),
        ),
        (Keep::Elements(spec), Value::Array(items)) => {
            Value::Array(items.iter().map(|v| restrict(v, spec)).collect())
        }
        _ => full.clone(),
    }
}

struct Prune(&'static Keep);

impl<'de> DeserializeSeed<'de> for Prune {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.0 {
            Keep::All => Value::deserialize(d),
            keep => d.deserialize_any(PruneVisitor(keep)),
        }
    }
}

struct PruneVisitor(&'static Keep);

impl<'de> Visitor<'de> for PruneVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Prune(self.0).deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        match self.0 {
            Keep::Elements(spec) => {
                while let Some(v) = seq.next_element_seed(Prune(spec))? {
                    items.push(v);
                }
            }
            _ => {
                while let Some(v) = seq.next_element::<Value>()? {
                    items.push(v);
                }
            }
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        match self.0 {
            Keep::Members(members) => {
                while let Some(Key(key)) = map.next_key::<Key>()? {
                    match members.iter().find(|(name, _)| *name == key) {
                        Some((_, spec)) => {
                            let v = map.next_value_seed(Prune(spec))?;
                            out.insert(key.into_owned(), v);
                        }
                        None => map.next_value_seed(Skip)?,
                    }
                }
            }
            _ => {
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    out.insert(k, v);
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// An object key, borrowed from the line when it has no escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A value checked as the full parse checks it (strings decoded, nesting counted against
/// `serde_json`'s limit) and dropped.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key::<IgnoredAny>()?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}
