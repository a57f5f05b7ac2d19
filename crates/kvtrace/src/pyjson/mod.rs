//! CPython-compatible JSON: `json.dumps(json.loads(text), separators=(',', ':'))` (spec §4.2).
//!
//! Block hashes depend on the exact bytes the reference serializes, so this module
//! reproduces CPython's output byte for byte: object keys in stored order (a repeated key
//! keeps its first position and its last value), `ensure_ascii` escaping with lowercase
//! hex, integers of any size, floats as `repr(float)`, and the `NaN`/`Infinity` literals
//! Python accepts. Strings are kept in their *escaped output form* (always ASCII), so
//! lone surrogates, which Rust strings cannot hold, survive exactly as CPython writes them.
//!
//! The parser is iterative-free recursive descent with an explicit depth limit, so a
//! hostile 10,000-level document is an error, never a stack overflow (CPython itself
//! raises `RecursionError` on such input).

use std::fmt::Write as _;

mod transcode;
pub(crate) use transcode::split_body_with;
pub use transcode::{
    array_elements, collapse_single_text, first_element, prefix_key, prefix_keys, split_body,
    transcode, transcode_with, ArrayTranscoder, Body, KnownMembers, TranscodeError,
};

/// How content is put into the form that gets hashed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Form {
    /// Canonical content: a `content` list holding exactly one `{"type":"text","text":s}`
    /// block is written as the string `s` (the API reads both forms as the same prompt,
    /// and Claude Code sends one message in one form and then the other).
    #[default]
    Canonical,
    /// The stored form, as the reference hashes it (`--raw-content`).
    Raw,
}

use thiserror::Error;

/// Deepest nesting accepted. CPython's default recursion limit (1000) rejects deeper
/// documents too, so nothing the reference could process is lost.
pub const MAX_DEPTH: usize = 1000;

/// Why a document could not be read the way CPython's `json.loads` reads it.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum JsonError {
    #[error("invalid JSON at byte {0}: {1}")]
    Syntax(usize, &'static str),
    #[error("JSON nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

/// A parsed JSON value whose scalars are already in CPython's output form.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number exactly as CPython writes it back (`1`, `-325.0`, `1e-05`, `Infinity`).
    Number(Box<str>),
    /// The string's escaped body, without the surrounding quotes (always ASCII).
    Str(Box<str>),
    Array(Vec<Value>),
    /// Members in first-seen key order; keys are escaped like strings.
    Object(Vec<(Box<str>, Value)>),
}

impl Value {
    /// Member `key` of an object (the escaped form equals the raw one for plain ASCII keys).
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Whether the value contributes nothing as a section: Python falsiness, as the
    /// reference tests `if tools:` (§4.2: missing, null, `[]`, `""`; also `{}`, `0`, `false`).
    pub fn is_empty_section(&self) -> bool {
        match self {
            Value::Null | Value::Bool(false) => true,
            Value::Array(items) => items.is_empty(),
            Value::Object(members) => members.is_empty(),
            Value::Str(s) => s.is_empty(),
            Value::Number(n) => n.parse::<f64>().is_ok_and(|x| x == 0.0),
            Value::Bool(true) => false,
        }
    }

    /// The text of a string value, unescaped (lone surrogates become U+FFFD).
    pub fn as_string(&self) -> Option<String> {
        match self {
            Value::Str(s) => Some(unescape(s)),
            _ => None,
        }
    }

    /// Recursively delete every object member named `cache_control` or `signature`.
    pub fn normalize(&mut self) {
        match self {
            Value::Array(items) => items.iter_mut().for_each(Value::normalize),
            Value::Object(members) => {
                members.retain(|(k, _)| !is_volatile_key(k));
                members.iter_mut().for_each(|(_, v)| v.normalize());
            }
            _ => {}
        }
    }

