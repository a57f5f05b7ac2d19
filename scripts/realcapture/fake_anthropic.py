#!/usr/bin/env python3
"""Scripted fake Anthropic Messages API for offline real-program captures.

Python 3 standard library only.  Listens on 127.0.0.1 and answers

  POST /v1/messages               streaming (SSE) and non-streaming
  POST /v1/messages/count_tokens  {"input_tokens": N}
  GET  /v1/models                 a small model list
  anything else                   404 with an Anthropic-style error body

The replies are scripted from the request content so that a real Claude Code
session does real work (parallel sub-agents, Bash/Glob/Read tool calls,
thinking blocks, a final text answer).  The script is chosen by a marker in
the latest plain (non tool_result) user message:

  [rc:agents]  main agent: 2-3 parallel Task/Agent calls (one in the
               background if the schema has run_in_background), then
               Bash + Glob, then Read, then a final text
  [rc:tools]   Bash, then text
  [rc:think]   thinking + Read, then thinking + text
  [rc:sub1] .. [rc:sub3]   sub-agent prompts (written by the [rc:agents]
               script): one or two tool calls, then text
  [rc:errors]  Read of a missing file, then a Bash command that exits 2
               (two tool errors), then text
  [rc:after]   (after a compaction) thinking + Read, then thinking + text
  compaction   the last user message asks for "a detailed summary of the
               conversation" (Claude Code's /compact or auto-compact
               prompt): <analysis> + <summary> text, end_turn, whether or
               not tools are offered
  no tools (any marker)    utility request (title, summary, topic, Bash
               output file paths, quota, ...): short text in the asked format
  "Warmup" / no marker     short text, end_turn

Usage follows the prompt-caching breakpoint rules with an own prefix cache
(5 min TTL, or 1 h for ttl "1h"; lookback of 20 blocks; minimum cacheable
prefix 1024 tokens, 2048 for Haiku).  Tokens are estimated as len(json)/4.
With --cache-model prefix (or FAKE_API_CACHE_MODEL=prefix) it acts instead
as a server-side automatic prefix cache: cache_control is ignored, one cache
is shared by all models, 64-token blocks, no TTL (see compute_usage_prefix).

Exactly one main-agent request (the first one answering the sub-agents'
results) is answered once with HTTP 529 overloaded_error.

Every exchange is appended as one JSON line to --log (the ground truth).
"""

import argparse
import base64
import gzip
import hashlib
import json
import os
import random
import re
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"seq": 0, "overloaded_sent": False, "msg_counter": 0}
CACHE = {}  # prefix hash -> (expires_at, tokens)
PREFIX_CACHE = set()  # --cache-model prefix: chained hashes of the 64-token blocks written
PREFIX_BLOCK = 64
ARGS = None
RNG = random.Random(7)


def now_iso():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def new_id(prefix, n=24):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    with LOCK:
        STATE["msg_counter"] += 1
    return prefix + "".join(RNG.choice(alphabet) for _ in range(n))


def est_tokens(obj):
    s = obj if isinstance(obj, str) else json.dumps(obj, separators=(",", ":"), sort_keys=True)
    return max(1, (len(s) + 3) // 4)


# --------------------------------------------------------------------------
# request inspection


def blocks_of(content):
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in (content or []) if isinstance(b, dict)]


def text_of(content):
    return "\n".join(b.get("text", "") for b in blocks_of(content) if b.get("type") == "text")


def system_text(req):
    s = req.get("system")
    if isinstance(s, str):
        return s
    return "\n".join(b.get("text", "") for b in (s or []) if isinstance(b, dict))


def is_plain_user(msg):
    return msg.get("role") == "user" and not any(
        b.get("type") == "tool_result" for b in blocks_of(msg.get("content"))
    )


def script_position(req):
    """(marker text of the latest plain user message, step index after it)."""
    msgs = req.get("messages") or []
    last_plain = None
    for i, m in enumerate(msgs):
        if is_plain_user(m):
            last_plain = i
    if last_plain is None:
        return "", 0
    prompt = text_of(msgs[last_plain].get("content"))
    step = 0
    prev_role = None
    for m in msgs[last_plain + 1:]:
        if m.get("role") == "assistant" and prev_role != "assistant":
            step += 1
        prev_role = m.get("role")
    return prompt, step


