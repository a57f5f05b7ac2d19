//! build-minimal-traces --logs-only: traces from the session logs alone, compared with
//! the capture-based traces of the same sessions (the bundled examples and the real
//! captures of tests/fixtures/real).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

mod common;

/// Build capture-based and logs-only traces of one capture (default flags plus
/// sub-agents, one salt) into `tmp/cap` and `tmp/logs`; returns both sets by file name.
fn both(
    tmp: &Path,
    db: &Path,
    jsonl: &Path,
    extra: &[&str],
) -> (BTreeMap<String, Value>, BTreeMap<String, Value>) {
    let (cap, logs) = (tmp.join("cap"), tmp.join("logs"));
    let flags = ["--include-subagents", "--salt", common::SALT, "-q"];
    common::build_traces(db, jsonl, &cap, &flags);
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "--logs-only".as_ref(),
        "--jsonl-dir".as_ref(),
        jsonl.as_os_str(),
        "--output-dir".as_ref(),
        logs.as_os_str(),
    ];
    args.extend(flags.iter().chain(extra).map(std::ffi::OsStr::new));
    common::ok("build-minimal-traces", &args);
    (read_set(&cap), read_set(&logs))
}

/// [`both`] for the real capture `name` of tests/fixtures/real; also returns its folder.
fn both_real(
    tmp: &Path,
    name: &str,
) -> (
    std::path::PathBuf,
    BTreeMap<String, Value>,
    BTreeMap<String, Value>,
) {
    let dir = common::fixtures().join("real").join(name);
    let (cap, logs) = both(tmp, &dir.join("requests.db"), &dir.join("jsonl"), &[]);
    (dir, cap, logs)
}

fn read_set(dir: &Path) -> BTreeMap<String, Value> {
    common::dir_files(dir)
        .into_iter()
        .map(|(name, bytes)| (name, serde_json::from_slice(&bytes).unwrap()))
        .collect()
}

/// Parent records and sub-agent entries of a trace, and its sub-agents' shapes.
fn parts(t: &Value) -> (Vec<&Value>, Vec<(Value, usize)>) {
    let mut parents = Vec::new();
    let mut agents = Vec::new();
    for e in t["requests"].as_array().unwrap() {
        if e["type"] == "subagent" {
            agents.push((
                e["subagent_type"].clone(),
                e["requests"].as_array().unwrap().len(),
            ));
        } else {
            parents.push(e);
        }
    }
    (parents, agents)
}

/// What the comparison found: relative `in` errors and `t` differences of every parent
/// request.
struct Agreement {
    in_errors: Vec<f64>,
    t_diffs: Vec<f64>,
}

fn compare(cap: &BTreeMap<String, Value>, logs: &BTreeMap<String, Value>) -> Agreement {
    assert_eq!(
        cap.keys().collect::<Vec<_>>(),
        logs.keys().collect::<Vec<_>>(),
        "the same trace files"
    );
    let mut a = Agreement {
        in_errors: Vec::new(),
        t_diffs: Vec::new(),
    };
    for (name, c) in cap {
        let l = &logs[name];
        assert_eq!(l["source"], "session-logs", "{name}: marked");
        assert!(
            c.get("source").is_none(),
            "{name}: a capture-based trace is not marked"
        );
        let ((cp, ca), (lp, la)) = (parts(c), parts(l));
        assert_eq!(cp.len(), lp.len(), "{name}: parent requests");
        assert_eq!(ca, la, "{name}: the same sub-agent tree");
        for (x, y) in cp.iter().zip(&lp) {
            assert_eq!(x["out"], y["out"], "{name}: out");
            assert_eq!(x["stop"], y["stop"], "{name}: stop");
            assert_eq!(x["model"], y["model"], "{name}: model");
            let (xi, yi) = (x["in"].as_f64().unwrap(), y["in"].as_f64().unwrap());
            a.in_errors.push((yi - xi).abs() / xi);
            a.t_diffs
                .push((x["t"].as_f64().unwrap() - y["t"].as_f64().unwrap()).abs());
        }
    }
    a
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() - 1) / 2]
}

