"""Any OpenAI-compatible HTTP server: vLLM `serve`, SGLang, llama.cpp server, TGI.

Standard library only (urllib + threads), so the default install can talk to a server.
Concurrency is bounded; each request has a timeout and is retried with exponential
backoff on connection errors, 429 and 5xx. A server that stays unreachable stops the run
with one clear error (finished records are already on disk, so a rerun resumes).
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request

from selfcodealign.backends.base import (
    BackendError, Completion, Prompt, SamplingParams, ThreadedBackend, completion_from_openai,
)
from selfcodealign.models import ModelHash

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(ThreadedBackend):
    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 300.0,
        retries: int = 4,
        backoff: float = 1.0,
    ) -> None:
        super().__init__()
        if not base_url:
            raise BackendError("the openai backend needs a base URL (--base-url)")
        if "," in base_url:
            raise BackendError(
                "several base URLs (comma-separated) need the Ray executor (--executor ray); "
                "the local executor talks to one server"
            )
        self.base_url = base_url.rstrip("/")
        if not self.base_url.endswith("/v1"):
            self.base_url += "/v1"
        self.model = model
        # The key is read from the environment and never stored in configs or records.
        self._api_key = os.environ.get(api_key_env, "") if api_key_env else ""
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        if not self.model:
            self.model = self._first_model()
        self.model_hash = ModelHash(
            None, f"model {self.model!r} is served over the OpenAI API: its weights are out of reach")

    @property
    def model_id(self) -> str:
        return self.model

    def _headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json"}
        if self._api_key:
            h["Authorization"] = f"Bearer {self._api_key}"
        return h

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.base_url + path
        data = json.dumps(body).encode() if body is not None else None
        last = ""
        for attempt in range(self.retries + 1):
            req = urllib.request.Request(url, data=data, headers=self._headers(), method=method)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return json.loads(resp.read())
            except urllib.error.HTTPError as e:
                detail = e.read()[:300].decode("utf-8", "replace")
                if e.code not in RETRY_STATUS:
                    raise BackendError(f"{url}: HTTP {e.code}: {detail}") from None
                last = f"HTTP {e.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = str(getattr(e, "reason", e))
            except ValueError:
                raise BackendError(f"{url}: the server's answer is not JSON") from None
            if attempt < self.retries:
                time.sleep(self.backoff * (2**attempt) * (0.5 + random.random()))
        raise BackendError(
            f"server {self.base_url} unreachable after {self.retries + 1} tries ({last})"
        )

    def _first_model(self) -> str:
        data = self._call("GET", "/models").get("data") or []
        if not data:
            raise BackendError(f"{self.base_url}/models lists no model; pass --model-name")
        return data[0]["id"]

    def _request(self, prompt: Prompt, sp: SamplingParams, sample: int) -> Completion:
        body: dict = {
            "model": self.model,
            "max_tokens": sp.max_tokens,
            "temperature": sp.temperature,
            "top_p": sp.top_p,
            "seed": (sp.seed + sample) % (2**31 - 1),
        }
        if sp.stop:
            body["stop"] = list(sp.stop)
        if isinstance(prompt, str):
            body["prompt"] = prompt + sp.prefill
            res = self._call("POST", "/completions", body)
        else:
            msgs = list(prompt)
            if sp.prefill:
                msgs.append({"role": "assistant", "content": sp.prefill})
                # vLLM/SGLang: continue the last assistant turn instead of opening a new one.
                body["continue_final_message"] = True
                body["add_generation_prompt"] = False
            body["messages"] = msgs
            res = self._call("POST", "/chat/completions", body)
        return completion_from_openai(res, prompt, sp)