def first_user_text(req):
    for m in req.get("messages") or []:
        if m.get("role") == "user":
            return text_of(m.get("content"))
    return ""


def tool_names(req):
    return [t.get("name") for t in req.get("tools") or [] if isinstance(t, dict)]


def tool_schema(req, name):
    for t in req.get("tools") or []:
        if isinstance(t, dict) and t.get("name") == name:
            return t.get("input_schema") or {}
    return {}


def workdir(req):
    m = re.search(r"Working directory: (\S+)", system_text(req))
    if m:
        return m.group(1)
    m = re.search(r"Working directory: (\S+)", json.dumps(req.get("messages") or []))
    return m.group(1) if m else "/tmp/ccwork"


def thinking_enabled(req):
    t = req.get("thinking")
    return isinstance(t, dict) and t.get("type") in ("enabled", "adaptive")


COMPACT_RE = re.compile(r"create a detailed summary of (the conversation|this conversation|the RECENT portion)", re.I)


def is_compaction(req):
    """Claude Code's compaction request: its last user message holds the summary
    prompt ("Your task is to create a detailed summary of the conversation so far")."""
    for m in reversed(req.get("messages") or []):
        if m.get("role") == "user":
            return bool(COMPACT_RE.search(text_of(m.get("content"))))
    return False


def classify(req):
    prompt, step = script_position(req)
    tools = tool_names(req)
    if is_compaction(req):
        return "compact", "compact", step
    if not tools:
        return "utility", "none", step
    m = re.search(r"\[rc:(agents|tools|think|errors|after|sub\d)\]", prompt)
    if m:
        kind = m.group(1)
        if kind.startswith("sub"):
            return "subagent", kind, step
        return "main", kind, step
    if first_user_text(req).strip().lower() == "warmup":
        return "warmup", "none", step
    return "other", "none", step


# --------------------------------------------------------------------------
# prompt-cache model


def cache_segments(req):
    """Prefix in API order tools -> system -> messages, one segment per block."""
    segs = []
    model = req.get("model", "")
    for t in req.get("tools") or []:
        segs.append((json.dumps(t, sort_keys=True), bool(isinstance(t, dict) and t.get("cache_control")),
                     (t.get("cache_control") or {}).get("ttl") if isinstance(t, dict) else None))
    s = req.get("system")
    for b in ([{"type": "text", "text": s}] if isinstance(s, str) else (s or [])):
        cc = b.get("cache_control") if isinstance(b, dict) else None
        segs.append((json.dumps(b, sort_keys=True), bool(cc), (cc or {}).get("ttl")))
    for m in req.get("messages") or []:
        for b in blocks_of(m.get("content")):
            cc = b.get("cache_control")
            bb = {k: v for k, v in b.items() if k != "cache_control"}
            segs.append((m.get("role", "") + ":" + json.dumps(bb, sort_keys=True), bool(cc), (cc or {}).get("ttl")))
    return model, segs


def compute_usage(req):
    model, segs = cache_segments(req)
    h = hashlib.sha256(("model:" + model).encode()).digest()
    hashes, cum = [], []
    total = 0
    for text, _, _ in segs:
        h = hashlib.sha256(h + text.encode()).digest()
        hashes.append(h)
        total += est_tokens(text)
        cum.append(total)
    total += 4  # framing
    bps = [i for i, (_, is_bp, _) in enumerate(segs) if is_bp]
    min_cache = 2048 if "haiku" in model else 1024
    t = time.time()
    read = 0
    with LOCK:
        for k in list(CACHE):
            if CACHE[k][0] < t:
                del CACHE[k]
        best = -1
        for bp in bps:
            for j in range(bp, max(-1, bp - 20), -1):
                if hashes[j] in CACHE:
                    best = max(best, j)
                    break
        if best >= 0:
            read = cum[best]
            exp, tok = CACHE[hashes[best]]
            CACHE[hashes[best]] = (max(exp, t + 300), tok)
        creation = 0
        creation_1h = 0
        if bps:
            last = bps[-1]
            upto = cum[last]
            if upto >= min_cache:
                creation = max(0, upto - read)
                for bp in bps:
                    if cum[bp] >= min_cache:
                        ttl = 3600 if segs[bp][2] == "1h" else 300
                        old = CACHE.get(hashes[bp], (0, 0))[0]
                        CACHE[hashes[bp]] = (max(old, t + ttl), cum[bp])
                if segs[last][2] == "1h":
                    creation_1h = creation
            else:
                upto = read
        else:
            upto = read
    inp = max(1, total - max(upto, read))
    return {
        "input_tokens": inp,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": creation - creation_1h,
            "ephemeral_1h_input_tokens": creation_1h,
        },
        "output_tokens": 0,
        "service_tier": "standard",
    }


