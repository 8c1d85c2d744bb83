"""The sandbox worker that Ray actors hold, used directly (no Ray): chunks sent from
several threads at once share one sandbox pool and each gets its own verdicts, in order."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from selfcodealign.executors.ray_actors import SandboxPoolActor
from selfcodealign.sandbox import Program


def chunk(tag: str, n: int) -> list[Program]:
    # Even programs pass, odd ones fail: a verdict in the wrong place shows.
    return [Program(id=f"{tag}{i}", code=f"x = {i}\n", tests="assert x % 2 == 0\n", timeout=10)
            for i in range(n)]


def test_concurrent_chunks_get_their_own_verdicts_in_order():
    w = SandboxPoolActor(workers=2)
    try:
        chunks = {tag: chunk(tag, n) for tag, n in (("a", 7), ("b", 3), ("c", 10), ("d", 1))}
        with ThreadPoolExecutor(4) as pool:
            results = dict(zip(chunks, pool.map(w.run, chunks.values())))
        for tag, progs in chunks.items():
            got = results[tag]
            assert [v.id for v in got] == [p.id for p in progs]
            assert [v.status for v in got] == ["passed" if i % 2 == 0 else "failed" for i in range(len(progs))]
        assert w.run([]) == []
        assert w.run(chunk("e", 2))[1].status == "failed"  # the pool keeps serving
    finally:
        w.close()
