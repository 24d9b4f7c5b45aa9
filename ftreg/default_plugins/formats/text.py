"""Plain text: records of {"text"}; a plain-text file gives one per non-blank line. Every token carries loss."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, Segment, string_fields
from ftreg.hookspecs import hookimpl


class TextFormat(RecordFormat):
    name = "text"
    description = "plain text, one example per line (or a text column); plain causal LM, no masking"
    renamable_fields = ("text",)
    required_fields = ("text",)

    def score_record(self, record: Mapping[str, Any]) -> float:
        # Low: many tables have a text column next to the ones a more specific format reads.
        return 0.2 if isinstance(record.get("text"), str) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        return (Segment(string_fields(record, self.required_fields)["text"], True, eos=True),)


@hookimpl
def register_dataset_formats(register):
    register(TextFormat())
