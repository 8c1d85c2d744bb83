"""Reading a run directory for the report: its files and nothing else.

Every file is optional and read tolerantly: a missing file or an unreadable line becomes
a note shown in the report, never an exception. Records are read as plain JSON (not
through the pydantic models) so that a run of 100,000 responses reads in seconds, and
only what the report shows is kept, with long texts capped to a size budget.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from selfcodealign.ledger import StageFiles
from selfcodealign.stages import BY_NAME
from selfcodealign.stages import STAGES as REGISTRY

# What the embedded texts of all responses may take together (characters, before
# compression); each response's code, tests and stderr tail get a share of it, between
# the floors and ceilings below. The chosen responses always get the ceilings.
TEXT_BUDGET = 32_000_000
CODE_CAP = (320, 4000)
TESTS_CAP = (200, 2000)
STDERR_CAP = (160, 800)  # the tail: where the exception is
INSTRUCTION_CAP = 4000
SEED_CAP = 4000

STAGES = [s.name for s in REGISTRY]  # the registry's stages, in order
OUTCOMES = {
    "kept": "kept in the dataset",
    "rejected": "passing responses, none held up under verify",
    "sanitized": "removed by decontamination or near-duplicate removal",
    "no_passing_response": "no passing response",
    "pass_rate_outside_band": "pass rate outside select.pass_rate",
    "no_responses": "no response survived generation",
    "pending": "not selected yet (the run did not finish)",
}
SHORT = {"kept": "kept", "rejected": "rejected", "sanitized": "sanitized", "no_passing_response": "no pass",
         "pass_rate_outside_band": "out of band", "no_responses": "no responses", "pending": "pending"}
_EXC = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning|Needed|Iteration)$|^[A-Z]\w*Error\w*$")


@dataclass
class Response:
    ins: int  # index of its instruction
    sample: int
    status: str  # the sandbox's status, or "not executed"
    detail: str
    meaningful: bool
    passes: bool
    duration: float
    group: str  # failure group (error type) or "passed"
    executed_id: str
    code: str = ""
    tests: str = ""
    stderr: str = ""
    check: dict | None = None  # from verified.jsonl
    chosen: bool = False
    removed: bool = False  # chosen, then removed by decontamination / near-duplicate removal


@dataclass
class Instruction:
    id: str
    text: str
    category: str
    difficulty: str
    seed_id: str
    seed_path: str
    seed_source: str
    concepts: list[str]
    package: str
    responses: list[Response] = field(default_factory=list)
    dropped_samples: Counter = field(default_factory=Counter)  # responses stage drops
    select_reason: str = ""  # dataset.drops reason, "" if kept or none
    select_detail: str = ""
    kept: bool = False

    @property
    def k(self) -> int:
        return sum(r.passes for r in self.responses)

    @property
    def outcome(self) -> str:
        if self.kept:
            return "kept"
        r = self.select_reason
        if r.startswith("rejected"):
            return "rejected"
        if r in OUTCOMES:
            return r
        if not self.responses:
            return "no_responses"
        return "pending"


@dataclass
class RunData:
    root: Path
    summary: dict | None
    config: dict
    notes: list[str]
    instructions: list[Instruction]
    seeds: dict[str, dict]  # seed id -> {name, path, source, line_start, line_end, code}
    verified: bool  # verified.jsonl was there
    dataset_size: int
    caps: dict[str, int]
    truncated: Counter
    require_meaningful: bool
    examples_only: bool = False  # no executed.jsonl: instructions made from dataset examples

    @property
    def responses(self) -> Iterator[Response]:
        for ins in self.instructions:
            yield from ins.responses


def package_of(seed_path: str) -> str:
    """The seed's top-level package: the first component of its path (``scipy/signal/x.py``
    -> ``scipy``; a stdlib module ``textwrap.py`` -> ``textwrap``)."""
    first = (seed_path or "").replace("\\", "/").strip("/").split("/", 1)[0]
    if first.endswith(".py"):
        first = first[:-3]
    return first or "(unknown)"


def failure_group(status: str, detail: str, passes: bool) -> str:
    """What a response's verdict is grouped under: its error type when it failed."""
    if status == "passed":
        return "passed" if passes else "passed, tests not meaningful"
    if status == "failed":
        d = (detail or "").strip()
        if _EXC.match(d):
            return d.rsplit(".", 1)[-1]
        return f"failed: {d[:40]}" if d else "failed"
    return {"timeout": "timeout", "oom": "out of memory", "crashed": "crashed",
            "error": "sandbox error", "not executed": "not executed"}.get(status, status)


