#!/usr/bin/env python3
"""Self-test of fake_anthropic.py (standard library only, loopback only).

    python3 scripts/realcapture/selftest_fake_api.py

Starts the fake API on a free 127.0.0.1 port and checks: SSE event order and
payloads, tool_use partial JSON, non-streaming JSON, prompt-cache usage
(creation, then read of the same prefix; a changed prefix misses), the
single 529, count_tokens, models and 404, the [rc:errors] script and the
reply to a compaction (summary) prompt.  Then, on a second server started
with FAKE_API_CACHE_MODEL=prefix, the prefix cache model: 64-token blocks,
cache_control ignored, one cache for all models, a request readable by later
ones as soon as it is received, no write by a 529 or by count_tokens.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = []


def check(name, cond, detail=""):
    RESULTS.append(bool(cond))
    print(("ok   " if cond else "FAIL ") + name + ("" if cond else "  " + str(detail)))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def post(port, path, body):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "x-api-key": "sk-ant-fake"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def parse_sse(text):
    events = []
    for block in text.split("\n\n"):
        ev, data = None, None
        for line in block.split("\n"):
            if line.startswith("event: "):
                ev = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        if ev:
            events.append((ev, data))
    return events


def request(prompt, stream, system_extra="", thinking=True):
    return {
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 1024, "stream": stream,
        "thinking": {"type": "enabled", "budget_tokens": 1024} if thinking else None,
        "tools": [{"name": n, "description": "tool " + n * 200,
                   "input_schema": {"type": "object", "properties": {"run_in_background": {"type": "boolean"},
                                                                     "subagent_type": {"type": "string"}}}}
                  for n in ("Task", "Bash", "Glob", "Read")],
        "system": [{"type": "text", "text": "You are Claude Code. " + "x" * 6000 + system_extra,
                    "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt,
                                                   "cache_control": {"type": "ephemeral"}}]}],
    }


def start_server(extra=(), env=None):
    port = free_port()
    log = os.path.join(tempfile.mkdtemp(), "api_log.jsonl")
    e = dict(os.environ)
    e.pop("FAKE_API_CACHE_MODEL", None)
    e.update(env or {})
    srv = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_anthropic.py"), "--port", str(port),
                            "--log", log, "--event-gap-ms", "0"] + list(extra or ["--latency-ms", "0"]),
                           stderr=subprocess.DEVNULL, env=e)
    for _ in range(50):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    return srv, port, log


def main():
    srv, port, log = start_server()
    try:
        breakpoint_checks(port, log)
    finally:
        srv.terminate()
        srv.wait()
    # 300 ms before the first byte, so that a request is still unanswered when the next arrives
    srv, port, log = start_server(["--latency-ms", "300"], {"FAKE_API_CACHE_MODEL": "prefix"})
    try:
        prefix_checks(port, log)
    finally:
        srv.terminate()
        srv.wait()
    failed = RESULTS.count(False)
    print("%d passed, %d failed" % (len(RESULTS) - failed, failed))
    return 1 if failed else 0


def breakpoint_checks(port, log):
    if True:
        st, hd, body = post(port, "/v1/messages?beta=true", request("[rc:agents] go", True))
        check("stream status 200", st == 200, st)
        check("server-timing header", "upstream;dur=" in (hd.get("Server-Timing") or ""), hd)
        evs = parse_sse(body)
        names = [e for e, _ in evs]
        check("message_start first, message_stop last", names[0] == "message_start" and names[-1] == "message_stop",
              names)
        check("ping present", "ping" in names)
        check("message_delta before message_stop", names[-2] == "message_delta", names[-3:])
        start = evs[0][1]["message"]
        check("msg_ id", start["id"].startswith("msg_"), start["id"])
        u1 = start["usage"]
        check("first request creates cache", u1["cache_creation_input_tokens"] > 1000 and
              u1["cache_read_input_tokens"] == 0, u1)
        types = [d["content_block"]["type"] for e, d in evs if e == "content_block_start"]
        check("thinking, text and 3 agent tool_use blocks", types == ["thinking", "text", "tool_use", "tool_use",
                                                                      "tool_use"], types)
        deltas = {}
        for e, d in evs:
            if e == "content_block_delta":
                deltas.setdefault(d["index"], []).append(d["delta"])
        check("thinking has thinking_delta and signature_delta",
              {x["type"] for x in deltas[0]} == {"thinking_delta", "signature_delta"}, deltas[0])
        inp = json.loads("".join(x["partial_json"] for x in deltas[4]))
        check("tool_use partial_json assembles; background flag on the third",
              inp.get("run_in_background") is True and "[rc:sub3]" in inp["prompt"], inp)
        md = [d for e, d in evs if e == "message_delta"][0]
        check("message_delta stop_reason tool_use", md["delta"]["stop_reason"] == "tool_use", md)
        check("message_delta usage output_tokens", md["usage"]["output_tokens"] > 0, md)
        starts = sum(1 for n in names if n == "content_block_start")
        stops = sum(1 for n in names if n == "content_block_stop")
        check("every block started is stopped", starts == stops, (starts, stops))

        st, _, body = post(port, "/v1/messages", request("[rc:agents] go", False))
        msg = json.loads(body)
        check("non-stream JSON message", st == 200 and msg["type"] == "message" and msg["id"].startswith("msg_"), body)
        u2 = msg["usage"]
        check("same prefix is read from cache", u2["cache_read_input_tokens"] == u1["cache_creation_input_tokens"]
              and u2["cache_creation_input_tokens"] == 0, u2)

        st, _, body = post(port, "/v1/messages", request("[rc:agents] go", False, system_extra="changed"))
        u3 = json.loads(body)["usage"]
        check("changed system prompt misses", u3["cache_read_input_tokens"] == 0 and
              u3["cache_creation_input_tokens"] > 1000, u3)

        step1 = request("[rc:agents] go", True)
        step1["messages"] += [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Task",
                                                                 "input": {}}]},
                              {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                            "content": "done"}]}]
        st, _, body = post(port, "/v1/messages", step1)
        check("first step-1 request gets 529 overloaded_error",
              st == 529 and json.loads(body)["error"]["type"] == "overloaded_error", (st, body))
        st, _, body = post(port, "/v1/messages", step1)
        check("retry succeeds", st == 200, st)

        util = {"model": "claude-haiku-4-5-20251001", "max_tokens": 100, "stream": False,
                "system": [{"type": "text", "text": "Write a title for this conversation."}],
                "messages": [{"role": "user", "content": "[rc:agents] hello"}]}
        st, _, body = post(port, "/v1/messages", util)
        check("tool-less request is a utility reply", json.loads(body)["content"][0]["text"] == "Capture session", body)

        st, _, body = post(port, "/v1/messages/count_tokens", request("hi", False))
        check("count_tokens", st == 200 and json.loads(body)["input_tokens"] > 1000, body)
        st, body = get(port, "/v1/models")
        check("models", st == 200 and len(json.loads(body)["data"]) == 3, body)
        st, body = get(port, "/v1/nothing")
        check("404 elsewhere", st == 404, st)

        recs = [json.loads(l) for l in open(log)]
        check("ground-truth log has every exchange", len(recs) == 9, len(recs))
        check("log redacts the key", all(r["headers"].get("x-api-key") == "<redacted>" for r in recs if r["method"] == "POST"))
        check("log has message ids and usage", recs[0]["response"]["message_id"] == start["id"] and
              recs[0]["response"]["usage"]["cache_creation_input_tokens"] == u1["cache_creation_input_tokens"])
        check("breakpoint log has no cache_model field", all("cache_model" not in r for r in recs))
        compaction_checks(port)


def compaction_checks(port):
    st, _, body = post(port, "/v1/messages", request("[rc:errors] go", False))
    tu = [b for b in json.loads(body)["content"] if b["type"] == "tool_use"]
    check("[rc:errors] starts with a Read of missing.txt",
          len(tu) == 1 and tu[0]["name"] == "Read" and tu[0]["input"]["file_path"].endswith("/missing.txt"), body)
    comp = request("[rc:errors] go", True)
    comp["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                                      "content": "File does not exist."},
                                     {"type": "text", "text": "CRITICAL: Respond with TEXT ONLY.\n\nYour task is to "
                                      "create a detailed summary of the conversation so far, paying close attention"}]}]
    st, _, body = post(port, "/v1/messages", comp)
    evs = parse_sse(body)
    text = "".join(d["delta"].get("text", "") for e, d in evs if e == "content_block_delta")
    types = [d["content_block"]["type"] for e, d in evs if e == "content_block_start"]
    md = [d for e, d in evs if e == "message_delta"][0]
    check("compaction prompt gets <analysis> and <summary> text, no tool call",
          st == 200 and "<analysis>" in text and "<summary>" in text and types == ["text"]
          and md["delta"]["stop_reason"] == "end_turn", (st, types, text[:80]))
    comp.pop("tools")
    comp["stream"] = False
    st, _, body = post(port, "/v1/messages", comp)
    check("tool-less compaction request gets the summary too", "<summary>" in json.loads(body)["content"][0]["text"],
          body[:200])


def usage_of(port, body):
    st, _, text = post(port, "/v1/messages", body)
    if st != 200:
        return st, None
    if body.get("stream"):
        return st, [d for e, d in parse_sse(text) if e == "message_start"][0]["message"]["usage"]
    return st, json.loads(text)["usage"]


def tokens(u):
    return u["input_tokens"] + u["cache_read_input_tokens"] + u["cache_creation_input_tokens"]


def prefix_checks(port, log):
    B = 64
    answers = []

    def use(body):
        st, u = usage_of(port, body)
        if u:
            answers.append(u)
        return st, u

    base = request("[rc:tools] prefix", False)
    _, u1 = use(base)
    n = tokens(u1)
    check("prefix: first request creates whole blocks, reads nothing",
          u1["cache_read_input_tokens"] == 0 and u1["cache_creation_input_tokens"] == (n // B) * B
          and u1["input_tokens"] == n % B and u1["cache_creation_input_tokens"] > 1000, u1)
    _, u2 = use(request("[rc:tools] prefix", True))
    check("prefix: the same prompt streamed reads every full block",
          u2["cache_read_input_tokens"] == u1["cache_creation_input_tokens"] and
          u2["cache_creation_input_tokens"] == 0 and u2["input_tokens"] == u1["input_tokens"], u2)

    other = request("[rc:tools] prefix", False)
    other["model"] = "claude-haiku-4-5-20251001"
    _, u = use(other)
    check("prefix: one cache for all models", u["cache_read_input_tokens"] == u1["cache_creation_input_tokens"]
          and u["cache_creation_input_tokens"] == 0, u)

    nocc = request("[rc:tools] prefix", False)
    nocc["system"][0].pop("cache_control")
    nocc["messages"][0]["content"][0].pop("cache_control")
    _, u = use(nocc)
    check("prefix: cache_control is ignored", tokens(u) == n and
          u["cache_read_input_tokens"] == u1["cache_creation_input_tokens"], u)

    changed = request("[rc:tools] prefix", False, system_extra="changed")
    _, u = use(changed)
    check("prefix: a changed system prompt still reads the tool blocks before it",
          0 < u["cache_read_input_tokens"] < u1["cache_creation_input_tokens"] and
          u["cache_creation_input_tokens"] > 0, u)

    longer = request("[rc:tools] prefix", False)
    longer["messages"] += [{"role": "assistant", "content": [{"type": "text", "text": "a" * 900}]},
                           {"role": "user", "content": [{"type": "text", "text": "b" * 900}]}]
    _, u = use(longer)
    check("prefix: a longer conversation reads the earlier full blocks and creates the new ones",
          u["cache_read_input_tokens"] == u1["cache_creation_input_tokens"] and
          u["cache_creation_input_tokens"] >= 6 * B and u["input_tokens"] < B, u)

    # readable as soon as received: B arrives while A is still waiting for its first byte
    fresh = request("[rc:tools] fresh " + "f" * 3000, True)
    done = {}

    def send_a():
        done["a"] = usage_of(port, fresh)[1]
        done["a_end"] = time.time()

    th = threading.Thread(target=send_a)
    th.start()
    time.sleep(0.1)
    b_start = time.time()
    _, ub = use(dict(fresh, stream=False))
    th.join()
    ua = done["a"]
    answers.append(ua)
    check("prefix: a request still being answered is read by a later one",
          b_start < done["a_end"] and ua["cache_read_input_tokens"] < ub["cache_read_input_tokens"] and
          ub["cache_read_input_tokens"] == ua["cache_read_input_tokens"] + ua["cache_creation_input_tokens"], (ua, ub))

    st1 = request("[rc:agents] prefix", True)
    use(st1)
    st1["messages"] += [{"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Task",
                                                           "input": {}}]},
                        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
                                                      "content": "done " * 200}]}]
    st, _ = use(st1)
    check("prefix: first step-1 request gets the 529", st == 529, st)
    st, u = use(st1)
    check("prefix: the 529 wrote nothing (the retry creates the new blocks)",
          st == 200 and u["cache_creation_input_tokens"] >= 3 * B, (st, u))

    ct = request("[rc:tools] counted only", False)
    ct["tools"][0]["description"] = "counted " + ct["tools"][0]["description"]  # a prefix nobody wrote
    st, _, body = post(port, "/v1/messages/count_tokens", ct)
    counted = json.loads(body)["input_tokens"]
    _, u = use(ct)
    check("prefix: count_tokens counts the same tokens and writes nothing",
          counted == tokens(u) and u["cache_read_input_tokens"] == 0, (counted, u))

    check("prefix: every answer reads and creates whole blocks, input below one block",
          all(a["cache_read_input_tokens"] % B == 0 and a["cache_creation_input_tokens"] % B == 0 and
              0 <= a["input_tokens"] < B for a in answers), answers)
    recs = [json.loads(l) for l in open(log)]
    check("prefix: log marks the cache model", recs and all(r.get("cache_model") == "prefix" for r in recs),
          [r.get("cache_model") for r in recs])


if __name__ == "__main__":
    sys.exit(main())
