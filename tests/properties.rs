//! Property tests: the parsers never panic on arbitrary input, and the
//! CPython-compatible serializer agrees with an independent model of
//! `json.dumps(json.loads(text), separators=(',', ':'))` (ensure_ascii).
//!
//! Run with `cargo test -p kvtrace-cli --test properties`. The cases come from a fixed
//! seed, so a run (CI's included) is repeatable and a failure replays with the same
//! command. To explore: `PROPTEST_SEED=random` draws a fresh seed (`PROPTEST_SEED=<n>`
//! a chosen one) and `PROPTEST_CASES=5000` runs more cases; a failure prints the seed and
//! a minimal input, to be kept as an example test.

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use serde_json::{json, Value};

use kvtrace::capture::envelope::{parse_sse_line, Response};
use kvtrace::pyjson;
use kvtrace::session::SessionLog;

/// The seed of the default (gate) run.
const GATE_SEED: u64 = 0x6b76_7472;

fn config() -> ProptestConfig {
    let seed = match std::env::var("PROPTEST_SEED").as_deref() {
        Err(_) => GATE_SEED,
        // A fresh seed from the standard library's randomly keyed hasher.
        Ok("random") => std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            std::process::id(),
        ),
        Ok(n) => n
            .parse()
            .expect("PROPTEST_SEED is `random` or an unsigned integer"),
    };
    // Shown with the output of a failing test.
    println!("PROPTEST_SEED={seed}");
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(256),
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// A model of a Python JSON value and of CPython's json.dumps
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Py {
    Null,
    Bool(bool),
    /// A JSON integer literal (any length), as written in the text.
    Int(String),
    /// A JSON float literal (or NaN / Infinity / -Infinity), as written in the text.
    Float(String),
    /// UTF-16 code units, lone surrogates allowed (Python strings can hold them).
    Str(Vec<u16>),
    List(Vec<Py>),
    /// Keys are distinct (no duplicate-key semantics in the model).
    Dict(Vec<(Vec<u16>, Py)>),
}

/// CPython's `repr(float)`, written independently of `pyjson::float_repr`: Rust's
/// shortest round-trip digits, then Python's choice of notation (`repr` switches to
/// exponent form below 1e-4 and from 1e16).
fn model_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let sci = format!("{x:e}"); // e.g. "-1.5e-7", "1e16"
    let (mant, exp) = sci.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    if x != 0.0 && !(-4..16).contains(&exp) {
        let sign = if exp < 0 { "-" } else { "+" };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        // Rust's Display never uses exponent form and prints the shortest digits.
        let fixed = format!("{x}");
        if fixed.contains('.') {
            fixed
        } else {
            format!("{fixed}.0")
        }
    }
}

fn model_escape(units: &[u16], out: &mut String) {
    out.push('"');
    for &u in units {
        match u {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x0a => out.push_str("\\n"),
            0x0d => out.push_str("\\r"),
            0x09 => out.push_str("\\t"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            0x20..=0x7e => out.push(u as u8 as char),
            _ => out.push_str(&format!("\\u{u:04x}")),
        }
    }
    out.push('"');
}

fn is_volatile(k: &[u16]) -> bool {
    k == "cache_control"
        .encode_utf16()
        .collect::<Vec<_>>()
        .as_slice()
        || k == "signature".encode_utf16().collect::<Vec<_>>().as_slice()
}

/// `json.dumps(v, separators=(',', ':'))`; `drop_volatile` removes `cache_control` and
/// `signature` members everywhere, as the trace builder's normalization does.
fn model_dumps(v: &Py, drop_volatile: bool, out: &mut String) {
    match v {
        Py::Null => out.push_str("null"),
        Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Py::Int(lit) => {
            // Python int: "-0" is 0; otherwise the digits as written (JSON forbids
            // leading zeros).
            if lit == "-0" {
                out.push('0');
            } else {
                out.push_str(lit);
            }
        }
        Py::Float(lit) => {
            let x: f64 = match lit.as_str() {
                "NaN" => f64::NAN,
                "Infinity" => f64::INFINITY,
                "-Infinity" => f64::NEG_INFINITY,
                // Rust's parse is correctly rounded, as CPython's float() is; beyond
                // f64 it gives ±inf, as CPython does.
                _ => lit.parse().unwrap(),
            };
            out.push_str(&model_float_repr(x));
        }
        Py::Str(units) => model_escape(units, out),
        Py::List(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                model_dumps(x, drop_volatile, out);
            }
            out.push(']');
        }
        Py::Dict(members) => {
            out.push('{');
            let mut first = true;
            for (k, x) in members {
                if drop_volatile && is_volatile(k) {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                model_escape(k, out);
                out.push(':');
                model_dumps(x, drop_volatile, out);
            }
            out.push('}');
        }
    }
}

fn dumps(v: &Py, drop_volatile: bool) -> String {
    let mut s = String::new();
    model_dumps(v, drop_volatile, &mut s);
    s
}

// ---------------------------------------------------------------------------------------
// Rendering a model value as JSON text, with varied spelling
// ---------------------------------------------------------------------------------------

/// Choices that vary how the same value is written (whitespace, escapes), drawn as a
/// byte stream so the rendering is part of the generated case.
struct Style<'a> {
    bits: &'a [u8],
    i: usize,
}

