#!/usr/bin/env python3
"""A tiny OpenAI-compatible server for trying trace replayers without a GPU.

Standard library only. It listens on 127.0.0.1 and answers:

  GET  /v1/models            one model, named by --model
  POST /v1/chat/completions  streaming (SSE) and non-streaming
  POST /v1/completions       streaming (SSE) and non-streaming
  GET  /stats                counters as JSON (requests, prompt/cached estimates)

Each answer has as many "tokens" as the request asks for (max_completion_tokens,
max_tokens or max_new_tokens; --default-tokens otherwise). A token is one short
common English word with a leading space, which is one token for the usual BPE
tokenizers, so a client that counts with its own tokenizer gets about the number it
asked for. The final usage reports completion_tokens exactly and prompt_tokens as an
estimate (characters / --chars-per-token).

The server also plays a crude prefix cache: the prompt text is cut into chained
blocks of --cache-block-chars characters, and blocks already seen count as cached.
This only shows whether the replayer's synthesized prompts really share prefixes
from one request to the next (it reports usage.prompt_tokens_details.cached_tokens
and logs one line per request); it is not a model of any real server.

Timing: first token after --ttft seconds plus --prefill-per-1k-tokens seconds per
estimated 1,000 prompt tokens, then one token every --itl seconds.

    python3 mock_openai_server.py --port 8765 --model mock-model
"""

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WORDS = [" the", " cache", " block", " data", " and", " of", " to", " in",
         " is", " for", " on", " with", " that", " this", " it", " as"]


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.seen = set()
        self.requests = 0
        self.prompt_chars = 0
        self.cached_chars = 0
        self.completion_tokens = 0

    def account(self, text):
        """Return (estimated prompt tokens, estimated cached tokens) for a prompt."""
        size = self.args.cache_block_chars
        prev = b"0"
        hit_chars = 0
        still_hitting = True
        keys = []
        for start in range(0, len(text) - size + 1, size):
            prev = hashlib.sha256(prev + text[start:start + size].encode("utf-8", "replace")).digest()[:12]
            keys.append(prev)
        with self.lock:
            for key in keys:
                if still_hitting and key in self.seen:
                    hit_chars += size
                else:
                    still_hitting = False
                    self.seen.add(key)
            self.requests += 1
            self.prompt_chars += len(text)
            self.cached_chars += hit_chars
        cpt = self.args.chars_per_token
        return max(1, round(len(text) / cpt)), round(hit_chars / cpt)


