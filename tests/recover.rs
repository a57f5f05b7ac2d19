//! recover-conversations: on synthetic captures whose real session logs are
//! known, recovered conversations match the logs as logged, compactions included
//! (pairwise precision and recall ≥ 0.99), round-trip through build-minimal-traces to the
//! same traces, and
//! `--exclude-indexed` never recovers a request the logs already hold.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use kvtrace::session::{SessionDir, SessionLog};
use kvtrace_synth::{Config, ProxyMode};
use serde_json::Value;

mod common;

use common::SALT;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A small synthetic capture: few conversations that compact (80K-token contexts) and
/// spawn sub-agents.
fn synth(dir: &Path, seed: u64, proxy: ProxyMode, unrelated: bool) -> PathBuf {
    let cfg = Config {
        seed,
        conversations: 3,
        proxy,
        median_requests: 30,
        max_context_tokens: 80_000,
        unrelated,
        ..Default::default()
    };
    kvtrace_synth::generate(&cfg, dir).unwrap();
    dir.to_owned()
}

fn recover(capture: &Path, out: &Path, extra: &[&str]) -> Value {
    let db = capture.join("requests.db");
    // Default flags: no gap limit, no size threshold (the generator pauses up to 14 h
    // between user turns; its sub-agents' tools+system are ~2.5K tokens).
    let mut args = vec![p(&db), "--output-dir", p(out), "--json"];
    args.extend(extra);
    serde_json::from_str(&common::ok("recover-conversations", &args)).unwrap()
}

/// Message-id sets of every session file of a directory (parents and agents), by stem.
fn message_sets(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let sessions = match SessionDir::scan(dir) {
        Ok(s) => s,
        // Nothing recovered: an empty folder.
        Err(kvtrace::session::SessionDirError::Empty(_)) => return BTreeMap::new(),
        Err(e) => panic!("{e}"),
    };
    let mut files = sessions.parents.clone();
    files.extend(sessions.agents.values().cloned());
    files
        .iter()
        .map(|f| {
            let log = SessionLog::read(f).unwrap();
            (log.stem(), log.message_ids.into_iter().collect())
        })
        .collect()
}

/// One request record: (t, in, out, hash_ids).
type Record = (String, u64, u64, Vec<u64>);

/// A sub-agent entry: spawn `t`, type, status and its records.
#[derive(Debug, Clone, PartialEq)]
struct AgentSig {
    t: f64,
    kind: Value,
    status: Value,
    records: Vec<Record>,
}

/// A trace: the parent's records in order and its sub-agent entries, hash ids renumbered
/// by first appearance (parent first, then the entries in an order that does not depend
/// on ids), so two traces of the same content compare equal whatever order siblings
/// spawned in the same second were placed in.
#[derive(Debug, Clone, PartialEq)]
struct TraceSig {
    parent: Vec<Record>,
    agents: Vec<AgentSig>,
}

fn records(list: &[Value]) -> Vec<Record> {
    list.iter()
        .filter(|r| r["type"] != "subagent")
        .map(|r| {
            (
                r["t"].to_string(),
                r["in"].as_u64().unwrap(),
                r["out"].as_u64().unwrap(),
                r["hash_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h.as_u64().unwrap())
                    .collect(),
            )
        })
        .collect()
}

/// Per trace file, by trace id.
fn signatures(dir: &Path) -> BTreeMap<String, TraceSig> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let list = v["requests"].as_array().unwrap();
        let parent = records(list);
        let mut agents: Vec<AgentSig> = list
            .iter()
            .filter(|r| r["type"] == "subagent")
            .map(|a| AgentSig {
                t: a["t"].as_f64().unwrap(),
                kind: a["subagent_type"].clone(),
                status: a["status"].clone(),
                records: records(a["requests"].as_array().unwrap()),
            })
            .collect();
        let shape = |a: &AgentSig| -> Vec<(u64, u64, String)> {
            a.records.iter().map(|r| (r.1, r.2, r.0.clone())).collect()
        };
        agents.sort_by_key(shape);
        let mut ids: BTreeMap<u64, u64> = BTreeMap::new();
        let mut renumber = |recs: &mut Vec<Record>| {
            for r in recs.iter_mut() {
                for h in r.3.iter_mut() {
                    let next = ids.len() as u64 + 1;
                    *h = *ids.entry(*h).or_insert(next);
                }
            }
        };
        let mut parent = parent;
        renumber(&mut parent);
        for a in &mut agents {
            renumber(&mut a.records);
        }
        out.insert(
            v["id"].as_str().unwrap().to_owned(),
            TraceSig { parent, agents },
        );
    }
    out
}

