"""Settings of seed mining. Every field has a default; the CLI exposes each one as a flag."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from selfcodealign.seeds.filters import DEFAULT_UNSAFE_IMPORTS, DEFAULT_UNWANTED_WORDS

PERMISSIVE_LICENSES = [
    "MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "PSF-2.0", "Python-2.0",
    "Unlicense", "CC0-1.0", "0BSD", "Zlib", "MIT-0", "BSL-1.0", "mit", "apache-2.0",
    "bsd-2-clause", "bsd-3-clause", "isc", "unlicense", "cc0-1.0",
]


class SeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: str = Field(
        "stdlib",
        description=(
            "Where to mine: 'stdlib' (this Python's standard library), a directory or .py "
            "file, JSONL/Parquet files (globs, comma-separated), or hf:NAME[:CONFIG]; "
            "seeds:FILE takes the seeds of a file written by `selfcodealign seeds` as they are."
        ),
    )
    max_seeds: int | None = Field(
        None, ge=1, description="Stop once this many seeds passed every filter (None: mine everything)."
    )
    sample_seed: int = Field(0, description="Seed of the processing order (which files are read first).")
    min_lines: int = Field(5, ge=1, description="Fewest lines a function may have (docstring included).")
    max_lines: int = Field(150, ge=1, description="Most lines a function may have (docstring included).")
    unwanted_words: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNWANTED_WORDS),
        description="Drop functions containing any of these words (TODO, FIXME, ...).",
    )
    unsafe_imports: list[str] = Field(
        default_factory=lambda: list(DEFAULT_UNSAFE_IMPORTS),
        description="Drop functions that import any of these modules (processes, files, network, timing).",
    )
    typecheck: bool = Field(True, description="Drop seeds with Pyright errors (needs basedpyright).")
    typecheck_third_party: bool = Field(
        False,
        description=(
            "Let Pyright resolve third-party imports from this interpreter's site-packages "
            "(checks library usage too, but much slower); by default they are unknown, not errors."
        ),
    )
    typecheck_batch: int = Field(1000, ge=1, description="Seeds per Pyright run (each run costs ~2 s to start).")
    decontaminate: bool = Field(
        True, description="Drop seeds sharing a 10-word n-gram with HumanEval(+) / MBPP(+) prompts or solutions."
    )
    benchmark_data: list[str] | None = Field(
        None,
        description=(
            "Benchmark JSONL(.gz) files to decontaminate against instead of the shipped index "
            "(default: $SELFCODEALIGN_BENCHMARK_DATA, else the index shipped in the package)."
        ),
    )
    dedup: bool = Field(True, description="Drop near-duplicates (MinHash-LSH over word 3-grams).")
    dedup_threshold: float = Field(0.5, gt=0, le=1, description="Jaccard similarity at which two seeds are duplicates.")
    license_allowlist: list[str] | None = Field(
        None,
        description=(
            "Keep only documents whose licences are all in this list, when the source says "
            "(documents without licence information are kept). Try PERMISSIVE_LICENSES."
        ),
    )
    content_column: str | None = Field(
        None, description="Column holding the code in JSONL/Parquet/hf sources (default: content, code or text)."
    )
    hf_split: str = Field("train", description="Split of an hf: source.")
    shuffle_buffer: int = Field(1000, ge=1, description="Rows held for shuffling a JSONL/Parquet/hf stream.")
    max_file_bytes: int = Field(1_000_000, ge=1, description="Skip larger files (usually generated code).")
    judge: bool = Field(False, description="Ask the configured model whether each seed is good (slow).")
    workers: int | None = Field(None, ge=1, description="Worker processes (default: all cores).")
