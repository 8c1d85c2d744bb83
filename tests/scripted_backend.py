"""A scripted model for tests of our own pipeline logic (the real engines are tested
elsewhere): plain few-shot prompts end with the heading of what they ask for, and each
answer derives from the prompt and the sample's seed, so runs are deterministic."""

from __future__ import annotations

import random
import threading
import time

from selfcodealign.backends.base import Completion, ThreadedBackend
from selfcodealign.ids import make_id

WORDS = [f"w{i}" for i in range(2000)]


def words(key: str, n: int) -> str:
    rng = random.Random(key)
    return " ".join(rng.choice(WORDS) for _ in range(n))


class Scripted(ThreadedBackend):
    """``answer(name, key, h)`` gives a response's (code, tests) for the task to write
    ``f_<name>``; by default a third of the samples are wrong. ``delay`` slows each response,
    ``interrupt_after`` raises KeyboardInterrupt after that many, ``watch()`` is called at
    every response (its result is kept in ``seen``)."""

    name = "scripted"
    concurrency = 2

    def __init__(self, delay: float = 0.0, interrupt_after: int | None = None, watch=None):
        super().__init__()
        self.delay, self.interrupt_after, self.watch = delay, interrupt_after, watch
        self.responses = 0
        self.seen: list = []
        self._lock = threading.Lock()

    @property
    def model_id(self):
        return "scripted"

    @property
    def has_chat_template(self):
        return False

    def answer(self, name: str, key: str, h: str) -> tuple[str, str]:
        factor = 2 if int(h, 16) % 3 else 3
        code = f"def f_{name}(x):\n    \"\"\"{words(key, 30)}\"\"\"\n    return {factor} * x\n"
        return code, f"assert f_{name}(4) == 8\n"

    def _request(self, prompt, sp, sample):
        key = f"{prompt[-300:]}|{sp.seed + sample}|{sp.prefill}"
        h = make_id(key)
        if prompt.endswith("### Concepts\n"):
            return Completion("recursion, string formatting, sorting", "stop", 10, 5)
        if prompt.endswith("### Instruction\n"):
            return Completion(f"Write a function `f_{h}` that returns twice its argument. "
                              f"{words(key, 40)}", "stop", 10, 50)
        with self._lock:
            self.responses += 1
            n = self.responses
            if self.watch is not None:
                self.seen.append(self.watch())
        if self.interrupt_after is not None and n > self.interrupt_after:
            raise KeyboardInterrupt
        time.sleep(self.delay)
        code, tests = self.answer(prompt.rsplit("`f_", 1)[1].split("`", 1)[0], key, h)
        return Completion(f"```python\n{code}```\n\n### Tests\n```python\n{tests}```", "stop", 10, 60)
