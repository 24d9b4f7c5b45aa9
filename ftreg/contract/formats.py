"""What a dataset-format plugin implements, and helpers for writing one.

A format turns data into `Example`s. An example is a sequence of text segments, each marked
as carrying loss or not; that is enough for instruction data (prompt masked, response trained),
plain text (all trained) and chat (assistant turns trained).

Most formats are `RecordFormat`s: they map one record (a row of JSON, CSV, Parquet, Arrow, a
saved or Hub dataset: whatever the source) to one example, so every source works with every
format. A plain `DatasetFormat` reads a local file itself, for shapes no table holds (Markdown).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftreg.errors import ConfigError, DatasetError

# Past this many problems a report stops listing them: the user has enough to fix.
MAX_PROBLEMS = 20
# What `ftreg generate` can pass a format besides the prompt (`DatasetFormat.generation_extras`).
GENERATION_EXTRAS = ("system", "input", "messages")


@dataclass(frozen=True)
class Segment:
    text: str
    trains: bool  # whether its tokens carry loss
    eos: bool = False  # followed by the end-of-text token (with the same loss), so the model learns to stop


@dataclass(frozen=True)
class Example:
    segments: tuple[Segment, ...]
    line: int  # 1-based line of the source file where the example starts


class DatasetFormat:
    """Base class for formats that read a local file themselves. Subclasses set the attributes and implement `read`."""

    name: str = ""
    description: str = ""
    # How a user's prompt is wrapped at generation time; "{prompt}" marks where it goes.
    # It must equal the untrained prefix that `read` produces for a one-turn example.
    prompt_template: str = "{prompt}"
    # The fields `columns` (``--column FIELD=NAME``) can rename; None: the format does not say, nothing is checked.
    renamable_fields: tuple[str, ...] | None = None
    # What generation may pass `generation_prompt` besides the prompt: any of GENERATION_EXTRAS.
    generation_extras: tuple[str, ...] = ()

    def score(self, path: Path, sample: str) -> float:
        """How sure this format is that it can read the file (0: not at all, 1: certain).

        ``sample`` is the file's first characters; used when no --format is given.
        """
        return 0.0

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        """Every example of the file. ``columns`` renames fields: {"question": "Q"} reads "Q"."""
        raise NotImplementedError

    def render_prompt(self, text: str) -> str:
        return self.prompt_template.replace("{prompt}", text)

    def system_prompt(self, examples: list[Example]) -> str | None:
        """The system message the examples open with (the most common one), or None.

        Recorded with every version trained on them, and the default system message at generation.
        """
        return None

    def generation_prompt(
        self, prompt: str | None = None, *, system: str | None = None, input: str | None = None, messages: list[dict[str, str]] | None = None
    ) -> tuple[Segment, ...]:
        """The untrained segments `read` renders before the reply to this request: what generation sends.

        For a one-turn request that is the first segment of the example `read` makes of it, byte for
        byte. ``system``, ``input`` and ``messages`` (a dialogue whose last message is the user's,
        instead of ``prompt``) are passed only when named in `generation_extras`.
        """
        if prompt is None:
            raise ConfigError(f"format {self.name!r} renders a `prompt`; none was given")
        return (Segment(self.render_prompt(prompt), False),)

    def generation_template(self, system: str | None = None) -> str:
        """`prompt_template` with ``system`` rendered into it: the template a version records."""
        if system is None:
            return self.prompt_template
        return "".join(segment.text for segment in self.generation_prompt("{prompt}", system=system))


class RecordProblem(ValueError):
    """What is wrong with one record; the loader adds the file and the line or row."""


class RecordFormat(DatasetFormat):
    """Base class for formats that map records to examples. Subclasses implement `score_record` and `segments`.

    Records arrive with ``--column`` renames already applied, so a format reads its own field names.
    """

    # Fields every record must have: a table whose columns lack one is refused once, by its header.
    required_fields: tuple[str, ...] = ()

    def score_record(self, record: Mapping[str, Any]) -> float:
        """How sure this format is that it reads records like this one (0: not at all, 1: certain)."""
        return 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        """The record's example; raise `RecordProblem` saying what is wrong with it."""
        raise NotImplementedError


def string_fields(record: object, fields: tuple[str, ...]) -> dict[str, str]:
    """The record's ``fields`` as stripped non-empty strings, or a `RecordProblem` listing every missing or bad one."""
    if not isinstance(record, Mapping):
        raise RecordProblem(f"expected an object with keys {', '.join(fields)}, got {type(record).__name__}")
    values, problems = {}, []
    for field in fields:
        value = record.get(field)
        if field not in record:
            guess = difflib.get_close_matches(field, [key for key in record if key not in fields], n=1)
            problems.append(f"missing key {field!r}" + (f" (found {guess[0]!r}: misspelled?)" if guess else ""))
        elif not isinstance(value, str):
            problems.append(f"{field!r} must be a string, got {type(value).__name__}")
        elif not value.strip():
            problems.append(f"{field!r} is empty")
        elif not _encodable(value):
            problems.append(f"{field!r} is not valid Unicode (a lone surrogate such as \\ud800?)")
        else:
            values[field] = value.strip()
    if problems:
        raise RecordProblem("; ".join(problems))
    return values