#[test]
fn examples_agree_with_their_capture() {
    let ex = common::examples();
    let tmp = tempfile::tempdir().unwrap();
    let (cap, logs) = both(tmp.path(), &ex.join("requests.db"), &ex.join("jsonl"), &[]);
    let a = compare(&cap, &logs);
    assert_eq!(a.in_errors.len(), 48);
    // Measured: median 10.6 %, the first requests worst (the stand-in prefix is sized
    // from the usage the logs carry, in the API's units; synth-capture's usage counts
    // 4 bytes per token, ours are cl100k tokens).
    let m = median(a.in_errors.clone());
    assert!(m < 0.13, "median in error {m}");
    // Request times come from the log entry each response answers: within 1.5 s of the
    // proxy's row times here (measured: median 0.3 s, max 1.1 s).
    assert!(a.t_diffs.iter().all(|d| *d <= 1.5), "{:?}", a.t_diffs);
}

#[test]
fn real_captures_without_a_journal_agree_with_their_capture() {
    // Claude Code 2.0 and 1.0 logs hold no request journal: the tools and system prompt
    // are stood in for by an estimated prefix.
    for name in ["cc2.0-event-proxy", "cc1.0-event-proxy"] {
        let tmp = tempfile::tempdir().unwrap();
        let (_, cap, logs) = both_real(tmp.path(), name);
        let a = compare(&cap, &logs);
        let m = median(a.in_errors.clone());
        // Measured medians: 16.1 and 15.3 % (the fake API counts len(json)/4).
        assert!(m < 0.20, "{name}: median in error {m}");
        assert!(
            a.t_diffs.iter().all(|d| *d <= 1.5),
            "{name}: {:?}",
            a.t_diffs
        );
        for t in logs.values() {
            // The stand-in's last fifth stands for the system prompt.
            let tools = t["tool_tokens"].as_f64().unwrap();
            let system = t["system_tokens"].as_f64().unwrap();
            assert!((system - 0.2 * (tools + system)).abs() <= 0.5, "{name}");
            // Claude Code's system prompt names the model: where the third run switches
            // to Opus, the prefix changes from the stand-in's system part on.
            let (parents, _) = parts(t);
            let switch = parents
                .windows(2)
                .find(|w| w[0]["model"] != w[1]["model"])
                .expect("a model switch");
            let ids = |r: &Value| r["hash_ids"].as_array().unwrap().clone();
            let (a, b) = (ids(switch[0]), ids(switch[1]));
            let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
            let block = 64.0;
            assert!(
                common as f64 >= (tools / block).floor()
                    && (common as f64) < ((tools + system) / block).floor(),
                "{name}: {common} blocks in common"
            );
        }
    }
}

