"""Datasets shipped with ftreg, addressed as ``builtin:NAME``."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ftreg.errors import DatasetError

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = {
    "support": "support/train.json",  # customer-support instruction/response pairs
    "support-test": "support/test.json",  # held-out pairs whose instructions are not in "support"
}


def dataset_path(source: str) -> Path:
    """The file behind a ``--dataset`` argument: ``builtin:NAME`` or a path."""
    if source.startswith(BUILTIN_PREFIX):
        name = source.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTIN_DATASETS:
            raise DatasetError(f"unknown built-in dataset {source!r}; available: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)}")
        return Path(str(files(__name__) / BUILTIN_DATASETS[name]))
    path = Path(source)
    if not path.is_file():
        raise DatasetError(f"{source}: no such file")
    return path
