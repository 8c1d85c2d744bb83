"""A scripted model for tests of our own pipeline logic (the real engines are tested
elsewhere): plain few-shot prompts end with the heading of what they ask for, and each
answer derives from the prompt and the sample's seed, so runs are deterministic."""

from __future__ import annotations

import contextlib
import io
import random
import re
import threading
import time
from pathlib import Path

from selfcodealign.backends.base import Completion, ThreadedBackend
from selfcodealign.ids import make_id
from selfcodealign.records import Seed

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


class Mixed(Scripted):
    """Its samples pass, fail an assertion, raise NameError, or hold tests that assert nothing."""

    def answer(self, name, key, h):
        kind = int(h, 16) % 5
        body = {2: "3 * x", 3: "undefined_name * x"}.get(kind, "2 * x")
        test = "assert True" if kind == 4 else f"assert f_{name}(4) == 8"
        return f"def f_{name}(x):\n    \"\"\"{words(key, 12)}\"\"\"\n    return {body}\n", test + "\n"


def make_seeds(path: Path, n: int) -> Path:
    from selfcodealign.jsonl import write_atomic

    paths = ["pkga/core/m{}.py", "pkgb/m{}.py", "stdmod{}.py"]
    seeds = [Seed(id=make_id("seed", i), code=f"def g{i}(x):\n    \"\"\"Doc {i}.\"\"\"\n    return x + {i}\n",
                  name=f"g{i}", source="test", path=paths[i % 3].format(i), line_start=1, line_end=3)
             for i in range(n)]
    write_atomic(path, seeds)
    return path


def scripted_run(tmp: Path, *sets: str, n_seeds: int = 15) -> tuple[Path, str]:
    """A run directory made by `selfcodealign run` (the CLI: the real pipeline, ledger,
    sandbox, verify and select) with the ``Mixed`` scripted backend; ``sets`` are more
    ``--set`` values. Returns the directory and what the command wrote on stderr."""
    import pytest

    from selfcodealign.cli import main
    from selfcodealign.executors.local import LocalExecutor

    seeds = make_seeds(tmp / "seeds.jsonl", n_seeds)
    out = tmp / "r"
    backend = Mixed()
    args = ["run", "--out", str(out), "--quiet", "--set", f"seeds.source=seeds:{seeds}",
            "--set", "prompts.style=completion", "--set", "responses.n=4", "--set", "execute.workers=2",
            # the scripted answers are one-line functions: kept here despite that
            "--set", "select.keep_reasons=[trivial]"]
    for s in sets:
        args += ["--set", s]
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr("selfcodealign.commands.run.local_executor",
                   lambda cfg, verbose: LocalExecutor(lambda: backend, 2))
        rc = main(args)
    assert rc == 0, err.getvalue()
    return out, err.getvalue()


class HandWritten:
    """A GRPO rollout source of hand-written answers (the tiny random model writes no
    code): for each prompt's `f_NAME`, a right or a wrong solution to the tasks of
    ``Scripted`` and ``Mixed`` ("returns twice its argument"), picked by a seeded coin."""

    name = "hand-written"  # train_config.json's rollouts

    def __init__(self, model, tok, cfg):
        self.tok = tok
        self.generated_tokens = 0

    def sync(self, model):
        return None

    def generate(self, prompts, group, seed):
        from selfcodealign.train.rollouts import Rollout

        rng = random.Random(seed)
        out = []
        for i, p in enumerate(prompts):
            name = re.search(r"`(f_\w+)`", self.tok.decode(p)).group(1)
            for _ in range(group):
                factor = rng.choice([2, 3])
                text = f"Here it is.\n\n```python\ndef {name}(x):\n    return {factor} * x\n```\n"
                ids = tuple(self.tok(text, add_special_tokens=False)["input_ids"])
                self.generated_tokens += len(ids)
                out.append(Rollout(i, tuple(p), ids, text, "stop"))
        return out
