"""Reading data into records, whatever holds it: JSON, JSON Lines, CSV/TSV, plain text, Parquet,
Arrow, a directory of such files (split by the Hub's file-naming rules), or a `datasets`
``save_to_disk`` directory.

Records are read lazily, a batch at a time, so a large file never sits in memory whole; each
keeps where it came from (file and line, or file and row) so a problem names its place.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftreg.contract.formats import read_json_records, read_text
from ftreg.errors import DatasetError

TEXT_SUFFIXES = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".csv": "csv", ".tsv": "csv", ".txt": "text"}
BINARY_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow"}
DATA_SUFFIXES = sorted({**TEXT_SUFFIXES, **BINARY_SUFFIXES})
PARQUET_MAGIC, ARROW_FILE_MAGIC = b"PAR1", b"ARROW1"
SAMPLE_RECORDS = 1000  # records read to learn a schemaless table's columns
BATCH_ROWS = 1024  # rows decoded at once from Parquet or Arrow: enough to amortise, small enough to stay flat


@dataclass(frozen=True)
class Record:
    path: Path  # the file (or saved-dataset directory) the record came from
    unit: str  # what `position` counts: "line" in text files, "row" in binary tables
    position: int  # 1-based
    value: Any  # a mapping when the data is well-formed
    problem: str | None = None  # the record could not be read at all (invalid JSON, a ragged CSV row)
    column: int | None = None


@dataclass(frozen=True)
class Table:
    """One dataset's records, not yet read."""

    path: Path
    files: tuple[Path, ...]  # whose bytes are the data: what the fingerprint hashes
    kind: str  # json, csv, text, parquet, arrow, saved
    split: str | None = None

    def records(self) -> Iterator[Record]:
        if self.kind == "saved":
            yield from _saved_records(self.path, self.split)
            return
        for file in self.files:
            yield from READERS[_file_kind(file)](file)

    def schema(self) -> tuple[tuple[str, ...], int | None] | None:
        """The column names every record has, and the line that declares them, where the data fixes them up front."""
        if self.kind == "csv":
            return tuple(_csv_header(self.files[0])[0]), 1
        if self.kind in ("parquet", "arrow"):
            return tuple(_arrow_schema(self.files[0]).names), None
        if self.kind == "saved":
            return tuple(_saved_split(self.path, self.split).column_names), None
        return None

    def first_mapping(self) -> dict[str, Any] | None:
        """The first well-formed record, to detect the format and name the columns found."""
        return next(self._mappings(), None)

    def sampled_columns(self) -> list[str]:
        """The keys of the first records, for data without a schema (JSON records may leave optional keys out)."""
        return list(dict.fromkeys(key for record in itertools.islice(self._mappings(), SAMPLE_RECORDS) for key in record))

    def _mappings(self) -> Iterator[dict[str, Any]]:
        for record in self.records():
            if record.problem is None and isinstance(record.value, dict):
                yield record.value
            elif record.position > SAMPLE_RECORDS:
                return

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for file in self.files:
            file_digest = _sha256(file)
            if len(self.files) == 1:
                return "sha256:" + file_digest
            digest.update(f"{file.resolve().relative_to(self.path.resolve())}\0{file_digest}\n".encode())
        return "sha256:" + digest.hexdigest()


def renamed(record: Any, columns: Mapping[str, str]) -> Any:
    """The record with each ``--column FIELD=NAME`` applied: the data's NAME is read as FIELD."""
    if not columns or not isinstance(record, Mapping):
        return record
    moved = set(columns.values())
    return {**{key: value for key, value in record.items() if key not in moved}, **{f: record[n] for f, n in columns.items() if n in record}}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def open_table(path: Path, split: str | None = None) -> Table:
    """The table behind a local file or directory; a DatasetError naming it when it holds no data ftreg reads."""
    if path.is_file():
        return Table(path, (path,), _file_kind(path))
    if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
        return Table(path, tuple(sorted(p for p in path.rglob("*") if p.is_file())), "saved", split)
    return _directory_table(path, split)


def _file_kind(path: Path) -> str:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(ARROW_FILE_MAGIC) or head.startswith(b"\xff\xff\xff\xff"):  # Arrow file, Arrow stream
        return "arrow"
    if path.suffix.lower() in BINARY_SUFFIXES:
        raise DatasetError(f"{path}: not a {path.suffix.lower()[1:].capitalize()} file (it does not start with the format's magic bytes)")
    if path.suffix.lower() in TEXT_SUFFIXES:
        return TEXT_SUFFIXES[path.suffix.lower()]
    sample = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "json" if sample in (b"[", b"{") else "text"


