"""The pipeline on a real two-node Ray cluster (loopback): exactly-once per stage, the
same verdicts and dataset as the local executor, and a node killed mid-run."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import pytest

from selfcodealign.config import ExecuteConfig, SelectConfig, build_config
from selfcodealign.errors import UserError
from selfcodealign.executors.local import LocalExecutor
from selfcodealign.executors.ray_executor import RayExecutor
from selfcodealign.jsonl import read_lines, read_records
from selfcodealign.ledger import StageFiles
from selfcodealign.pipeline import Pipeline, run_generation_or_execution
from selfcodealign.records import Executed, GenMeta, Instruction, Response
from selfcodealign.stages.execute import ExecuteStage
from selfcodealign.stages.select import select

META = GenMeta(model="m", model_sha256=None, backend="llamacpp", prompt_style="chat",
               temperature=0.7, top_p=1.0, max_tokens=64, seed=5, finish_reason="stop")

# (code, tests, expected status): a spread of verdicts, each decided by the program alone.
KINDS = [
    ("def f(x):\n    return 2 * x\n", "assert f(2) == 4\n", "passed"),
    ("def f(x):\n    return x\n", "assert f(2) == 4\n", "failed"),
    ("def f(x):\n    return 1 / x\n", "assert f(0) == 1\n", "failed"),
    ("import os, signal\ndef f(x):\n    return x\n", "os.kill(os.getpid(), signal.SIGSEGV)\n", "crashed"),
    ("def f(x):\n    return [x]\n", "assert f(3) == [3]\nprint(f(3))\n", "passed"),
    ("def f(x:\n    return x\n", "assert f(1) == 1\n", "failed"),
]


def responses(n: int, tag: str, sleep: float = 0.0) -> list[Response]:
    out = []
    for i in range(n):
        code, tests, _ = KINDS[i % len(KINDS)]
        if sleep:
            code = f"import time\ntime.sleep({sleep})\n" + code
        ins = Instruction(id=f"{tag}-ins{i // 3}", parent_id="c", seed_id=f"seed{i // 3}",
                          seed_source="stdlib", seed_path="x.py", concepts=["arithmetic"],
                          category="function", difficulty="easy",
                          instruction=f"Write f ({tag} {i // 3}).", raw="", gen=META)
        text = f"```python\n{code}```\n\n### Tests\n```python\n{tests}```"
        out.append(Response(id=f"{tag}-r{i}", parent_id=ins.id, sample_index=i % 3, instruction=ins,
                            response=text, code=code, tests=tests, raw=text, gen=META))
    return out


def expected(rs: list[Response]) -> dict[str, str]:
    return {r.id: KINDS[int(r.id.rsplit("r", 1)[1]) % len(KINDS)][2] for r in rs}


def lines(p: Path) -> list[dict]:
    return [o for _, o in read_lines(p) if o] if p.exists() else []


def assert_exactly_once(inputs: list[str], files: StageFiles, complete: bool = True) -> set[str]:
    """Each ledger id is an input and appears once; outputs/drops match their ledger line."""
    ledger = [o["id"] for o in lines(files.done)]
    assert len(ledger) == len(set(ledger)), "an input was committed twice"
    assert set(ledger) <= set(inputs)
    if complete:
        assert set(ledger) == set(inputs), f"missing {sorted(set(inputs) - set(ledger))[:5]}"
    outs = lines(files.out)
    assert len({o["id"] for o in outs}) == len(outs), "an output was written twice"
    drops = lines(files.drops)
    entries = {o["id"]: o for o in lines(files.done)}
    for i in set(ledger):
        assert entries[i]["out"] == sum(1 for o in outs if o["parent_id"] == i), i
        assert sum(entries[i]["drops"].values()) == sum(1 for d in drops if d["input_id"] == i), i
    assert {o["parent_id"] for o in outs} | {d["input_id"] for d in drops} <= set(ledger)
    return set(ledger)


def execute(rs, out: Path, executor, timeout: float = 10.0):
    stage = ExecuteStage(ExecuteConfig(timeout=timeout))
    out.mkdir(parents=True, exist_ok=True)
    files = StageFiles(out / "executed.jsonl")
    run_generation_or_execution(stage, rs, files, executor, quiet=True)
    return stage, files


@pytest.mark.model
def test_pipeline_on_ray_every_stage_once_and_same_results_as_local(ray_cluster, tmp_path):
    """Generation on two model replicas (one per node), execution on two sandbox workers;
    then execute+select again locally over the same responses: identical results."""
    cfg = build_config(preset="quickstart", sets=[
        "seeds.max_seeds=2", "seeds.typecheck=false",
        "prompts.shots_concepts=1", "prompts.shots_instructions=1",
        "concepts.max_tokens=48", "instructions.max_tokens=200",
        "responses.n=2", "responses.max_tokens=400",
        "backend.n_parallel=2", "backend.ctx_per_slot=2048", "backend.threads=1",
    ])
    out = tmp_path / "ray"
    summary = Pipeline(cfg, out, lambda: RayExecutor(cfg, ray_cluster.address), quiet=True).run()

    chain = [("seeds.jsonl", "concepts.jsonl"), ("concepts.jsonl", "instructions.jsonl"),
             ("instructions.jsonl", "responses.jsonl"), ("responses.jsonl", "executed.jsonl")]
    for inp, stage in chain:
        assert_exactly_once([o["id"] for o in lines(out / inp)], StageFiles(out / stage))
    assert summary["funnel"]["seeds"] == 2
    assert summary["stages"]["concepts"]["completion_tokens"] > 0
    n_responses = len(lines(out / "responses.jsonl"))
    # Drops are processed inputs too: the ledgers above hold every input whatever the
    # model wrote; whatever responses there are were each executed once.
    assert len(lines(out / "executed.jsonl")) == n_responses

    # The same responses, executed and selected by the local executor.
    local = tmp_path / "local"
    local.mkdir()
    for p in out.iterdir():
        if p.name.split(".")[0] in ("seeds", "concepts", "instructions", "responses"):
            shutil.copy(p, local / p.name)
    Pipeline(cfg, local, lambda: LocalExecutor(lambda: pytest.fail("no generation expected"),
                                               sandbox_workers=2), quiet=True).run()
    ray_ex = {e.parent_id: e.verdict.status for e in read_records(out / "executed.jsonl", Executed)}
    loc_ex = {e.parent_id: e.verdict.status for e in read_records(local / "executed.jsonl", Executed)}
    assert ray_ex.keys() == loc_ex.keys()
    differ = {k for k in ray_ex if ray_ex[k] != loc_ex[k]}
    # A timeout depends on load, not on the executor; anything else must agree.
    assert all("timeout" in (ray_ex[k], loc_ex[k]) for k in differ), differ
    if not differ:
        assert (out / "dataset.jsonl").read_text() == (local / "dataset.jsonl").read_text()


def test_execute_on_ray_matches_local(ray_cluster, tmp_path):
    rs = responses(48, "det")
    ray_ex = RayExecutor(build_config(), ray_cluster.address)
    try:
        stage, rfiles = execute(rs, tmp_path / "ray", ray_ex)
    finally:
        ray_ex.close()
    _, lfiles = execute(rs, tmp_path / "local", LocalExecutor(lambda: None, sandbox_workers=2))
    assert_exactly_once([r.id for r in rs], rfiles)
    got_ray = {e.parent_id: e for e in read_records(rfiles.out, Executed)}
    got_loc = {e.parent_id: e for e in read_records(lfiles.out, Executed)}
    assert {k: v.verdict.status for k, v in got_ray.items()} == expected(rs)
    assert {k: (v.verdict.status, v.verdict.exit_code, v.verdict.stdout, v.meaningful_tests)
            for k, v in got_ray.items()} == \
        {k: (v.verdict.status, v.verdict.exit_code, v.verdict.stdout, v.meaningful_tests)
         for k, v in got_loc.items()}
    # Selection over either set of verdicts gives the same dataset.
    a = select(list(got_ray.values()), SelectConfig(sanitize=False), stage.counts_as_pass).examples
    b = select(list(got_loc.values()), SelectConfig(sanitize=False), stage.counts_as_pass).examples
    assert a and [e.model_dump(exclude={"verdict"}) for e in a] == \
        [e.model_dump(exclude={"verdict"}) for e in b]


def _kill_when(files: StageFiles, n: int, kill) -> threading.Thread:
    def watch():
        t = time.monotonic()
        while time.monotonic() - t < 120:
            if len(lines(files.done)) >= n:
                kill()
                return
            time.sleep(0.05)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    return th


def test_worker_node_killed_mid_run(ray_cluster, tmp_path):
    """(1) One of two nodes dies mid-stage: its chunks move to the other, the stage
    completes, nothing lost or duplicated. (2) The last node dies: the stage stops with
    a clear error, what was committed stays; with a new node, rerunning completes."""
    files = StageFiles(tmp_path / "executed.jsonl")
    rs = responses(60, "kill", sleep=0.2)
    killed: list[int] = []
    ex = RayExecutor(build_config(), ray_cluster.address)
    try:
        w = _kill_when(files, 10, lambda: killed.append(ray_cluster.kill_worker("w1")))
        execute(rs, tmp_path, ex)
        w.join()
    finally:
        ex.close()
    assert killed and killed[0] >= 1, "the node was not killed mid-run"
    assert_exactly_once([r.id for r in rs], files)
    got = {e.parent_id: e.verdict.status for e in read_records(files.out, Executed)}
    assert got == expected(rs)

    # (2) Only w2 is left; kill it in the middle of a new stage.
    ray_cluster.wait_nodes()
    files2 = StageFiles(tmp_path / "second" / "executed.jsonl")
    rs2 = responses(40, "again", sleep=0.2)
    ex = RayExecutor(build_config(), ray_cluster.address)
    try:
        w = _kill_when(files2, 6, lambda: ray_cluster.kill_worker("w2"))
        with pytest.raises(UserError, match="rerun the same command to resume"):
            execute(rs2, files2.out.parent, ex)
        w.join()
    finally:
        ex.close()
    before = assert_exactly_once([r.id for r in rs2], files2, complete=False)
    assert 6 <= len(before) < len(rs2)

    ray_cluster.add_worker("w3")
    ex = RayExecutor(build_config(), ray_cluster.address)
    try:
        execute(rs2, files2.out.parent, ex)
    finally:
        ex.close()
    after = assert_exactly_once([r.id for r in rs2], files2)
    assert before <= after
    got = {e.parent_id: e.verdict.status for e in read_records(files2.out, Executed)}
    assert got == expected(rs2)