/// Equal content; a sub-agent's spawn `t` may differ by up to a second (the recovered
/// spawn is its first request's row time, the proxy's timestamps have whole seconds; the
/// real one is its prompt line's).
/// `status` is compared on real captures only: the generator logs `completed` but, unlike
/// Claude Code 2.0+, does not name the agent in the result text the status is read from.
fn same_trace(real: &TraceSig, rec: &TraceSig, status: bool) -> bool {
    real.parent == rec.parent
        && real.agents.len() == rec.agents.len()
        && real.agents.iter().zip(&rec.agents).all(|(a, b)| {
            (a.t - b.t).abs() <= 1.0
                && a.kind == b.kind
                && (!status || a.status == b.status)
                && a.records == b.records
        })
}

/// Each parent session file's message ids and the id sets of the sub-agents it links.
type Family = (BTreeSet<String>, BTreeSet<BTreeSet<String>>);

fn families(dir: &Path) -> BTreeMap<String, Family> {
    let sessions = match SessionDir::scan(dir) {
        Ok(s) => s,
        Err(kvtrace::session::SessionDirError::Empty(_)) => return BTreeMap::new(),
        Err(e) => panic!("{e}"),
    };
    let mut out = BTreeMap::new();
    for f in &sessions.parents {
        let log = SessionLog::read(f).unwrap();
        let agents = log
            .links
            .iter()
            .filter_map(|l| sessions.agent_log(&log, &l.agent_id))
            .map(|a| a.unwrap().message_ids.into_iter().collect())
            .filter(|ids: &BTreeSet<String>| !ids.is_empty())
            .collect();
        out.insert(
            log.stem(),
            (log.message_ids.iter().cloned().collect(), agents),
        );
    }
    out
}

/// Build traces (sub-agents nested) from the real logs and from the recovered ones, and
/// compare every conversation recovered exactly (the parent and each of its sub-agents).
/// Returns how many traces were compared, and how many of them have sub-agents.
fn round_trip(label: &str, capture: &Path, rec: &Path, tmp: &Path, status: bool) -> (usize, usize) {
    let jsonl = capture.join("jsonl");
    // Round trip: traces of the recovered files, sub-agents nested, equal the real ones
    // for conversations recovered exactly (the parent and each of its sub-agents). Traces
    // are built anonymized (named trace_0001, …) so that the two sets can be compared by
    // content rather than by name.
    let real_tr = tmp.join("real_tr");
    let rec_tr = tmp.join("rec_tr");
    let db = capture.join("requests.db");
    let common = [
        "--salt",
        SALT,
        "--local-hash-ids",
        "--include-subagents",
        "--quiet",
    ];
    let mut a = vec![
        p(&db),
        "--jsonl-dir",
        p(&jsonl),
        "--output-dir",
        p(&real_tr),
    ];
    a.extend(common);
    common::ok("build-minimal-traces", &a);
    let mut a = vec![
        p(&db),
        "--jsonl-dir",
        p(rec),
        "--output-dir",
        p(&rec_tr),
        "--anonymize",
    ];
    a.extend(common);
    common::ok("build-minimal-traces", &a);
    let real_sigs = signatures(&real_tr);
    let rec_sigs: Vec<TraceSig> = signatures(&rec_tr).into_values().collect();
    let real_families = families(&jsonl);
    let rec_families: BTreeSet<Family> = families(rec).into_values().collect();
    assert_eq!(
        rec_sigs.len(),
        rec_families.len(),
        "{label}: one trace per recovered parent file"
    );
    let (mut compared, mut with_agents) = (0, 0);
    for (stem, family) in &real_families {
        let Some(sig) = real_sigs.get(&stem.chars().take(12).collect::<String>()) else {
            continue; // no trace (no usable request)
        };
        if rec_families.contains(family) {
            assert!(
                rec_sigs.iter().any(|r| same_trace(sig, r, status)),
                "{label}: trace of {stem} differs"
            );
            compared += 1;
            with_agents += usize::from(!family.1.is_empty());
        }
    }
    // validate-trace-cache reads the recovered logs and matches every trace by content.
    let report = common::ok(
        "validate-trace-cache",
        &[p(&rec_tr), "--db", p(&db), "--jsonl-dir", p(rec), "--json"],
    );
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["summary"]["traces"].as_u64(),
        Some(rec_sigs.len() as u64),
        "{label}"
    );
    (compared, with_agents)
}