/// Simulated hit rate (and the API's own) per trace, by `validate-trace-cache --json`.
fn sim_rates(traces: &Path, dir: &Path) -> Vec<(f64, f64)> {
    let (db, jsonl) = (dir.join("requests.db"), dir.join("jsonl"));
    let mut args = common::validate_args(traces, &db, &jsonl);
    args.push("--json".as_ref());
    let v: Value = serde_json::from_str(&common::ok("validate-trace-cache", &args)).unwrap();
    v["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["sim_rate"].as_f64().unwrap(),
                t["api_rate"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn journaled_logs_give_the_requests_as_sent() {
    // Claude Code 2.1.x journals each request in its log (tools, system prompt, messages
    // by hash): logs-only traces then hold the requests as sent, not an estimate.
    for name in [
        "cc2.1-event-proxy",
        "cc2.1-compaction",
        "cc2.1-event-proxy-prefixcache",
        "cc2.1-unmodified-proxy",
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, cap, logs) = both_real(tmp.path(), name);
        let a = compare(&cap, &logs);
        // Measured: every request within 0.1-0.4 % (the proxy re-serializes the body with
        // sorted keys, and Claude Code adds a billing-header system block as it sends).
        let worst = a.in_errors.iter().copied().fold(0.0, f64::max);
        assert!(worst < 0.01, "{name}: worst in error {worst}");
        assert!(a.t_diffs.iter().all(|d| *d <= 1.5), "{name}");
        for (file, c) in &cap {
            let l = &logs[file];
            for key in ["tool_tokens", "system_tokens"] {
                let (x, y) = (c[key].as_f64().unwrap(), l[key].as_f64().unwrap());
                // Measured: 6925 -> 6986 and 1682 -> 1650.
                assert!((y - x).abs() / x < 0.05, "{name}: {key} {x} -> {y}");
            }
        }
        // Simulated hit rates within a point and a half (measured: +0.6 to +1.4).
        let (rc, rl) = (
            sim_rates(&tmp.path().join("cap"), &dir),
            sim_rates(&tmp.path().join("logs"), &dir),
        );
        assert_eq!(rc.len(), rl.len());
        for ((c, api), (l, api2)) in rc.iter().zip(&rl) {
            assert!((c - l).abs() < 1.5, "{name}: hit rate {c} -> {l}");
            assert_eq!(api, api2, "{name}: the same API figures");
        }
        // The summary says where the requests came from.
        let out = tmp.path().join("again");
        let jsonl = dir.join("jsonl");
        let text = common::run(
            "build-minimal-traces",
            &[
                "--logs-only".as_ref(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--output-dir".as_ref(),
                out.as_os_str(),
                "--include-subagents".as_ref(),
            ],
        );
        let all = cap.values().map(|t| parts(t).0.len()).sum::<usize>()
            + cap
                .values()
                .flat_map(|t| parts(t).1)
                .map(|(_, n)| n)
                .sum::<usize>();
        let said = format!(
            "from the request journal of the session logs: tools and system prompt of {all} requests, messages of {all} (of {all})"
        );
        let printed = String::from_utf8_lossy(&text.stdout).into_owned()
            + &String::from_utf8_lossy(&text.stderr);
        assert!(printed.contains(&said), "{name}: {printed}");
    }
}

#[test]
fn journaled_logs_size_the_stand_in_of_older_ones() {
    // A projects folder with 2.1.x sessions (journaled) next to 2.0.x ones (not): the
    // journaled requests measure the API's tokens per token of ours, which sizes the
    // 2.0 stand-in prefix.
    let real = common::fixtures().join("real");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("projects");
    for (folder, capture) in [("-new", "cc2.1-event-proxy"), ("-old", "cc2.0-event-proxy")] {
        copy_dir(
            &real.join(capture).join("jsonl/-tmp-ccwork"),
            &root.join(folder),
        );
    }
    let old = real.join("cc2.0-event-proxy");
    let (cap, alone) = both(
        tmp.path(),
        &old.join("requests.db"),
        &old.join("jsonl"),
        &[],
    );
    let mixed = tmp.path().join("mixed");
    let json = common::ok(
        "build-minimal-traces",
        &[
            "--logs-only".as_ref(),
            "--jsonl-dir".as_ref(),
            root.as_os_str(),
            "--output-dir".as_ref(),
            mixed.as_os_str(),
            "--include-subagents".as_ref(),
            "--salt".as_ref(),
            common::SALT.as_ref(),
            "--json".as_ref(),
        ],
    );
    let summary: Value = serde_json::from_str(&json).unwrap();
    let ratio = &summary["api_token_ratio"];
    assert_eq!(ratio["source"], "journal", "{summary}");
    // One per stream of the 2.1 session: its main chain and 3 sub-agents.
    assert_eq!(ratio["requests"], 4);
    // The fake API counts len(json)/4: measured 1.123 of its tokens per cl100k token.
    let r = ratio["value"].as_f64().unwrap();
    assert!((1.05..1.2).contains(&r), "{r}");
    let logs: BTreeMap<String, Value> = read_set(&mixed)
        .into_iter()
        .filter(|(name, _)| cap.contains_key(name))
        .collect();
    let (before, after) = (compare(&cap, &alone), compare(&cap, &logs));
    let (b, a) = (median(before.in_errors), median(after.in_errors));
    // Measured: median 14.4 % with the default ratio, 3.1 % with the measured one.
    assert!(a < 0.05 && a < b / 2.0, "median in error {b} -> {a}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// The API's prompt tokens (input + cache read + cache creation) of each main-chain
/// response of a session file, in the order the file first names them.
fn api_prompt_tokens(session: &Path) -> Vec<f64> {
    let mut order: Vec<String> = Vec::new();
    let mut tokens: BTreeMap<String, f64> = BTreeMap::new();
    for line in std::fs::read_to_string(session).unwrap().lines() {
        let Ok(e) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let m = &e["message"];
        if e["type"] != "assistant" || e["isSidechain"] == true || m["model"] == "<synthetic>" {
            continue;
        }
        let (Some(id), Some(u)) = (m["id"].as_str(), m["usage"].as_object()) else {
            continue;
        };
        let n = |k: &str| u.get(k).and_then(Value::as_f64).unwrap_or(0.0);
        if !tokens.contains_key(id) {
            order.push(id.to_owned());
        }
        let a = n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens");
        tokens.insert(id.to_owned(), a);
    }
    order.iter().map(|id| tokens[id]).collect()
}

#[test]
fn on_public_logs_in_follows_the_api_prompt_tokens() {
    // Real logs from other people's machines (Claude Code 1.0.29 to 2.1.114, the real
    // API): each parent request's `in` against the prompt tokens the API reported for
    // it. The stand-in is sized from those figures (R = 1), so this measures how well the
    // rebuilt messages follow what was sent, request by request.
    let public = common::fixtures().join("public-logs");
    let mut errors = Vec::new();
    for root in [
        "handgemacht-ai__claude-code-log/real_projects",
        "d-kimuson__claude-code-viewer/projects",
    ] {
        let root = public.join(root);
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("t");
        let flags = ["--include-subagents", "--salt", common::SALT, "-q"];
        let mut args = vec![
            "--logs-only".as_ref(),
            "--jsonl-dir".as_ref(),
            root.as_os_str(),
            "--output-dir".as_ref(),
            out.as_os_str(),
        ];
        args.extend(flags.iter().map(std::ffi::OsStr::new));
        common::ok("build-minimal-traces", &args);
        for (name, t) in read_set(&out) {
            assert_eq!(t["source"], "session-logs");
            let stem = name.trim_end_matches(".json");
            let session = std::fs::read_dir(&root)
                .unwrap()
                .flat_map(|p| std::fs::read_dir(p.unwrap().path()).into_iter().flatten())
                .map(|f| f.unwrap().path())
                .find(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with(stem) && n.ends_with(".jsonl")
                })
                .unwrap();
            let api = api_prompt_tokens(&session);
            let (parents, _) = parts(&t);
            assert_eq!(parents.len(), api.len(), "{name}: one request per response");
            for (r, a) in parents.iter().zip(api) {
                errors.push((r["in"].as_f64().unwrap() - a).abs() / a);
            }
        }
    }
    assert_eq!(errors.len(), 119);
    // Measured: median 0.75 %, 90th percentile 12.6 % (a few requests, whose injected text
    // or compaction the log does not hold), max 46 %.
    let m = median(errors);
    assert!(m < 0.02, "median {m}");
}

#[test]
fn one_version_shares_one_prefix_and_runs_are_reproducible() {
    let ex = common::examples();
    let jsonl = ex.join("jsonl");
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &str, threads: &str| {
        let dir = tmp.path().join(out);
        common::ok(
            "build-minimal-traces",
            &[
                "--logs-only".as_ref(),
                "--jsonl-dir".as_ref(),
                jsonl.as_os_str(),
                "--output-dir".as_ref(),
                dir.as_os_str(),
                "--global-hash-ids".as_ref(),
                "--salt".as_ref(),
                common::SALT.as_ref(),
                "--threads".as_ref(),
                threads.as_ref(),
                "-q".as_ref(),
            ],
        );
        dir
    };
    let (one, two) = (run("t1", "1"), run("t2", "2"));
    assert_eq!(
        common::dir_files(&one),
        common::dir_files(&two),
        "thread count"
    );
    let set = read_set(&one);
    let traces: Vec<&Value> = set.values().collect();
    assert_eq!(traces.len(), 2);
    // Both example sessions were written by one Claude Code version: their prefixes are
    // the same blocks, so the same ids in a global id space.
    let full_blocks = traces[0]["tool_tokens"].as_u64().unwrap() as usize / 64;
    assert!(full_blocks > 100);
    assert_eq!(traces[0]["tool_tokens"], traces[1]["tool_tokens"]);
    let first = |t: &Value| -> Vec<Value> {
        t["requests"][0]["hash_ids"].as_array().unwrap()[..full_blocks].to_vec()
    };
    assert_eq!(first(traces[0]), first(traces[1]));
}

#[test]
fn logs_only_refuses_a_capture_and_a_ratio_needs_it() {
    let ex = common::examples();
    let db = ex.join("requests.db");
    let jsonl = ex.join("jsonl");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o");
    for args in [
        vec![db.as_os_str(), "--logs-only".as_ref()],
        vec![db.as_os_str(), "--api-token-ratio".as_ref(), "1.2".as_ref()],
        vec![
            "--logs-only".as_ref(),
            "--api-token-ratio".as_ref(),
            "0".as_ref(),
        ],
    ] {
        let mut args = args;
        args.extend([
            "--jsonl-dir".as_ref(),
            jsonl.as_os_str(),
            "--output-dir".as_ref(),
            out.as_os_str(),
        ]);
        let o = common::run("build-minimal-traces", &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!out.exists());
    }
}
