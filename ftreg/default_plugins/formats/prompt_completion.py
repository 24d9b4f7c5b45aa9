"""Prompt/completion pairs: records of {"prompt", "completion"}, the shape of OpenAI's completion fine-tuning.

Both are used exactly as written (a separator at the end of the prompt, a leading space in the
completion, are part of what is learned), so generation sends a prompt as it is. Loss on the
completion only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, Segment, string_fields
from ftreg.hookspecs import hookimpl


class PromptCompletionFormat(RecordFormat):
    name = "prompt-completion"
    description = 'records of {"prompt", "completion"}, used as written; loss on the completion'
    renamable_fields = ("prompt", "completion")
    required_fields = ("prompt", "completion")

    def score_record(self, record: Mapping[str, Any]) -> float:
        return 1.0 if set(self.required_fields) <= set(record) else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        string_fields(record, self.required_fields)  # present, strings, not blank; the stripped values are not used
        return Segment(record["prompt"], False), Segment(record["completion"].rstrip(), True, eos=True)


@hookimpl
def register_dataset_formats(register):
    register(PromptCompletionFormat())
