"""The dataset card of an exported run: the Hub's YAML header (licence, task, size,
configs) and a body made from the run's own files: the funnel and the quality figures
from summary.json, the model and its hash from the examples, the resolved config, and
what each column means."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selfcodealign import __version__
from selfcodealign.merge import run_summary

if TYPE_CHECKING:
    from selfcodealign.records import Example

# What each column means (a test checks that every column of every config is here).
FIELDS = {
    "id": "the record's id, derived from its content and lineage",
    "parent_id": "the record it came from: the executed response (dataset), the instruction (pairs, held-out tasks)",
    "messages": "the conversation to train on: the task as the `user` turn (after a `system` turn when "
                "`select.system_prompt` is set) and the kept answer, without its tests, as the `assistant` turn",
    "prompt": "the conversation an answer is asked with: the `system` turn if any and the task as the `user` turn",
    "chosen": "the kept passing answer, as an `assistant` turn",
    "rejected": "a failing answer to the same task, as an `assistant` turn",
    "chosen_id": "the executed response `chosen` comes from",
    "rejected_id": "the executed response `rejected` comes from",
    "rejected_verdict": "the sandbox's verdict on the rejected answer with its own tests",
    "instruction": "the task, written by the model from the seed's concepts",
    "response": "the kept answer (the `assistant` turn of `messages`)",
    "solution": "the code of a strongly tested passing answer, checked against `tests` when scored",
    "seed_id": "the seed function the task was made from: every record traces back to it",
    "seed_source": "where the seed was mined (a directory, file globs, a hub dataset, `stdlib`)",
    "seed_path": "the seed's file inside its source",
    "concepts": "the programming concepts the model listed for the seed",
    "category": "what the task asks for: function, class or program",
    "difficulty": "easy, medium or hard",
    "tests": "the tests the model wrote for its own answer; the answer passed them in the sandbox",
    "verdict": "the sandbox's verdict on answer and tests: status, exit code, duration, output",
    "model": "the model that wrote the task and the answer",
    "model_sha256": "SHA-256 of the model's weights (null when they were out of reach, e.g. behind a server)",
    "model_sha256_note": "why `model_sha256` is null",
    "sampling": "how the answer was sampled: temperature, top_p, max_tokens, seed, prompt style, backend",
    "quality": "what verification found: the mutation score of the tests (mutants of the solution they "
               "kill) and mutants run, functions the tests leave unexercised, the task's pass rate "
               "(passing, sampled) and agreement with the other answers to the task",
}
CITATION = """@inproceedings{wei2024selfcodealign,
  title = {SelfCodeAlign: Self-Alignment for Code Generation},
  author = {Yuxiang Wei and Federico Cassano and Jiawei Liu and Yifeng Ding and Naman Jain and Zachary Mueller
            and Harm de Vries and Leandro von Werra and Arjun Guha and Lingming Zhang},
  booktitle = {Advances in Neural Information Processing Systems},
  year = {2024},
  eprint = {2410.24198},
  archivePrefix = {arXiv}
}"""
FUNNEL = {"seeds": "seed functions", "concepts": "concept lists", "instructions": "tasks",
          "responses": "answers", "passing": "answers passing their tests", "dataset": "examples kept"}
SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M")]


def size_category(n: int) -> str:
    """The Hub's size bucket of ``n`` rows."""
    return next((label for limit, label in SIZES if n < limit), "n>10M")


