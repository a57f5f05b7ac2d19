#!/usr/bin/env python3
"""Write MANIFEST.md for a folder of real captures (one sub-folder each).

    python3 scripts/realcapture/manifest.py tests/fixtures/real

Counts come from the files themselves: requests.db rows (streaming or not,
by status), api_log.jsonl exchanges, session / sub-agent JSONL files and
isSidechain lines.  Standard library only (sqlite3 module).
"""
import collections
import glob
import json
import os
import sqlite3
import sys


def db_counts(path):
    con = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    rows = con.execute("select endpoint, model, headers, body, response from requests").fetchall()
    con.close()
    c = collections.Counter()
    models = collections.Counter()
    system_role = 0
    session_hdr = 0
    for endpoint, model, headers, body, response in rows:
        models[model] += 1
        r = json.loads(response) if response else {}
        c["stream" if r.get("isStreaming") else "non-stream"] += 1
        c["status %s" % r.get("statusCode")] += 1
        b = json.loads(body)
        if any(m.get("role") == "system" for m in b.get("messages") or []):
            system_role += 1
        h = {k.lower(): v for k, v in json.loads(headers).items()}
        if "x-claude-code-session-id" in h:
            session_hdr += 1
    return len(rows), c, models, system_role, session_hdr


def jsonl_counts(root):
    files = sorted(glob.glob(os.path.join(root, "**", "*.jsonl"), recursive=True))
    agents = [f for f in files if os.path.basename(f).startswith("agent-")]
    sessions = [f for f in files if f not in agents]
    empty = [f for f in sessions if os.path.getsize(f) == 0]
    nested = [f for f in agents if os.sep + "subagents" + os.sep in f]
    side = 0
    side_in_sessions = 0
    for f in files:
        for line in open(f, encoding="utf-8"):
            if '"isSidechain":true' in line:
                side += 1
                if f in sessions:
                    side_in_sessions += 1
    meta = glob.glob(os.path.join(root, "**", "*.meta.json"), recursive=True)
    return dict(sessions=len(sessions), empty_sessions=len(empty), agents=len(agents), nested_agents=len(nested),
                meta=len(meta), sidechain_lines=side, sidechain_in_session_files=side_in_sessions)


def compaction_counts(root):
    """compact_boundary lines (with trigger / preTokens), isCompactSummary lines and
    tool_results with is_error in the session files (not the agent files)."""
    c = collections.Counter()
    boundaries = []
    for f in sorted(glob.glob(os.path.join(root, "**", "*.jsonl"), recursive=True)):
        if os.path.basename(f).startswith("agent-"):
            continue
        for n, line in enumerate(open(f, encoding="utf-8"), 1):
            d = json.loads(line)
            if d.get("type") == "system" and d.get("subtype") == "compact_boundary":
                m = d.get("compactMetadata") or {}
                boundaries.append("line %d: trigger %s, preTokens %s" % (n, m.get("trigger"), m.get("preTokens")))
            if d.get("isCompactSummary"):
                c["summary"] += 1
            content = (d.get("message") or {}).get("content") if d.get("type") == "user" else None
            for b in content if isinstance(content, list) else []:
                if isinstance(b, dict) and b.get("type") == "tool_result" and b.get("is_error"):
                    c["tool_errors"] += 1
    return boundaries, c


def api_usage(path):
    """Summed cache_read / cache_creation / input tokens of the fake API's answers."""
    t = collections.Counter()
    for line in open(path):
        u = (json.loads(line).get("response") or {}).get("usage") or {}
        for k in ("cache_read_input_tokens", "cache_creation_input_tokens", "input_tokens"):
            t[k] += u.get(k, 0)
    return t


def api_counts(path):
    c = collections.Counter()
    for line in open(path):
        r = json.loads(line)
        q = r.get("request") or {}
        c["exchanges"] += 1
        c["status %s" % r.get("status")] += 1
        if r.get("path", "").startswith("/v1/messages") and "request" in r:
            c["stream" if q.get("stream") else "non-stream"] += 1
            c["role " + q.get("role", "?")] += 1
    return c


