//! The request journal recent Claude Code 2.1.x (2.1.332) writes into its session logs, read back.
//!
//! Next to the transcript, such a log holds one `api-request` entry per request sent
//! (its `id`, the `shapeHash` of its tools and system prompt, and its messages as the
//! previous request's first `keep` messages, `base`, followed by the `tail`: a list of
//! message hashes), `api-request-shape` entries (tools and system prompt, by hash) and
//! `api-request-blob` entries (messages the transcript does not hold — injected reminders,
//! environment notes — by hash). A response's lines name their request (`requestRef`).
//!
//! A tail hash is the SHA-256 of the message (`role` and `content`) written as compact
//! JSON with sorted keys and unescaped non-ASCII text; it names either a blob or a message
//! of the transcript as sent (a response's blocks together, parallel tool results
//! together; on a resumed session, a response without its empty-text thinking blocks).
//! A request whose messages all resolve is rebuilt exactly as sent; one that does not
//! keeps the transcript's rebuild (`super::rebuild`).

use std::rc::Rc;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use sha2::{Digest, Sha256};

use super::rebuild::Shape;
use crate::pyjson::{self, Value};

/// What the journal knows of one request.
#[derive(Debug, Clone, Default)]
pub struct Sent {
    pub shape: Option<Arc<Shape>>,
    /// Its `messages` section, serialized, when every message resolved.
    pub messages: Option<String>,
}

/// The journal of one log, read in file order.
#[derive(Default)]
pub struct Journal {
    shapes: FxHashMap<String, Arc<Shape>>,
    /// Messages by hash: blobs and the transcript's messages seen so far.
    messages: FxHashMap<String, Rc<Value>>,
    /// Each request's messages (`None`: one did not resolve), by request id.
    lists: FxHashMap<String, Option<Vec<Rc<Value>>>>,
    /// Each request's shape, by request id (until a response takes it).
    shapes_sent: FxHashMap<String, Option<Arc<Shape>>>,
}

impl Journal {
    /// Read a journal entry (`api-request*`); `false` for any other entry.
    pub fn read(&mut self, kind: &str, entry: &Value) -> bool {
        match kind {
            "api-request-shape" => {
                let hash = entry.get("shapeHash").and_then(Value::as_string);
                let shape = entry.get("shape").and_then(Shape::from_entry);
                if let (Some(hash), Some(shape)) = (hash, shape) {
                    self.shapes.insert(hash, Arc::new(shape));
                }
            }
            "api-request-blob" => {
                let hash = entry.get("hash").and_then(Value::as_string);
                if let (Some(hash), Some(m)) = (hash, entry.get("message")) {
                    self.messages.insert(hash, Rc::new(m.clone()));
                }
            }
            "api-request" => self.request(entry),
            _ => return false,
        }
        true
    }

    /// Record a message of the transcript as the API saw it (`role`, `content`), under
    /// its hash, and under the hashes of the forms it may have been sent in: a text
    /// prompt as one text block; a response without its empty thinking blocks, as a
    /// resumed session sends it.
    pub fn saw(&mut self, role: &str, content: &Value) {
        let message = |content: Value| {
            Value::Object(vec![
                ("role".into(), Value::Str(role.into())),
                ("content".into(), content),
            ])
        };
        let m = Rc::new(message(content.clone()));
        self.messages.insert(hash_of(&m), m);
        if let Value::Str(_) = content {
            // A prompt typed as text goes on the wire as one text block.
            let block = Value::Object(vec![
                ("type".into(), Value::Str("text".into())),
                ("text".into(), content.clone()),
            ]);
            let m = Rc::new(message(Value::Array(vec![block])));
            self.messages.insert(hash_of(&m), m);
        }
        if let Value::Array(blocks) = content {
            let kept: Vec<Value> = blocks
                .iter()
                .filter(|b| !is_empty_thinking(b))
                .cloned()
                .collect();
            if kept.len() != blocks.len() {
                let m = Rc::new(message(Value::Array(kept)));
                self.messages.insert(hash_of(&m), m);
            }
        }
    }