def short_source(source: str, path: str) -> str:
    """A seed source as a reader needs it: of a list of directories, the one the seed's
    path lies in (``dir:/a/sympy,/a/scipy`` + ``scipy/x.py`` -> ``dir:/a/scipy``)."""
    kind, _, rest = source.partition(":")
    if kind == "dir" and "," in rest:
        first = package_of(path)
        for d in rest.split(","):
            if d.rstrip("/").rsplit("/", 1)[-1] == first:
                return f"dir:{d}"
        return f"dir:{rest.split(',')[0]},… ({rest.count(',') + 1} directories)"
    return source if len(source) <= 200 else source[:200] + "…"


def cap(text: str, limit: int, kind: str, truncated: Counter, tail: bool = False) -> str:
    text = text or ""
    if len(text) <= limit:
        return text
    truncated[kind] += 1
    more = len(text) - limit
    if tail:
        return f"[... {more:,} earlier characters not embedded]\n" + text[-limit:]
    return text[:limit] + f"\n[... {more:,} more characters not embedded]"


class Reader:
    """Files of one directory, read tolerantly: what is missing or unreadable becomes a note."""

    def __init__(self, root: Path, notes: list[str]):
        self.root, self.notes = root, notes

    def path(self, name: str) -> Path | None:
        p = self.root / name
        return p if p.is_file() else None

    def jsonl(self, name: str, missing: str | None = None) -> Iterator[dict]:
        p = self.path(name)
        if p is None:
            if missing:
                self.notes.append(f"no {name}: {missing}")
            return
        bad = 0
        try:
            with open(p, "rb") as f:
                for raw in f:
                    if not raw.strip():
                        continue
                    try:
                        obj = json.loads(raw)
                    except ValueError:
                        bad += 1
                        continue
                    if isinstance(obj, dict):
                        yield obj
                    else:
                        bad += 1
        except OSError as e:
            self.notes.append(f"{name} could not be read ({e.strerror or e})")
        if bad:
            self.notes.append(f"{name}: {bad:,} unreadable line(s) skipped")

    def json(self, name: str, missing: str | None = None) -> Any:
        p = self.path(name)
        if p is None:
            if missing:
                self.notes.append(f"no {name}: {missing}")
            return None
        try:
            return json.loads(p.read_text())
        except (OSError, ValueError):
            self.notes.append(f"{name} is not valid JSON: ignored")
            return None

    def lines(self, name: str) -> int:
        p = self.path(name)
        if p is None:
            return 0
        n = 0
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                n += chunk.count(b"\n")
        return n