/// Recover, score against the generator's logs, and round-trip through the trace builder.
/// Returns (precision, recall) against the logs as logged (compactions not cut).
fn check(label: &str, capture: &Path) -> (f64, f64) {
    let tmp = tempfile::tempdir().unwrap();
    let rec = tmp.path().join("rec");
    let jsonl = capture.join("jsonl");
    let s = recover(capture, &rec, &["--validate-against", p(&jsonl)]);
    let v = &s["validation"];
    let logged = &v["as_logged"];
    let (precision, recall) = (
        logged["precision"].as_f64().unwrap(),
        logged["recall"].as_f64().unwrap(),
    );
    eprintln!(
        "{label}: as logged P={precision:.4} R={recall:.4} exact {}/{}; {} turns, {} conversations",
        logged["exact"], logged["real_conversations"], s["recovered_turns"], s["conversations"],
    );
    assert!(precision >= 0.99 && recall >= 0.99, "{label}: {logged:#}");
    // Every request of the logs was recovered (none skipped as small or unusable).
    assert_eq!(logged["known_requests"], v["real_requests"], "{label}");

    let (compared, with_agents) = round_trip(label, capture, &rec, tmp.path(), false);
    assert!(compared >= 1, "{label}: no conversation recovered exactly");
    eprintln!("{label}: {compared} traces equal ({with_agents} with sub-agents)");
    let links = &v["subagents"];
    eprintln!("{label}: sub-agents {links}");
    assert!(
        links["right_share"].as_f64().unwrap() >= 0.99,
        "{label}: {links:#}"
    );
    assert_eq!(links["false_links"], 0, "{label}: {links:#}");
    (precision, recall)
}

#[test]
fn fixed_proxy_capture_is_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = synth(&tmp.path().join("c"), 1, ProxyMode::Fixed, true);
    check("fixed", &cap);
}

#[test]
fn old_proxy_capture_is_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = synth(&tmp.path().join("c"), 1, ProxyMode::Old, true);
    check("old", &cap);
}

#[test]
fn mixed_proxy_capture_is_recovered() {
    let tmp = tempfile::tempdir().unwrap();
    let cap = synth(&tmp.path().join("c"), 3, ProxyMode::Mixed, true);
    check("mixed", &cap);
}

/// The example preset: four parallel sub-agents spawned at once share tools, system and
/// start time; each must come out as its own conversation.
#[test]
fn parallel_subagents_with_identical_prefixes_are_separated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let cfg = Config {
        preset: kvtrace_synth::Preset::Example,
        ..Default::default()
    };
    kvtrace_synth::generate(&cfg, &dir).unwrap();
    check("parallel sub-agents", &dir);
}