def prompt_text(body):
    """Concatenate the text of a chat or completions request."""
    if "messages" in body:
        parts = []
        for message in body.get("messages") or []:
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                for item in content:
                    if isinstance(item, dict) and isinstance(item.get("text"), str):
                        parts.append(item["text"])
            parts.append("\n")
        return "".join(parts)
    prompt = body.get("prompt", "")
    if isinstance(prompt, list):
        return "".join(p for p in prompt if isinstance(p, str))
    return prompt if isinstance(prompt, str) else ""


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that probe the port or hang up early are normal; stay quiet.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kvtrace-mock/1"

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    # -- helpers ---------------------------------------------------------
    def send_json(self, code, obj):
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def sse(self, obj):
        payload = obj if isinstance(obj, str) else json.dumps(obj)
        self.send_chunk(b"data: " + payload.encode() + b"\n\n")

    # -- routes ----------------------------------------------------------
    def do_GET(self):
        st = self.server.state
        if self.path.rstrip("/") == "/v1/models":
            self.send_json(200, {"object": "list", "data": [
                {"id": st.args.model, "object": "model", "created": 0, "owned_by": "mock"}]})
        elif self.path.rstrip("/") in ("/health", "/v1/health"):
            self.send_json(200, {"status": "ok"})
        elif self.path.rstrip("/") == "/stats":
            with st.lock:
                self.send_json(200, {
                    "requests": st.requests,
                    "prompt_tokens_est": round(st.prompt_chars / st.args.chars_per_token),
                    "cached_tokens_est": round(st.cached_chars / st.args.chars_per_token),
                    "cached_fraction": st.cached_chars / st.prompt_chars if st.prompt_chars else 0.0,
                    "completion_tokens": st.completion_tokens})
        else:
            self.send_json(404, {"error": {"message": "not found: " + self.path}})

    def do_POST(self):
        st = self.server.state
        args = st.args
        path = self.path.rstrip("/")
        if path not in ("/v1/chat/completions", "/v1/completions"):
            self.send_json(404, {"error": {"message": "not found: " + self.path}})
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_json(400, {"error": {"message": "body is not JSON"}})
            return
        chat = path == "/v1/chat/completions"
        wanted = (body.get("max_completion_tokens") or body.get("max_tokens")
                  or body.get("max_new_tokens") or args.default_tokens)
        wanted = max(1, int(wanted))
        text = prompt_text(body)
        prompt_tokens, cached_tokens = st.account(text)
        with st.lock:
            st.completion_tokens += wanted
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": wanted,
                 "total_tokens": prompt_tokens + wanted,
                 "prompt_tokens_details": {"cached_tokens": cached_tokens}}
        model = body.get("model") or args.model
        rid = "mock-%d" % st.requests
        created = int(time.time())
        if not args.quiet:
            print("%s %s stream=%s prompt~%d cached~%d out=%d session=%s" % (
                time.strftime("%H:%M:%S"), path, bool(body.get("stream")), prompt_tokens,
                cached_tokens, wanted, self.headers.get("X-Session-ID", "-")), flush=True)
        time.sleep(args.ttft + args.prefill_per_1k_tokens * prompt_tokens / 1000.0)
        obj = "chat.completion" if chat else "text_completion"

        def choice(piece, finish=None):
            if chat:
                return {"index": 0, "delta": {"content": piece} if piece is not None else {},
                        "finish_reason": finish}
            return {"index": 0, "text": piece or "", "finish_reason": finish}

        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            base = {"id": rid, "object": obj + ".chunk" if chat else obj,
                    "created": created, "model": model}
            try:
                if chat:
                    self.sse(dict(base, choices=[{"index": 0, "delta": {"role": "assistant", "content": ""},
                                                  "finish_reason": None}]))
                for i in range(wanted):
                    if i and args.itl:
                        time.sleep(args.itl)
                    self.sse(dict(base, choices=[choice(WORDS[i % len(WORDS)])]))
                self.sse(dict(base, choices=[choice(None, "length")]))
                if (body.get("stream_options") or {}).get("include_usage"):
                    self.sse(dict(base, choices=[], usage=usage))
                self.sse("[DONE]")
                self.send_chunk(b"")
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        time.sleep(args.itl * max(0, wanted - 1))
        content = "".join(WORDS[i % len(WORDS)] for i in range(wanted))
        if chat:
            choices = [{"index": 0, "message": {"role": "assistant", "content": content},
                        "finish_reason": "length"}]
        else:
            choices = [{"index": 0, "text": content, "finish_reason": "length"}]
        self.send_json(200, {"id": rid, "object": obj, "created": created, "model": model,
                             "choices": choices, "usage": usage})


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--model", default="mock-model", help="name listed by /v1/models")
    p.add_argument("--ttft", type=float, default=0.02, help="seconds before the first token")
    p.add_argument("--prefill-per-1k-tokens", type=float, default=0.002,
                   help="extra seconds per 1,000 estimated prompt tokens")
    p.add_argument("--itl", type=float, default=0.001, help="seconds between tokens")
    p.add_argument("--default-tokens", type=int, default=16, help="tokens when the request names none")
    p.add_argument("--chars-per-token", type=float, default=4.0, help="for prompt_tokens estimates")
    p.add_argument("--cache-block-chars", type=int, default=256, help="block size of the toy prefix cache")
    p.add_argument("--quiet", action="store_true", help="no per-request log line")
    args = p.parse_args()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("refusing to listen on anything but loopback")
    server = Server((args.host, args.port), Handler)
    server.state = State(args)

    def stop(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    print("mock OpenAI server on http://%s:%d (model %s)" % (args.host, args.port, args.model), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        st = server.state
        print("served %d requests; cached fraction of prompt text %.1f%%" % (
            st.requests, 100.0 * st.cached_chars / st.prompt_chars if st.prompt_chars else 0.0), flush=True)


if __name__ == "__main__":
    main()