def prefix_tokens(req):
    """--cache-model prefix: the request as a stream of pseudo-tokens, in API order
    tools -> system -> messages.  Each block (tool, system block, message content
    block) is one segment, as in cache_segments but with every cache_control left
    out; its est_tokens(text) tokens are its text cut into 4-character pieces.  A
    token is (starts a segment, piece), so that segment boundaries count."""
    def strip(b):
        return {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b
    texts = [json.dumps(strip(t), sort_keys=True) for t in req.get("tools") or []]
    s = req.get("system")
    texts += [json.dumps(strip(b), sort_keys=True)
              for b in ([{"type": "text", "text": s}] if isinstance(s, str) else (s or []))]
    for m in req.get("messages") or []:
        texts += [m.get("role", "") + ":" + json.dumps(strip(b), sort_keys=True) for b in blocks_of(m.get("content"))]
    toks = []
    for text in texts:
        for k in range(est_tokens(text)):
            toks.append((k == 0, text[4 * k:4 * k + 4]))
    return toks


def compute_usage_prefix(req, write=True):
    """--cache-model prefix: an automatic prefix cache over whole 64-token blocks, one
    cache for every model, no TTL.  Block i's key chains the keys of blocks 0..i-1.
    cache_read is the leading run of blocks some earlier request wrote, cache_creation
    the rest of the full blocks, input_tokens the tokens after the last full block (no
    framing tokens are added in this mode).  A request writes its blocks as soon as it
    is received (before its answer is sent), so requests that arrive later read them."""
    toks = prefix_tokens(req)
    nblocks = len(toks) // PREFIX_BLOCK
    h = hashlib.sha256(b"prefix-cache").digest()
    keys = []
    for b in range(nblocks):
        chunk = json.dumps(toks[b * PREFIX_BLOCK:(b + 1) * PREFIX_BLOCK], separators=(",", ":"))
        h = hashlib.sha256(h + chunk.encode()).digest()
        keys.append(h)
    with LOCK:
        hit = 0
        while hit < nblocks and keys[hit] in PREFIX_CACHE:
            hit += 1
        if write:
            PREFIX_CACHE.update(keys)
    read = hit * PREFIX_BLOCK
    creation = (nblocks - hit) * PREFIX_BLOCK
    return {
        "input_tokens": len(toks) - read - creation,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": creation,
            "ephemeral_1h_input_tokens": 0,
        },
        "output_tokens": 0,
        "service_tier": "standard",
    }


def usage_for(req, write=True):
    if ARGS.cache_model == "prefix":
        return compute_usage_prefix(req, write)
    return compute_usage(req)


# --------------------------------------------------------------------------
# scripted replies


def thinking_block(text, omitted=False):
    """A thinking block; with thinking.display "omitted" the text is left out
    (the signature still carries it), as the API does for such requests."""
    sig = base64.b64encode(hashlib.sha256(text.encode()).digest() * 3).decode()
    return {"type": "thinking", "thinking": "" if omitted else text, "signature": sig,
            "_tokens": est_tokens(text)}


def tool_use(name, inp):
    return {"type": "tool_use", "id": new_id("toolu_01"), "name": name, "input": inp}


