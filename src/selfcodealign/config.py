"""Configuration: defaults (the paper's settings where practical) -> preset -> one YAML
file -> command-line flags. The resolved config is saved with each run.

Secrets never live here: the OpenAI-compatible backend takes the *name* of an
environment variable that holds the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from selfcodealign.errors import UserError
from selfcodealign.seeds import SeedsConfig


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class BackendConfig(_Section):
    kind: Literal["llamacpp", "openai", "hf", "vllm"] = Field(
        "llamacpp",
        description="Engine: llamacpp (embedded, in-process, CPU), openai (any "
        "OpenAI-compatible server), hf (transformers, GPU), vllm (vLLM offline API).",
    )
    model: str | None = Field(
        None,
        description="llamacpp: a GGUF file (default: the embedded Qwen2.5-Coder-0.5B-Instruct). "
        "hf/vllm: a Hugging Face model directory, hub id or GGUF file.",
    )
    base_url: str | None = Field(None, description="openai: server URL, e.g. http://127.0.0.1:8000/v1")
    model_name: str | None = Field(None, description="openai: model name (default: the server's first)")
    api_key_env: str = Field(
        "OPENAI_API_KEY", description="openai: environment variable holding the API key (never saved)"
    )
    n_parallel: int = Field(4, ge=1, description="llamacpp: parallel slots (continuous batching)")
    ctx_per_slot: int = Field(4096, ge=512, description="llamacpp: context tokens per slot")
    threads: int | None = Field(None, description="llamacpp: CPU threads (default: all cores)")
    concurrency: int = Field(16, ge=1, description="openai: requests in flight")
    timeout: float = Field(300.0, gt=0, description="openai: seconds per request")
    retries: int = Field(4, ge=0, description="openai: retries with exponential backoff")
    batch_size: int = Field(256, ge=1, description="hf/vllm: prompts per engine batch")
    engine: Literal["auto", "continuous", "generate"] = Field(
        "auto", description="hf: continuous (our continuous-batching engine, Llama/Qwen family), "
        "generate (transformers' generate, any model); auto: continuous where the model allows it")


class PromptConfig(_Section):
    style: Literal["auto", "chat", "completion"] = Field(
        "auto",
        description="chat: the model's chat template (instruction-tuned models); completion: "
        "plain few-shot text (base models, as in the paper); auto: chat if the model has a template.",
    )
    shots_concepts: int = Field(6, ge=0, le=12, description="few-shot examples for seed -> concepts")
    shots_instructions: int = Field(6, ge=0, le=12, description="few-shot examples for concepts -> instruction")
    shots_responses: int = Field(1, ge=0, le=12, description="few-shot examples for instruction -> response")
    examples: str | None = Field(
        None, description="YAML prompts file replacing the built-in one: `system` prompts and few-shot `examples` (a bare list of examples keeps the built-in system prompts)"
    )


class GenerationConfig(_Section):
    temperature: float = Field(0.7, ge=0, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling")
    max_tokens: int = Field(512, ge=1, description="generated tokens per sample")
    n: int = Field(1, ge=1, description="samples per input")


class InstructionsConfig(GenerationConfig):
    categories: list[Literal["function", "class", "program"]] = Field(
        # Class tasks are left out by default: at the embedded model's size none of the 71
        # labelled class responses of the development half was good (docs/verification.md).
        default_factory=lambda: ["function", "program"], min_length=1,
        description="task categories to sample from (uniformly; add `class` for a model that writes good classes)")
    difficulties: list[Literal["easy", "medium", "hard"]] = Field(
        default_factory=lambda: ["easy", "medium", "hard"], min_length=1,
        description="task difficulties to sample from (uniformly)")
    max_concepts: int | None = Field(
        None, ge=1, description="write each task from at most this many of its seed's concepts, "
        "a sample fixed by the record id (default: all of them, as the paper does)")
    drop_unanswerable: bool = Field(
        True, description="drop, before any response is generated, an instruction that names a "
        "library function that does not exist or asks for recursion in constant time or space")
    # At the embedded model's size none of the 38 labelled answers of the development half
    # to a task that names a package (numpy, torch, ...) was good (docs/verification.md).
    drop_packages: bool = Field(
        True, description="drop, before any response is generated, an instruction that asks for a "
        "package outside the standard library (numpy, pandas, torch, ...) or names the library its seed "
        "was mined from")


class ExecuteConfig(_Section):
    timeout: float = Field(10.0, gt=0, description="seconds per program (wall clock)")
    memory_mb: int = Field(1024, ge=64, description="memory per program")
    workers: int | None = Field(None, description="parallel sandboxes (default: all cores)")
    require_meaningful_tests: bool = Field(
        True,
        description="a pass counts only if the tests assert on something the response defines",
    )
    overlap: bool | Literal["auto"] = Field(
        "auto",
        description="run each response in the sandbox as soon as it is generated, while the "
        "model goes on (auto: on, except with the embedded CPU engine, whose threads would "
        "compete with the sandbox for the same cores)",
    )


class VerifyConfig(_Section):
    mutation: bool = Field(True, description="run mutants of each passing solution against its own tests")
    max_mutants: int = Field(40, ge=1, description="mutants per response at most (every function's "
                             "raise-mutant is always made; other sites are sampled beyond this)")
    agreement: bool = Field(True, description="run each passing response's tests against its siblings' "
                            "code and its code against theirs, to choose the best-agreeing one")
    faithfulness: bool = Field(True, description="check that the asked-for names exist, the solution "
                               "holds no tests, and the tests do not call example-usage code")
    probes: int = Field(24, ge=0, le=40, description="new inputs (the tests' literal arguments, mutated by type) "
                        "on which each passing response's function runs beside its passing siblings'; "
                        "0: none; at most 40, so that one run's results fit the sandbox's output cap")
    timeout_factor: float = Field(5.0, gt=0, description="a mutant or sibling run may take this many "
                                  "times the original run (within execute.timeout)")
    min_timeout: float = Field(0.5, gt=0, description="seconds a mutant or sibling run gets at least")


class JudgeConfig(GenerationConfig):
    enabled: bool = Field(False, description="ask the model, for each requirement sentence of an "
                          "instruction, whether a passing response meets it; select drops a response "
                          "judged not to (off: on the labelled responses its verdicts carried no information, "
                          "docs/verification.md)")
    max_requirements: int = Field(6, ge=1, description="requirement sentences judged per response at most")


class SelectConfig(_Section):
    seed: int = Field(0, description="seed for choosing one passing response per instruction")
    sanitize: bool = Field(
        True, description="drop benchmark-contaminated and near-duplicate examples"
    )
    dedup_threshold: float = Field(0.5, gt=0, le=1, description="MinHash Jaccard threshold")
    system_prompt: str | None = Field(None, description="system message for the chat `messages`")
    # HumanEval's own tests kill at least 0.6 of its canonical solutions' mutants on every
    # one of its 164 tasks (the weakest: 0.615): a response is kept when its tests are at
    # least as strong as HumanEval's weakest (docs/verification.md).
    min_mutation_score: float = Field(
        0.6, ge=0, le=1, description="keep a response only if its tests kill at least this share of "
        "its solution's mutants (needs verify.mutation; 0 keeps weak tests)")
    reject_unexercised: bool = Field(
        True, description="drop a response with a function whose body its tests never need")
    reject_unfaithful: bool = Field(
        True, description="drop a response for which verify recorded a reason (a missing asked-for "
        "name, an unmet requirement of the instruction, an explanation naming what the code lacks, "
        "tests that cannot fail, ...) other than those in keep_reasons")
    keep_reasons: list[str] = Field(
        default_factory=list, description="categories of verify's reasons that are recorded but do "
        "not reject (e.g. [\"unused import\"])")
    require_agreement: bool = Field(
        True, description="keep a response only if another response also passes, its code passes the "
        "tests of every other passing response, and some other response passes its tests (needs "
        "verify.agreement): an answer no independent sample agrees with is kept out")
    reject_probe_disagreement: bool = Field(
        True, description="drop a response whose function returns, on some of verify's probes (new "
        "inputs the tests do not cover), a different value from at least half of the passing "
        "siblings it was compared with: the task's answer is not settled there")
    by_agreement: bool = Field(
        True, description="choose the passing response that agrees most with its siblings (else a "
        "seeded random one)")
    pass_rate: tuple[float, float] = Field(
        (0.3, 1.0), description="keep only instructions whose share of passing responses is in "
        "this band: by default tasks that at least 3 in 10 samples pass (self-consistency, chosen "
        "on the labelled responses' development half, docs/verification.md); [0, 1] keeps every task")
    tests_in_response: bool = Field(
        False, description="keep the tests section in the assistant turn of `messages` (the paper "
        "trains on the response without it; `tests` is always its own field)")
    pick: Literal["passing", "any", "failing"] = Field(
        "passing", description="which response an example takes: a passing one (the method), any "
        "one regardless of its tests, or a failing one (the paper's ablations)")
    max_examples: int | None = Field(
        None, ge=1, description="keep at most this many examples, a seeded sample (e.g. an ablation "
        "the same size as the dataset it is compared with); their pairs follow them")
    holdout_seeds: int = Field(
        0, ge=0, description="keep the instructions of this many seeds (chosen by a hash of the seed "
        "id and `seed`: the same for every selection from the same responses) and their near-"
        "duplicates out of the dataset and the pairs; those with a strongly tested passing "
        "response become the held-out tasks (heldout.jsonl) that `eval --benchmarks "
        "selfval:FILE` scores")


def parse_shard(text: str) -> tuple[int, int]:
    """``K/N`` (1 <= K <= N) -> (K - 1, N)."""
    k, sep, n = str(text).partition("/")
    try:
        k_i, n_i = int(k), int(n)
    except ValueError:
        k_i = n_i = 0
    if not sep or not 1 <= k_i <= n_i:
        raise ValueError(f"expected K/N with 1 <= K <= N, e.g. 1/4; got {text!r}")
    return k_i - 1, n_i


class RunConfig(_Section):
    seed: int = Field(0, description="base seed mixed into every per-request sampling seed")
    shard: str | None = Field(
        None,
        description="K/N: this run does the K-th of N parts of the work, split by seed id "
        "(each part in its own run directory; `selfcodealign merge` joins their datasets)",
    )
    budget_minutes: float | None = Field(
        None, gt=0,
        description="size the run to about this many minutes on this machine: the engine's speed is "
        "measured first and seeds.max_seeds set to what fits (an explicit seeds.max_seeds wins)",
    )
    seeds: SeedsConfig = Field(default_factory=SeedsConfig)
    backend: BackendConfig = Field(default_factory=BackendConfig)
    prompts: PromptConfig = Field(default_factory=PromptConfig)
    concepts: GenerationConfig = Field(
        default_factory=lambda: GenerationConfig(temperature=0.0, max_tokens=128)
    )
    instructions: InstructionsConfig = Field(
        default_factory=lambda: InstructionsConfig(temperature=0.7, max_tokens=512)
    )
    responses: GenerationConfig = Field(
        default_factory=lambda: GenerationConfig(temperature=0.7, max_tokens=1024, n=10)
    )
    execute: ExecuteConfig = Field(default_factory=ExecuteConfig)
    verify: VerifyConfig = Field(default_factory=VerifyConfig)
    judge: JudgeConfig = Field(default_factory=lambda: JudgeConfig(temperature=0.0, max_tokens=4))
    select: SelectConfig = Field(default_factory=SelectConfig)

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: str | None) -> str | None:
        if v is None:
            return v
        k, n = parse_shard(v)
        return f"{k + 1}/{n}"


PRESETS: dict[str, dict[str, Any]] = {
    # The paper's settings (10 responses per instruction; all seeds).
    "default": {},
    # About 12 minutes on a 2-core laptop with the embedded model, sized to its speed.
    # A small model on a CPU: self-contained functions, not the hardest ones. Selection is
    # the paper's (one passing answer per task) plus every check: agreement between answers
    # needs more answers per task than a laptop's minutes afford (docs/benchmarks.md).
    "quickstart": {
        "budget_minutes": 12,
        "backend": {"n_parallel": 8, "ctx_per_slot": 3072},
        "instructions": {"max_tokens": 320, "categories": ["function"], "difficulties": ["easy", "medium"]},
        "responses": {"n": 4, "max_tokens": 640},
        "execute": {"timeout": 10.0},
        "select": {"require_agreement": False, "pass_rate": [0.0, 1.0]},
    },
}


def deep_merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` -> (["a","b","c"], parsed YAML scalar)."""
    if "=" not in item:
        raise UserError(f"--set expects KEY=VALUE, got {item!r}")
    key, _, raw = item.partition("=")
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError:
        value = raw
    return key.strip().split("."), value