impl Style<'_> {
    fn draw(&mut self) -> u8 {
        let b = self
            .bits
            .get(self.i % self.bits.len().max(1))
            .copied()
            .unwrap_or(0);
        self.i += 1;
        b.wrapping_add(self.i as u8)
    }
    fn ws(&mut self, out: &mut String) {
        match self.draw() % 8 {
            0 => out.push(' '),
            1 => out.push_str("\n\t "),
            2 => out.push_str("\r\n"),
            _ => {}
        }
    }
}

fn render_str(units: &[u16], st: &mut Style, out: &mut String) {
    out.push('"');
    let mut i = 0;
    while i < units.len() {
        let u = units[i];
        let choice = st.draw() % 4;
        // A valid surrogate pair may be written raw (as one UTF-8 char).
        if (0xd800..0xdc00).contains(&u)
            && units
                .get(i + 1)
                .is_some_and(|l| (0xdc00..0xe000).contains(l))
            && choice == 0
        {
            let s = String::from_utf16(&units[i..i + 2]).unwrap();
            out.push_str(&s);
            i += 2;
            continue;
        }
        match u {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x2f if choice == 1 => out.push_str("\\/"),
            0x0a if choice < 2 => out.push_str("\\n"),
            0x09 if choice < 2 => out.push_str("\\t"),
            0x08 if choice < 2 => out.push_str("\\b"),
            0x0c if choice < 2 => out.push_str("\\f"),
            0x0d if choice < 2 => out.push_str("\\r"),
            // Raw control characters are not JSON (CPython's strict mode rejects them).
            0x00..=0x1f => out.push_str(&format!("\\u{u:04X}")),
            0xd800..=0xdfff => {
                if choice == 2 {
                    out.push_str(&format!("\\u{u:04X}"))
                } else {
                    out.push_str(&format!("\\u{u:04x}"))
                }
            }
            _ if choice >= 2 => out.push(char::from_u32(u32::from(u)).unwrap()),
            _ if choice == 1 => out.push_str(&format!("\\u{u:04X}")),
            _ => out.push_str(&format!("\\u{u:04x}")),
        }
        i += 1;
    }
    out.push('"');
}

fn render(v: &Py, st: &mut Style, out: &mut String) {
    match v {
        Py::Null => out.push_str("null"),
        Py::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Py::Int(lit) | Py::Float(lit) => out.push_str(lit),
        Py::Str(units) => render_str(units, st, out),
        Py::List(items) => render_seq(items, ('[', ']'), st, out, render),
        Py::Dict(members) => render_seq(members, ('{', '}'), st, out, |m, st, out| {
            render_str(&m.0, st, out);
            st.ws(out);
            out.push(':');
            st.ws(out);
            render(&m.1, st, out);
        }),
    }
}

