"""A run directory's outputs as one Hub dataset folder: the dataset, the preference pairs
and the held-out tasks, each a config of Parquet files, with a dataset card whose YAML
header names them (``configs``), so that ``datasets.load_dataset(OUT)`` and the Hub's
viewer read the folder as it is.

The held-out tasks are a config of their own rather than the ``test`` split of the
dataset's: a config has one set of columns, and a held-out task has tests and a solution,
not an answer to train on.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from selfcodealign.errors import UserError
from selfcodealign.jsonl import read_records
from selfcodealign.models.loading import require
from selfcodealign.records import Example, HeldOutTask, Message, PreferencePair
from selfcodealign.stages.select import selection_file

DATASET = "dataset.jsonl"
RUN_FILES = {"config.yaml": "run_config.yaml", "summary.json": "run_summary.json"}  # copied beside the data


@dataclass(frozen=True)
class Part:
    """One config of the exported dataset: which run file it comes from, as which split."""

    config: str
    split: str
    kind: str  # "" for the dataset itself, else its selection file (select.selection_file)
    record: type[BaseModel]
    purpose: str

    def source(self, run_dir: Path) -> Path:
        data = run_dir / DATASET
        return selection_file(data, self.kind) if self.kind else data

    @property
    def folder(self) -> str:
        return "data" if self.config == "default" else self.config  # the Hub's own layout

    @property
    def path(self) -> str:
        return f"{self.folder}/{self.split}-00000-of-00001.parquet"


PARTS = [
    Part("default", "train", "", Example,
         "supervised fine-tuning: TRL's SFTTrainer takes `messages` as it is"),
    Part("pairs", "train", "pairs", PreferencePair,
         "preference training: TRL's DPOTrainer takes `prompt` / `chosen` / `rejected` as they are"),
    Part("heldout", "test", "heldout", HeldOutTask,
         "scoring models: each task's `tests` judge an answer to its `prompt` "
         "(`selfcodealign eval --benchmarks selfval:FILE` scores them)"),
]


def as_messages(content: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": content}]


def rows(part: Part, records: list[BaseModel], system_prompt: str | None) -> list[dict[str, Any]]:
    """The records as table rows in TRL's conversational form: a pair's answers become
    assistant turns (TRL needs ``chosen`` and ``rejected`` in the form of ``prompt``), a
    held-out task gains the ``prompt`` an answer is asked with."""
    out = []
    for r in records:
        row = r.model_dump(mode="json")
        if part.config == "pairs":
            row["chosen"], row["rejected"] = as_messages(row["chosen"]), as_messages(row["rejected"])
        elif part.config == "heldout":
            system = [{"role": "system", "content": system_prompt}] if system_prompt else []
            row = {"prompt": [*system, {"role": "user", "content": row["instruction"]}], **row}
        out.append(row)
    return out


def features(model: type[BaseModel], datasets, rows: list[dict[str, Any]]):
    """The Arrow types of ``model``'s fields, from their annotations, so that a column is
    typed the same in every export even where this run left it all null (a free-form
    dict, such as ``sampling``, is typed from its values)."""
    import types
    import typing

    def of(ann, name):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        origin = typing.get_origin(ann)
        if origin in (typing.Union, types.UnionType) and len(args) == 1:
            return of(args[0], name)
        if origin is typing.Literal or ann is str:
            return datasets.Value("string")
        if ann in (int, float, bool):
            return datasets.Value({int: "int64", float: "float64", bool: "bool"}[ann])
        if origin in (list, tuple):
            return datasets.List(of(args[0], name))
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            return {k: of(f.annotation, k) for k, f in ann.model_fields.items()}
        # a free-form dict: typed from its values in this export
        return datasets.Dataset.from_list([{name: r[name]} for r in rows]).features[name]

    return {k: of(f.annotation, k) for k, f in model.model_fields.items()}


def _table(part: Part, records: list[BaseModel], system_prompt: str | None, datasets):
    """One config's rows as a ``datasets.Dataset`` with the columns typed from the records."""
    table_rows = rows(part, records, system_prompt)
    types = features(part.record, datasets, table_rows)
    turns = datasets.List(features(Message, datasets, []))
    for name in ("prompt", "chosen", "rejected"):  # conversations, after rows()
        types[name] = turns
    return datasets.Dataset.from_list(table_rows, features=datasets.Features({k: types[k] for k in table_rows[0]}))


def _system_prompt(run_dir: Path) -> str | None:
    """select.system_prompt of the run (the dataset's messages start with it)."""
    from selfcodealign.merge import run_config

    select = run_config(run_dir).get("select")
    return select.get("system_prompt") if isinstance(select, dict) else None


def _check_paths(run_dir: Path, out: Path) -> None:
    if not run_dir.is_dir():
        raise UserError(f"no run directory {run_dir}")
    if not (run_dir / DATASET).is_file():
        raise UserError(f"{run_dir} has no {DATASET}: not a finished `run` output directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} exists and is not empty; choose another OUT")


def read_parts(run_dir: Path) -> dict[Part, list[BaseModel]]:
    """Each part's records; a selection file the run did not make, or an empty one, is left
    out (pairs need a failing response, held-out tasks ``select.holdout_seeds``)."""
    found = {}
    for part in PARTS:
        src = part.source(run_dir)
        records = list(read_records(src, part.record)) if src.is_file() else []
        if records:
            found[part] = records
        elif part.config == "default":
            raise UserError(f"{src} holds no examples: nothing to export")
    return found


def export_dataset(run_dir: Path, out: Path, license: str = "other") -> dict[str, Any]:
    """Writes ``out``: one Parquet file per config and split, the dataset card (README.md),
    and the run's config and summary. Returns what it wrote (config -> split, rows)."""
    run_dir, out = Path(run_dir), Path(out)
    _check_paths(run_dir, out)
    datasets = require("datasets", "hf")
    from selfcodealign.hub.card import dataset_card

    parts = read_parts(run_dir)
    system_prompt = _system_prompt(run_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Written beside OUT and renamed into place: an interrupted export leaves no half folder.
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp's 0700 is for its name race only
        tables = {}
        datasets.disable_progress_bars()
        for part, records in parts.items():
            table = _table(part, records, system_prompt, datasets)
            (tmp / part.folder).mkdir()
            table.to_parquet(str(tmp / part.path))
            tables[part] = table
        for name, copy in RUN_FILES.items():
            if (run_dir / name).is_file():
                shutil.copyfile(run_dir / name, tmp / copy)
        default = next(records for part, records in parts.items() if part.config == "default")
        dataset_card(run_dir, tables, default, license).save(tmp / "README.md")
        if out.exists():
            out.rmdir()  # empty (checked above)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {p.config: {"split": p.split, "rows": t.num_rows, "file": p.path} for p, t in tables.items()}