def nest(path: list[str], value: Any) -> dict:
    out: Any = value
    for part in reversed(path):
        out = {part: out}
    return out


def load_yaml(path: str | Path, section: str | None = None) -> dict:
    """A YAML config file as a mapping; with ``section``, that section when the file has
    one (``train:`` ...), else the whole file."""
    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise UserError(f"config file not found: {p}") from None
    except OSError as e:
        raise UserError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise UserError(f"config file {p} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {p} must be a mapping of settings")
    if section and isinstance(data.get(section), dict):
        return data[section]
    return data


M = TypeVar("M", bound=BaseModel)


def load_settings(model: type[M], *, preset: dict | None = None, file: dict | None = None,
                  flags: dict | None = None, sets: list[str] | None = None, what: str = "config") -> M:
    """The one way settings are made, for run, seeds, train and eval alike: the model's
    defaults, then a preset, then a YAML file's mapping, then flags (None: not given), then
    ``--set KEY=VALUE`` items. A bad key or value is a one-line UserError."""
    # From the full defaults, so a partial section ({"responses": {"n": 2}}) keeps that
    # section's own defaults rather than the generic ones of its type.
    data: dict = model().model_dump()
    for layer in (preset, file, {k: v for k, v in (flags or {}).items() if v is not None}):
        data = deep_merge(data, layer or {})
    for item in sets or []:
        path, value = parse_override(item)
        data = deep_merge(data, nest(path, value))
    try:
        return model.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        if first["type"] == "extra_forbidden":
            raise UserError(f"unknown {what} key: {where}") from None
        msg = first["msg"].removeprefix("Value error, ")
        raise UserError(f"bad {what} value for {where}: {msg}" if where else f"bad {what}: {msg}") from None


def build_config(
    preset: str | None = None,
    yaml_path: str | Path | None = None,
    overrides: dict | None = None,
    sets: list[str] | None = None,
) -> RunConfig:
    """A run's config: defaults -> preset (--preset, else the file's ``preset:``) -> YAML ->
    flags -> --set."""
    file = load_yaml(yaml_path) if yaml_path else {}
    for other in ("train", "eval"):  # one file may hold every command's settings
        file.pop(other, None)
    in_file = file.pop("preset", None)
    name = preset or in_file
    if name is not None and name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return load_settings(RunConfig, preset=PRESETS.get(name or ""), file=file, flags=overrides, sets=sets)


def config_to_yaml(cfg: RunConfig) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