def pick_tool(req, *names):
    have = tool_names(req)
    for n in names:
        if n in have:
            return n
    return None


def bash_or_glob(req, command, desc, pattern):
    if "Bash" in tool_names(req):
        return tool_use("Bash", {"command": command, "description": desc})
    if "Glob" in tool_names(req):
        return tool_use("Glob", {"pattern": pattern})
    return None


def agent_call(req, tool, n, background):
    schema = tool_schema(req, tool)
    props = schema.get("properties") or {}
    inp = {
        "description": "Capture sub-task %d" % n,
        "prompt": "[rc:sub%d] Look at the files in the working directory and report one fact in a sentence." % n,
    }
    if "subagent_type" in props:
        inp["subagent_type"] = "general-purpose"
    if background and "run_in_background" in props:
        inp["run_in_background"] = True
    return tool_use(tool, inp)


def script_reply(req, role, kind, step):
    """-> (content blocks, stop_reason, tag)."""
    wd = workdir(req)
    think = thinking_enabled(req)
    omitted = (req.get("thinking") or {}).get("display") == "omitted"
    content = []

    def end(text):
        content.append({"type": "text", "text": text})
        return content, "end_turn"

    def tools_(*blocks):
        blocks = [b for b in blocks if b]
        if not blocks:
            return end("No usable tool is offered; finishing.")
        content.extend(blocks)
        return content, "tool_use"

    if role == "main" and kind == "agents":
        if step == 0:
            if think:
                content.append(thinking_block("The user wants parallel sub-agents. I will start three, one in the background.", omitted))
            tool = pick_tool(req, "Agent", "Task")
            if not tool:
                return end("There is no agent tool here.")
            content.append({"type": "text", "text": "I'll start three sub-agents in parallel."})
            return tools_(agent_call(req, tool, 1, False), agent_call(req, tool, 2, False),
                          agent_call(req, tool, 3, True))
        if step == 1:
            if think:
                content.append(thinking_block("The sub-agents answered. Now I list the files and glob for text files.", omitted))
            glob = tool_use("Glob", {"pattern": "*.txt"}) if "Glob" in tool_names(req) else None
            return tools_(bash_or_glob(req, "ls -la", "List files", "*"), glob)
        if step == 2:
            tool = pick_tool(req, "Read")
            return tools_(tool_use("Read", {"file_path": wd + "/notes.txt"}) if tool else None)
        if think:
            content.append(thinking_block("I have everything I need for a short summary.", omitted))
        return end("Done: three sub-agents ran, the directory holds notes.txt and data.txt.")
    if role == "main" and kind == "tools":
        if step == 0:
            return tools_(bash_or_glob(req, "wc -c notes.txt data.txt", "Count bytes", "*.txt"))
        return end("notes.txt and data.txt are both small text files.")
    if role == "main" and kind == "think":
        if step == 0:
            if think:
                content.append(thinking_block("Let me read data.txt before answering.", omitted))
            tool = pick_tool(req, "Read")
            return tools_(tool_use("Read", {"file_path": wd + "/data.txt"}) if tool else None)
        if think:
            content.append(thinking_block("data.txt has three numbers; their sum is 6.", omitted))
        return end("The numbers in data.txt add up to 6.")
    if role == "main" and kind == "errors":
        # two tool errors: a Read of a file that does not exist, a Bash command exiting 2
        if step == 0:
            tool = pick_tool(req, "Read")
            return tools_(tool_use("Read", {"file_path": wd + "/missing.txt"}) if tool
                          else bash_or_glob(req, "cat missing.txt", "Show missing.txt", "missing.txt"))
        if step == 1 and "Bash" in tool_names(req):
            return tools_(tool_use("Bash", {"command": "ls missing.txt", "description": "Look for missing.txt"}))
        return end("missing.txt does not exist; only notes.txt and data.txt are here.")
    if role == "main" and kind == "after":
        if step == 0:
            if think:
                content.append(thinking_block("The summary says data.txt holds numbers; read it again.", omitted))
            tool = pick_tool(req, "Read")
            return tools_(tool_use("Read", {"file_path": wd + "/data.txt"}) if tool else None)
        if think:
            content.append(thinking_block("1 + 2 + 3 = 6.", omitted))
        return end("Continuing after the compaction: the numbers in data.txt add up to 6.")
    if role == "compact":
        return end(COMPACT_SUMMARY)
    if role == "subagent":
        n = int(kind[3:])
        if step == 0:
            if n == 2:
                return tools_(tool_use("Glob", {"pattern": "*.txt"}) if "Glob" in tool_names(req)
                              else bash_or_glob(req, "ls *.txt", "List text files", "*.txt"))
            return tools_(bash_or_glob(req, "head -n 2 notes.txt" if n == 1 else "sleep 1; wc -l notes.txt",
                                       "Look at notes", "*.txt"))
        if step == 1 and n == 2 and "Read" in tool_names(req):
            return tools_(tool_use("Read", {"file_path": wd + "/notes.txt"}))
        return end("Sub-agent %d: notes.txt is a short text file." % n)
    if role == "utility":
        return utility_reply(req), "end_turn"
    if role == "warmup":
        return end("Ready.")
    return end("OK.")