/// `open`, the items separated by commas, `close`, with drawn whitespace around each.
fn render_seq<T>(
    items: &[T],
    (open, close): (char, char),
    st: &mut Style,
    out: &mut String,
    item: impl Fn(&T, &mut Style, &mut String),
) {
    out.push(open);
    st.ws(out);
    for (i, x) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
            st.ws(out);
        }
        item(x, st, out);
        st.ws(out);
    }
    out.push(close);
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

fn int_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        Just("-0".to_string()),
        // Beyond i64 and f64: Python ints have no limit (up to 4300 digits by default).
        ("[1-9][0-9]{18,400}", any::<bool>()).prop_map(|(d, neg)| if neg {
            format!("-{d}")
        } else {
            d
        }),
    ]
}

fn float_lit() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:?}")),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(|x| format!("{x:E}")),
        (-1000i32..1000, -400i32..400).prop_map(|(m, e)| format!("{m}e{e}")),
        (0u32..100000, 0u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
        Just("1e400".to_string()),
        Just("-1E+400".to_string()),
        Just("1e-400".to_string()),
        Just("-0.0".to_string()),
        Just("NaN".to_string()),
        Just("Infinity".to_string()),
        Just("-Infinity".to_string()),
    ]
}

fn units() -> impl Strategy<Value = Vec<u16>> {
    prop::collection::vec(
        prop_oneof![
            4 => 0x20u16..0x7f,
            1 => 0u16..0x20,
            1 => Just(0x7fu16),
            1 => any::<u16>(),
            1 => 0xd800u16..0xe000,
            1 => any::<char>().prop_map(|c| {
                let mut b = [0u16; 2];
                c.encode_utf16(&mut b)[0]
            }),
        ],
        0..12,
    )
    .prop_flat_map(|mut v| {
        // Sometimes append a valid pair (an emoji) so paired surrogates are common.
        (Just(std::mem::take(&mut v)), any::<bool>())
    })
    .prop_map(|(mut v, pair)| {
        if pair {
            v.extend_from_slice(&[0xd83d, 0xde80]);
        }
        v
    })
}

fn key() -> impl Strategy<Value = Vec<u16>> {
    prop_oneof![
        6 => units(),
        1 => Just("cache_control".encode_utf16().collect()),
        1 => Just("signature".encode_utf16().collect()),
        2 => "[a-z]{1,6}".prop_map(|s| s.encode_utf16().collect()),
    ]
}

fn py_value() -> impl Strategy<Value = Py> {
    let leaf = prop_oneof![
        Just(Py::Null),
        any::<bool>().prop_map(Py::Bool),
        int_lit().prop_map(Py::Int),
        float_lit().prop_map(Py::Float),
        units().prop_map(Py::Str),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Py::List),
            prop::collection::vec((key(), inner), 0..6).prop_map(|members| {
                let mut seen = std::collections::HashSet::new();
                Py::Dict(
                    members
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .collect(),
                )
            }),
        ]
    })
}

/// JSON-ish token soup: often valid, often almost valid.
fn json_soup() -> impl Strategy<Value = String> {
    let tok = prop::sample::select(vec![
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\n",
        "\"a\"",
        "\"b\"",
        "\"cache_control\"",
        "\"\\ud800\"",
        "\"\\udc00\\ud800\"",
        "\"\\u00e9\"",
        "\"é\"",
        "\"\\\"",
        "\\",
        "1",
        "-0",
        "0.5",
        "1e400",
        "-1e-400",
        "12345678901234567890123",
        "NaN",
        "Infinity",
        "-Infinity",
        "true",
        "false",
        "null",
        "nul",
        "\"",
        "01",
        "1.",
        "-",
        "\u{7f}",
    ]);
    prop::collection::vec(tok, 0..40).prop_map(|v| v.concat())
}

