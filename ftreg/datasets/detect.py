"""Detecting a dataset's format when no --format is given."""

from __future__ import annotations

from ftreg.contract.formats import DatasetFormat, Problems, RecordFormat
from ftreg.datasets.tables import Table, renamed
from ftreg.errors import DatasetError

SAMPLE_BYTES = 65536


def detect_format(table: Table, formats: dict[str, DatasetFormat], columns: dict[str, str]) -> DatasetFormat:
    """The one format that scores highest on the first record (record formats) or the file's first
    characters (file formats); an error naming the columns found if none matches, or on a tie."""
    unreadable: DatasetError | None = None
    try:
        first = table.first_mapping()
    except DatasetError as error:  # not text ftreg reads (an .xlsx, say): a file format may still claim it
        first, unreadable = None, error
    record = renamed(first, columns) if first is not None else None
    sample = _sample(table)
    scores = []
    for name, fmt in formats.items():
        if isinstance(fmt, RecordFormat):
            score = fmt.score_record(record) if record is not None else 0.0
        else:
            score = fmt.score(table.path, sample) if sample is not None else 0.0
        scores.append((score, name))
    scores.sort(reverse=True)
    best = [name for score, name in scores if score > 0 and score == scores[0][0]]
    if len(best) == 1:
        return formats[best[0]]
    listing = ", ".join(f"{name} ({score:g})" for score, name in scores)
    if best:
        raise DatasetError(f"{table.path}: the data matches {' and '.join(best)} equally; pass `format` (scores: {listing})")
    if unreadable is not None:
        raise unreadable
    if first is None:
        _raise_first_problems(table)
    names = list(first or {})
    found = f"records with columns {', '.join(map(repr, names))}" if names else "its records"
    hint = f"; for question/answer pairs pass --column question={names[0]} --column answer={names[1]}" if len(names) >= 2 else ""
    raise DatasetError(f"{table.path}: no known format reads {found}{hint}; or pass `format` (scores: {listing})")


def _sample(table: Table) -> str | None:
    """A local file's first characters, for formats that read files themselves; None for binary or directory data."""
    if not table.path.is_file() or table.kind in ("parquet", "arrow"):
        return None
    with table.path.open("rb") as handle:
        return handle.read(SAMPLE_BYTES).decode("utf-8", errors="ignore").removeprefix("\ufeff")


def _raise_first_problems(table: Table) -> None:
    """No record could be read: report why (invalid JSON, ragged rows), or that there is nothing."""
    problems: dict[object, Problems] = {}
    seen = False
    for record in table.records():
        seen = True
        if record.problem is not None:
            problems.setdefault(record.path, Problems(record.path, record.unit)).add(record.problem, record.position, record.column)
    for found in problems.values():
        found.raise_if_any()
    if not seen:
        raise DatasetError(f"{table.path}: the dataset has no examples")