def _directory_table(path: Path, split: str | None) -> Table:
    if not any(found.suffix.lower() in DATA_SUFFIXES for found in path.rglob("*")):  # said before datasets takes 2 s to load
        raise DatasetError(f"{path}: a directory with no data files ({', '.join(DATA_SUFFIXES)}) in it")
    # The Hub's rules for which files make which split (train-*.parquet, data/test/..., else all train).
    from datasets.data_files import get_data_patterns, resolve_pattern

    try:
        patterns = get_data_patterns(str(path))
    except Exception as error:  # datasets raises its own EmptyDatasetError and FileNotFoundError
        raise DatasetError(f"{path}: a directory with no data files ({', '.join(DATA_SUFFIXES)}) in it") from error
    splits = {str(name): names for name, names in patterns.items()}
    chosen = split or ("train" if "train" in splits or len(splits) != 1 else next(iter(splits)))
    if chosen not in splits:
        raise DatasetError(f"{path}: no split {chosen!r}; the directory has {', '.join(map(repr, splits))}")
    files = sorted({Path(found) for pattern in splits[chosen] for found in _matches(pattern, path, resolve_pattern)})
    if not files:
        raise DatasetError(f"{path}: a directory with no data files ({', '.join(DATA_SUFFIXES)}) in it")
    # As datasets does: the split is its most common kind of file (a LICENSE.txt beside data.jsonl is not data).
    kinds = Counter(_file_kind(file) for file in files).most_common()
    if len(kinds) > 1 and kinds[0][1] == kinds[1][1]:
        raise DatasetError(f"{path}: the {chosen} split has as many {kinds[0][0]} as {kinds[1][0]} files; keep one kind of data file per split")
    kind = kinds[0][0]
    return Table(path, tuple(file for file in files if _file_kind(file) == kind), kind, chosen)


def _matches(pattern: str, path: Path, resolve_pattern: Any) -> list[str]:
    """The data files one of the Hub's split patterns matches; datasets raises when one matches nothing."""
    try:
        return resolve_pattern(pattern, str(path), allowed_extensions=DATA_SUFFIXES)
    except FileNotFoundError:
        return []


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Each line's number and text, decoded one at a time; an error names the first line that is not UTF-8."""
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise DatasetError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[error.start]:02x})") from error
            yield number, line.removeprefix("\ufeff") if number == 1 else line


def _json_records(path: Path) -> Iterator[Record]:
    lines = _lines(path)
    for number, line in lines:
        if not line.strip():
            continue
        if line.lstrip().startswith("["):  # one JSON array: small enough to hold, and it needs the whole text
            yield from (Record(path, "line", at, value) for at, value in read_json_records(path))
            return
        yield from _json_lines(path, number, line, lines)
        return
    raise DatasetError(f"{path}: the file is empty")


def _json_lines(path: Path, first_number: int, first_line: str, rest: Iterator[tuple[int, str]]) -> Iterator[Record]:
    for number, line in itertools.chain([(first_number, first_line)], rest):
        if not line.strip():
            continue
        try:
            yield Record(path, "line", number, json.loads(line.rstrip("\r\n")))
        except json.JSONDecodeError as error:
            if number == first_number:
                _refuse_one_multiline_value(path)
            yield Record(path, "line", number, None, f"invalid JSON: {error.msg}", error.colno)
        except RecursionError:
            yield Record(path, "line", number, None, "JSON nested too deeply to read")


def _refuse_one_multiline_value(path: Path) -> None:
    """A pretty-printed object is not JSON Lines: say so once instead of an error on every line."""
    try:
        whole = json.loads(read_text(path))
    except (json.JSONDecodeError, RecursionError):
        return
    raise DatasetError(f"{path}:1: the file is one JSON {type(whole).__name__}; expected a JSON array of records or JSON Lines")


