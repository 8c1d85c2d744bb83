"""Backends against the real engine: in-process llama.cpp and a real HTTP server."""

import http.server
import json
import threading

import pytest

from selfcodealign.backends.base import BackendError, SamplingParams
from selfcodealign.backends.llamacpp import LlamaCppBackend, gguf_has_chat_template
from selfcodealign.backends.openai_http import OpenAIBackend

PROMPTS = [
    [{"role": "user", "content": "Write a Python function add(a, b) returning a + b. Code only."}],
    "def square(x):\n    \"\"\"Return x squared.\"\"\"\n",
]


def _check(results, n):
    assert len(results) == 2
    for comps in results:
        assert len(comps) == n
        for c in comps:
            assert c.finish_reason in ("stop", "length")
            assert c.completion_tokens > 0 and c.prompt_tokens > 0
    # Input order: the chat answer talks about add, the completion continues square.
    assert any("add" in c.text for c in results[0])
    assert any("return" in c.text for c in results[1])


def test_embedded_engine_in_order_with_counts(model_path):
    assert gguf_has_chat_template(model_path)
    with LlamaCppBackend(model_path, n_parallel=2, ctx_per_slot=1024) as b:
        sp = SamplingParams(n=2, temperature=0.7, max_tokens=48, seed=3, stop=("\ndef ",))
        results = b.generate(PROMPTS, sp)
        _check(results, 2)
        # Same seed -> same sample, independent of what else is in flight.
        again = b.generate([PROMPTS[1]], SamplingParams(n=1, temperature=0.7, max_tokens=48, seed=3, stop=("\ndef ",)))
        assert again[0][0].text == results[1][0].text
        # A prefill is part of the returned text.
        pre = b.generate([PROMPTS[0]], SamplingParams(max_tokens=24, prefill="```python\n"))
        assert pre[0][0].text.startswith("```python\n")
        assert b.stats.requests == 4 + 1 + 1


def test_openai_backend_against_real_server(llama_server):
    b = OpenAIBackend(llama_server, "", concurrency=2, timeout=120, retries=1)
    assert b.model_id  # discovered from /v1/models
    results = b.generate(PROMPTS, SamplingParams(n=2, temperature=0.7, max_tokens=48, seed=1))
    _check(results, 2)
    b.close()


def test_openai_backend_has_no_hash_and_says_why():
    b = OpenAIBackend("http://127.0.0.1:9", "served-model")
    assert b.model_sha256 is None
    assert "'served-model'" in b.model_sha256_note and "out of reach" in b.model_sha256_note
    b.close()


def test_openai_backend_unreachable_is_one_clear_error():
    b = OpenAIBackend("http://127.0.0.1:9", "m", retries=1, backoff=0.01, timeout=2)
    with pytest.raises(BackendError, match="unreachable after 2 tries"):
        b.generate(["x"], SamplingParams(max_tokens=4))
    b.close()


class _Flaky(http.server.BaseHTTPRequestHandler):
    failures = 2
    seen = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Flaky.seen.append((self.headers.get("Authorization"), body))
        if _Flaky.failures > 0:
            _Flaky.failures -= 1
            self.send_response(503)
            self.end_headers()
            return
        out = json.dumps({"choices": [{"text": "ok", "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *a):
        pass


def test_openai_backend_retries_with_backoff_and_sends_key(monkeypatch):
    monkeypatch.setenv("MY_KEY", "sk-test")
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        b = OpenAIBackend(f"http://127.0.0.1:{srv.server_port}", "m", api_key_env="MY_KEY",
                          retries=3, backoff=0.01)
        [[c]] = b.generate(["hello"], SamplingParams(max_tokens=4, seed=7))
        assert c.text == "ok" and c.completion_tokens == 1
        assert len(_Flaky.seen) == 3  # two 503s, then success
        assert _Flaky.seen[-1][0] == "Bearer sk-test"
        assert _Flaky.seen[-1][1]["seed"] == 7
        b.close()
    finally:
        srv.shutdown()
