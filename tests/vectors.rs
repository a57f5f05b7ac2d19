//! CPython and tiktoken vectors (shared/vectors, computed by the real implementations),
//! and a differential test of our cl100k encoder against a second independent one.

use kvtrace::pyjson;
use kvtrace::tokens::{incremental::IncrementalEncoder, reference_encode, Encoder};

mod common;

fn lines(name: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(common::fixtures().join("vectors").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn pyjson_vectors_match_cpython() {
    let vectors = lines("pyjson.jsonl");
    assert!(vectors.len() >= 50);
    for v in vectors {
        let input = v["input"].as_str().unwrap();
        let mut parsed = pyjson::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(
            parsed.to_python(),
            v["expected"].as_str().unwrap(),
            "input {input:?}"
        );
        parsed.normalize();
        assert_eq!(
            parsed.to_python(),
            v["normalized"].as_str().unwrap(),
            "normalized {input:?}"
        );
    }
}

#[test]
fn cl100k_vectors_match_tiktoken() {
    let vectors = lines("cl100k.jsonl");
    assert!(vectors.len() >= 60);
    let mut enc = Encoder::new();
    let bpe = bpe_openai::cl100k_base();
    for v in vectors {
        let text = v["text"].as_str().unwrap();
        let want: Vec<u32> = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(enc.encode(text), want, "ours on {text:?}");
        assert_eq!(reference_encode(text), want, "tiktoken-rs on {text:?}");
        assert_eq!(bpe.encode(text), want, "bpe-openai on {text:?}");
    }
}

/// Serialized JSON sections of the golden capture, through our fast path, tiktoken-rs
/// and bpe-openai (an independent BPE implementation), full and incremental.
#[test]
fn encoders_agree_on_capture_sections() {
    let db = common::golden().join("capture/requests.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let mut stmt = conn
        .prepare("SELECT body FROM requests ORDER BY timestamp")
        .unwrap();
    let bodies: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let bpe = bpe_openai::cl100k_base();
    let mut enc = Encoder::new();
    let mut inc = IncrementalEncoder::new();
    let mut checked = 0;
    for body in bodies {
        let mut v = pyjson::parse(&body).unwrap();
        v.normalize();
        for section in ["tools", "system", "messages"] {
            let Some(s) = v.get(section) else { continue };
            let text = s.to_python();
            let want = bpe.encode(&text);
            assert_eq!(reference_encode(&text), want);
            assert_eq!(enc.encode(&text), want);
            if section == "messages" {
                assert_eq!(inc.encode(&mut enc, &text), &want[..]);
            }
            checked += text.len();
        }
    }
    assert!(checked > 50_000, "only {checked} bytes checked");
}
