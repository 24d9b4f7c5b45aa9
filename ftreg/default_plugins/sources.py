"""Built-in dataset sources: ``builtin:NAME`` for the datasets shipped with ftreg, and local files."""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path

from ftreg.contract import DatasetSource
from ftreg.errors import DatasetError
from ftreg.hookspecs import hookimpl

BUILTIN_PREFIX = "builtin:"
BUILTIN_DATASETS = {
    "support": "support/train.json",  # customer-support instruction/response pairs
    "support-test": "support/test.json",  # held-out pairs whose instructions are not in "support"
}


class BuiltinSource(DatasetSource):
    name = "builtin"
    description = f"datasets shipped with ftreg: {', '.join(BUILTIN_PREFIX + name for name in BUILTIN_DATASETS)}"

    def claims(self, text: str) -> bool:
        return text.startswith(BUILTIN_PREFIX)

    def resolve(self, text: str) -> Path:
        name = text.removeprefix(BUILTIN_PREFIX)
        if name not in BUILTIN_DATASETS:
            raise DatasetError(f"unknown built-in dataset {text!r}; available: {', '.join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)}")
        return Path(str(files("ftreg.resources") / BUILTIN_DATASETS[name]))


class FileSource(DatasetSource):
    name = "file"
    description = "a local data file (JSON, JSONL, CSV, TSV, text, Parquet, Arrow), a directory of them, or a `datasets` save_to_disk directory"

    def claims(self, text: str) -> bool:
        return True  # asked last: whatever no other source claims is a path

    def resolve(self, text: str) -> Path:
        path = Path(text)
        if path.is_dir():
            return path
        if path.exists() and not path.is_file():
            raise DatasetError(f"{text}: not a regular file (a pipe or device?); name a dataset file")
        if not path.is_file():
            raise DatasetError(f"{text}: no such file")
        return path


@hookimpl(trylast=True)
def register_dataset_sources(register: Callable[[DatasetSource], None]) -> None:
    register(BuiltinSource())
    register(FileSource())
