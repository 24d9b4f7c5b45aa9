"""Instruction/response pairs: records of {"instruction": ..., "response": ...}.

Rendered with this template; only the response (and the end-of-text token after it) carries loss::

    ### Instruction:
    {instruction}

    ### Response:
    {response}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ftreg.contract.formats import RecordFormat, Segment, string_fields
from ftreg.hookspecs import hookimpl


class InstructionFormat(RecordFormat):
    name = "instruction"
    description = 'records of {"instruction", "response"}; loss on the response only'
    renamable_fields = ("instruction", "response")
    required_fields = ("instruction", "response")
    prompt_template = "### Instruction:\n{prompt}\n\n### Response:\n"

    def score_record(self, record: Mapping[str, Any]) -> float:
        if set(self.required_fields) <= set(record):
            return 1.0
        # An instruction without Alpaca's "output" is most likely this format with a key missing.
        return 0.5 if "instruction" in record and "output" not in record else 0.0

    def segments(self, record: Mapping[str, Any]) -> tuple[Segment, ...]:
        row = string_fields(record, self.required_fields)
        return Segment(self.render_prompt(row["instruction"]), False), Segment(row["response"], True, eos=True)


@hookimpl
def register_dataset_formats(register):
    register(InstructionFormat())