/// Two captures generated from the same start time, merged into one: their sessions run
/// interleaved in time, with the same tools and system prompts.
#[test]
fn interleaved_sessions_are_kept_apart() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth(&tmp.path().join("a"), 21, ProxyMode::Fixed, true);
    let b = synth(&tmp.path().join("b"), 22, ProxyMode::Old, true);
    let conn = rusqlite::Connection::open(a.join("requests.db")).unwrap();
    conn.execute("ATTACH DATABASE ?1 AS other", [p(&b.join("requests.db"))])
        .unwrap();
    conn.execute_batch("INSERT INTO requests SELECT * FROM other.requests; DETACH other;")
        .unwrap();
    drop(conn);
    let mut moved = 0;
    for e in walkdir(&b.join("jsonl")) {
        let rel = e.strip_prefix(b.join("jsonl")).unwrap();
        let to = a.join("jsonl").join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&e, &to).unwrap();
        moved += 1;
    }
    assert!(moved > 0);
    check("interleaved", &a);
}

/// Mid-conversation, Claude Code switches model (another system prompt) and gains a tool:
/// from then on no block of the conversation's requests matches the turn before (tools
/// come first), and the generator sends no session id. The messages carry it.
#[test]
fn a_new_system_prompt_and_tool_mid_conversation_do_not_split_it() {
    // Without and with compactions: a compaction's summarization call, which no log
    // names, keeps the old prefix here (in Claude Code it carries the new one too), and
    // right after a compaction another conversation's latest turn is mostly tools and
    // system, which that call shares.
    for max_context_tokens in [10_000_000, 80_000] {
        changed_mid_conversation(max_context_tokens);
    }
}

