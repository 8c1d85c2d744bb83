"""Typed records that flow between stages.

Every record has an ``id`` derived from its content and lineage (see ``ids.py``) and a
``parent_id`` naming the record it came from, so each dataset example traces back to
its seed. Records are frozen: a stage makes new records, it never edits old ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["function", "class", "program"]
Difficulty = Literal["easy", "medium", "hard"]
Status = Literal["passed", "failed", "timeout", "oom", "crashed", "error"]


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Seed(Record):
    """A function with a docstring, made self-standing (its imports prepended)."""

    id: str
    code: str
    name: str
    source: str  # e.g. "stdlib", "dir:/path", "jsonl:/path/*.jsonl", "hf:bigcode/the-stack"
    path: str  # file (or row key) inside the source
    line_start: int
    line_end: int
    license: str | None = None


class GenMeta(Record):
    """How a piece of text was generated: enough to reproduce the request."""

    model: str
    model_sha256: str | None = None
    model_sha256_note: str | None = None  # why model_sha256 is None (e.g. weights behind a server)
    backend: str
    prompt_style: str
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Concepts(Record):
    id: str
    parent_id: str  # seed id
    seed: Seed
    concepts: list[str]
    raw: str
    gen: GenMeta


class Instruction(Record):
    id: str
    parent_id: str  # concepts id
    seed_id: str
    seed_source: str
    seed_path: str
    concepts: list[str]
    category: Category
    difficulty: Difficulty
    instruction: str
    raw: str
    gen: GenMeta


class Response(Record):
    id: str
    parent_id: str  # instruction id
    sample_index: int
    instruction: Instruction
    response: str  # the answer shown to the user (markdown, code fenced)
    code: str  # the solution code extracted from the response
    tests: str  # the tests the model wrote for its own solution
    raw: str
    gen: GenMeta


class Verdict(Record):
    """The sandbox's answer for one program. ``status`` is a small closed set."""

    id: str
    status: Status
    exit_code: int | None = None
    duration: float = 0.0
    stdout: str = ""
    stderr: str = ""
    detail: str = ""


class Executed(Record):
    id: str
    parent_id: str  # response id
    response: Response
    verdict: Verdict
    meaningful_tests: bool  # tests assert on something the response defines


class Mutation(Record):
    """Mutation analysis of one passing response: its solution's mutants run against its
    own tests (see selfcodealign.verify.mutants)."""

    made: int  # mutants run (those equal to the original are not made)
    killed: int  # failed their tests: failed, timeout, crashed or out of memory
    timeouts: int = 0  # of the killed, by timeout
    crashed: int = 0  # of the killed, by a signal or out of memory
    errors: int = 0  # the sandbox could not run them: not counted in made
    unexercised: list[str] = Field(default_factory=list)  # functions whose body can raise unnoticed

    @property
    def score(self) -> float | None:
        return self.killed / self.made if self.made else None


class Agreement(Record):
    """How a passing response agrees with its siblings (the other responses to the same
    instruction): dual execution agreement, as in CodeT."""

    siblings: int  # other responses whose code could run
    pass_my_tests: int  # of them, how many pass this response's tests
    passing_siblings: int  # other passing responses
    my_code_passes: int  # of their tests, how many this response's code passes
    # No sibling's code passes these tests, while two other passing responses pass each
    # other's: the tests likely encode this response's own mistake.
    suspect: bool = False


class Probes(Record):
    """How a passing response's function answers new inputs beside its passing siblings'
    (``selfcodealign.verify.probes``): mutations of the literal arguments of the tests'
    calls."""

    function: str  # the task's function, called on every probe
    made: int  # probes run
    answered: int  # of them, how many it returned a value on (not an exception)
    compared: int  # passing siblings whose answers on the probes came back
    disagreeing: int  # of them, how many returned a different value on some probe
    example: str = ""  # one disagreement: "f(args): mine != theirs"

    @property
    def unsettled(self) -> bool:
        """At least half of the siblings it was compared with differ from it on some probe.
        One contradicted by a single sibling of several may be right (a buggy sibling); one
        that half of them contradict is not settled."""
        return self.disagreeing > 0 and 2 * self.disagreeing >= self.compared


class Checks(Record):
    """What verification found about one passing response."""

    id: str
    parent_id: str  # executed id
    instruction_id: str
    faithfulness: list[str] = Field(default_factory=list)  # why it does not answer the instruction
    mutation: Mutation | None = None
    agreement: Agreement | None = None
    probes: Probes | None = None
    pass_rate: tuple[int, int]  # (passing responses, responses) of its instruction


class Judgement(Record):
    """A model's verdict on whether a passing response meets one requirement sentence of
    its instruction (``selfcodealign.stages.judge``)."""

    id: str
    parent_id: str  # executed id
    instruction_id: str
    requirement: str
    satisfied: bool
    raw: str
    gen: GenMeta


class Quality(Record):
    """The checks behind a kept example, as recorded in the dataset."""

    mutation_score: float | None = None
    mutants: int = 0
    unexercised: list[str] = Field(default_factory=list)
    pass_rate: tuple[int, int] | None = None
    agreement: Agreement | None = None
    probes: Probes | None = None


class Message(Record):
    role: Literal["system", "user", "assistant"]
    content: str


class Example(Record):
    """One line of the final instruction-tuning dataset."""

    id: str
    parent_id: str  # executed id
    instruction: str
    response: str
    messages: list[Message]
    seed_id: str
    seed_source: str
    seed_path: str
    concepts: list[str]
    category: Category
    difficulty: Difficulty
    tests: str
    verdict: Verdict
    model: str
    model_sha256: str | None = None
    model_sha256_note: str | None = None
    sampling: dict[str, float | int | str] = Field(default_factory=dict)
    quality: Quality | None = None


class HeldOutTask(Record):
    """A generated task kept out of every training set to score models on (``eval
    --benchmarks selfval:FILE``): the instruction and the tests of a passing response to
    it that verification found strong."""

    id: str
    parent_id: str  # instruction id
    seed_id: str
    instruction: str
    tests: str
    solution: str  # the passing response's code (checked against ``tests`` when scored)
    quality: Quality | None = None


class PreferencePair(Record):
    """A passing and a failing response to the same instruction, for preference training
    (DPO): ``chosen`` is the response selection keeps, ``rejected`` a failing one."""

    id: str
    parent_id: str  # instruction id
    seed_id: str
    prompt: list[Message]  # system (if any) and user turns
    chosen: str
    rejected: str
    chosen_id: str  # executed ids
    rejected_id: str
    rejected_verdict: Verdict
    quality: Quality | None = None


class Drop(Record):
    """An input a stage could not turn into output, with a reason that gets counted."""

    input_id: str
    stage: str
    reason: str
    detail: str = ""
    raw: str = ""