    /// What the journal knows of request `id` (a response's `requestRef`), taken: a
    /// response names its request once (its first line makes the request).
    pub fn take(&mut self, id: &str) -> Option<Sent> {
        let shape = self.shapes_sent.remove(id)?;
        let messages = self.lists.get(id).and_then(Option::as_ref).map(|l| {
            let mut out = String::from("[");
            for (i, m) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                m.write_to(&mut out);
            }
            out.push(']');
            out
        });
        Some(Sent { shape, messages })
    }

    fn request(&mut self, entry: &Value) {
        let Some(id) = entry.get("id").and_then(Value::as_string) else {
            return;
        };
        let keep = match entry.get("keep") {
            Some(Value::Number(n)) => n.parse::<usize>().ok(),
            None => Some(0),
            _ => None,
        };
        let base: Option<&[Rc<Value>]> = match entry.get("base").and_then(Value::as_string) {
            Some(b) => self.lists.get(&b).and_then(|l| l.as_deref()),
            None => Some(&[]),
        };
        let mut list: Option<Vec<Rc<Value>>> = match (base, keep) {
            (Some(base), Some(keep)) => base.get(..keep).map(<[_]>::to_vec),
            _ => None,
        };
        match (&mut list, entry.get("tail")) {
            (Some(l), Some(Value::Array(tail))) => {
                for h in tail {
                    match h.as_string().and_then(|h| self.messages.get(&h)) {
                        Some(m) => l.push(m.clone()),
                        None => {
                            list = None;
                            break;
                        }
                    }
                }
            }
            // No tail: the kept messages are all; a tail that is not a list: unknown.
            (_, None) | (None, _) => {}
            (Some(_), Some(_)) => list = None,
        }
        let shape = entry
            .get("shapeHash")
            .and_then(Value::as_string)
            .and_then(|h| self.shapes.get(&h).cloned());
        self.lists.insert(id.clone(), list);
        self.shapes_sent.insert(id, shape);
    }
}

/// A thinking block with no text (its signature only).
fn is_empty_thinking(b: &Value) -> bool {
    b.get("type").and_then(Value::as_string).as_deref() == Some("thinking")
        && b.get("thinking").and_then(Value::as_string).as_deref() == Some("")
}

