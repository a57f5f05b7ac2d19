//! A tiny JSON writer for the three byte-level dialects a capture contains (spec §2, §3).
//!
//! serde_json cannot be used for the capture because the bytes matter to the tools that
//! read it back (they preserve stored order and escaping):
//! - [`Dialect::Go`]: Go's `encoding/json` (≤ 1.21) as the proxy re-marshals request bodies
//!   and envelopes: `<` `>` `&` as `\u003c` `\u003e` `\u0026`, U+2028/U+2029 escaped, every
//!   control character as `\u00XX` except `\n` `\r` `\t` (so `\b` and `\f` become
//!   `\u0008` / `\u000c`), lowercase hex.
//! - [`Dialect::Api`]: an Anthropic API reply stored through Go's `json.RawMessage`
//!   (compacted with HTML escaping): short escapes for `\b` `\f` `\n` `\r` `\t`, HTML characters
//!   and U+2028/U+2029 escaped.
//! - [`Dialect::Js`]: `JSON.stringify` as Claude Code writes session logs and as the API
//!   sends SSE payloads: short escapes, other control characters as `\u00xx`, nothing else.

/// Which program's escaping rules to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Go `encoding/json` Marshal (Go ≤ 1.21).
    Go,
    /// API bytes after Go's `compact` with HTML escaping.
    Api,
    /// JavaScript `JSON.stringify`.
    Js,
}

/// 0 = copy as is; 1 = needs escaping.
const fn table(html: bool) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = 1;
        i += 1;
    }
    t[b'"' as usize] = 1;
    t[b'\\' as usize] = 1;
    if html {
        t[b'<' as usize] = 1;
        t[b'>' as usize] = 1;
        t[b'&' as usize] = 1;
        // First byte of U+2028 / U+2029 (E2 80 A8 / E2 80 A9); checked precisely below.
        t[0xE2] = 1;
    }
    t
}

static HTML_TABLE: [u8; 256] = table(true);
static PLAIN_TABLE: [u8; 256] = table(false);
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Append `s` as a JSON string literal (with quotes) in dialect `d`.
pub fn write_str(out: &mut String, s: &str, d: Dialect) {
    out.push('"');
    write_str_inner(out, s, d);
    out.push('"');
}

/// Append the escaped contents of `s` without the surrounding quotes.
pub fn write_str_inner(out: &mut String, s: &str, d: Dialect) {
    let (tab, short_bf) = match d {
        Dialect::Go => (&HTML_TABLE, false),
        Dialect::Api => (&HTML_TABLE, true),
        Dialect::Js => (&PLAIN_TABLE, true),
    };
    let b = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if tab[c as usize] == 0 {
            i += 1;
            continue;
        }
        let mut width = 1;
        let esc: &str = match c {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 if short_bf => "\\b",
            0x0c if short_bf => "\\f",
            b'<' => "\\u003c",
            b'>' => "\\u003e",
            b'&' => "\\u0026",
            0xE2 => {
                if i + 2 < b.len() && b[i + 1] == 0x80 && (b[i + 2] == 0xA8 || b[i + 2] == 0xA9) {
                    width = 3;
                    if b[i + 2] == 0xA8 {
                        "\\u2028"
                    } else {
                        "\\u2029"
                    }
                } else {
                    i += 1;
                    continue;
                }
            }
            _ => "",
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            // A control character without a short form.
            out.push_str("\\u00");
            out.push(HEX[(c >> 4) as usize] as char);
            out.push(HEX[(c & 15) as usize] as char);
        } else {
            out.push_str(esc);
        }
        i += width;
        start = i;
    }
    out.push_str(&s[start..]);
}

/// Convenience: the escaped literal as a new string.
pub fn quoted(s: &str, d: Dialect) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    write_str(&mut o, s, d);
    o
}

/// A small JSON value used for free-form maps (tool inputs, input schemas, toolUseResult).
/// Objects keep insertion order; the Go writer sorts their keys like a Go map.
#[derive(Clone, Debug, PartialEq)]
pub enum J {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A list.
    Arr(Vec<J>),
    /// An object, keys in insertion order.
    Obj(Vec<(String, J)>),
}

impl J {
    /// Build an object from `(key, value)` pairs.
    pub fn obj<const N: usize>(pairs: [(&str, J); N]) -> J {
        J::Obj(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }
    /// A string value.
    pub fn s(v: impl Into<String>) -> J {
        J::Str(v.into())
    }
    /// Serialize in dialect `d`; Go sorts object keys (free-form Go maps are sorted).
    pub fn write(&self, out: &mut String, d: Dialect) {
        match self {
            J::Null => out.push_str("null"),
            J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            J::Int(n) => out.push_str(&n.to_string()),
            J::Str(s) => write_str(out, s, d),
            J::Arr(v) => {
                // Go marshals an empty (non-nil) slice inside a map as [] too.
                out.push('[');
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    x.write(out, d);
                }
                out.push(']');
            }
            J::Obj(kv) => {
                out.push('{');
                if d == Dialect::Go {
                    let mut refs: Vec<&(String, J)> = kv.iter().collect();
                    refs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                    for (i, (k, v)) in refs.into_iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_str(out, k, d);
                        out.push(':');
                        v.write(out, d);
                    }
                } else {
                    for (i, (k, v)) in kv.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        write_str(out, k, d);
                        out.push(':');
                        v.write(out, d);
                    }
                }
                out.push('}');
            }
        }
    }
    /// Serialized text in dialect `d`.
    pub fn to_string_in(&self, d: Dialect) -> String {
        let mut o = String::new();
        self.write(&mut o, d);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_html_and_controls() {
        let s = "a<b>&c\u{8}\u{c}\n\t\r\u{1}\u{1b}\u{7f}é日本語🚀\u{2028}\u{2029}\"\\/";
        assert_eq!(
            quoted(s, Dialect::Go),
            "\"a\\u003cb\\u003e\\u0026c\\u0008\\u000c\\n\\t\\r\\u0001\\u001b\u{7f}é日本語🚀\\u2028\\u2029\\\"\\\\/\""
        );
        assert_eq!(
            quoted(s, Dialect::Api),
            "\"a\\u003cb\\u003e\\u0026c\\b\\f\\n\\t\\r\\u0001\\u001b\u{7f}é日本語🚀\\u2028\\u2029\\\"\\\\/\""
        );
        assert_eq!(
            quoted(s, Dialect::Js),
            "\"a<b>&c\\b\\f\\n\\t\\r\\u0001\\u001b\u{7f}é日本語🚀\u{2028}\u{2029}\\\"\\\\/\""
        );
    }

    #[test]
    fn go_sorts_map_keys() {
        let v = J::obj([("z", J::Int(1)), ("a", J::Null), ("B", J::Bool(true))]);
        assert_eq!(v.to_string_in(Dialect::Go), r#"{"B":true,"a":null,"z":1}"#);
        assert_eq!(v.to_string_in(Dialect::Js), r#"{"z":1,"a":null,"B":true}"#);
    }

    #[test]
    fn roundtrips_through_serde() {
        let s = "x\u{0}y<|endoftext|>\u{8}\u{c} é \u{2028}";
        for d in [Dialect::Go, Dialect::Api, Dialect::Js] {
            let back: String = serde_json::from_str(&quoted(s, d)).unwrap();
            assert_eq!(back, s);
        }
    }
}
