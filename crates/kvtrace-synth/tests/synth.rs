//! End-to-end properties of generated captures: determinism, id matching between
//! requests.db and the session logs, old-proxy pairs, sub-agent links in both layouts,
//! Go escaping, and the size of the example preset.

use kvtrace_synth::json::{quoted, Dialect};
use kvtrace_synth::{generate, Config, Preset, ProxyMode};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

fn small(seed: u64, proxy: ProxyMode) -> Config {
    Config {
        seed,
        conversations: 3,
        proxy,
        max_context_tokens: 40_000,
        median_requests: 8,
        ..Config::default()
    }
}

fn run(cfg: &Config) -> (tempfile::TempDir, kvtrace_synth::Summary) {
    let dir = tempfile::tempdir().unwrap();
    let s = generate(cfg, dir.path()).unwrap();
    (dir, s)
}

type RowText = Vec<Option<String>>;

fn rows(dir: &Path) -> Vec<RowText> {
    let c = rusqlite::Connection::open(dir.join("requests.db")).unwrap();
    let mut st = c.prepare("SELECT * FROM requests ORDER BY rowid").unwrap();
    let n = st.column_count();
    st.query_map([], |r| {
        (0..n)
            .map(|i| r.get::<_, Option<String>>(i))
            .collect::<Result<Vec<_>, _>>()
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn files(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, p: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(p).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(&dir.join("jsonl"), &dir.join("jsonl"), &mut m);
    m
}

/// Column indexes of the golden schema.
const BODY: usize = 5;
const RESPONSE: usize = 9;
const TIMESTAMP: usize = 1;

fn reply_id(resp: &str) -> Option<String> {
    let v: Value = serde_json::from_str(resp).unwrap();
    let body = v.get("body")?;
    let body = match body {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap(),
        b => b.clone(),
    };
    body.get("id").and_then(Value::as_str).map(str::to_string)
}

fn assistant_ids(dir: &Path) -> HashSet<String> {
    let mut ids = HashSet::new();
    for bytes in files(dir).values() {
        for line in std::str::from_utf8(bytes).unwrap().lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["type"] == "assistant" {
                ids.insert(v["message"]["id"].as_str().unwrap().to_string());
            }
        }
    }
    ids
}

#[test]
fn same_seed_same_bytes_other_seed_differs() {
    let cfg = small(11, ProxyMode::Mixed);
    let (a, sa) = run(&cfg);
    let (b, sb) = run(&cfg);
    assert_eq!(sa.rows, sb.rows);
    assert_eq!(rows(a.path()), rows(b.path()));
    assert_eq!(files(a.path()), files(b.path()));
    let (c, _) = run(&small(12, ProxyMode::Mixed));
    assert_ne!(rows(a.path()), rows(c.path()));
    assert_ne!(files(a.path()), files(c.path()));
}

#[test]
fn go_escaping_rules() {
    let s = "<a href=\"x\">&amp;</a>\u{8}\u{c}\u{1}\n\té日本語🚀\\";
    assert_eq!(
        quoted(s, Dialect::Go),
        r#""\u003ca href=\"x\"\u003e\u0026amp;\u003c/a\u003e\u0008\u000c\u0001\n\té日本語🚀\\""#
    );
    // Bodies in a capture never contain raw HTML characters.
    let (d, _) = run(&small(3, ProxyMode::Fixed));
    for r in rows(d.path()) {
        let body = r[BODY].as_deref().unwrap();
        assert!(!body.contains('<') && !body.contains('>') && !body.contains('&'));
        assert!(!body.bytes().any(|b| b < 0x20));
        serde_json::from_str::<Value>(body).unwrap();
    }
}

#[test]
fn every_logged_message_id_is_exactly_one_row() {
    for proxy in [ProxyMode::Fixed, ProxyMode::Old] {
        let (d, s) = run(&small(5, proxy));
        let mut count: HashMap<String, usize> = HashMap::new();
        for r in rows(d.path()) {
            if let Some(id) = r[RESPONSE].as_deref().and_then(reply_id) {
                *count.entry(id).or_default() += 1;
            }
        }
        let ids = assistant_ids(d.path());
        assert_eq!(ids.len() as u64, s.requests);
        for id in &ids {
            assert!(id.starts_with("msg_01") && id.len() >= 28, "{id}");
            assert_eq!(count.get(id), Some(&1), "{id}");
        }
    }
}

#[test]
fn old_proxy_pairs_share_messages() {
    let (d, _) = run(&small(7, ProxyMode::Old));
    let rows = rows(d.path());
    let logged = assistant_ids(d.path());
    let mut streamed: HashMap<String, String> = HashMap::new();
    for r in &rows {
        let body = r[BODY].as_deref().unwrap();
        if body.contains(",\"stream\":true") {
            streamed.insert(
                body.replacen(",\"stream\":true", "", 1),
                r[TIMESTAMP].clone().unwrap(),
            );
        }
    }
    let mut pairs = 0;
    for r in &rows {
        let Some(id) = r[RESPONSE].as_deref().and_then(reply_id) else {
            continue;
        };
        if !logged.contains(&id) {
            continue;
        }
        let body = r[BODY].as_deref().unwrap();
        let v: Value = serde_json::from_str(body).unwrap();
        assert!(
            v.get("stream").is_none(),
            "logged reply must be the non-streaming replay"
        );
        let ts = streamed
            .get(body)
            .expect("a streaming twin with identical messages");
        assert!(ts.as_str() <= r[TIMESTAMP].as_deref().unwrap());
        pairs += 1;
    }
    assert!(pairs > 10);
}

fn check_links(dir: &Path) -> (usize, usize) {
    let root = dir.join("jsonl");
    let (mut old, mut new) = (0, 0);
    for e in std::fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if p.is_dir() || name.starts_with("agent-") {
            continue;
        }
        let session = name.trim_end_matches(".jsonl");
        let text = std::fs::read_to_string(&p).unwrap();
        let mut spawns = HashSet::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            if v["type"] == "assistant" {
                for b in v["message"]["content"].as_array().unwrap() {
                    if b["type"] == "tool_use" && (b["name"] == "Agent" || b["name"] == "Task") {
                        assert!(b["input"]["subagent_type"].is_string());
                        spawns.insert(b["id"].as_str().unwrap().to_string());
                    }
                }
            }
            if let Some(agent) = v["toolUseResult"]["agentId"].as_str() {
                let tool_use = v["message"]["content"][0]["tool_use_id"].as_str().unwrap();
                assert!(
                    spawns.contains(tool_use),
                    "link without an earlier spawning tool_use"
                );
                for k in [
                    "totalDurationMs",
                    "totalTokens",
                    "totalToolUseCount",
                    "status",
                ] {
                    assert!(!v["toolUseResult"][k].is_null(), "{k}");
                }
                let beside = root.join(format!("agent-{agent}.jsonl"));
                let nested = root
                    .join(session)
                    .join("subagents")
                    .join(format!("agent-{agent}.jsonl"));
                if beside.exists() {
                    old += 1;
                } else {
                    assert!(nested.exists(), "missing agent file for {agent}");
                    new += 1;
                }
            }
        }
    }
    (old, new)
}