/// The journal's hash of a message: SHA-256 (hex) of compact JSON with sorted keys and
/// non-ASCII text unescaped.
fn hash_of(m: &Value) -> String {
    let mut text = String::new();
    write_sorted(m, &mut text);
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_sorted(v: &Value, out: &mut String) {
    match v {
        Value::Object(members) => {
            let mut sorted: Vec<(String, &Value)> = members
                .iter()
                .map(|(k, v)| (pyjson::unescape(k), v))
                .collect();
            sorted.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push('{');
            for (i, (k, v)) in sorted.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_js_string(k, out);
                out.push(':');
                write_sorted(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_sorted(x, out);
            }
            out.push(']');
        }
        Value::Str(s) => write_js_string(&pyjson::unescape(s), out),
        other => other.write_to(out),
    }
}

/// A string as `JSON.stringify` writes it: only `"`, `\` and control characters escaped.
fn write_js_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_hashes_are_of_sorted_compact_unescaped_json() {
        // sha256 of `{"content":"caf\u00e9 \"q\"\n","role":"user"}` with é as UTF-8, as
        // Python's json.dumps(m, sort_keys=True, separators=(",", ":"),
        // ensure_ascii=False) writes it (what Claude Code's hashes are of).
        let m = pyjson::parse(r#"{"role":"user","content":"caf\u00e9 \"q\"\n"}"#).unwrap();
        let mut text = String::new();
        write_sorted(&m, &mut text);
        assert_eq!(
            text,
            "{\"content\":\"caf\u{e9} \\\"q\\\"\\n\",\"role\":\"user\"}"
        );
        // Python's hashlib.sha256 of those bytes.
        assert_eq!(
            hash_of(&m),
            "ac74e56c3e6506169f46bb58ff48c4b3555249227395e5f3e4ca5c0ee8bde7c8"
        );
    }

    fn hash_text(text: &str) -> String {
        hash_of(&pyjson::parse(text).unwrap())
    }

    #[test]
    fn requests_resolve_from_blobs_transcript_and_their_base() {
        let mut j = Journal::default();
        let v = |s: &str| pyjson::parse(s).unwrap();
        let blob = r#"{"role":"user","content":[{"type":"text","text":"<reminder>"}]}"#;
        let shape = r#"{"tools":[{"name":"Read","defer_loading":true,"input_schema":{"$schema":"x","type":"object"}}],"system":[{"type":"text","text":"sys"}]}"#;
        assert!(j.read(
            "api-request-shape",
            &v(&format!(r#"{{"shapeHash":"s1","shape":{shape}}}"#))
        ));
        let entry = format!(r#"{{"hash":"{}","message":{blob}}}"#, hash_text(blob));
        assert!(j.read("api-request-blob", &v(&entry)));
        // A typed prompt is logged as a string and sent as one text block.
        j.saw("user", &Value::Str("hi".into()));
        let sent_prompt = r#"{"role":"user","content":[{"type":"text","text":"hi"}]}"#;
        let first = format!(
            r#"{{"id":"r1","shapeHash":"s1","tail":["{}","{}"]}}"#,
            hash_text(blob),
            hash_text(sent_prompt)
        );
        assert!(j.read("api-request", &v(&first)));
        let r1 = j.take("r1").unwrap();
        assert_eq!(
            r1.messages.as_deref(),
            Some(&*format!("[{blob},{sent_prompt}]"))
        );
        let s = r1.shape.as_deref().unwrap();
        assert_eq!(
            s.tools,
            r#"[{"name":"Read","input_schema":{"type":"object"}}]"#
        );
        assert_eq!(s.system, r#"[{"type":"text","text":"sys"}]"#);
        // The next request keeps the first message of r1, then a reply whose empty
        // thinking block is not sent.
        let reply =
            v(r#"[{"type":"thinking","thinking":"","signature":"x"},{"type":"text","text":"ok"}]"#);
        j.saw("assistant", &reply);
        let sent_reply = r#"{"role":"assistant","content":[{"type":"text","text":"ok"}]}"#;
        let second = format!(
            r#"{{"id":"r2","base":"r1","keep":1,"tail":["{}"]}}"#,
            hash_text(sent_reply)
        );
        assert!(j.read("api-request", &v(&second)));
        let r2 = j.take("r2").unwrap();
        assert_eq!(
            r2.messages.as_deref(),
            Some(&*format!("[{blob},{sent_reply}]"))
        );
        assert!(r2.shape.is_none());
        // An unknown hash, or a base that did not resolve: no messages.
        assert!(j.read(
            "api-request",
            &v(r#"{"id":"r3","base":"r2","keep":2,"tail":["00"]}"#)
        ));
        assert_eq!(j.take("r3").unwrap().messages, None);
        assert!(j.read(
            "api-request",
            &v(r#"{"id":"r4","base":"r3","keep":1,"tail":[]}"#)
        ));
        assert_eq!(j.take("r4").unwrap().messages, None);
        // keep beyond the base's length does not resolve either.
        assert!(j.read(
            "api-request",
            &v(r#"{"id":"r5","base":"r1","keep":9,"tail":[]}"#)
        ));
        assert_eq!(j.take("r5").unwrap().messages, None);
        assert!(!j.read("user", &v("{}")));
    }

    #[test]
    fn damaged_entries_resolve_nothing_and_do_not_panic() {
        let v = |s: &str| pyjson::parse(s).unwrap();
        let mut j = Journal::default();
        for (kind, entry) in [
            ("api-request-shape", r#"{"shapeHash":7,"shape":{}}"#),
            ("api-request-shape", r#"{"shapeHash":"s","shape":"tools"}"#),
            (
                "api-request-shape",
                r#"{"shapeHash":"s2","shape":{"tools":[1,"x",{"input_schema":3}],"system":"sys"}}"#,
            ),
            ("api-request-blob", r#"{"hash":"h","message":null}"#),
            ("api-request-blob", r#"{"hash":["h"]}"#),
            ("api-request", r#"{"id":"a","keep":"x","tail":[]}"#),
            ("api-request", r#"{"id":"b","keep":-1,"tail":[]}"#),
            ("api-request", r#"{"id":"c","tail":5}"#),
            ("api-request", r#"{"id":"d","tail":[7,null]}"#),
            (
                "api-request",
                r#"{"id":"e","base":"nowhere","keep":0,"tail":[]}"#,
            ),
            ("api-request", r#"{"id":"f","keep":1e400,"shapeHash":"s2"}"#),
            ("api-request", r#"{"tail":[]}"#),
        ] {
            assert!(j.read(kind, &v(entry)), "{entry}");
        }
        for id in ["a", "b", "c", "d", "e", "f"] {
            assert_eq!(j.take(id).unwrap().messages, None, "{id}");
        }
        // Odd tools are kept as they are; the shape is what was logged, less the
        // members Claude Code does not send.
        j.read(
            "api-request",
            &v(r#"{"id":"g","shapeHash":"s2","tail":[]}"#),
        );
        let g = j.take("g").unwrap();
        let shape = g.shape.unwrap();
        assert_eq!(shape.tools, r#"[1,"x",{"input_schema":3}]"#);
        assert_eq!(shape.system, r#""sys""#);
        assert!(j.take("g").is_none(), "taken once");
    }
}