class Problems:
    """Collects every problem of a file so one run reports them all, then raises once.

    ``unit`` names what positions count: lines of a text file, or rows of a binary table.
    """

    def __init__(self, path: Path, unit: str = "line"):
        self.path = path
        self.unit = unit
        self.messages: list[str] = []
        self.unlisted = 0  # problems past MAX_PROBLEMS: counted, not kept, so a broken million-row file stays cheap

    def add(self, message: str, line: int | None = None, column: int | None = None) -> None:
        if len(self.messages) >= MAX_PROBLEMS:
            self.unlisted += 1
            return
        if self.unit != "line" and line:
            where = f"{self.path}: {self.unit} {line}"
        else:
            where = str(self.path) + (f":{line}" if line else "") + (f":{column}" if column and line else "")
        self.messages.append(f"{where}: {message}")

    def fatal(self, message: str, line: int | None = None) -> DatasetError:
        """A problem that stops reading: the error to raise, listing earlier problems too."""
        self.unlisted, shown = 0, self.messages[: MAX_PROBLEMS - 1]
        self.messages = shown
        self.add(message, line)
        return DatasetError(self._report())

    def raise_if_any(self) -> None:
        if self.messages:
            raise DatasetError(self._report())

    def _report(self) -> str:
        return "\n".join(self.messages + ([f"... and {self.unlisted} more problems"] if self.unlisted else []))


def read_text(path: Path) -> str:
    """The file's text, or a DatasetError naming the line of the first byte that is not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"{path}: cannot read: {error.strerror}") from error
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DatasetError(f"{path}:{line}: not UTF-8 text (byte 0x{data[error.start]:02x})") from error
    if not text.strip():
        raise DatasetError(f"{path}: the file is empty")
    return text


def read_json_records(path: Path) -> list[tuple[int, object]]:
    """Read a JSON array or JSON Lines file into ``(line, value)`` pairs, each at its own line."""
    text = read_text(path)
    if text.lstrip("\ufeff \t\r\n").startswith("["):
        return _json_array_records(path, text)
    lines = text.splitlines()
    if sum(1 for line in lines if line.strip()) > 1:
        try:
            whole = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            pass  # not one JSON value: JSON Lines, checked line by line below
        else:
            raise DatasetError(f"{path}:1: the file is one JSON {type(whole).__name__}; expected a JSON array of records or JSON Lines")
    problems = Problems(path)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append((number, json.loads(line)))
        except json.JSONDecodeError as error:
            problems.add(f"invalid JSON: {error.msg}", number, error.colno)
        except RecursionError:
            problems.add("JSON nested too deeply to read", number)
    problems.raise_if_any()
    return records


def _json_array_records(path: Path, text: str) -> list[tuple[int, object]]:
    # Decode element by element so each record keeps the line it starts on.
    decoder = json.JSONDecoder()
    try:
        decoder.decode(text)
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}") from error
    except RecursionError as error:
        raise DatasetError(f"{path}: JSON nested too deeply to read") from error
    records: list[tuple[int, object]] = []
    index = text.index("[") + 1
    while True:
        index = _skip(text, index, ", \t\r\n")
        if text[index] == "]":
            return records
        value, end = decoder.raw_decode(text, index)
        records.append((text.count("\n", 0, index) + 1, value))
        index = end


def _skip(text: str, index: int, characters: str) -> int:
    while text[index] in characters:
        index += 1
    return index


def check_string_fields(record: object, fields: tuple[str, ...], problems: Problems, line: int, columns: dict[str, str] | None = None) -> dict[str, str] | None:
    """For file formats: the record's fields as stripped strings, keyed by field name; None after reporting problems.

    ``columns`` maps a field to the key it has in this file (``--column response=answer``).
    """
    keys = {field: (columns or {}).get(field, field) for field in fields}
    try:
        values = string_fields(record, tuple(keys.values()))
    except RecordProblem as problem:
        problems.add(str(problem), line)
        return None
    return {field: values[key] for field, key in keys.items()}


def looks_like_json(sample: str) -> bool:
    return sample.lstrip("\ufeff \t\r\n")[:1] in ("[", "{")


def first_json_record(sample: str) -> object | None:
    """The first record of a (possibly cut-off) JSON array or JSONL sample, if it parses."""
    text = sample.lstrip("\ufeff \t\r\n")
    if text.startswith("["):
        text = text[1:].lstrip()
    try:
        return json.JSONDecoder().raw_decode(text)[0]
    except (json.JSONDecodeError, RecursionError):
        return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