#[test]
fn example_preset_shape() {
    let cfg = Config {
        preset: Preset::Example,
        ..Config::default()
    };
    let (d, s) = run(&cfg);
    assert_eq!(s.conversations, 2);
    assert_eq!(s.subagents, 4);
    assert!(s.total_bytes < 10_000_000, "{}", s.total_bytes);
    assert!((85..=100).contains(&s.requests), "{}", s.requests);
    let (old, new) = check_links(d.path());
    assert_eq!((old, new), (2, 2));
    // The four agents start in the same second.
    let mut firsts = HashSet::new();
    for (p, bytes) in files(d.path()) {
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("agent-")
        {
            let first: Value =
                serde_json::from_str(std::str::from_utf8(&bytes).unwrap().lines().next().unwrap())
                    .unwrap();
            assert_eq!(first["isSidechain"], true);
            firsts.insert(first["timestamp"].as_str().unwrap()[..19].to_string());
        }
    }
    assert_eq!(firsts.len(), 1);
}

#[test]
fn subagent_links_in_random_runs() {
    let cfg = Config {
        conversations: 6,
        median_requests: 20,
        max_context_tokens: 40_000,
        ..Config::default()
    };
    let (d, s) = run(&cfg);
    let (old, new) = check_links(d.path());
    assert_eq!((old + new) as u64, s.subagents);
}

#[test]
fn refuses_to_overwrite_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = small(1, ProxyMode::Fixed);
    generate(&cfg, dir.path()).unwrap();
    assert!(generate(&cfg, dir.path()).is_err());
    generate(&Config { force: true, ..cfg }, dir.path()).unwrap();
}
