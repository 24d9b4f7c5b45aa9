"""Reading a ``--dataset`` into examples: a source finds the file, a format reads it, duplicates are counted."""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from ftreg import plugins
from ftreg.contract.formats import DatasetFormat, Example, Problems
from ftreg.datasets.detect import detect_format
from ftreg.errors import DatasetError

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
        return file_fingerprint(self.path)

    @property
    def reference(self) -> str:
        """What a record should name to find this data again from any directory: a local file's absolute path, else the text as given."""
        return str(self.path.resolve()) if Path(self.source).is_file() else self.source

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "format": self.format.name, "fingerprint": self.fingerprint, "examples": len(self.examples)}


def file_fingerprint(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_path(text: str) -> Path:
    """The local file behind a ``--dataset`` text, from the first registered source that claims it."""
    for source in plugins.dataset_sources().values():
        if source.claims(text):
            return source.resolve(text)
    raise DatasetError(f"{text}: no dataset source understands this (sources: {', '.join(plugins.dataset_sources())})")


def load_dataset(source: str, format_name: str | None = None, columns: dict[str, str] | None = None) -> LoadedDataset:
    path = dataset_path(source)
    if format_name:
        dataset_format = plugins.get_dataset_format(format_name)
    else:
        dataset_format = detect_format(path, plugins.dataset_formats())
    known = dataset_format.renamable_fields
    if columns and known is not None and (unknown := sorted(set(columns) - set(known))):
        reads = f"the fields it reads: {', '.join(known)}" if known else "it has no fields to rename"
        raise DatasetError(f"`columns` renames {unknown[0]!r}, but format {dataset_format.name!r} has no such field ({reads})")
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