COMPACT_SUMMARY = """<analysis>
The user asked for an inspection of /tmp/ccwork with parallel sub-agents, then for a check of a missing file.
Three sub-agents ran (one in the background); ls and a Read of notes.txt showed notes.txt and data.txt.
Reading missing.txt failed (the file does not exist), and `ls missing.txt` exited with code 2.
</analysis>

<summary>
1. Primary Request and Intent:
   Inspect the folder /tmp/ccwork with parallel sub-agents, list and read its files, then try missing.txt.

2. Key Technical Concepts:
   - Parallel sub-agents, one run in the background
   - Plain text files in the working directory

3. Files and Code Sections:
   - /tmp/ccwork/notes.txt: three lines, alpha, beta, gamma
   - /tmp/ccwork/data.txt: three lines, 1, 2, 3
   - /tmp/ccwork/missing.txt: does not exist

4. Errors and fixes:
   - Read of missing.txt: "File does not exist". Not fixed; the file is simply absent.
   - `ls missing.txt` exited with code 2 for the same reason.

5. Problem Solving:
   Confirmed that only notes.txt and data.txt are present.

6. All user messages:
   - "[rc:agents] Inspect this folder with parallel sub-agents, then list and read the files."
   - "[rc:errors] Read missing.txt, then look for it with ls."

7. Pending Tasks:
   - None.

8. Current Work:
   The last turn reported that missing.txt does not exist.

9. Optional Next Step:
   Wait for the user's next request.
</summary>"""


def utility_reply(req):
    sysx = system_text(req).lower()
    allx = (sysx + "\n" + json.dumps(req.get("messages") or []).lower())
    fmt = req.get("output_format") or req.get("response_format")
    if "<filepaths>" in sysx:
        # Bash output file-path extraction (Claude Code 1.x/2.0)
        m = re.search(r"Command: ([^\n]*)", first_user_text(req))
        cmd = m.group(1) if m else ""
        shows = any(w in cmd for w in ("cat ", "head ", "tail ", "wc "))
        paths = [p for p in re.findall(r"[\w./-]+\.txt", cmd)] if shows else []
        text = "<is_displaying_contents>\n%s\n</is_displaying_contents>\n\n<filepaths>\n%s</filepaths>" % (
            "true" if shows else "false", "".join(p + "\n" for p in paths))
    elif "isnewtopic" in allx:
        text = json.dumps({"isNewTopic": True, "title": "Capture session"})
    elif fmt or "json" in sysx:
        if "title" in allx:
            text = json.dumps({"title": "Capture session"})
        else:
            text = "{}"
    elif "prefix" in allx and "command" in allx:
        text = "none"
    elif "title" in allx:
        text = "Capture session"
    else:
        text = "OK."
    return [{"type": "text", "text": text}]