// ---------------------------------------------------------------------------------------
// pyjson
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// reserialize and transcode both equal the model of CPython's json.dumps.
    #[test]
    fn pyjson_matches_the_cpython_model(v in py_value(), style in prop::collection::vec(any::<u8>(), 1..64)) {
        let mut text = String::new();
        let mut st = Style { bits: &style, i: 0 };
        st.ws(&mut text);
        render(&v, &mut st, &mut text);
        st.ws(&mut text);
        let want = dumps(&v, false);
        let got = pyjson::reserialize(&text);
        prop_assert_eq!(got.as_deref(), Ok(want.as_str()), "text: {}", text);
        let mut got = String::new();
        pyjson::transcode(&text, &mut got).unwrap();
        prop_assert_eq!(got, dumps(&v, true), "text: {}", text);
        // Serializing the output again changes nothing (it is already canonical).
        prop_assert_eq!(pyjson::reserialize(&want), Ok(want.clone()));
    }

    /// Arbitrary bytes and near-JSON never panic, and the one-pass transcoder agrees with
    /// the tree parser whenever both succeed.
    #[test]
    fn pyjson_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..200), soup in json_soup()) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for text in [lossy.as_str(), soup.as_str()] {
            let tree = pyjson::reserialize(text);
            let mut fast = String::new();
            let one_pass = pyjson::transcode(text, &mut fast);
            let _ = pyjson::split_body(text);
            if let (Ok(tree), Ok(())) = (&tree, &one_pass) {
                // transcode succeeded, so no object repeats a key.
                let mut normalized = pyjson::parse(text).unwrap();
                normalized.normalize();
                prop_assert_eq!(&fast, &normalized.to_python());
                if !text.contains("cache_control") && !text.contains("signature") {
                    prop_assert_eq!(&fast, tree);
                }
            }
            if tree.is_err() {
                prop_assert!(one_pass.is_err(), "transcode accepted what parse refused: {text:?}");
            }
        }
    }

    /// Incremental transcoding of a growing `messages` array equals transcoding afresh.
    #[test]
    fn array_transcoder_reuse_is_exact(items in prop::collection::vec(py_value(), 0..8), cut in 0usize..8) {
        let mut t = pyjson::ArrayTranscoder::default();
        let cut = cut.min(items.len());
        for n in [cut, items.len()] {
            let mut text = String::from("[");
            for (i, v) in items[..n].iter().enumerate() {
                if i > 0 { text.push_str(", "); }
                let mut st = Style { bits: &[], i: 0 };
                render(v, &mut st, &mut text);
            }
            text.push(']');
            let mut fresh = String::new();
            pyjson::transcode(&text, &mut fresh).unwrap();
            prop_assert_eq!(t.transcode(&text).unwrap(), fresh.as_str());
        }
    }
}

#[test]
fn pyjson_deep_nesting_is_an_error_not_a_crash() {
    for levels in [1_001, 10_000, 100_000] {
        for open in ["[", "{\"a\":"] {
            let text = open.repeat(levels);
            assert!(pyjson::parse(&text).is_err());
            let mut out = String::new();
            assert!(pyjson::transcode(&text, &mut out).is_err());
        }
    }
    let ok = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    assert_eq!(pyjson::reserialize(&ok).unwrap(), ok);
}