def _csv_header(path: Path) -> tuple[list[str], str]:
    """The header's column names and the delimiter, sniffed from the first lines (comma, semicolon, tab or pipe)."""
    sample = "".join(line for _, line in zip(range(20), (line for _, line in _lines(path))))
    if not sample.strip():
        raise DatasetError(f"{path}: the file is empty")
    delimiter = _delimiter(path, sample.split("\n", 1)[0].rstrip("\r"))
    try:
        header = next(csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter, strict=True))
    except csv.Error as error:
        raise DatasetError(f"{path}:1: invalid CSV: {error}") from error
    return [name.strip() for name in header], delimiter


def _delimiter(path: Path, header: str) -> str:
    """The separator the header line uses most (comma, semicolon, tab or pipe); the suffix decides when none appears.

    The header alone decides: data rows hold quoted commas and multi-line cells that mislead a sniffer.
    """
    counts = Counter({candidate: header.count(candidate) for candidate in ",;\t|"}).most_common()
    if counts[0][1] and counts[0][1] > counts[1][1]:
        return counts[0][0]
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _csv_records(path: Path) -> Iterator[Record]:
    header, delimiter = _csv_header(path)
    with path.open(encoding="utf-8-sig", newline="", errors="strict") as handle:
        reader = csv.reader(handle, delimiter=delimiter, strict=True)
        try:
            next(reader)
            start = reader.line_num + 1
            for row in reader:
                if not any(cell.strip() for cell in row):
                    pass  # a blank line
                elif len(row) != len(header):
                    yield Record(path, "line", start, None, f"row has {len(row)} fields, the header has {len(header)}")
                else:
                    yield Record(path, "line", start, dict(zip(header, row)))
                start = reader.line_num + 1
        except csv.Error as error:
            yield Record(path, "line", start, None, f"invalid CSV: {error}")
        except UnicodeDecodeError:
            read_text(path)  # raises the error that names the line
            raise


def _text_records(path: Path) -> Iterator[Record]:
    found = False
    for number, line in _lines(path):
        if line.strip():
            found = True
            yield Record(path, "line", number, {"text": line.strip()})
    if not found:
        raise DatasetError(f"{path}: the file is empty")


def _arrow_schema(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if _file_kind(path) == "parquet":
            return pq.ParquetFile(path).schema_arrow
        return _arrow_reader(path).schema
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"{path}: not a readable {_file_kind(path).capitalize()} file: {error}") from error


def _arrow_reader(path: Path) -> Any:
    import pyarrow as pa

    source = pa.memory_map(str(path))
    return pa.ipc.open_file(source) if source.read(6) == ARROW_FILE_MAGIC else pa.ipc.open_stream(pa.memory_map(str(path)))


def _binary_records(path: Path) -> Iterator[Record]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    kind = _file_kind(path)
    try:
        if kind == "parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS)
        else:
            reader = _arrow_reader(path)
            batches = (reader.get_batch(i) for i in range(reader.num_record_batches)) if hasattr(reader, "get_batch") else iter(reader)
        row = 0
        for batch in batches:
            for offset in range(0, batch.num_rows, BATCH_ROWS):  # one record batch may hold the whole file
                for value in batch.slice(offset, BATCH_ROWS).to_pylist():
                    row += 1
                    yield Record(path, "row", row, value)
    except (pa.ArrowException, OSError) as error:
        raise DatasetError(f"{path}: not a readable {kind.capitalize()} file: {error}") from error


def _saved_split(path: Path, split: str | None) -> Any:
    """The memory-mapped `datasets.Dataset` saved at ``path`` (the chosen split of a saved DatasetDict)."""
    import datasets

    try:
        saved = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as error:
        raise DatasetError(f"{path}: not a readable saved dataset: {error}") from error
    if isinstance(saved, datasets.DatasetDict):
        chosen = split or ("train" if "train" in saved or len(saved) != 1 else next(iter(saved)))
        if chosen not in saved:
            raise DatasetError(f"{path}: no split {chosen!r}; the saved dataset has {', '.join(map(repr, saved))}")
        return saved[chosen]
    return saved


def _saved_records(path: Path, split: str | None) -> Iterator[Record]:
    row = 0
    for batch in _saved_split(path, split).iter(batch_size=BATCH_ROWS):
        names = list(batch)
        for values in zip(*(batch[name] for name in names)):
            row += 1
            yield Record(path, "row", row, dict(zip(names, values)))


READERS = {"json": _json_records, "csv": _csv_records, "text": _text_records, "parquet": _binary_records, "arrow": _binary_records}
