//! Differential tests on synthetic captures: the fast path (streaming transcoder, section
//! memo, incremental tokenizer, digest reuse) against the straightforward one (tree
//! serializer + tiktoken-rs on every section of every request), and our cl100k encoder
//! against bpe-openai, an independent BPE implementation, over all text synth produces.

use kvtrace::capture::Capture;
use kvtrace::conversation::matched_rows;
use kvtrace::conversation::Counts;
use kvtrace::encode::blocks::Salt;
use kvtrace::encode::{Stream, Tokenizer};
use kvtrace::pyjson;
use kvtrace::session::{SessionDir, SessionLog};
use kvtrace::tokens::Encoder;

fn synth(dir: &std::path::Path, seed: u64, proxy: kvtrace_synth::ProxyMode) {
    let cfg = kvtrace_synth::Config {
        seed,
        conversations: 4,
        proxy,
        max_context_tokens: 40_000,
        median_requests: 20,
        ..kvtrace_synth::Config::default()
    };
    kvtrace_synth::generate(&cfg, dir).unwrap();
}

/// For every session file (parents and agents) of a capture, every matched request.
fn for_each_request(dir: &std::path::Path, mut f: impl FnMut(&mut Vec<(String, Option<String>)>)) {
    let cap = Capture::open(&dir.join("requests.db")).unwrap();
    let sessions = SessionDir::scan(&dir.join("jsonl")).unwrap();
    let index = cap.message_index().unwrap();
    let files = sessions.parents.iter().chain(sessions.agents.values());
    for file in files {
        let log = SessionLog::read(file).unwrap();
        let keys = matched_rows(&cap, &index, &log, &mut Counts::default()).unwrap();
        let mut bodies: Vec<(String, Option<String>)> = keys
            .iter()
            .filter_map(|k| {
                cap.with_row(&k.id, |r| {
                    (r.timestamp.to_owned(), r.body.map(str::to_owned))
                })
                .unwrap()
            })
            .collect();
        f(&mut bodies);
    }
}

#[test]
fn incremental_and_full_paths_give_identical_tokens_for_every_request() {
    for (seed, proxy) in [
        (11, kvtrace_synth::ProxyMode::Fixed),
        (12, kvtrace_synth::ProxyMode::Mixed),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        synth(tmp.path(), seed, proxy);
        let salt = Salt::from_hex("00112233445566778899aabbccddeeff").unwrap();
        let mut fast_tk = Tokenizer::default();
        let mut full_tk = Tokenizer::default();
        let mut requests = 0;
        for_each_request(tmp.path(), |rows| {
            // Both content forms: the canonical default and the stored (reference) form.
            for form in [pyjson::Form::Canonical, pyjson::Form::Raw] {
                let mut fast = Stream::new(false, form);
                let mut full = Stream::new(true, form);
                for (_, body) in rows.iter() {
                    let Some(body) = body else { continue };
                    let Ok(b) = pyjson::split_body(body) else {
                        continue;
                    };
                    let a = fast.tokenize(&mut fast_tk, &b).unwrap();
                    let z = full.tokenize(&mut full_tk, &b).unwrap();
                    assert_eq!(a, z, "request {requests} ({form:?})");
                    requests += 1;
                }
            }
            let _ = &salt;
        });
        assert!(requests > 40, "only {requests} requests compared");
        assert!(
            fast_tk.fresh_bytes * 3 < full_tk.fresh_bytes,
            "the fast path must tokenize far less text"
        );
    }
}

#[test]
fn our_encoder_matches_bpe_openai_on_all_synthetic_text() {
    let tmp = tempfile::tempdir().unwrap();
    synth(tmp.path(), 5, kvtrace_synth::ProxyMode::Fixed);
    let bpe = bpe_openai::cl100k_base();
    let mut enc = Encoder::new();
    let mut bytes = 0;
    let mut seen = std::collections::HashSet::new();
    for_each_request(tmp.path(), |rows| {
        for (_, body) in rows.iter() {
            let Some(body) = body else { continue };
            let v = pyjson::parse(body).unwrap();
            for section in ["tools", "system", "messages"] {
                let Some(s) = v.get(section) else { continue };
                let mut s = s.clone();
                s.normalize();
                let text = s.to_python();
                if !seen.insert(text.clone()) {
                    continue;
                }
                bytes += text.len();
                assert_eq!(enc.encode(&text), bpe.encode(&text), "section {section}");
                // Raw (unescaped) strings carry the non-ASCII and control characters.
                if let pyjson::Value::Array(items) = &s {
                    for item in items.iter().take(3) {
                        let raw = pyjson::unescape(&item.to_python());
                        assert_eq!(enc.encode(&raw), bpe.encode(&raw));
                    }
                }
            }
        }
    });
    assert!(bytes > 1_000_000, "only {bytes} bytes compared");
}