# --------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-anthropic/1"

    def log_message(self, fmt, *a):
        sys.stderr.write("fake-api: " + (fmt % a) + "\n")

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        enc = (self.headers.get("Content-Encoding") or "").lower()
        if enc == "gzip":
            raw = gzip.decompress(raw)
        elif enc == "deflate":
            raw = zlib.decompress(raw)
        return raw

    def _send_json(self, status, obj, extra=None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _log(self, rec):
        with LOCK:
            STATE["seq"] += 1
            rec = dict(seq=STATE["seq"], **rec)
            with open(ARGS.log, "a") as f:
                f.write(json.dumps(rec, sort_keys=True) + "\n")

    def _hdrs(self):
        keep = {}
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in ("x-api-key", "authorization"):
                v = "<redacted>"
            keep[lk] = v
        return keep

    def do_GET(self):
        t0 = time.time()
        path = self.path.split("?")[0]
        if path == "/v1/models":
            models = ["claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001"]
            obj = {"data": [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"}
                            for m in models], "has_more": False, "first_id": models[0], "last_id": models[-1]}
            status = 200
        else:
            status = 404
            obj = {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}}
        self._send_json(status, obj)
        self._log({"ts": now_iso(), "method": "GET", "path": self.path, "status": status,
                   "headers": self._hdrs(), "elapsed_ms": int((time.time() - t0) * 1000)})

    def do_POST(self):
        t0 = time.time()
        path = self.path.split("?")[0]
        raw = self._body()
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        base = {"ts": now_iso(), "method": "POST", "path": self.path, "headers": self._hdrs(),
                "body_bytes": len(raw), "body_sha256": hashlib.sha256(raw).hexdigest()}
        if ARGS.cache_model != "breakpoint":
            base["cache_model"] = ARGS.cache_model
        request_id = new_id("req_01")
        if path == "/v1/messages/count_tokens":
            usage = usage_for(dict(req, tools=req.get("tools")), write=False)
            n = usage["input_tokens"] + usage["cache_read_input_tokens"] + usage["cache_creation_input_tokens"]
            self._send_json(200, {"input_tokens": n}, {"request-id": request_id})
            self._log(dict(base, status=200, request_id=request_id, count_tokens=n))
            return
        if path != "/v1/messages":
            self._send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"},
                                  "request_id": request_id}, {"request-id": request_id})
            self._log(dict(base, status=404, request_id=request_id))
            return

        role, kind, step = classify(req)
        summary = {
            "model": req.get("model"), "stream": bool(req.get("stream")), "max_tokens": req.get("max_tokens"),
            "n_messages": len(req.get("messages") or []), "tools": tool_names(req),
            "roles": [m.get("role") for m in req.get("messages") or []],
            "system_chars": len(system_text(req)), "thinking": req.get("thinking"),
            "top_level_keys": sorted(req.keys()), "role": role, "script": kind, "step": step,
            "first_user_text": first_user_text(req)[:200],
        }
        base.update(request=summary, request_id=request_id)

        if role == "main" and kind == "agents" and step == 1 and not STATE["overloaded_sent"]:
            with LOCK:
                fire = not STATE["overloaded_sent"]
                STATE["overloaded_sent"] = True
            if fire:
                err = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"},
                       "request_id": request_id}
                self._send_json(529, err, {"request-id": request_id, "x-should-retry": "true",
                                           "Server-Timing": "upstream;dur=%d" % int((time.time() - t0) * 1000)})
                self._log(dict(base, status=529, response={"error": "overloaded_error"}))
                return

        content, stop = script_reply(req, role, kind, step)
        hidden = sum(b.pop("_tokens", 0) for b in content if b["type"] == "thinking")
        usage = usage_for(req)
        out_tokens = est_tokens(content) + hidden + 3
        usage["output_tokens"] = out_tokens
        msg_id = new_id("msg_01")
        model = req.get("model") or "claude-sonnet-4-5-20250929"
        delay = ARGS.latency_ms / 1000.0
        resp_summary = {"message_id": msg_id, "model": model, "stop_reason": stop,
                        "content_types": [b["type"] for b in content], "output_tokens": out_tokens,
                        "usage": usage,
                        "tool_uses": [{"id": b["id"], "name": b["name"], "input": b["input"]}
                                      for b in content if b["type"] == "tool_use"]}
        if req.get("stream"):
            time.sleep(delay)
            timing = int((time.time() - t0) * 1000)
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("request-id", request_id)
            self.send_header("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")
            self.send_header("Server-Timing", "upstream;dur=%d" % timing)
            self.end_headers()
            events = sse_events(msg_id, model, content, stop, usage)
            for ev, data in events:
                chunk = ("event: %s\ndata: %s\n\n" % (ev, json.dumps(data, separators=(",", ":")))).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.flush()
                time.sleep(ARGS.event_gap_ms / 1000.0)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
            self._log(dict(base, status=200, response=dict(resp_summary, sse_events=[e for e, _ in events])))
        else:
            time.sleep(delay)
            msg = {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": content,
                   "stop_reason": stop, "stop_sequence": None, "usage": usage}
            timing = int((time.time() - t0) * 1000)
            self._send_json(200, msg, {"request-id": request_id, "Server-Timing": "upstream;dur=%d" % timing,
                                       "anthropic-organization-id": "00000000-0000-4000-8000-000000000000"})
            self._log(dict(base, status=200, response=resp_summary))


