"""Reading a ``--dataset`` into examples: a source finds the data, a table yields its records, a format
maps each record to an example; problems are collected with their place and duplicates counted."""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ftreg import plugins
from ftreg.contract.formats import DatasetFormat, Example, Problems, RecordFormat, RecordProblem
from ftreg.contract.sources import ResolvedData
from ftreg.datasets.detect import detect_format
from ftreg.datasets.tables import Record, Table, open_table, renamed
from ftreg.errors import DatasetError

# Far past any context window: a row this long is a broken file, not a long example.
MAX_EXAMPLE_CHARS = 100_000


@dataclass(frozen=True)
class DatasetReader:
    """A dataset resolved and its format chosen, read lazily by `examples`."""

    source: str  # as the user gave it: a path, builtin:NAME, a Hub id
    data: ResolvedData
    table: Table
    format: DatasetFormat
    detected: bool  # the format was detected, not given with --format
    columns: dict[str, str] = field(default_factory=dict)  # field -> the data's column (--column)

    @property
    def path(self) -> Path:
        return self.data.path

    @functools.cached_property
    def fingerprint(self) -> str:  # read once: the run record, the resume check and the manifest all use it
        return self.data.fingerprint or self.table.fingerprint()

    @property
    def reference(self) -> str:
        """What a record should name to find this data again from any directory."""
        if self.data.reference:
            return self.data.reference
        return str(self.path.resolve()) if Path(self.source).exists() else self.source

    def describe(self) -> dict[str, object]:
        return {"source": self.source, "format": self.format.name, "fingerprint": self.fingerprint}

    def examples(self, duplicate_lines: list[int] | None = None) -> Iterator[Example]:
        """Every example, in order; raises one DatasetError listing every problem once the data is read.

        Lines (or rows) of examples identical to an earlier one are appended to ``duplicate_lines``.
        """
        problems: dict[Path, Problems] = {}
        seen: set[int] = set()  # hashes, not examples: a million rows stay cheap
        count = 0
        for record, read in self._read():
            if isinstance(read, Example) and (size := sum(len(s.text) for s in read.segments)) > MAX_EXAMPLE_CHARS:
                read = f"the example is {size:,} characters long; the limit is {MAX_EXAMPLE_CHARS:,} (a broken export?)"
            if isinstance(read, str):
                problems.setdefault(record.path, Problems(record.path, record.unit)).add(read, record.position, record.column)
                continue
            key = hash(read.segments)
            if key in seen and duplicate_lines is not None:
                duplicate_lines.append(read.line)
            seen.add(key)
            count += 1
            yield read
        for found in problems.values():
            found.raise_if_any()
        if not count:
            raise DatasetError(f"{self.path}: the dataset has no examples")

    def _read(self) -> Iterator[tuple[Record, Example | str]]:
        """Each record with its example, or with what is wrong with it."""
        if not isinstance(self.format, RecordFormat):
            if not self.path.is_file():
                raise DatasetError(f"{self.path}: format {self.format.name!r} reads one local file, and this is a directory")
            for example in self.format.read(self.path, self.columns or None):
                yield Record(self.path, "line", example.line, None), example
            return
        for record in self.table.records():
            if record.problem is not None:
                yield record, record.problem
                continue
            try:
                yield record, Example(self.format.segments(renamed(record.value, self.columns)), record.position)
            except RecordProblem as problem:
                yield record, str(problem)


@dataclass(frozen=True)
class LoadedDataset:
    reader: DatasetReader
    examples: list[Example]
    duplicate_lines: list[int]  # examples identical to an earlier one (kept, but worth a warning)

    @property
    def source(self) -> str:
        return self.reader.source

    @property
    def path(self) -> Path:
        return self.reader.path

    @property
    def format(self) -> DatasetFormat:
        return self.reader.format

    @property
    def detected(self) -> bool:
        return self.reader.detected

    @property
    def fingerprint(self) -> str:
        return self.reader.fingerprint

    @property
    def reference(self) -> str:
        return self.reader.reference

    def describe(self) -> dict[str, object]:
        return {**self.reader.describe(), "examples": len(self.examples)}