def _get(obj: Any, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(k)
    return default if obj is None else obj


def _text(x: Any) -> str:
    return x if isinstance(x, str) else ("" if x is None else str(x))


def load_run(root: Path, budget: int = TEXT_BUDGET) -> RunData:
    """Everything the run report shows, from the run directory ``root``."""
    return _RunLoader(Path(root)).load(budget)


def stage_file(stage: str) -> str:
    """The stage's output file in a run directory, as the registry names it."""
    return BY_NAME[stage].file


def _drops_file(stage: str) -> str:
    return StageFiles(Path(stage_file(stage))).drops.name


def _caps(budget: int, n_responses: int) -> dict[str, int]:
    """Each response's share of the text budget, between the floors and ceilings."""
    per = budget / max(1, n_responses)
    return {
        "code": int(min(CODE_CAP[1], max(CODE_CAP[0], per * 0.55))),
        "tests": int(min(TESTS_CAP[1], max(TESTS_CAP[0], per * 0.27))),
        "stderr": int(min(STDERR_CAP[1], max(STDERR_CAP[0], per * 0.18))),
        "instruction": INSTRUCTION_CAP, "seed": SEED_CAP,
    }


FULL_CAPS = {"code": CODE_CAP[1], "tests": TESTS_CAP[1], "stderr": STDERR_CAP[1]}  # chosen responses


def _example_as_executed(ex: dict) -> tuple[dict, dict, dict]:
    """A dataset example as an executed response of its instruction (the fields it keeps):
    (the instruction, the executed record, its verdict)."""
    ins = {"id": _text(ex.get("id")), **{k: ex.get(k) for k in (
        "seed_id", "seed_source", "seed_path", "concepts", "category", "difficulty", "instruction")}}
    resp = {"id": _text(ex.get("parent_id")), "parent_id": ins["id"], "sample_index": 0,
            "instruction": ins, "code": ex.get("response"), "tests": ex.get("tests")}
    v = ex.get("verdict") if isinstance(ex.get("verdict"), dict) else {"status": "passed"}
    return ins, {"response": resp}, v


class _RunLoader:
    """One reading of a run directory, file by file in the order below (the notes keep it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.notes: list[str] = []
        self.rd = Reader(root, self.notes)
        self.instructions: list[Instruction] = []
        self.by_id: dict[str, int] = {}
        self.chosen: set[str] = set()  # executed ids of the dataset's examples
        self.checks: dict[str, dict] = {}  # verification checks by executed id
        self.truncated: Counter = Counter()
        self.seen_responses: set[str] = set()
        self.exec_ids: dict[str, int] = {}  # executed id -> instruction index
        self.seeds: dict[str, dict] = {}

    def load(self, budget: int) -> RunData:
        summary, config = self.read_summary(), self.read_config()
        self.require_meaningful = bool(_get(config, "execute", "require_meaningful_tests", default=True))
        for o in self.rd.jsonl(stage_file("instructions"), "instructions are taken from the executed responses"):
            self.add_instruction(o)
        dataset_size, examples, examples_only = self.read_dataset()
        verified = self.read_checks()
        n_resp = self.rd.lines(stage_file("responses"))
        self.caps = _caps(budget, max(self.rd.lines(stage_file("execute")), n_resp))
        for ex in examples:
            self.add_example(ex)
        self.read_responses(examples_only, n_resp)
        self.read_drops()
        self.read_seeds()
        for ins in self.instructions:
            if len(ins.text) > INSTRUCTION_CAP:
                ins.text = cap(ins.text, INSTRUCTION_CAP, "instruction", self.truncated)
        return RunData(root=self.root, summary=summary, config=config, notes=self.notes,
                       instructions=self.instructions, seeds=self.seeds, verified=verified,
                       dataset_size=dataset_size, caps=self.caps, truncated=self.truncated,
                       require_meaningful=self.require_meaningful,
                       examples_only=bool(examples_only and examples))

    def read_summary(self) -> dict | None:
        summary = self.rd.json("summary.json", "the run has not finished (or this is not a run "
                               "directory); counts below come from the record files")
        if summary is not None and not isinstance(summary, dict):
            self.notes.append("summary.json is not a JSON object: ignored")
            summary = None
        return summary

    def read_config(self) -> dict:
        config: dict = {}
        if (p := self.rd.path("config.yaml")) is not None:
            try:
                import yaml

                config = yaml.safe_load(p.read_text()) or {}
                if not isinstance(config, dict):
                    config = {}
            except Exception:  # noqa: BLE001 - a bad config only loses its details
                self.notes.append("config.yaml could not be parsed: ignored")
        return config

    def add_instruction(self, o: dict) -> int | None:
        """The instruction's index, added in file order the first time it is seen."""
        iid = _text(o.get("id"))
        if not iid:
            return None
        if iid in self.by_id:
            return self.by_id[iid]
        seed_path = _text(o.get("seed_path"))
        concepts = o.get("concepts") if isinstance(o.get("concepts"), list) else []
        self.by_id[iid] = len(self.instructions)
        self.instructions.append(Instruction(
            id=iid, text=_text(o.get("instruction")), category=_text(o.get("category")) or "?",
            difficulty=_text(o.get("difficulty")) or "?", seed_id=_text(o.get("seed_id")),
            seed_path=seed_path, seed_source=short_source(_text(o.get("seed_source")), seed_path),
            concepts=[_text(c) for c in concepts], package=package_of(seed_path)))
        return self.by_id[iid]

    def read_dataset(self) -> tuple[int, list[dict], bool]:
        """Which executed response each kept example came from: (the dataset's size, the
        examples themselves when there are no responses to show, whether there are none)."""
        dataset_size = 0
        examples_only = all(self.rd.path(stage_file(s)) is None for s in ("execute", "responses"))
        examples: list[dict] = []
        for o in self.rd.jsonl(stage_file("select"), "the run has no dataset yet"):
            dataset_size += 1
            if o.get("parent_id"):
                self.chosen.add(_text(o["parent_id"]))
            if examples_only:
                examples.append(o)
        if examples_only and examples:
            self.notes.append(f"no {stage_file('execute')} (a merged run, or a dataset alone): the examples "
                              "show the kept examples only, each with its chosen response")
        return dataset_size, examples, examples_only

    def read_checks(self) -> bool:
        """Verification checks, by executed id; whether the run has them."""
        name = stage_file("verify")
        verified = self.rd.path(name) is not None
        for o in self.rd.jsonl(name):
            if o.get("parent_id"):
                self.checks[_text(o["parent_id"])] = o
        if not verified:
            self.notes.append(f"no {name}: test-strength figures are missing (verification was off "
                              f"or the run is older; `selfcodealign verify --in {stage_file('execute')} --out "
                              f"{name}` makes it)")
        return verified

    def add_response(self, o: dict, verdict: dict | None, meaningful: bool, executed_id: str) -> None:
        resp = o if verdict is None else (o.get("response") or {})
        ins = resp.get("instruction") if isinstance(resp.get("instruction"), dict) else {}
        iid = _text(resp.get("parent_id") or ins.get("id"))
        idx = self.by_id.get(iid)
        if idx is None:
            idx = self.add_instruction({**ins, "id": iid}) if iid else None
            if idx is None:
                return
        self.seen_responses.add(_text(resp.get("id")))
        status = _text(verdict.get("status")) if verdict is not None else "not executed"
        detail = _text(verdict.get("detail")) if verdict is not None else ""
        passes = status == "passed" and (meaningful or not self.require_meaningful)
        is_chosen = executed_id in self.chosen
        c = FULL_CAPS if is_chosen else self.caps
        sample = resp.get("sample_index")
        t = self.truncated
        self.instructions[idx].responses.append(Response(
            ins=idx, sample=sample if isinstance(sample, int) else len(self.instructions[idx].responses),
            status=status or "?", detail=detail, meaningful=meaningful, passes=passes,
            duration=float(verdict.get("duration") or 0.0) if verdict is not None else 0.0,
            group=failure_group(status, detail, passes), executed_id=executed_id,
            code=cap(_text(resp.get("code")), c["code"], "code", t),
            tests=cap(_text(resp.get("tests")), c["tests"], "tests", t),
            stderr=cap(_text((verdict or {}).get("stderr")), c["stderr"], "stderr", t, tail=True),
            check=_compact_check(self.checks.get(executed_id)) if executed_id else None,
            chosen=is_chosen))
        if executed_id:
            self.exec_ids[executed_id] = idx

    def add_example(self, ex: dict) -> None:
        """A kept example with its chosen response (a run with no responses to show)."""
        ins, executed, verdict = _example_as_executed(ex)
        self.add_response(executed, verdict, True, _text(ex.get("parent_id")))
        q = ex.get("quality") if isinstance(ex.get("quality"), dict) else None
        responses = self.instructions[self.by_id[ins["id"]]].responses if q else None
        if responses:
            made = int(q.get("mutants") or 0)
            score = q.get("mutation_score")
            if made and isinstance(score, (int, float)):
                responses[-1].check = {"f": [], "m": [made, round(score * made), 0, 0, list(q.get("unexercised") or [])]}

    def read_responses(self, examples_only: bool, n_resp: int) -> None:
        """The executed responses, then those not executed (yet), shown with no verdict."""
        missing = None if examples_only else "no response has been executed yet"
        for o in self.rd.jsonl(stage_file("execute"), missing):
            v = o.get("verdict")
            if not isinstance(v, dict) or not isinstance(o.get("response"), dict):
                continue
            self.add_response(o, v, bool(o.get("meaningful_tests")), _text(o.get("id")))
        if n_resp > len(self.seen_responses):
            for o in self.rd.jsonl(stage_file("responses")):
                if _text(o.get("id")) not in self.seen_responses:
                    self.add_response(o, None, False, "")
        for ins in self.instructions:
            ins.responses.sort(key=lambda r: r.sample)
            ins.kept = any(r.chosen for r in ins.responses)

    def read_drops(self) -> None:
        """Why instructions were dropped, and responses lost before execution."""
        for o in self.rd.jsonl(_drops_file("select")):
            iid = _text(o.get("input_id"))
            idx = self.by_id.get(iid, self.exec_ids.get(iid))  # sanitized drops name the executed id
            if idx is not None and not self.instructions[idx].kept:
                self.instructions[idx].select_reason = _text(o.get("reason"))
                self.instructions[idx].select_detail = _text(o.get("detail"))
                if iid in self.exec_ids:
                    for r in self.instructions[idx].responses:
                        r.removed = r.removed or r.executed_id == iid
        for o in self.rd.jsonl(_drops_file("responses")):
            idx = self.by_id.get(_text(o.get("input_id")))
            if idx is not None:
                self.instructions[idx].dropped_samples[_text(o.get("reason")) or "?"] += 1

    def read_seeds(self) -> None:
        """The seeds the instructions name (the concepts file carries them too)."""
        wanted = {ins.seed_id for ins in self.instructions if ins.seed_id}
        for o in self.rd.jsonl(stage_file("seeds")):
            self.add_seed(o, wanted)
        if wanted - self.seeds.keys():
            for o in self.rd.jsonl(stage_file("concepts")):
                if isinstance(o.get("seed"), dict):
                    self.add_seed(o["seed"], wanted)
            if wanted - self.seeds.keys():
                self.notes.append(f"{len(wanted - self.seeds.keys()):,} seed(s) named by instructions are in "
                                  f"neither {stage_file('seeds')} nor {stage_file('concepts')}")

    def add_seed(self, s: dict, wanted: set[str]) -> None:
        sid = _text(s.get("id"))
        if sid in wanted and sid not in self.seeds:
            self.seeds[sid] = {"name": _text(s.get("name")), "path": _text(s.get("path")),
                               "source": short_source(_text(s.get("source")), _text(s.get("path"))),
                               "lines": [s.get("line_start"), s.get("line_end")],
                               "code": cap(_text(s.get("code")), SEED_CAP, "seed", self.truncated)}


def _compact_check(o: dict | None) -> dict | None:
    if not o:
        return None
    m = o.get("mutation") if isinstance(o.get("mutation"), dict) else None
    a = o.get("agreement") if isinstance(o.get("agreement"), dict) else None
    out: dict[str, Any] = {"f": [_text(x) for x in (o.get("faithfulness") or [])]}
    if m:
        made, killed = int(m.get("made") or 0), int(m.get("killed") or 0)
        out["m"] = [made, killed, int(m.get("timeouts") or 0), int(m.get("crashed") or 0),
                    [_text(x) for x in (m.get("unexercised") or [])]]
    if a:
        out["a"] = [int(a.get(k) or 0) for k in ("siblings", "pass_my_tests", "passing_siblings",
                                                   "my_code_passes")] + [bool(a.get("suspect"))]
    return out


def mutation_score(check: dict | None) -> float | None:
    if not check or "m" not in check or not check["m"][0]:
        return None
    return check["m"][1] / check["m"][0]


def group_counts(items, key) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for x in items:
        out[key(x)].append(x)
    return out
