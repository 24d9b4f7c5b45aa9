"""Question/answer pairs in CSV or TSV with a header row (`question`, `answer` by default).

Other column names: ``--column question=Q --column answer=A``. Quoted fields may hold commas
and newlines; a UTF-8 byte-order mark is ignored. Loss on the answer only.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ftreg.contract.formats import DatasetFormat, Example, Problems, Segment, looks_like_json, read_text
from ftreg.hookspecs import hookimpl


class CsvQaFormat(DatasetFormat):
    name = "csv-qa"
    description = "CSV/TSV with question and answer columns; loss on the answer"
    renamable_fields = ("question", "answer")
    fields = ("question", "answer")
    prompt_template = "### Question:\n{prompt}\n\n### Answer:\n"

    def score(self, path: Path, sample: str) -> float:
        if looks_like_json(sample):
            return 0.0
        header = next(csv.reader(io.StringIO(sample.lstrip("\ufeff")), delimiter=_delimiter(path, sample)), [])
        if {"question", "answer"} <= {name.strip().lower() for name in header}:
            return 1.0
        return 0.5 if path.suffix.lower() in (".csv", ".tsv") else 0.0

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        text = read_text(path)
        problems = Problems(path)
        names = {field: (columns or {}).get(field, field) for field in self.fields}
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(path, text), strict=True)
        try:
            header = [name.strip() for name in next(reader)]
        except csv.Error as error:
            raise problems.fatal(f"invalid CSV: {error}", reader.line_num) from error
        missing = [name for name in names.values() if name not in header]
        if missing:
            raise problems.fatal(f"missing column {', '.join(map(repr, missing))}; the header has {', '.join(map(repr, header))}", 1)
        index = {field: header.index(name) for field, name in names.items()}
        examples = []
        start = reader.line_num + 1
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    pass  # blank line
                elif len(row) != len(header):
                    problems.add(f"row has {len(row)} fields, the header has {len(header)}", start)
                else:
                    question, answer = (row[index[field]].strip() for field in self.fields)
                    if not question or not answer:
                        problems.add(f"empty {names['question'] if not question else names['answer']!r}", start)
                    else:
                        examples.append(Example((Segment(self.render_prompt(question), False), Segment(answer, True, eos=True)), start))
                start = reader.line_num + 1
        except csv.Error as error:
            problems.add(f"invalid CSV: {error}", start)
        problems.raise_if_any()
        return examples


def _delimiter(path: Path, sample: str) -> str:
    first_line = sample.lstrip("\ufeff").split("\n", 1)[0]
    return "\t" if path.suffix.lower() == ".tsv" or "\t" in first_line else ","


@hookimpl
def register_dataset_formats(register):
    register(CsvQaFormat())