def resolve_source(text: str) -> ResolvedData:
    """The local data behind a ``--dataset`` text, from the first registered source that claims it."""
    for source in plugins.dataset_sources().values():
        if source.claims(text):
            found = source.resolve(text)
            return found if isinstance(found, ResolvedData) else ResolvedData(found)
    raise DatasetError(f"{text}: no dataset source understands this (sources: {', '.join(plugins.dataset_sources())})")


def dataset_path(text: str) -> Path:
    return resolve_source(text).path


def dataset_fingerprint(text: str) -> str:
    """What identifies the data behind ``text`` now, to compare with what a version recorded."""
    data = resolve_source(text)
    return data.fingerprint or open_table(data.path, data.split).fingerprint()


FALLBACK_FORMAT = "text"  # the format that claims whatever no other one does


def open_dataset(source: str, format_name: str | None = None, columns: dict[str, str] | None = None) -> DatasetReader:
    """Resolve, choose the format (detect it unless named) and check the columns; nothing is read past the first record."""
    data = resolve_source(source)
    table = open_table(data.path, data.split)
    columns = dict(columns or {})
    schema = table.schema() if columns or format_name else None
    if format_name:
        dataset_format = plugins.get_dataset_format(format_name)
    else:
        dataset_format = detect_format(table, plugins.dataset_formats(), columns)
        if dataset_format.name == FALLBACK_FORMAT and (broken := plugins.broken_plugins()):
            # Plain text reads anything; a format the user installed for this file may be the broken one.
            names = ", ".join(broken)
            raise DatasetError(f"{source}: no working format claims it but plain text, and plugin {names} is broken (see `ftreg plugins`): fix or uninstall it, or pass --format {FALLBACK_FORMAT}")
    _check_renamable(dataset_format, columns)
    if columns:
        _check_columns_exist(table, schema, columns)
    if schema is not None and isinstance(dataset_format, RecordFormat):
        _check_required_columns(table, schema, dataset_format, columns)
    return DatasetReader(source, data, table, dataset_format, not format_name, columns)


def load_dataset(source: str, format_name: str | None = None, columns: dict[str, str] | None = None) -> LoadedDataset:
    reader = open_dataset(source, format_name, columns)
    duplicates: list[int] = []
    return LoadedDataset(reader, list(reader.examples(duplicates)), duplicates)


def _check_renamable(dataset_format: DatasetFormat, columns: dict[str, str]) -> None:
    known = dataset_format.renamable_fields
    if columns and known is not None and (unknown := sorted(set(columns) - set(known))):
        reads = f"the fields it reads: {', '.join(known)}" if known else "it has no fields to rename"
        raise DatasetError(f"`columns` renames {unknown[0]!r}, but format {dataset_format.name!r} has no such field ({reads})")


def _check_columns_exist(table: Table, schema: tuple[tuple[str, ...], int | None] | None, columns: dict[str, str]) -> None:
    names = list(schema[0]) if schema is not None else table.sampled_columns()  # the schema read once, by the caller
    for field_name, name in columns.items():
        if names and name not in names:
            guess = difflib.get_close_matches(name, names, n=1)
            hint = f" (did you mean {guess[0]!r}?)" if guess else ""
            raise DatasetError(f"{table.path}: `columns` reads {field_name} from column {name!r}, which the data does not have{hint}; its columns: {', '.join(map(repr, names))}")


def _check_required_columns(table: Table, schema: tuple[tuple[str, ...], int | None], dataset_format: RecordFormat, columns: dict[str, str]) -> None:
    """A column every row lacks is one problem of the header, not one per row."""
    names, header_line = schema
    present = set(renamed(dict.fromkeys(names), columns))
    missing = [columns.get(name, name) for name in dataset_format.required_fields if name not in present]
    if missing:
        where = f"{table.path}:{header_line}" if header_line else str(table.path)
        has = "the header has" if header_line else "its columns are"
        mapping = " ".join(f"--column {field}=NAME" for field in dataset_format.required_fields if field not in present)
        raise DatasetError(f"{where}: missing column {', '.join(map(repr, missing))}; {has} {', '.join(map(repr, names))} (rename with {mapping})")
