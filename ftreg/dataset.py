"""Reading a ``--dataset`` into examples: resolve the source, pick the format, find duplicates."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ftreg import plugins
from ftreg.data import dataset_path
from ftreg.errors import DatasetError
from ftreg.formats import DatasetFormat, Example, Problems, detect_format

# Far past any context window: a row this long is a broken file, not a long example.
MAX_EXAMPLE_CHARS = 100_000


@dataclass(frozen=True)
class LoadedDataset:
    source: str  # as the user gave it: a path or builtin:NAME
    path: Path
    format: DatasetFormat
    detected: bool  # the format was detected, not given with --format
    examples: list[Example]
    duplicate_lines: list[int]  # examples identical to an earlier one (kept, but worth a warning)

    @functools.cached_property
    def fingerprint(self) -> str:  # read once: the run record, the resume check and the manifest all use it
        return "sha256:" + hashlib.sha256(self.path.read_bytes()).hexdigest()

    def describe(self) -> dict:
        return {"source": self.source, "format": self.format.name, "fingerprint": self.fingerprint, "examples": len(self.examples)}


def load_dataset(source: str, format_name: str | None = None, columns: dict[str, str] | None = None) -> LoadedDataset:
    path = dataset_path(source)
    if format_name:
        dataset_format = plugins.get_dataset_format(format_name)
    else:
        dataset_format = detect_format(path, plugins.dataset_formats())
    examples = dataset_format.read(path, columns)
    if not examples:
        raise DatasetError(f"{path}: the dataset has no examples")
    problems = Problems(path)
    for example in examples:
        size = sum(len(segment.text) for segment in example.segments)
        if size > MAX_EXAMPLE_CHARS:
            problems.add(f"the example is {size:,} characters long; the limit is {MAX_EXAMPLE_CHARS:,} (a broken export?)", example.line)
    problems.raise_if_any()
    seen: set[tuple] = set()
    duplicates = []
    for example in examples:
        if example.segments in seen:
            duplicates.append(example.line)
        seen.add(example.segments)
    return LoadedDataset(source, path, dataset_format, not format_name, examples, duplicates)


LOSS_OPEN, LOSS_CLOSE = "[[", "]]"


def check_report(dataset: LoadedDataset, tokenizer, max_length: int) -> dict:
    """What `ftreg data check` prints: sizes, token-length statistics, truncation, one example."""
    from ftreg.training.examples import encode

    untruncated, _ = encode(dataset.examples, tokenizer, max_length=10**9)
    lengths = sorted(len(encoded.input_ids) for encoded in untruncated)
    first, _ = encode(dataset.examples[:1], tokenizer, max_length)
    return {
        "source": dataset.source,
        "path": str(dataset.path),
        "format": dataset.format.name,
        "detected": dataset.detected,
        "examples": len(dataset.examples),
        "duplicate_lines": dataset.duplicate_lines,
        "tokens": {
            "min": lengths[0],
            "median": lengths[len(lengths) // 2],
            "p95": lengths[min(len(lengths) - 1, int(len(lengths) * 0.95))],
            "max": lengths[-1],
        },
        "max_length": max_length,
        "truncated": sum(length > max_length for length in lengths),
        "example": {"line": dataset.examples[0].line, "rendered": render_loss(first[0], tokenizer) if first else ""},
    }


def render_loss(encoded, tokenizer) -> str:
    """The example's text with every run of loss-carrying tokens wrapped in [[ ]]."""
    from itertools import groupby

    from ftreg.training.examples import IGNORE_INDEX

    parts = []
    pairs = zip(encoded.input_ids, encoded.labels)
    for trains, run in groupby(pairs, key=lambda pair: pair[1] != IGNORE_INDEX):
        text = tokenizer.decode([token for token, _ in run])
        parts.append(f"{LOSS_OPEN}{text}{LOSS_CLOSE}" if trains else text)
    return "".join(parts)