def runs(path):
    out = []
    cur = None
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("$ claude "):
            cur = [line[2:], None]
            out.append(cur)
        elif line.startswith("--- exit ") and cur:
            cur[1] = line.split()[2].rstrip(";")
    return out


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/real"
    caps = sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "info.json")))
    md = ["# Real captures", "",
          "Made offline by `scripts/realcapture/` (see its README.md): the real Claude Code CLI "
          "talking through claude-code-proxy to a scripted fake Anthropic API, inside a "
          "loopback-only network namespace. HOME was `/tmp/cchome`, the working directory "
          "`/tmp/ccwork`, the API key a fake one (the proxy stores its SHA-256).", "",
          "Per capture: `requests.db` (the proxy's SQLite, vacuumed), `jsonl/` (the "
          "`~/.claude/projects` folder as Claude Code wrote it), `api_log.jsonl` (the fake "
          "API's ground truth, one line per exchange), `proxy.log`, `claude-runs.log` "
          "(commands, exit codes, output), `info.json`.", "",
          "| capture | Claude Code | proxy | rows | stream / non-stream rows | 529 rows | API exchanges "
          "| session files (empty) | agent files (in subagents/) | isSidechain lines (in session files) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    details = []
    for d in caps:
        p = os.path.join(root, d)
        info = json.load(open(os.path.join(p, "info.json")))
        n, c, models, system_role, session_hdr = db_counts(os.path.join(p, "requests.db"))
        j = jsonl_counts(os.path.join(p, "jsonl"))
        a = api_counts(os.path.join(p, "api_log.jsonl"))
        md.append("| %s | %s | %s | %d | %d / %d | %d | %d | %d (%d) | %d (%d) | %d (%d) |" % (
            d, info["claude_code_version"], info["proxy_variant"], n, c["stream"], c["non-stream"],
            c["status 529"], a["exchanges"], j["sessions"], j["empty_sessions"], j["agents"],
            j["nested_agents"], j["sidechain_lines"], j["sidechain_in_session_files"]))
        details += ["", "## %s" % d, "",
                    "- Claude Code %s, proxy %s%s" % (
                        info["claude_code_version"], info["proxy_variant"],
                        " (forwards SSE `event:` lines)" if info["proxy_variant"] == "event" else
                        " (forwards only `data:` lines: every streamed turn is repeated non-streaming)"),
                    "- commands (cwd /tmp/ccwork):"]
        for cmd, rc in runs(os.path.join(p, "claude-runs.log")):
            details.append("  - `%s` -> exit %s" % (cmd, rc))
        details += [
            "- requests.db: %d rows; %s" % (n, ", ".join("%s: %d" % kv for kv in sorted(c.items()))),
            "- models: %s" % ", ".join("%s x%d" % kv for kv in sorted(models.items())),
            "- rows with a `\"role\":\"system\"` message inside `messages`: %d; rows with an "
            "X-Claude-Code-Session-Id header: %d" % (system_role, session_hdr),
            "- api_log.jsonl: %s" % ", ".join("%s: %d" % kv for kv in sorted(a.items())),
            "- jsonl: %d session files (%d empty), %d agent files (%d under `<session>/subagents/`), "
            "%d `.meta.json`, %d isSidechain lines (%d of them in session files)" % (
                j["sessions"], j["empty_sessions"], j["agents"], j["nested_agents"], j["meta"],
                j["sidechain_lines"], j["sidechain_in_session_files"]),
        ]
        if info.get("scenario"):  # only captures made with a non-default --scenario
            boundaries, cc = compaction_counts(os.path.join(p, "jsonl"))
            roles = collections.Counter()
            for line in open(os.path.join(p, "api_log.jsonl")):
                roles[(json.loads(line).get("request") or {}).get("role")] += 1
            details.append(
                "- scenario: %s; compact_boundary lines: %d (%s); isCompactSummary lines: %d; tool_results with "
                "is_error in the session file: %d; compaction requests the fake API answered: %d" % (
                    info["scenario"], len(boundaries), "; ".join(boundaries) or "none", cc["summary"],
                    cc["tool_errors"], roles["compact"]))
        if info.get("cache_model"):  # only captures made with a non-default --cache-model
            u = api_usage(os.path.join(p, "api_log.jsonl"))
            total = sum(u.values()) or 1
            details.append(
                "- fake API cache model: %s%s; answered usage: cache_read %d, cache_creation %d, input %d "
                "tokens (cache_read %.1f%%)" % (
                    info["cache_model"],
                    " (automatic prefix cache: 64-token blocks, one cache for all models, no TTL, "
                    "cache_control ignored)" if info["cache_model"] == "prefix" else "",
                    u["cache_read_input_tokens"], u["cache_creation_input_tokens"], u["input_tokens"],
                    100.0 * u["cache_read_input_tokens"] / total))
    notes = os.path.join(os.path.dirname(os.path.abspath(__file__)), "observations.md")
    text = "\n".join(md + details) + "\n"
    if os.path.exists(notes):
        text += "\n" + open(notes).read()
    open(os.path.join(root, "MANIFEST.md"), "w").write(text)
    print("wrote %s" % os.path.join(root, "MANIFEST.md"))


if __name__ == "__main__":
    main()