def split3(s):
    if len(s) < 6:
        return [s]
    a, b = len(s) // 3, 2 * len(s) // 3
    return [s[:a], s[a:b], s[b:]]


def sse_events(msg_id, model, content, stop, usage):
    start_usage = dict(usage, output_tokens=1)
    ev = [("message_start", {"type": "message_start", "message": {
        "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": start_usage}}),
        ("ping", {"type": "ping"})]
    for i, b in enumerate(content):
        t = b["type"]
        if t == "thinking":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "thinking", "thinking": "", "signature": ""}}))
            for part in (split3(b["thinking"]) if b["thinking"] else []):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "thinking_delta", "thinking": part}}))
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "signature_delta", "signature": b["signature"]}}))
        elif t == "text":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "text", "text": ""}}))
            for part in split3(b["text"]):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "text_delta", "text": part}}))
        elif t == "tool_use":
            ev.append(("content_block_start", {"type": "content_block_start", "index": i,
                                               "content_block": {"type": "tool_use", "id": b["id"], "name": b["name"],
                                                                 "input": {}}}))
            ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                               "delta": {"type": "input_json_delta", "partial_json": ""}}))
            for part in split3(json.dumps(b["input"], separators=(",", ":"))):
                ev.append(("content_block_delta", {"type": "content_block_delta", "index": i,
                                                   "delta": {"type": "input_json_delta", "partial_json": part}}))
        ev.append(("content_block_stop", {"type": "content_block_stop", "index": i}))
        if i == 0:
            ev.append(("ping", {"type": "ping"}))
    ev.append(("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                 "usage": {k: usage[k] for k in ("input_tokens", "cache_creation_input_tokens",
                                                                 "cache_read_input_tokens", "output_tokens")}}))
    ev.append(("message_stop", {"type": "message_stop"}))
    return ev


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8787)
    ap.add_argument("--log", required=True, help="JSON-lines ground-truth log")
    ap.add_argument("--latency-ms", type=int, default=150, help="delay before the first byte")
    ap.add_argument("--event-gap-ms", type=int, default=5, help="delay between SSE events")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache-model", choices=("breakpoint", "prefix"),
                    default=os.environ.get("FAKE_API_CACHE_MODEL") or "breakpoint",
                    help="breakpoint: Anthropic prompt-caching rules (default); prefix: an automatic "
                         "prefix cache over 64-token blocks, shared by all models, no TTL "
                         "(default from FAKE_API_CACHE_MODEL)")
    ARGS = ap.parse_args()
    if ARGS.cache_model not in ("breakpoint", "prefix"):
        ap.error("FAKE_API_CACHE_MODEL must be breakpoint or prefix, not %r" % ARGS.cache_model)
    RNG.seed(ARGS.seed)
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), Handler)
    srv.daemon_threads = True
    sys.stderr.write("fake-api: listening on 127.0.0.1:%d (cache model %s)\n" % (ARGS.port, ARGS.cache_model))
    srv.serve_forever()


if __name__ == "__main__":
    main()
