"""The one backend interface: many prompts in, n samples each out, in input order.

A prompt is either plain text (completion style, for base models) or a list of chat
messages (rendered with the model's chat template by the backend). Sampling parameters
travel per request so each one can carry its own seed.
"""

from __future__ import annotations

import abc
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Union

from selfcodealign.errors import UserError
from selfcodealign.models import ModelHash

ChatMessages = list[dict[str, str]]
Prompt = Union[str, ChatMessages]


class BackendError(UserError):
    """A backend failed in a way the user must fix (missing model, unreachable server)."""


@dataclass(frozen=True)
class SamplingParams:
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    stop: tuple[str, ...] = ()
    seed: int = 0
    # Text that the assistant's reply starts with (chat prompts only): the backend sends
    # it as a partial assistant turn and returns it as part of the completion text.
    prefill: str = ""
    # (marker, continuation): if a completion ends ("stop") without ``marker``, the
    # backend continues it once, pre-filled with its own text plus ``continuation``.
    # Used to recover responses that forget their tests section.
    require: tuple[str, str] | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" | "length" | "error"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens served from the engine's prefix cache


def completion_from_openai(res: object, prompt: "Prompt", sp: SamplingParams) -> Completion:
    """Read an OpenAI-format answer (llama.cpp's in-process server speaks it too).

    A missing choice (e.g. the prompt did not fit the context) becomes an "error"
    completion, which stages drop and count. The prefill is always part of the text,
    whether or not the server echoed it."""
    if not isinstance(res, dict) or not res.get("choices"):
        return Completion(text="", finish_reason="error")
    choice = res["choices"][0]
    if isinstance(prompt, str):
        text = sp.prefill + (choice.get("text") or "")
    else:
        text = (choice.get("message") or {}).get("content") or ""
        if sp.prefill and not text.startswith(sp.prefill):
            text = sp.prefill + text
    usage = res.get("usage") or {}
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None:  # llama.cpp's own field
        cached = (res.get("timings") or {}).get("cache_n", 0)
    return Completion(
        text=text,
        finish_reason=choice.get("finish_reason") or "stop",
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(cached or 0),
    )


def needs_continuation(c: Completion, sp: SamplingParams) -> bool:
    """A completion that stopped by itself without the section ``sp.require`` asks for."""
    return sp.require is not None and c.finish_reason == "stop" and sp.require[0] not in c.text


def continuation_params(c: Completion, sp: SamplingParams) -> SamplingParams:
    """The request that continues ``c`` once: its own text plus the required section's
    opening as prefill, the unspent token budget (at least 128), no further continuing."""
    assert sp.require is not None
    return replace(sp, prefill=c.text.rstrip() + sp.require[1],
                   max_tokens=max(128, sp.max_tokens - c.completion_tokens), require=None)


def merge_continuation(first: Completion, more: Completion) -> Completion:
    """One completion from a first part and its continuation (whose text is the whole
    reply, prefill included); a failed continuation leaves the first part as it was."""
    if more.finish_reason == "error":
        return first
    return Completion(
        text=more.text,
        finish_reason=more.finish_reason,
        prompt_tokens=first.prompt_tokens + more.prompt_tokens,
        completion_tokens=first.completion_tokens + more.completion_tokens,
        cached_tokens=first.cached_tokens + more.cached_tokens,
    )


@dataclass
class GenerationStats:
    requests: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    extra: dict = field(default_factory=dict)

    def add(self, c: Completion) -> None:
        self.requests += 1
        self.prompt_tokens += c.prompt_tokens
        self.cached_tokens += c.cached_tokens
        self.completion_tokens += c.completion_tokens
        self.errors += c.finish_reason == "error"


# One sample to draw: (prompt index, sample index i, its request); the sample is drawn with
# seed ``request.seed + i`` and the request's ``n`` is not used.
Job = tuple[int, int, SamplingParams]