def markdown_table(header: list[str], body: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def _counts(d: dict[str, int] | None) -> str:
    ordered = sorted((d or {}).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{k.replace('_', ' ')} {v:,}" for k, v in ordered) or "none"


def funnel_section(summary: dict[str, Any]) -> str:
    """The stages' counts and the reasons selection dropped tasks, from summary.json."""
    funnel = summary.get("funnel")
    if not funnel:
        if "parts" in summary:  # a `merge` output
            rows = [[p.get("run_dir", "?"), p.get("examples", 0), p.get("duplicate_id", 0),
                     p.get("sanitized", 0), p.get("kept", 0)] for p in summary["parts"]]
            return ("Merged from several runs (`selfcodealign merge`):\n\n"
                    + markdown_table(["run", "examples", "duplicate ids", "sanitized", "kept"], rows))
        return "The run left no summary.json: the funnel is unknown."
    text = markdown_table(["stage", "out"], [[FUNNEL.get(k, k), f"{v:,}"] for k, v in funnel.items()])
    sel = (summary.get("stages") or {}).get("select") or {}
    if sel:
        text += (f"\n\nTasks selection did not keep, by reason: {_counts(sel.get('drops'))}. "
                 f"Passing answers verification ruled out, by reason: {_counts(sel.get('rejected'))}. "
                 f"Decontamination and near-duplicate removal: {_counts(sel.get('sanitize'))}.")
    return text


def quality_section(summary: dict[str, Any], examples: list[Example]) -> str:
    """Verification's figures over every passing answer (summary.json), and over the kept ones."""
    lines = []
    ver = (summary.get("stages") or {}).get("verify") or {}
    m = ver.get("mutation")
    if m:
        lines.append(f"- Mutation analysis over the {ver.get('responses_checked', 0):,} passing answers: "
                     f"mean score {m['mean_score']:.3f} ({m['killed']:,} of {m['mutants']:,} mutants killed), "
                     f"{100 * m['share_at_least_0.5']:.1f}% with a score of at least 0.5, "
                     f"{100 * m['share_unexercised']:.1f}% with a function their tests leave unexercised.")
    if ver.get("unfaithful") is not None:
        lines.append(f"- Passing answers found not to do what the task asked, by reason: {_counts(ver['unfaithful'])}.")
    a = ver.get("agreement")
    if a:
        lines.append(f"- Agreement: {a['with_siblings']:,} answers had siblings; the tests of "
                     f"{a['tests_no_sibling_passes']:,} passed no sibling, {a['suspect_tests']:,} were suspect.")
    scores = [e.quality.mutation_score for e in examples
              if e.quality is not None and e.quality.mutation_score is not None]
    if scores:
        lines.append(f"- Kept examples: mean mutation score {sum(scores) / len(scores):.3f} over {len(scores):,} "
                     "with mutants.")
    kinds = Counter(f"{e.category}/{e.difficulty}" for e in examples)
    lines.append(f"- Kept examples by category/difficulty: {_counts(kinds)}.")
    return "\n".join(lines)


def model_section(examples: list[Example]) -> str:
    models = Counter((e.model, e.model_sha256 or f"none ({e.model_sha256_note or 'not recorded'})")
                     for e in examples)
    text = markdown_table(["model", "SHA-256", "examples"],
                          [[f"`{m}`", f"`{h}`", n] for (m, h), n in models.most_common()])
    keys = ("backend", "prompt_style", "temperature", "top_p", "max_tokens")
    sampling = Counter(tuple(e.sampling.get(k) for k in keys) for e in examples)
    text += "\n\nSampling of the kept answers:\n\n" + markdown_table(
        [*keys, "examples"], [[*s, n] for s, n in sampling.most_common()])
    return text


def card_data(run_dir: Path, tables: dict, rows: int, license: str):
    """The card's YAML header: what the Hub shows and how it loads the configs."""
    from huggingface_hub import DatasetCardData

    return DatasetCardData(
        license=license,
        language=["en"],
        task_categories=["text-generation"],
        size_categories=[size_category(rows)],
        tags=["code", "synthetic", "selfcodealign"],
        pretty_name=f"SelfCodeAlign: {run_dir.resolve().name}",
        configs=[{"config_name": p.config, "data_files": [{"split": p.split, "path": f"{p.folder}/{p.split}-*"}]}
                 for p in tables],
    )


def licence_section(license: str) -> str:
    if license != "other":
        return f"Licence: `{license}`, as given to `selfcodealign export-dataset --license`."
    return ("The licence is not set (`other`): the examples derive from seed functions under their own "
            "licences (see `seed_source`) and from the output of the model above under its licence. "
            "Choose one with `selfcodealign export-dataset --license ID`.")


def columns_section(tables: dict) -> str:
    columns = sorted({c for t in tables.values() for c in t.column_names})
    return markdown_table(["column", "in", "meaning"],
                          [[f"`{c}`", ", ".join(p.config for p, t in tables.items() if c in t.column_names),
                            FIELDS.get(c, "")] for c in columns])


def dataset_card(run_dir: Path, tables: dict, examples: list[Example], license: str = "other"):
    """The card for ``tables`` (part -> datasets.Dataset) exported from ``run_dir``, whose
    default config holds ``examples``."""
    from huggingface_hub import DatasetCard

    summary = run_summary(run_dir)
    data = card_data(run_dir, tables, len(examples), license)
    parts_table = markdown_table(["config", "split", "rows", "for"],
                                 [[f"`{p.config}`", p.split, f"{t.num_rows:,}", p.purpose] for p, t in tables.items()])
    loads = "\n".join(f'{p.config} = load_dataset("REPO_OR_FOLDER", "{p.config}", split="{p.split}")'
                      for p in tables)
    fields = columns_section(tables)
    config = (run_dir / "config.yaml").read_text() if (run_dir / "config.yaml").is_file() else "# no config.yaml"
    verified = bool((summary.get("stages") or {}).get("verify")) or "parts" in summary
    kept = ("Each kept answer passed its tests, and verification found its tests strong and its code faithful "
            "to the task." if verified else "Each kept answer passed its tests; this run did not verify them further.")
    licence_note = licence_section(license)
    body = f"""# {data.pretty_name}

Instruction-tuning data for code that a model wrote and checked itself, made with
`selfcodealign` {__version__}, an implementation of SelfCodeAlign (Wei et al., NeurIPS 2024):
the model mined seed functions, listed their concepts, wrote new tasks from them, answered each task several
times with its own tests, and every answer ran in a sandbox. {kept} No person reviewed the examples.

## Configs

{parts_table}

```python
from datasets import load_dataset

{loads}
```

Field names follow TRL's conventions: `SFTTrainer` trains on the `messages` of the default config
(`assistant_only_loss=True` puts the loss on the answer only), `DPOTrainer` on `prompt` / `chosen` /
`rejected` of `pairs`, with no conversion.

## How it was made

{funnel_section(summary)}

## Model

{model_section(examples)}

## Quality

{quality_section(summary, examples)}

## Columns

{fields}

## Run configuration

The run's resolved configuration (also in `run_config.yaml`; its summary in `run_summary.json`):

<details>
<summary>config.yaml</summary>

```yaml
{config.rstrip()}
```

</details>

## Licence

{licence_note}

## Citation

```bibtex
{CITATION}
```
"""
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