    /// Canonical content, after [`Value::normalize`]: every member named `content`, at any
    /// depth, whose value is a one-text-block list becomes that block's string.
    pub fn canonicalize(&mut self) {
        match self {
            Value::Array(items) => items.iter_mut().for_each(Value::canonicalize),
            Value::Object(members) => {
                for (k, v) in members.iter_mut() {
                    v.canonicalize();
                    if &**k == "content" {
                        v.collapse_single_text();
                    }
                }
            }
            _ => {}
        }
    }

    /// `[{"type":"text","text":s}]` (those two keys exactly, in either order) → `s`.
    pub fn collapse_single_text(&mut self) {
        let Value::Array(items) = self else { return };
        let [Value::Object(members)] = items.as_slice() else {
            return;
        };
        if members.len() != 2
            || members
                .iter()
                .any(|(k, _)| &**k != "type" && &**k != "text")
        {
            return;
        }
        let is_text_type =
            matches!(self_get(members, "type"), Some(Value::Str(t)) if &**t == "text");
        if let (true, Some(Value::Str(text))) = (is_text_type, self_get(members, "text")) {
            *self = Value::Str(text.clone());
        }
    }

    /// Append the compact CPython serialization to `out`.
    pub fn write_to(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(n) => out.push_str(n),
            Value::Str(s) => {
                out.push('"');
                out.push_str(s);
                out.push('"');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write_to(out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, v)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push('"');
                    out.push_str(k);
                    out.push_str("\":");
                    v.write_to(out);
                }
                out.push('}');
            }
        }
    }

    /// The compact CPython serialization as a new string.
    pub fn to_python(&self) -> String {
        let mut out = String::new();
        self.write_to(&mut out);
        out
    }
}

fn self_get<'v>(members: &'v [(Box<str>, Value)], key: &str) -> Option<&'v Value> {
    members.iter().find(|(k, _)| &**k == key).map(|(_, v)| v)
}

/// Keys the reference strips before hashing: they move between otherwise equal requests.
pub(crate) fn is_volatile_key(k: &str) -> bool {
    k == "cache_control" || k == "signature"
}

/// Parse one JSON document (surrounding whitespace allowed) the way `json.loads` does.
pub fn parse(text: &str) -> Result<Value, JsonError> {
    let mut p = Lexer::new(text);
    p.skip_ws();
    let v = p.value(0)?;
    p.finish()?;
    Ok(v)
}

/// Read a document the way CPython's `json.loads` does, as a [`serde_json::Value`]: what
/// serde_json reads is taken as it reads it; what only CPython reads (lone surrogate
/// escapes, which Claude Code before 2.1.132 wrote when it cut text inside an emoji;
/// `NaN`, `Infinity`, numbers beyond f64) goes through this module's parser. A lone
/// surrogate becomes U+FFFD and a non-finite number `null`.
pub fn to_serde(text: &str) -> Option<serde_json::Value> {
    if let Ok(v) = serde_json::from_str(text) {
        return Some(v);
    }
    parse(text).ok().map(|v| v.to_serde())
}

impl Value {
    /// This value as a [`serde_json::Value`] (see [`to_serde`]).
    pub fn to_serde(&self) -> serde_json::Value {
        use serde_json::Value as S;
        match self {
            Value::Null => S::Null,
            Value::Bool(b) => S::Bool(*b),
            Value::Number(n) => number_to_serde(n),
            Value::Str(s) => S::String(unescape(s)),
            Value::Array(items) => S::Array(items.iter().map(Value::to_serde).collect()),
            Value::Object(members) => S::Object(
                members
                    .iter()
                    .map(|(k, v)| (unescape(k), v.to_serde()))
                    .collect(),
            ),
        }
    }
}