class Backend(abc.ABC):
    """Subclasses implement ``_run`` (batching/concurrency is theirs to choose), or
    ``iter_generate`` itself (scripted test backends)."""

    name: str = "base"

    def __init__(self) -> None:
        self.stats = GenerationStats()
        # The loaded weights' hash, set by the backend once it knows it (see models.hashing).
        self.model_hash = ModelHash(None, "this backend does not hash its model")

    @property
    @abc.abstractmethod
    def model_id(self) -> str:
        """A human-readable model name recorded in provenance."""

    @property
    def model_sha256(self) -> str | None:
        return self.model_hash.sha256

    @property
    def model_sha256_note(self) -> str | None:
        """Why ``model_sha256`` is None, when it is."""
        return self.model_hash.note

    @property
    def has_chat_template(self) -> bool:
        return True

    def _run(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        """Take the jobs from ``jobs`` and yield each with its completion (whose text starts
        with the job's prefill) as it ends, in any order. Jobs the caller adds while this
        runs (at the head, after a yield) must be run too before it returns."""
        raise NotImplementedError

    def iter_generate(
        self, prompts: Sequence[Prompt], params: Sequence[SamplingParams]
    ) -> Iterator[tuple[int, list[Completion]]]:
        """Yield ``(prompt_index, completions)`` as each prompt finishes (any order).

        Each sample is a job of its own with seed ``seed + i``, so sample ``i`` of a prompt
        is the same whether or not the run was resumed and whatever else shares its batch.
        SamplingParams.require is honoured here, for every backend: a sample that needs it
        is continued once, as a job with ``continuation_params`` put at the head of the
        running ``_run``'s queue, and the two parts are merged."""
        jobs: deque[Job] = deque((i, s, sp) for i, sp in enumerate(params) for s in range(sp.n))
        out = {i: [None] * sp.n for i, sp in enumerate(params)}
        left = [sp.n for sp in params]
        yield from ((i, []) for i, n in enumerate(left) if n == 0)
        first: dict[tuple[int, int], Completion] = {}
        for (i, s, sp), c in self._run(prompts, jobs):
            self.stats.add(c)
            if (i, s) in first:
                c = merge_continuation(first.pop((i, s)), c)
            elif needs_continuation(c, sp):
                first[i, s] = c
                jobs.appendleft((i, s, continuation_params(c, sp)))
                continue
            out[i][s] = c
            left[i] -= 1
            if left[i] == 0:
                yield i, out.pop(i)  # type: ignore[misc]

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: Sequence[SamplingParams] | SamplingParams,
        on_done: Callable[[int, list[Completion]], None] | None = None,
    ) -> list[list[Completion]]:
        """All prompts at once; results in input order, ``n`` completions each."""
        if isinstance(params, SamplingParams):
            params = [params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("one SamplingParams per prompt")
        out: list[list[Completion] | None] = [None] * len(prompts)
        for i, comps in self.iter_generate(prompts, params):
            out[i] = comps
            if on_done is not None:
                on_done(i, comps)
        return [c if c is not None else [] for c in out]

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ThreadedBackend(Backend):
    """A backend whose engine takes one request at a time per thread (an in-process
    server or an HTTP endpoint): each job is one ``_request``."""

    concurrency: int = 1

    def __init__(self) -> None:
        super().__init__()
        self._pool: ThreadPoolExecutor | None = None

    @abc.abstractmethod
    def _request(self, prompt: Prompt, sp: SamplingParams, sample: int) -> Completion:
        """One request, one completion (seed ``sp.seed + sample``); raise BackendError if
        the engine is gone."""

    def _run(self, prompts: Sequence[Prompt], jobs: deque[Job]) -> Iterator[tuple[Job, Completion]]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix=self.name)
        inflight: dict = {}
        try:
            while jobs or inflight:
                # At most 2x concurrency requests are queued: a Ctrl-C abandons little work.
                while jobs and len(inflight) < 2 * self.concurrency:
                    i, s, sp = job = jobs.popleft()
                    inflight[self._pool.submit(self._request, prompts[i], sp, s)] = job
                done, _ = wait(list(inflight), return_when=FIRST_COMPLETED)
                for fut in done:
                    yield inflight.pop(fut), fut.result()
        finally:
            for fut in inflight:
                fut.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
