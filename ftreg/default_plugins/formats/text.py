"""Plain text: one training example per line, blank lines skipped; every token carries loss."""

from __future__ import annotations

from pathlib import Path

from ftreg.contract.formats import DatasetFormat, Example, Segment, looks_like_json, read_text
from ftreg.hookspecs import hookimpl


class TextFormat(DatasetFormat):
    name = "text"
    description = "plain text, one example per line; plain causal LM, no masking"
    renamable_fields = ()

    def score(self, path: Path, sample: str) -> float:
        # The fallback: any text can be read as lines, so it only wins when nothing specific matches.
        return 0.0 if looks_like_json(sample) else 0.2

    def read(self, path: Path, columns: dict[str, str] | None = None) -> list[Example]:
        return [
            Example((Segment(line.strip(), True, eos=True),), number)
            for number, line in enumerate(read_text(path).splitlines(), start=1)
            if line.strip()
        ]


@hookimpl
def register_dataset_formats(register):
    register(TextFormat())