fn number_to_serde(n: &str) -> serde_json::Value {
    let integral = !n.contains(['.', 'e', 'E']) && !n.contains("Infinity") && n != "NaN";
    if integral {
        if let Ok(i) = n.parse::<i64>() {
            return i.into();
        }
        if let Ok(u) = n.parse::<u64>() {
            return u.into();
        }
    }
    n.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

/// `json.dumps(json.loads(text), separators=(',', ':'))`.
pub fn reserialize(text: &str) -> Result<String, JsonError> {
    Ok(parse(text)?.to_python())
}

/// A cursor over JSON text. Tokens are written straight into CPython's output form; the
/// tree parser below and the streaming [`transcode`] share it.
pub(crate) struct Lexer<'a> {
    pub(crate) text: &'a str,
    pub(crate) s: &'a [u8],
    pub(crate) i: usize,
}

/// Bytes copied unchanged into an escaped string: printable ASCII but `"` and `\`.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        t[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    t
};

/// End of the run of [`PLAIN`] bytes starting at `i`, eight bytes at a time.
#[inline]
fn plain_run_end(s: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // Bytes b with b < n have their high bit set in (x - n*LO) & !x & HI (no b >= 0x80).
    let has_less = |x: u64, n: u64| x.wrapping_sub(n * LO) & !x & HI;
    let has_byte = |x: u64, b: u64| has_less(x ^ (b * LO), 1);
    while i + 8 <= s.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(w);
        // Any byte >= 0x7f, < 0x20, '"' or '\\' ends the run.
        let special = (x & HI)
            | has_less(x, 0x20)
            | has_byte(x, 0x22)
            | has_byte(x, 0x5c)
            | has_byte(x, 0x7f);
        if special != 0 {
            // The lowest flagged byte is exact (a borrow only flags bytes above a true
            // one), so it is the first special byte.
            return i + (special.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < s.len() && PLAIN[s[i] as usize] {
        i += 1;
    }
    i
}

impl<'a> Lexer<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Lexer {
            text,
            s: text.as_bytes(),
            i: 0,
        }
    }

    pub(crate) fn err(&self, what: &'static str) -> JsonError {
        JsonError::Syntax(self.i, what)
    }

    pub(crate) fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    /// Only white space may follow the document.
    pub(crate) fn finish(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.i != self.s.len() {
            return Err(self.err("extra data"));
        }
        Ok(())
    }

    pub(crate) fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    pub(crate) fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    /// A literal (`true`, `NaN`, …) at the cursor, written as CPython writes it back.
    pub(crate) fn literal(&mut self) -> Option<&'static str> {
        ["true", "false", "null", "NaN", "Infinity", "-Infinity"]
            .into_iter()
            .find(|&lit| self.eat(lit))
    }

    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        if depth > MAX_DEPTH {
            return Err(JsonError::TooDeep);
        }
        match self.peek() {
            None => Err(self.err("unexpected end")),
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => {
                let mut s = String::new();
                self.string_into(&mut s)?;
                Ok(Value::Str(s.into()))
            }
            Some(b'-' | b'0'..=b'9') if !self.s[self.i..].starts_with(b"-Infinity") => {
                let mut s = String::new();
                self.number_into(&mut s)?;
                Ok(Value::Number(s.into()))
            }
            Some(_) => match self.literal() {
                Some("true") => Ok(Value::Bool(true)),
                Some("false") => Ok(Value::Bool(false)),
                Some("null") => Ok(Value::Null),
                Some(lit) => Ok(Value::Number(lit.into())),
                None => Err(self.err("unexpected character")),
            },
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.i += 1;
        let mut members: Vec<(Box<str>, Value)> = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(self.err("expected a key"));
            }
            let mut key = String::new();
            self.string_into(&mut key)?;
            self.colon()?;
            let v = self.value(depth + 1)?;
            // dict semantics: a repeated key keeps its first position and takes the last value.
            match members.iter_mut().find(|(k, _)| **k == *key) {
                Some(slot) => slot.1 = v,
                None => members.push((key.into(), v)),
            }
            if self.next_member(b'}')? {
                return Ok(Value::Object(members));
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.i += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth + 1)?);
            if self.next_member(b']')? {
                return Ok(Value::Array(items));
            }
        }
    }

    /// After a key: white space, `:`, white space.
    pub(crate) fn colon(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() != Some(b':') {
            return Err(self.err("expected ':'"));
        }
        self.i += 1;
        self.skip_ws();
        Ok(())
    }

    /// After a member: `,` (returns false) or the closing bracket (returns true).
    pub(crate) fn next_member(&mut self, close: u8) -> Result<bool, JsonError> {
        self.skip_ws();
        match self.peek() {
            Some(b',') => {
                self.i += 1;
                Ok(false)
            }
            Some(c) if c == close => {
                self.i += 1;
                Ok(true)
            }
            _ => Err(self.err("expected ',' or a closing bracket")),
        }
    }

    /// A number literal, appended in CPython's output form.
    pub(crate) fn number_into(&mut self, out: &mut String) -> Result<(), JsonError> {
        let start = self.i;
        let s = self.s;
        let mut i = self.i;
        if s[i] == b'-' {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while let Some(b'0'..=b'9') = s.get(i) {
                    i += 1;
                }
            }
            _ => return Err(JsonError::Syntax(i, "invalid number")),
        }
        let mut is_float = false;
        if s.get(i) == Some(&b'.') && matches!(s.get(i + 1), Some(b'0'..=b'9')) {
            is_float = true;
            i += 1;
            while let Some(b'0'..=b'9') = s.get(i) {
                i += 1;
            }
        }
        if let Some(b'e' | b'E') = s.get(i) {
            let mut j = i + 1;
            if let Some(b'+' | b'-') = s.get(j) {
                j += 1;
            }
            if matches!(s.get(j), Some(b'0'..=b'9')) {
                is_float = true;
                i = j;
                while let Some(b'0'..=b'9') = s.get(i) {
                    i += 1;
                }
            }
        }
        self.i = i;
        // ASCII digits and signs: always a char boundary.
        let lit = &self.text[start..i];
        if is_float {
            let x: f64 = lit.parse().map_err(|_| self.err("invalid number"))?;
            out.push_str(&float_repr(x));
        } else if lit == "-0" {
            out.push('0');
        } else {
            out.push_str(lit);
        }
        Ok(())
    }

    /// A string literal, its CPython `ensure_ascii` escaped body appended (no quotes).
    pub(crate) fn string_into(&mut self, out: &mut String) -> Result<(), JsonError> {
        self.i += 1; // opening quote
        let s = self.s;
        loop {
            // Fast path: a run of bytes copied as they are: plain bytes, and the escapes
            // CPython writes the same way (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`).
            let run_start = self.i;
            loop {
                self.i = plain_run_end(s, self.i);
                match s.get(self.i..self.i + 2) {
                    Some([b'\\', b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f']) => self.i += 2,
                    _ => break,
                }
            }
            if self.i > run_start {
                // Printable ASCII bytes are char boundaries, so the slice is valid.
                out.push_str(&self.text[run_start..self.i]);
            }
            let Some(&b) = s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match b {
                b'"' => {
                    self.i += 1;
                    return Ok(());
                }
                b'\\' => {
                    let Some(&e) = s.get(self.i + 1) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 2;
                    match e {
                        b'"' => out.push_str("\\\""),
                        b'\\' => out.push_str("\\\\"),
                        b'/' => out.push('/'),
                        b'b' => out.push_str("\\b"),
                        b'f' => out.push_str("\\f"),
                        b'n' => out.push_str("\\n"),
                        b'r' => out.push_str("\\r"),
                        b't' => out.push_str("\\t"),
                        b'u' => {
                            let unit = s
                                .get(self.i..self.i + 4)
                                .and_then(hex4)
                                .ok_or(self.err("bad \\u escape"))?;
                            self.i += 4;
                            // Surrogates (paired or lone) come out as their own \uXXXX, so
                            // each UTF-16 unit maps independently.
                            push_code_unit(out, unit);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ if b < 0x80 => {
                    // Raw control character or DEL. CPython's strict mode rejects raw
                    // controls; we accept them (Go never writes them raw) and escape alike.
                    self.i += 1;
                    push_code_unit(out, u16::from(b));
                }
                _ => {
                    // The input is a &str, so this is the start of a valid UTF-8 char.
                    let ch = self.text[self.i..]
                        .chars()
                        .next()
                        .ok_or(self.err("invalid UTF-8"))?;
                    self.i += ch.len_utf8();
                    let mut units = [0u16; 2];
                    for &u in ch.encode_utf16(&mut units).iter() {
                        push_code_unit(out, u);
                    }
                }
            }
        }
    }
}

/// The value of four hexadecimal digits (either case); `None` if any byte is not one.
#[inline]
fn hex4(digits: &[u8]) -> Option<u16> {
    digits.iter().try_fold(0u16, |acc, &h| {
        let d = match h {
            b'0'..=b'9' => h - b'0',
            b'a'..=b'f' => h - b'a' + 10,
            b'A'..=b'F' => h - b'A' + 10,
            _ => return None,
        };
        Some(acc << 4 | u16::from(d))
    })
}

/// Append one UTF-16 code unit as CPython's `ensure_ascii` encoder writes it.
fn push_code_unit(out: &mut String, u: u16) {
    match u {
        0x22 => out.push_str("\\\""),
        0x5c => out.push_str("\\\\"),
        0x0a => out.push_str("\\n"),
        0x0d => out.push_str("\\r"),
        0x09 => out.push_str("\\t"),
        0x08 => out.push_str("\\b"),
        0x0c => out.push_str("\\f"),
        0x20..=0x7e => out.push(char::from(u as u8)),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let digit = |shift: u16| char::from(HEX[usize::from((u >> shift) & 0xf)]);
            out.push_str("\\u");
            for shift in [12, 8, 4, 0] {
                out.push(digit(shift));
            }
        }
    }
}

/// In JSON text, the index of the quote that closes the string whose opening quote is at
/// `open` (escapes skipped with `memchr`); `None` when the text ends first.
pub fn string_end(text: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        let k = memchr::memchr2(b'"', b'\\', text.get(i..)?)?;
        if text[i + k] == b'\\' {
            i += k + 2;
        } else {
            return Some(i + k);
        }
    }
}

/// Escape a Rust string the way CPython's `ensure_ascii` encoder does (no quotes added).
pub fn escape_str(s: &str, out: &mut String) {
    let mut units = [0u16; 2];
    for ch in s.chars() {
        for &u in ch.encode_utf16(&mut units).iter() {
            push_code_unit(out, u);
        }
    }
}

/// Undo [`escape_str`]: the escaped output form back to text.
pub fn unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_owned();
    }
    let mut units: Vec<u16> = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            let unit = match b[i + 1] {
                b'n' => 0x0a,
                b'r' => 0x0d,
                b't' => 0x09,
                b'b' => 0x08,
                b'f' => 0x0c,
                b'u' => {
                    let hex = s.get(i + 2..i + 6).unwrap_or("fffd");
                    i += 4;
                    u16::from_str_radix(hex, 16).unwrap_or(0xfffd)
                }
                other => u16::from(other),
            };
            units.push(unit);
            i += 2;
        } else {
            units.push(u16::from(b[i]));
            i += 1;
        }
    }
    String::from_utf16_lossy(&units)
}