fn changed_mid_conversation(max_context_tokens: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("c");
    let cfg = Config {
        seed: 1,
        conversations: 3,
        median_requests: 30,
        max_context_tokens,
        ..Default::default()
    };
    kvtrace_synth::generate(&cfg, &cap).unwrap();
    let db = cap.join("requests.db");
    // The longest parent conversation, from its middle request on.
    let sessions = SessionDir::scan(&cap.join("jsonl")).unwrap();
    let main = sessions
        .parents
        .iter()
        .map(|f| SessionLog::read(f).unwrap())
        .max_by_key(|l| l.message_ids.len())
        .unwrap();
    let later: BTreeSet<&str> = main.message_ids[main.message_ids.len() / 2..]
        .iter()
        .map(String::as_str)
        .collect();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<(String, String)> = conn
        .prepare("SELECT id, response FROM requests")
        .unwrap()
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut changed = 0;
    for (id, response) in rows {
        let Some(mid) = kvtrace::capture::Response::message_id_of(&response) else {
            continue;
        };
        if !later.contains(mid.as_str()) {
            continue;
        }
        changed += conn
            .execute(
                "UPDATE requests SET body = replace(replace(body, \
                 '\"tools\":[', '\"tools\":[{\"name\":\"Added\",\"description\":\"A tool added mid-session\",\"input_schema\":{\"type\":\"object\"}},'), \
                 'You are Claude Code, a command-line coding assistant.', \
                 'You are Claude Code, now running on another model.') WHERE id = ?1",
                [&id],
            )
            .unwrap();
    }
    drop(conn);
    assert!(changed >= 5, "{changed} requests changed");
    // The change breaks the prefix at its first block: the real logs' trace of the
    // conversation shows a request sharing no leading block with the one before.
    let traces = tmp.path().join("tr");
    common::ok(
        "build-minimal-traces",
        &[
            p(&db),
            "--jsonl-dir",
            p(&cap.join("jsonl")),
            "--output-dir",
            p(&traces),
            "--salt",
            SALT,
            "--quiet",
        ],
    );
    let id: String = main.stem().chars().take(12).collect();
    let trace: Value =
        serde_json::from_slice(&std::fs::read(traces.join(format!("{id}.json"))).unwrap()).unwrap();
    let firsts: Vec<&Value> = trace["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["hash_ids"][0])
        .collect();
    assert!(
        firsts.windows(2).any(|w| w[0] != w[1]),
        "the change did not break the prefix"
    );
    let (precision, recall) = check("new system prompt and tool", &cap);
    assert_eq!((precision, recall), (1.0, 1.0));
}

fn walkdir(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walkdir(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// With the real logs excluded nothing they name is recovered again: only rows no log
/// names remain (here the compaction summarization calls), and none at all without them.
#[test]
fn exclude_indexed_leaves_only_unlogged_rows() {
    let tmp = tempfile::tempdir().unwrap();
    for unrelated in [true, false] {
        let cap = synth(
            &tmp.path().join(format!("c{unrelated}")),
            1,
            ProxyMode::Old,
            unrelated,
        );
        let jsonl = cap.join("jsonl");
        let rec = tmp.path().join(format!("rec{unrelated}"));
        let s = recover(&cap, &rec, &["--exclude-indexed", p(&jsonl)]);
        let logged: BTreeSet<String> = message_sets(&jsonl).into_values().flatten().collect();
        let recovered: BTreeSet<String> = message_sets(&rec).into_values().flatten().collect();
        assert!(
            logged.is_disjoint(&recovered),
            "a logged request was recovered"
        );
        // Every logged request was a turn (its pair folded in), and all were excluded.
        assert_eq!(s["excluded_indexed"].as_u64(), Some(logged.len() as u64));
        if !unrelated {
            assert_eq!(s["files"].as_u64(), Some(0), "{s:#}");
        }
    }
}

/// The real captures (tests/fixtures/real). Claude Code 2.1.332: a main conversation
/// whose history is rewritten when background agents report, three background
/// sub-agents, two `-c` resumes, and in one of them a `/compact`. 2.0.77: no session
/// header, two synchronous sub-agents and one background, nine warm-up agents, a switch
/// to another model (another system prompt) on the last resume. 1.0.128: sub-agents
/// written inline in the parent file, the model switch too. Recovered exactly as logged,
/// every logged request included, each sub-agent linked to the turn that spawned it
/// (under the id Claude Code gave it wherever the tool result names it), and the traces
/// of the recovered logs equal the real ones, sub-agents nested.
#[test]
fn real_captures_are_recovered_exactly() {
    for (name, named_ids) in [
        ("cc2.1-event-proxy", 3),
        ("cc2.1-unmodified-proxy", 3),
        ("cc2.1-event-proxy-prefixcache", 3),
        ("cc2.1-compaction", 3),
        ("cc2.0-event-proxy", 3),
        ("cc1.0-event-proxy", 0),
    ] {
        let dir = common::fixtures().join("real").join(name);
        let tmp = tempfile::tempdir().unwrap();
        let jsonl = dir.join("jsonl");
        let rec = tmp.path().join("rec");
        let s = recover(&dir, &rec, &["--validate-against", p(&jsonl)]);
        let v = &s["validation"];
        let logged = &v["as_logged"];
        assert_eq!(
            logged["precision"].as_f64(),
            Some(1.0),
            "{name}: {logged:#}"
        );
        assert_eq!(logged["recall"].as_f64(), Some(1.0), "{name}: {logged:#}");
        assert_eq!(logged["exact"], logged["real_conversations"], "{name}");
        assert_eq!(logged["known_requests"], v["real_requests"], "{name}");
        let links = &v["subagents"];
        assert_eq!(links["real_subagents"], 3, "{name}: {links:#}");
        assert_eq!(links["linked_right"], 3, "{name}: {links:#}");
        assert_eq!(links["false_links"], 0, "{name}: {links:#}");
        assert_eq!(s["agent_ids_from_results"], named_ids, "{name}");
        let (compared, with_agents) = round_trip(name, &dir, &rec, tmp.path(), true);
        // With /compact the recovered conversation also holds the compaction request,
        // which no log names: not exact, so not compared.
        let expected = usize::from(name != "cc2.1-compaction");
        assert_eq!((compared, with_agents), (expected, expected), "{name}");
    }
}