#[test]
fn model_float_repr_known_answers() {
    // Values checked against CPython 3.12's repr().
    for (x, want) in [
        (1.0, "1.0"),
        (0.1, "0.1"),
        (1e16, "1e+16"),
        (1e15, "1000000000000000.0"),
        (1.5e-7, "1.5e-07"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (-0.0, "-0.0"),
        (123456789012345680.0, "1.2345678901234568e+17"),
        (5e-324, "5e-324"),
        (f64::MAX, "1.7976931348623157e+308"),
    ] {
        assert_eq!(model_float_repr(x), want, "{x:?}");
        assert_eq!(pyjson::float_repr(x), want, "{x:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Session logs
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Line {
    /// An assistant line with this message id (ids not starting with `msg_` are ignored).
    Assistant(String),
    /// A user line linking a sub-agent.
    Link(String),
    Other,
    /// Not a JSON object.
    Junk(Vec<u8>),
    Blank,
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        4 => prop_oneof![
            "msg_[a-c]{1,2}",
            "[a-z_]{0,5}",
            Just("msg_\u{e9}\u{1f680}".to_string()),
        ].prop_map(Line::Assistant),
        1 => "[a-c0-9]{1,2}".prop_map(Line::Link),
        1 => Just(Line::Other),
        2 => prop_oneof![
            prop::collection::vec(any::<u8>(), 1..40)
                .prop_filter("not blank", |b| !b.trim_ascii().is_empty() && !b.contains(&b'\n')),
            Just(b"[1,2]".to_vec()),
            Just(b"\"str\"".to_vec()),
            Just(b"{\"type\":\"assistant\",\"message\":{\"id\":\"msg_trunc".to_vec()),
            Just(b"{\"x\":\"\xff\"}".to_vec()),
            Just(b"{\"x\":\"\\ud800\"}".to_vec()),
        ].prop_map(Line::Junk),
        1 => Just(Line::Blank),
    ]
}

fn line_bytes(l: &Line, n: usize) -> Vec<u8> {
    let ts = format!("2026-03-25T19:{:02}:{:02}.000Z", (n / 60) % 60, n % 60);
    let v = match l {
        Line::Assistant(id) => json!({"type": "assistant", "timestamp": ts,
            "message": {"id": id, "model": "m", "content": [{"type": "text", "text": "x"}]}}),
        Line::Link(agent) => json!({"type": "user", "timestamp": ts,
            "message": {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
            "toolUseResult": {"agentId": agent, "status": "completed"}}),
        Line::Other => json!({"type": "summary", "summary": "s\n\u{2028}"}),
        Line::Junk(b) => return b.clone(),
        Line::Blank => return b"   \t".to_vec(),
    };
    serde_json::to_vec(&v).unwrap()
}

/// Would CPython's `json.loads` read this junk line as an object? (a random byte string
/// rarely does; a lone surrogate escape does, and so must the session reader)
fn junk_is_object(b: &[u8]) -> bool {
    std::str::from_utf8(b.trim_ascii())
        .ok()
        .and_then(|s| kvtrace::pyjson::parse(s).ok())
        .is_some_and(|v| matches!(v, kvtrace::pyjson::Value::Object(_)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn session_log_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let log = SessionLog::parse_bytes(&bytes);
        prop_assert!(log.message_ids.len() <= log.entries);
    }

    /// The ids, links and counts found equal an independent model of the log.
    #[test]
    fn session_log_matches_the_model(lines in prop::collection::vec(line(), 0..30), crlf in any::<bool>(), final_newline in any::<bool>()) {
        let mut bytes = Vec::new();
        for (n, l) in lines.iter().enumerate() {
            bytes.extend(line_bytes(l, n));
            if n + 1 < lines.len() || final_newline {
                bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
        }
        let log = SessionLog::parse_bytes(&bytes);
        let mut want_ids: Vec<String> = Vec::new();
        for l in &lines {
            if let Line::Assistant(id) = l {
                if id.starts_with("msg_") && !want_ids.contains(id) {
                    want_ids.push(id.clone());
                }
            }
        }
        prop_assert_eq!(&log.message_ids, &want_ids);
        // One link per agent id, the first wins; later ones are counted (a `-c`
        // continuation writes the earlier chain's links again).
        let mut want_links: Vec<&str> = Vec::new();
        let mut want_duplicates = 0;
        for l in &lines {
            if let Line::Link(a) = l {
                if want_links.contains(&a.as_str()) {
                    want_duplicates += 1;
                } else {
                    want_links.push(a.as_str());
                }
            }
        }
        let got_links: Vec<&str> = log.links.iter().map(|l| l.agent_id.as_str()).collect();
        prop_assert_eq!(got_links, want_links);
        prop_assert_eq!(log.duplicate_links, want_duplicates);
        // A junk line CPython would read as an object is an entry (with nothing in it the
        // tools use); any other junk line is unparseable.
        let junk = lines.iter().filter(|l| matches!(l, Line::Junk(b) if !junk_is_object(b))).count();
        prop_assert_eq!(log.unparseable_lines, junk);
        let entries = lines.iter().filter(|l| match l {
            Line::Junk(b) => junk_is_object(b),
            Line::Blank => false,
            _ => true,
        }).count();
        prop_assert_eq!(log.entries, entries);
        let assistants = lines.iter().filter(|l| matches!(l, Line::Assistant(_))).count();
        prop_assert_eq!(log.assistant_lines, assistants);
    }
}

#[test]
fn session_log_deep_line_is_counted_not_a_crash() {
    let mut bytes = b"{\"type\":\"assistant\",\"message\":{\"id\":\"msg_1\"}}\n".to_vec();
    bytes.extend_from_slice(b"{\"type\":\"assistant\",\"message\":");
    bytes.extend(std::iter::repeat_n(b'[', 100_000));
    bytes.extend(std::iter::repeat_n(b']', 100_000));
    bytes.extend_from_slice(b"}\n");
    let log = SessionLog::parse_bytes(&bytes);
    assert_eq!(log.message_ids, ["msg_1"]);
    assert_eq!(log.unparseable_lines, 1);
}

// ---------------------------------------------------------------------------------------
// SSE lines, stream checks and response envelopes
// ---------------------------------------------------------------------------------------

fn event() -> impl Strategy<Value = Value> {
    let kind = prop::sample::select(vec![
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
        "bogus",
    ]);
    let delta = prop::sample::select(vec![
        "text_delta",
        "input_json_delta",
        "thinking_delta",
        "signature_delta",
        "citations_delta",
        "x",
    ]);
    (kind, delta, prop::option::of(-2i64..4), any::<u8>()).prop_map(|(k, d, index, shape)| {
        let mut v = json!({"type": k});
        if let Some(i) = index {
            v["index"] = json!(i);
        }
        match shape % 6 {
            0 => v["delta"] = json!({"type": d, "text": "t", "stop_reason": "end_turn"}),
            1 => {
                let t = ["text", "tool_use", "thinking"][shape as usize % 3];
                v["content_block"] = json!({ "type": t });
            }
            2 => {
                let m = ["m", "m-20250101", ""][shape as usize % 3];
                v["message"] = json!({"id": "msg_1", "model": m});
            }
            3 => v["usage"] = json!({"output_tokens": shape}),
            4 => v["delta"] = json!(null),
            _ => {}
        }
        v
    })
}

fn chunk() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => event().prop_map(|e| Value::String(format!("data: {e}"))),
        1 => event().prop_map(|e| Value::String(format!("event: x\ndata: {e}\n\n"))),
        1 => ".{0,20}".prop_map(Value::String),
        1 => Just(json!(null)),
        1 => event(),
        1 => Just(json!(17)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sse_line_parser_never_panics(s in ".{0,80}", soup in json_soup()) {
        let _ = parse_sse_line(&s);
        let _ = parse_sse_line(&format!("data:{soup}"));
        let _ = parse_sse_line(&format!("data: {soup}"));
    }

    #[test]
    fn sse_line_round_trips_objects(e in event(), spaces in 0usize..3) {
        let line = format!("data:{}{e}  ", " ".repeat(spaces));
        let got = parse_sse_line(&line).map(Value::Object);
        prop_assert_eq!(got, Some(e));
    }

    #[test]
    fn stream_checker_never_panics(chunks in prop::collection::vec(chunk(), 0..25), model in prop::option::of("m|m-20250101|")) {
        let _ = kvtrace::streams::check_stream(&chunks, model.as_deref());
    }

    #[test]
    fn envelope_parser_never_panics(s in ".{0,120}", soup in json_soup(), chunks in prop::collection::vec(chunk(), 0..6)) {
        let _ = Response::parse(&s);
        let _ = Response::parse(&soup);
        let env = json!({"statusCode": 200, "body": {"id": "msg_1", "content": soup, "usage": {"output_tokens": soup}},
            "streamingChunks": chunks, "responseTime": soup, "completedAt": s});
        if let Some(r) = Response::parse(&env.to_string()) {
            let _ = r.output_types();
            let _ = r.stop();
        }
        let as_string = json!({"statusCode": 200, "body": soup});
        let _ = Response::parse(&as_string.to_string());
    }
}