/// Python's `repr(float)`: shortest round-trip digits, scientific below 1e-4 and from 1e16.
pub fn float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 {
            "Infinity".into()
        } else {
            "-Infinity".into()
        };
    }
    if x == 0.0 {
        return if x.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    // `{:e}` yields the shortest round-trip digits as `d.ddde[-]X`.
    let sci = format!("{x:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    if !(-4..16).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
    out
}

/// Python's `round(x, ndigits)`: half-even on the exact binary value.
pub fn py_round(x: f64, ndigits: usize) -> f64 {
    if !x.is_finite() {
        return x;
    }
    // Rust's fixed-precision formatting is exact on the binary value and rounds ties to
    // even, which is what CPython's correctly rounded `round` does.
    format!("{x:.ndigits$}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_key_keeps_first_position_last_value() {
        assert_eq!(
            reserialize(r#"{"a":1,"b":2,"a":3}"#).unwrap(),
            r#"{"a":3,"b":2}"#
        );
    }

    #[test]
    fn plain_run_ends_at_the_first_special_byte() {
        let naive =
            |s: &[u8], i: usize| i + s[i..].iter().take_while(|&&b| PLAIN[b as usize]).count();
        // Bytes around the class edges: a borrow in the word test must never move the end.
        let bytes = [
            0x00, 0x01, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0xc3,
            0xff,
        ];
        for len in [7, 8, 9, 16, 17, 24] {
            for p in 0..len {
                for &a in &bytes {
                    for q in p..len {
                        for &b in &bytes {
                            let mut s = vec![b'x'; len];
                            s[p] = a;
                            s[q] = b;
                            for start in [0, 1.min(len - 1)] {
                                assert_eq!(
                                    plain_run_end(&s, start),
                                    naive(&s, start),
                                    "{s:?} from {start}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn every_escape_comes_out_as_cpython_writes_it() {
        // Expected output from CPython 3: json.dumps(json.loads(text), separators=(",", ":")).
        // Escapes CPython writes the same way are copied with the plain bytes around them;
        // `\/`, `\u` of printable characters, non-ASCII and raw controls are rewritten.
        let text = r#"["a\"b\\c\/d\be\ff\ng\rh\ti\u0041j\u00e9k\ud83d\ude00l\u00c9\u003c\u001f","\\\\n\\u0041\/","\\","é\u0001x"]"#;
        let want = r#"["a\"b\\c/d\be\ff\ng\rh\tiAj\u00e9k\ud83d\ude00l\u00c9<\u001f","\\\\n\\u0041/","\\","\u00e9\u0001x"]"#;
        assert_eq!(reserialize(text).unwrap(), want);
        let mut out = String::new();
        transcode(text, &mut out).unwrap();
        assert_eq!(out, want);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(10_000) + &"]".repeat(10_000);
        assert_eq!(parse(&text), Err(JsonError::TooDeep));
    }

    #[test]
    fn normalize_strips_cache_control_and_signature_at_any_depth() {
        let mut v = parse(r#"[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}},{"a":{"signature":"s","b":1}}]"#).unwrap();
        v.normalize();
        assert_eq!(
            v.to_python(),
            r#"[{"type":"text","text":"x"},{"a":{"b":1}}]"#
        );
    }

    #[test]
    fn python_round_is_half_even_on_binary_value() {
        assert_eq!(py_round(0.25, 1), 0.2);
        assert_eq!(py_round(0.35, 1), 0.3); // 0.35 is 0.34999… in binary
        assert_eq!(py_round(2.675, 2), 2.67);
        // Values printed by CPython 3.11's round().
        assert_eq!(py_round(7258.745, 2), 7258.74);
        assert_eq!(py_round(0.125, 2), 0.12);
        assert_eq!(py_round(11.25, 1), 11.2);
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(float_repr(py_round(12.0, 1)), "12.0");
    }

    #[test]
    fn unescape_inverts_escape() {
        let text = "a\"b\\c\n\u{e9}\u{1f600}\u{7f}/";
        let mut esc = String::new();
        escape_str(text, &mut esc);
        assert_eq!(esc, "a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\u007f/");
        assert_eq!(unescape(&esc), text);
    }

    #[test]
    fn syntax_errors_are_reported() {
        for bad in [
            "",
            "{",
            "[1,]",
            "01",
            "\"abc",
            "{\"a\" 1}",
            "tru",
            "1 2",
            "\"\\x\"",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
